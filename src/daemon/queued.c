/*
 * queued: the queue worker (`tegami worker queue`). It sends what the smtp
 * worker put in the outbound spool (queue/spool.h) to the rest of the
 * world, and bounces what cannot be delivered.
 *
 * One pass over an entry (a "task"): its due pending recipients are grouped
 * by destination domain, one "job" per domain; a job finds the route (MX
 * by DNS), connects to the targets in order until one takes the
 * transaction, and records each recipient's outcome in the in-memory
 * envelope. When every job of the task is over, a pool thread writes the
 * envelope back (or removes the entry when nothing is left), after queueing
 * the DSN for the recipients that failed. The worker is the only writer of
 * env/<id> after the smtp worker's commit; a task per entry at a time keeps
 * it so. A crash between a delivery and the envelope update sends that
 * recipient's copy again (at least once, never zero times).
 *
 * New entries are noticed with inotify (IN_MOVED_TO on env/) and by a scan
 * every second; a cache of each entry's next due time keeps the scan from
 * re-reading envelopes that are not due.
 *
 * Control socket (STATE_DIR/tegami/queue.sock, made after the privilege
 * drop, mode 0660): one line in, one line out:
 *   flush            -> "OK"        every pending recipient due now
 *   delete <id>      -> "OK" / "ERR reason"
 *   hold <id>, release <id>
 */
#include "daemon/worker.h"
#include "auth/accounts.h"
#include "dns/dns.h"
#include "dns/mxroute.h"
#include "lib/log.h"
#include "lib/pool.h"
#include "lib/str.h"
#include "lib/file.h"
#include "lib/xalloc.h"
#include "mail/downgrade.h"
#include "mail/mime.h"
#include "msgauth/dkim_keys.h"
#include "msgauth/dkim_sign.h"
#include "net/tls.h"
#include "queue/dsn.h"
#include "queue/fromaddr.h"
#include "queue/relay.h"
#include "queue/schedule.h"
#include "queue/spool.h"
#include "smtp/client.h"
#include "store/maildir.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

/* Header bytes of the original message quoted in a DSN (and searched for
 * From: when signing). */
#define ORIGINAL_HEADER_MAX (256 * 1024)
/* Messages up to this size are read into memory to be prepared, bigger
 * ones mapped. */
#define PREPARE_READ_MAX (1024 * 1024)
#define CTL_LINE_MAX 256
#define CTL_MAX_CLIENTS 16
/* Seconds in-flight deliveries get at stop. */
#define STOP_GRACE_SECS 3
/* How long a connection waits for the next message. As many may wait
 * per destination as TEGAMI_QUEUE_DOMAIN_CONCURRENCY allows: a parked
 * connection is taken before a new one is opened, so the open ones never
 * exceed the limit. */
#define IDLE_SECS 3
#define DUE_NEVER ((time_t)1 << 62)

struct qd;
struct qtask;

struct qjob {
	struct qtask *t;
	char *domain;		/* destination domain, or "[relay]:port" */
	char *lookup;		/* the name whose MX route we take */
	unsigned int port;
	bool via_relay;
	char *user, *password;	/* AUTH at the relay, or NULL */
	size_t nrcpt;
	size_t *idx;		/* indexes into t->env.rcpts */
	const char **addrs;
	struct mx_route *route;
	size_t target;
	int dns_id;
	struct smtp_client *client;
	struct smtp_client_msg msg;
	int fd;
	char relay[400];
	struct smtp_reply last;	/* the last failure, for the deferral */
	char *remote;		/* the exchanger's name, for DSNs */
	bool reused;		/* on a parked connection */
	bool no_reuse;		/* the parked one was dead: connect anew */
};

/* A connection kept open after a delivery for the next message to the
 * same destination (Postfix's connection cache). */
struct idle_conn {
	struct idle_conn *next;
	struct qd *d;
	char *key;
	char *remote;
	char relay[400];
	struct smtp_client *c;
	struct event *timer;
};

struct rcpt_info {
	bool touched;		/* attempted in this task */
	char status[16];
	char *remote;		/* remote MTA name, malloc'd */
	time_t when;
};

enum after_op { AFTER_NONE, AFTER_DELETE, AFTER_HOLD };

struct qtask {
	struct qd *d;
	struct qtask *next;
	struct spool_envelope env;
	struct rcpt_info *info;
	char *msg_path;
	char *prefix;		/* DKIM-Signature fields, or NULL */
	/* What the spooled bytes need (prepare_work): */
	bool has8;		/* a byte >= 0x80 */
	bool needs_utf8;	/* UTF-8 in the envelope or a header: SMTPUTF8 */
	char *conv;		/* the 7-bit form (a mapping), or NULL */
	size_t conv_len;
	bool conv_always;	/* signed: every peer gets the 7-bit form */
	const char *no_7bit;	/* why there is no 7-bit form (static) */
	bool no_7bit_temp;	/* ... and that it may work next time */
	size_t nkeys;
	struct dkim_key *keys[DKIM_MAX_KEYS_PER_MESSAGE];
	struct accounts *acc;	/* for local bounces, taken at finish */
	struct qjob **jobs;
	size_t njobs, jobs_left;
	enum after_op after;
	/* results of the finish work */
	char *err;
	bool removed;
	unsigned int dsn_count;
	char dsn_id[SPOOL_ID_LEN + 1];
	bool dsn_local;
	unsigned int warn_count;	/* recipients in the delay warning */
	char warn_id[SPOOL_ID_LEN + 1];
	bool warn_local;
};

struct due {
	char id[SPOOL_ID_LEN + 1];
	time_t due;
	bool forced;		/* flushed: try every pending recipient */
	/* Due, but its destination was at TEGAMI_QUEUE_DOMAIN_CONCURRENCY
	 * last time: not read again until that destination has a free
	 * slot (malloc'd key, NULL = not waiting). */
	char *wait;
};

struct domcount {
	char *domain;
	unsigned int n;
};

struct ctl_client {
	struct qd *d;
	struct bufferevent *bev;
};

struct qd {
	struct worker *w;
	const struct settings *set;
	struct spool *spool;
	struct pool *pool;
	struct dns_resolver *dns;
	struct accounts_watch *accounts;
	struct dkim_keyset *keys;
	struct relay_config *relay;
	unsigned int signing;	/* pool jobs using keys */
	SSL_CTX *client_tls;
	int ino_fd;
	struct event *ino_ev;
	struct event *scan_ev;
	struct event *dispatch_ev;
	struct event *tick_ev;
	struct event *stop_ev;
	struct evconnlistener *ctl;
	char *ctl_path;
	ino_t ctl_ino;
	dev_t ctl_dev;
	int lock_fd;
	bool locked;		/* we are the one queue worker */
	unsigned int ctl_clients;
	struct qtask *tasks;
	size_t ntasks;
	struct idle_conn *idle;
	unsigned int conns;
	struct domcount *doms;
	size_t ndoms;
	struct due *due;
	size_t ndue;
	unsigned int port;
	unsigned int dom_limit, total_limit;
	time_t lifetime, retry_first;
	time_t delay_warning;	/* 0 = no delay warnings */
	time_t last_cleanup;
};

static void task_finish(struct qtask *t);
static void job_connect(struct qjob *j);
static void job_start(struct qjob *j);
static void idle_park(struct qjob *j, struct smtp_client *c);
static void schedule_scan(struct qd *d, long msec);
static void schedule_dispatch(struct qd *d);

/* ---- small helpers */

static const char *
addr_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL ? at + 1 : "";
}

static struct domcount *
dom_find(struct qd *d, const char *domain)
{
	for (size_t i = 0; i < d->ndoms; i++)
		if (strcasecmp(d->doms[i].domain, domain) == 0)
			return &d->doms[i];
	return NULL;
}

static struct domcount *
dom_get(struct qd *d, const char *domain)
{
	struct domcount *dc = dom_find(d, domain);

	if (dc != NULL)
		return dc;
	d->doms = xreallocarray(d->doms, d->ndoms + 1, sizeof(*d->doms));
	d->doms[d->ndoms].domain = xstrdup(domain);
	d->doms[d->ndoms].n = 0;
	return &d->doms[d->ndoms++];
}

static void
dom_release(struct qd *d, const char *domain)
{
	struct domcount *dc = dom_get(d, domain);

	if (dc->n == 0)
		panic("domain count underflow for %s", domain);
	dc->n--;
	if (dc->n == 0) {
		size_t i = (size_t)(dc - d->doms);

		free(dc->domain);
		d->doms[i] = d->doms[--d->ndoms];
	}
}

static struct qtask *
task_find(struct qd *d, const char *id)
{
	for (struct qtask *t = d->tasks; t != NULL; t = t->next)
		if (strcmp(t->env.id, id) == 0)
			return t;
	return NULL;
}

static int
due_cmp(const void *a, const void *b)
{
	return strcmp(((const struct due *)a)->id, ((const struct due *)b)->id);
}

static struct due *
due_find(struct qd *d, const char *id)
{
	struct due key;

	str_copy(key.id, sizeof(key.id), id);
	if (d->ndue == 0)
		return NULL;
	return bsearch(&key, d->due, d->ndue, sizeof(*d->due), due_cmp);
}

/* May this recipient be part of a delay warning: deferred at least once,
 * still pending, and no DSN NOTIFY (RFC 3461) that leaves DELAY out? */
static bool
rcpt_warnable(const struct spool_rcpt *r)
{
	return r->state == SPOOL_RCPT_PENDING && r->attempts > 0 &&
	    (r->notify == NULL || strcasestr(r->notify, "DELAY") != NULL);
}

/* Is the one delay warning of this entry due at `now`: warnings on, not
 * sent yet, a sender that may get DSNs, the message older than the delay
 * and a recipient that was deferred at least once and is still pending? */
static bool
warning_due(const struct qd *d, const struct spool_envelope *env, time_t now)
{
	if (d->delay_warning == 0 || env->delay_warned ||
	    !dsn_wanted(env->from) || env->created + d->delay_warning > now)
		return false;
	for (size_t i = 0; i < env->rcpt_count; i++)
		if (rcpt_warnable(&env->rcpts[i]))
			return true;
	return false;
}

/* When the entry needs the worker again: a due recipient, a failed one
 * still to bounce, its delay warning, or its expiry. */
static time_t
envelope_due(const struct qd *d, const struct spool_envelope *env)
{
	time_t due = DUE_NEVER;

	if (env->hold)
		return DUE_NEVER;
	for (size_t i = 0; i < env->rcpt_count; i++) {
		const struct spool_rcpt *r = &env->rcpts[i];

		if (r->state == SPOOL_RCPT_FAILED)
			return 0;
		if (r->state == SPOOL_RCPT_PENDING && r->next_attempt < due)
			due = r->next_attempt;
	}
	if (due == DUE_NEVER)
		return 0;	/* nothing left: remove it */
	if (env->created + d->lifetime < due)
		due = env->created + d->lifetime;
	if (d->delay_warning > 0 && warning_due(d, env, env->created +
	    d->delay_warning) && env->created + d->delay_warning < due)
		due = env->created + d->delay_warning;
	return due;
}

static void
due_set(struct qd *d, const char *id, time_t due)
{
	struct due *e = due_find(d, id);

	if (e != NULL) {
		e->due = due;
		x_free(&e->wait);
	}
	/* Unknown ids are added by the next scan. */
}

/* "550 5.1.1 text" on one line, for the envelope and the logs. */
static void
reply_line(const struct smtp_reply *r, char *out, size_t outsize)
{
	char *p;

	/* The text keeps the enhanced code the server put there. */
	if (r->code == 0)
		snprintf(out, outsize, "%s%s%s", r->enhanced,
		    r->enhanced[0] != '\0' ? " " : "", r->text);
	else
		snprintf(out, outsize, "%d %s", r->code, r->text);
	for (p = out; *p != '\0'; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
}

/* ---- outcome of one recipient */

enum outcome { OUT_SENT, OUT_DEFERRED, OUT_BOUNCED };

static void
record(struct qtask *t, size_t i, enum outcome out, const char *relay,
    const char *remote, const char *reply, const char *enhanced)
{
	struct spool_rcpt *r = &t->env.rcpts[i];
	struct rcpt_info *in = &t->info[i];
	time_t now = time(NULL);
	char esc[SMTP_CLIENT_MAX_REPLY_TEXT * 4 + 64];
	uint32_t jitter = 0;

	free(r->last_reply);
	r->last_reply = xstrdup(reply);
	in->touched = true;
	in->when = now;
	free(in->remote);
	in->remote = remote != NULL ? xstrdup(remote) : NULL;
	if (enhanced != NULL && enhanced[0] != '\0')
		str_copy(in->status, sizeof(in->status), enhanced);
	else
		dsn_status_from_reply(reply, in->status);
	switch (out) {
	case OUT_SENT:
		r->state = SPOOL_RCPT_SENT;
		break;
	case OUT_DEFERRED:
		r->attempts++;
		if (getrandom(&jitter, sizeof(jitter), GRND_NONBLOCK) < 0)
			jitter = (uint32_t)random();
		r->next_attempt = queue_next_attempt_from(r->attempts, now,
		    jitter, t->d->retry_first);
		if (queue_expired(t->env.created, r->next_attempt,
		    t->d->lifetime) && queue_expired(t->env.created, now,
		    t->d->lifetime)) {
			r->state = SPOOL_RCPT_FAILED;
			out = OUT_BOUNCED;
		}
		break;
	case OUT_BOUNCED:
		r->state = SPOOL_RCPT_FAILED;
		break;
	}
	log_escape(esc, sizeof(esc), reply, strlen(reply));
	log_info("msgid=%s from=<%s> to=<%s> status=%s relay=%s delay=%llds "
	    "dsn=%s reply=\"%s\"", t->env.id, t->env.from, r->address,
	    out == OUT_SENT ? "sent" : out == OUT_DEFERRED ? "deferred" :
	    "bounced", relay != NULL ? relay : "none",
	    (long long)(now - t->env.created), in->status, esc);
}

/* ---- jobs: one destination domain of a task */

static void
job_free(struct qjob *j)
{
	if (j->route != NULL)
		mx_route_free(&j->route);
	if (j->fd >= 0)
		close(j->fd);
	free(j->domain);
	free(j->remote);
	free(j->lookup);
	free(j->user);
	if (j->password != NULL)
		str_wipe(j->password, strlen(j->password));
	free(j->password);
	free(j->idx);
	free(j->addrs);
	free(j);
}

static void
job_done(struct qjob *j)
{
	struct qtask *t = j->t;
	struct qd *d = t->d;

	if (j->fd >= 0) {
		close(j->fd);
		j->fd = -1;
	}
	d->conns--;
	dom_release(d, j->domain);
	/* A slot is free: an entry waiting for it may start now, without
	 * waiting for this task's envelope update. */
	schedule_dispatch(d);
	if (--t->jobs_left == 0)
		task_finish(t);
}

/* Every recipient of the job gets the same outcome. */
static void
job_all(struct qjob *j, enum outcome out, const char *reply,
    const char *enhanced)
{
	const char *remote = j->remote;

	for (size_t k = 0; k < j->nrcpt; k++)
		record(j->t, j->idx[k], out, j->relay[0] != '\0' ? j->relay :
		    NULL, remote, reply, enhanced);
}

static void
job_sent(struct smtp_client *c, const struct smtp_client_result *res,
    void *ctx)
{
	struct qjob *j = ctx;
	const char *remote = j->remote;
	char line[SMTP_CLIENT_MAX_REPLY_TEXT + 64];

	j->client = NULL;
	if (j->reused && res->reply.code == 0) {
		/* The parked connection had died meanwhile: nothing was
		 * delivered; start over with a new one. */
		log_debug("msgid=%s event=reused_connection_lost relay=%s",
		    j->t->env.id, j->relay);
		if (j->fd >= 0) {
			close(j->fd);
			j->fd = -1;
		}
		j->reused = false;
		j->no_reuse = true;
		job_start(j);
		return;
	}
	if (res->rcpt_count == j->nrcpt && res->rcpts != NULL) {
		for (size_t k = 0; k < j->nrcpt; k++) {
			const struct smtp_rcpt_result *rr = &res->rcpts[k];
			enum outcome out = rr->status == SMTP_STATUS_OK ?
			    OUT_SENT : rr->status == SMTP_STATUS_PERMFAIL ?
			    OUT_BOUNCED : OUT_DEFERRED;
			const struct smtp_reply *rp = &rr->reply;

			/* For a delivered recipient the end of data is
			 * what counts ("250 2.0.0 queued as ..."). */
			if (out == OUT_SENT && res->reply.code / 100 == 2)
				rp = &res->reply;

			reply_line(rp, line, sizeof(line));
			record(j->t, j->idx[k], out, j->relay, remote, line,
			    rp->enhanced);
		}
	} else {
		reply_line(&res->reply, line, sizeof(line));
		job_all(j, res->status == SMTP_STATUS_PERMFAIL ? OUT_BOUNCED :
		    OUT_DEFERRED, line, res->reply.enhanced);
	}
	if (res->reply.code != 0 && res->reply.code != 421)
		idle_park(j, c);
	job_done(j);
}

static void
job_ready(struct smtp_client *c, const struct smtp_client_result *res,
    void *ctx)
{
	struct qjob *j = ctx;
	struct qtask *t = j->t;
	char line[SMTP_CLIENT_MAX_REPLY_TEXT + 64];
	char esc[sizeof(line) * 4];
	unsigned int ext;
	bool use_conv;
	uint64_t body_size;

	if (res != NULL) {
		/* The session failed before MAIL: try the next address. */
		j->client = NULL;
		j->last = res->reply;
		reply_line(&res->reply, line, sizeof(line));
		log_escape(esc, sizeof(esc), line, strlen(line));
		log_info("msgid=%s event=connect_failed relay=%s reply=\"%s\"",
		    t->env.id, j->relay, esc);
		j->target++;
		job_connect(j);
		return;
	}
	ext = smtp_client_extensions(c);
	use_conv = t->conv != NULL && (t->conv_always ||
	    !(ext & SMTP_EXT_8BITMIME));
	if (t->has8 && !use_conv && !t->needs_utf8 &&
	    !(ext & SMTP_EXT_8BITMIME)) {
		/* RFC 6152 §3: convert or do not deliver. */
		if (t->no_7bit_temp)
			snprintf(line, sizeof(line), "4.3.0 %s does not offer "
			    "8BITMIME, and the 7-bit form of the message could "
			    "not be made: %s", j->relay, t->no_7bit);
		else
			snprintf(line, sizeof(line), "5.6.3 %s does not offer "
			    "8BITMIME, and the message has no 7-bit form: %s",
			    j->relay, t->no_7bit != NULL ? t->no_7bit :
			    "unknown");
		job_all(j, t->no_7bit_temp ? OUT_DEFERRED : OUT_BOUNCED, line,
		    t->no_7bit_temp ? "4.3.0" : "5.6.3");
		j->client = NULL;
		idle_park(j, c);
		job_done(j);
		return;
	}
	memset(&j->msg, 0, sizeof(j->msg));
	if (use_conv) {
		log_debug("msgid=%s event=sending_7bit_form relay=%s%s",
		    t->env.id, j->relay, t->conv_always ? " reason=signed" :
		    " reason=no_8bitmime");
		j->msg.data = t->conv;
		j->msg.data_len = t->conv_len;
		j->msg.fd = -1;
		body_size = t->conv_len;
	} else {
		j->fd = open(t->msg_path, O_RDONLY | O_CLOEXEC);
		if (j->fd < 0) {
			snprintf(line, sizeof(line), "4.3.0 cannot open the "
			    "queued message: %s", strerror(errno));
			log_error("msgid=%s event=msg_open_failed path=%s "
			    "error=\"%s\"", t->env.id, t->msg_path,
			    strerror(errno));
			smtp_client_quit(c);
			j->client = NULL;
			job_all(j, OUT_DEFERRED, line, "4.3.0");
			job_done(j);
			return;
		}
		j->msg.fd = j->fd;
		body_size = t->env.size;
	}
	j->msg.mail_from = t->env.from;
	j->msg.rcpts = j->addrs;
	j->msg.rcpt_count = j->nrcpt;
	j->msg.prefix = t->prefix;
	j->msg.size = body_size + (t->prefix != NULL ? strlen(t->prefix) :
	    0);
	/* What the bytes hold, not what the client declared: a BODY=7BIT
	 * message with 8-bit bytes is 8-bit. */
	j->msg.needs_8bitmime = t->has8 && !use_conv;
	j->msg.needs_smtputf8 = t->needs_utf8;
	smtp_client_send(c, &j->msg, job_sent, j);
}

static void
job_connect(struct qjob *j)
{
	struct qd *d = j->t->d;
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct bufferevent *bev;
	const struct mx_target *tg;
	char ip[INET6_ADDRSTRLEN];
	struct smtp_client_params params;

	if (j->target >= j->route->count) {
		char line[SMTP_CLIENT_MAX_REPLY_TEXT + 64];

		if (j->last.code == 0 && j->last.text[0] == '\0')
			snprintf(line, sizeof(line), "4.4.1 no target answered");
		else
			reply_line(&j->last, line, sizeof(line));
		/* Even a 5xx greeting of every exchanger is a deferral:
		 * the next attempt may find another one answering. */
		job_all(j, OUT_DEFERRED,
		    line, j->last.enhanced[0] != '\0' ? j->last.enhanced :
		    "4.4.1");
		job_done(j);
		return;
	}
	tg = &j->route->targets[j->target];
	memset(&ss, 0, sizeof(ss));
	if (tg->addr.family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = tg->addr.u.v6;
		s6->sin6_port = htons((uint16_t)j->port);
		sslen = sizeof(*s6);
		inet_ntop(AF_INET6, &tg->addr.u.v6, ip, sizeof(ip));
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_addr = tg->addr.u.v4;
		s4->sin_port = htons((uint16_t)j->port);
		sslen = sizeof(*s4);
		inet_ntop(AF_INET, &tg->addr.u.v4, ip, sizeof(ip));
	}
	snprintf(j->relay, sizeof(j->relay), "%.300s[%s]:%u", tg->host, ip,
	    j->port);
	free(j->remote);
	j->remote = xstrdup(tg->host);
	bev = bufferevent_socket_new(d->w->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL || bufferevent_socket_connect(bev,
	    (struct sockaddr *)&ss, (int)sslen) < 0) {
		if (bev != NULL)
			bufferevent_free(bev);
		snprintf(j->last.text, sizeof(j->last.text),
		    "cannot connect to %s", j->relay);
		j->last.code = 0;
		str_copy(j->last.enhanced, sizeof(j->last.enhanced), "4.4.1");
		j->target++;
		job_connect(j);
		return;
	}
	memset(&params, 0, sizeof(params));
	params.helo_name = d->set->hostname;
	params.peer_name = tg->host;
	params.ssl_ctx = d->client_tls;
	params.tls = d->client_tls != NULL ? SMTP_TLS_OPPORTUNISTIC :
	    SMTP_TLS_NONE;
	if (j->user != NULL) {
		/* Credentials go only over TLS (DMS: smtp_tls_security_level
		 * encrypt once credentials exist). */
		params.tls = SMTP_TLS_REQUIRED;
		params.auth_user = j->user;
		params.auth_password = j->password;
	}
	j->client = smtp_client_new(d->w->base, bev, &params, job_ready, j);
}

static void
job_routed(struct mx_route *route, void *ctx)
{
	struct qjob *j = ctx;
	char line[512];

	j->dns_id = 0;
	j->route = route;
	if (route->status != MX_ROUTE_OK) {
		/* A relay host that does not resolve is the operator's
		 * mistake: the mail waits for the fix. */
		bool perm = route->status == MX_ROUTE_PERMFAIL && !j->via_relay;

		snprintf(line, sizeof(line), "%s %s (DNS for %s)",
		    route->enhanced != NULL ? route->enhanced : perm ? "5.1.2" :
		    "4.4.3", route->error != NULL ? route->error :
		    "no route", j->lookup);
		job_all(j, perm ? OUT_BOUNCED : OUT_DEFERRED, line,
		    route->enhanced);
		job_done(j);
		return;
	}
	j->target = 0;
	job_connect(j);
}

/* A relay host given as an address ([192.0.2.1]:587, [2001:db8::1]):
 * no DNS, the route is that address. true when j went on that way. */
static bool
literal_route(struct qjob *j)
{
	struct dns_addr a;
	struct mx_route *route;

	memset(&a, 0, sizeof(a));
	if (inet_pton(AF_INET, j->lookup, &a.u.v4) == 1)
		a.family = AF_INET;
	else if (inet_pton(AF_INET6, j->lookup, &a.u.v6) == 1)
		a.family = AF_INET6;
	else
		return false;
	route = xcalloc(1, sizeof(*route));
	route->domain = xstrdup(j->lookup);
	route->status = MX_ROUTE_OK;
	route->implicit = true;
	route->count = 1;
	route->targets = xcalloc(1, sizeof(*route->targets));
	route->targets[0].host = xstrdup(j->lookup);
	route->targets[0].addr = a;
	job_routed(route, j);
	return true;
}

static void
idle_free(struct idle_conn *ic, bool quit)
{
	if (quit)
		smtp_client_quit(ic->c);
	event_free(ic->timer);
	free(ic->key);
	free(ic->remote);
	free(ic);
}

static void
idle_unlink(struct qd *d, struct idle_conn *ic)
{
	for (struct idle_conn **pp = &d->idle; *pp != NULL; pp = &(*pp)->next)
		if (*pp == ic) {
			*pp = ic->next;
			return;
		}
	panic("idle connection not in the list");
}

static void
idle_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct idle_conn *ic = arg;

	idle_unlink(ic->d, ic);
	idle_free(ic, true);
}

/* Keeps c open for the next message to j's destination, or quits it. */
static void
idle_park(struct qjob *j, struct smtp_client *c)
{
	struct qd *d = j->t->d;
	struct idle_conn *ic;
	struct timeval tv = { IDLE_SECS, 0 };
	unsigned int n = 0;

	for (ic = d->idle; ic != NULL; ic = ic->next)
		if (strcasecmp(ic->key, j->domain) == 0)
			n++;
	if (d->w->stopping || n >= d->dom_limit) {
		smtp_client_quit(c);
		return;
	}
	ic = xcalloc(1, sizeof(*ic));
	ic->d = d;
	ic->key = xstrdup(j->domain);
	ic->remote = j->remote != NULL ? xstrdup(j->remote) : NULL;
	str_copy(ic->relay, sizeof(ic->relay), j->relay);
	ic->c = c;
	ic->timer = evtimer_new(d->w->base, idle_timeout_cb, ic);
	evtimer_add(ic->timer, &tv);
	ic->next = d->idle;
	d->idle = ic;
}

static struct idle_conn *
idle_take(struct qd *d, const char *key)
{
	for (struct idle_conn *ic = d->idle; ic != NULL; ic = ic->next)
		if (strcasecmp(ic->key, key) == 0) {
			idle_unlink(d, ic);
			return ic;
		}
	return NULL;
}

static void
job_start(struct qjob *j)
{
	const char *err = NULL;
	char line[256];
	struct idle_conn *ic = j->no_reuse ? NULL :
	    idle_take(j->t->d, j->domain);

	if (ic != NULL) {
		j->reused = true;
		j->client = ic->c;
		str_copy(j->relay, sizeof(j->relay), ic->relay);
		free(j->remote);
		j->remote = ic->remote;
		ic->remote = NULL;
		idle_free(ic, false);
		log_debug("msgid=%s event=connection_reused relay=%s",
		    j->t->env.id, j->relay);
		job_ready(j->client, NULL, j);
		return;
	}
	if (j->via_relay && literal_route(j))
		return;
	j->dns_id = mx_route_lookup(j->t->d->dns, j->lookup, job_routed, j,
	    &err);
	if (j->dns_id < 0) {
		j->dns_id = 0;
		snprintf(line, sizeof(line), "4.4.3 DNS lookup failed: %s",
		    err != NULL ? err : "unknown");
		job_all(j, OUT_DEFERRED, line, "4.4.3");
		job_done(j);
	}
}

/* ---- tasks: one queue entry */

static void
task_free(struct qtask *t)
{
	for (size_t i = 0; i < t->njobs; i++)
		job_free(t->jobs[i]);
	free(t->jobs);
	for (size_t i = 0; i < t->env.rcpt_count; i++)
		free(t->info[i].remote);
	free(t->info);
	spool_envelope_free(&t->env);
	free(t->msg_path);
	free(t->prefix);
	if (t->conv != NULL)
		munmap(t->conv, t->conv_len > 0 ? t->conv_len : 1);
	free(t->err);
	if (t->acc != NULL)
		accounts_unref(t->acc);
	free(t);
}

/* Writes the 7-bit form into an unnamed file in the spool's tmp/. */
struct conv_out {
	int fd;
	size_t len;
};

static int
conv_write(void *ctx, const void *data, size_t len)
{
	struct conv_out *o = ctx;

	if (write_full(o->fd, data, len) < 0)
		return -1;
	o->len += len;
	return 0;
}

static int
conv_tmpfile(struct qtask *t)
{
	char *dir = xasprintf("%s/tmp", spool_dir(t->d->spool));
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0) {
		/* A filesystem without O_TMPFILE: create, then unlink. */
		char *path = xasprintf("%s/7bit.XXXXXX", dir);

		fd = mkostemp(path, O_CLOEXEC);
		if (fd >= 0)
			unlink(path);
		free(path);
	}
	free(dir);
	return fd;
}

/*
 * Pool thread: the 7-bit form of msg, for peers without 8BITMIME (and for
 * everybody when we sign: RFC 6376 §5.3 says to sign a form that no relay
 * has to convert again). Kept in an unnamed file, mapped; nothing to
 * clean up after a crash. Sets t->conv or t->no_7bit.
 */
static void
make_7bit(struct qtask *t, const char *msg, size_t len)
{
	struct conv_out o = { .fd = conv_tmpfile(t), .len = 0 };
	const char *reason = NULL;
	int r;

	if (o.fd < 0) {
		t->no_7bit = "no temporary file for it";
		t->no_7bit_temp = true;
		return;
	}
	r = mail_downgrade(msg, len, &mime_default_limits, conv_write, &o,
	    &reason);
	if (r == 1 && o.len > 0) {
		void *map = mmap(NULL, o.len, PROT_READ, MAP_SHARED, o.fd, 0);

		if (map != MAP_FAILED) {
			t->conv = map;
			t->conv_len = o.len;
		} else {
			t->no_7bit = "it could not be mapped";
			t->no_7bit_temp = true;
		}
	} else if (r < 0) {
		t->no_7bit = reason;
		/* A failed write (disk full) is ours, not the message's. */
		t->no_7bit_temp = strstr(reason, "writing") != NULL;
	}
	close(o.fd);
}

/* A byte >= 0x80 in the reverse-path or a recipient (SMTPUTF8 addresses). */
static bool
envelope_has_utf8(const struct spool_envelope *env)
{
	if (mail_has_8bit(env->from, strlen(env->from)))
		return true;
	for (size_t i = 0; i < env->rcpt_count; i++)
		if (mail_has_8bit(env->rcpts[i].address,
		    strlen(env->rcpts[i].address)))
			return true;
	return false;
}

/*
 * Pool thread: what the message needs before it is sent. 8-bit bytes and
 * where they are (SMTPUTF8 is needed only for UTF-8 in the envelope or a
 * header, whatever the client declared), the 7-bit form when there can be
 * one, then the DKIM signature fields, over the form that will be sent.
 */
static void
prepare_work(void *arg)
{
	struct qtask *t = arg;
	struct dkim_signer *s;
	struct stat st;
	char *from = NULL, *err = NULL;
	const char *msg, *signed_msg;
	size_t len, hlen, signed_len;
	void *map = NULL;
	char *copy = NULL;
	int fd = open(t->msg_path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;		/* the send will say why */
	if (fstat(fd, &st) < 0 || st.st_size <= 0) {
		close(fd);
		return;
	}
	len = (size_t)st.st_size;
	if (len <= PREPARE_READ_MAX) {
		/* Small ones are read: a munmap per message costs more than
		 * the copy (every pool thread's TLB is flushed). */
		ssize_t n;

		copy = xmalloc(len);
		n = pread(fd, copy, len, 0);
		close(fd);
		if (n != (ssize_t)len) {
			t->err = xasprintf("read %s: %s", t->msg_path, n < 0 ?
			    strerror(errno) : "short read");
			free(copy);
			return;
		}
		msg = copy;
	} else {
		map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
		close(fd);
		if (map == MAP_FAILED) {
			t->err = xasprintf("mmap %s: %s", t->msg_path,
			    strerror(errno));
			return;
		}
		msg = map;
	}
	t->has8 = mail_has_8bit(msg, len);
	t->needs_utf8 = t->env.smtputf8 && envelope_has_utf8(&t->env);
	if (t->has8 && t->env.smtputf8 && !t->needs_utf8 &&
	    (mail_8bit_where(msg, len, &mime_default_limits) &
	    MAIL_8BIT_HEADER) != 0)
		t->needs_utf8 = true;
	if (t->has8 && !t->needs_utf8)
		make_7bit(t, msg, len);

	/* The header first, to find the From domain. */
	hlen = dsn_header_length(msg, len < ORIGINAL_HEADER_MAX ? len :
	    ORIGINAL_HEADER_MAX);
	from = queue_header_from(msg, hlen > 0 ? hlen : len < 65536 ? len :
	    65536);
	if (from != NULL)
		t->nkeys = dkim_keyset_find(t->d->keys, from, t->keys,
		    DKIM_MAX_KEYS_PER_MESSAGE);
	if (t->nkeys == 0 && t->env.from[0] == '\0') {
		/* Our DSNs come from MAILER-DAEMON@<host name>: sign them
		 * with the mail domain's key (aligned for DMARC relaxed). */
		char *pm = xasprintf("postmaster@%s", t->d->set->domain);

		t->nkeys = dkim_keyset_find(t->d->keys, pm, t->keys,
		    DKIM_MAX_KEYS_PER_MESSAGE);
		free(pm);
	}
	free(from);
	if (t->nkeys == 0)
		goto out;
	/* Signed mail goes out in the form that was signed. */
	t->conv_always = t->conv != NULL;
	signed_msg = t->conv_always ? t->conv : msg;
	signed_len = t->conv_always ? t->conv_len : len;
	s = dkim_signer_new(time(NULL));
	if (dkim_signer_update(s, signed_msg, signed_len) < 0 ||
	    dkim_signer_finish(s, t->keys, t->nkeys, &t->prefix, &err) < 0) {
		t->err = err != NULL ? err : xstrdup("the header is too big to "
		    "sign");
		t->prefix = NULL;
	}
	dkim_signer_free(&s);
out:
	if (map != NULL)
		munmap(map, len);
	free(copy);
}

static void
sign_done(void *arg)
{
	struct qtask *t = arg;
	struct qd *d = t->d;

	d->signing--;
	if (t->err != NULL) {
		log_warn("msgid=%s event=dkim_sign_failed error=\"%s\"",
		    t->env.id, t->err);
		x_free(&t->err);
	} else if (t->prefix != NULL) {
		log_debug("msgid=%s event=dkim_signed keys=%zu form=%s",
		    t->env.id, t->nkeys, t->conv_always ? "7bit" : "as_queued");
	}
	if (t->no_7bit != NULL)
		log_debug("msgid=%s event=no_7bit_form reason=\"%s\"",
		    t->env.id, t->no_7bit);
	for (size_t i = 0; i < t->njobs; i++)
		job_start(t->jobs[i]);
}

/* Pool thread: the DSN text for recipients dr (a warning when delayed). */
static char *
make_dsn(struct qtask *t, const struct dsn_rcpt *dr, size_t n_dr,
    bool delayed, size_t *len_r)
{
	struct qd *d = t->d;
	struct dsn_params p;
	char *orig, *dsn;
	ssize_t n = 0;
	int fd;

	orig = xmalloc(ORIGINAL_HEADER_MAX);
	fd = open(t->msg_path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, orig, ORIGINAL_HEADER_MAX);
		close(fd);
	}
	memset(&p, 0, sizeof(p));
	p.hostname = d->set->hostname;
	p.queue_id = t->env.id;
	p.sender = t->env.from;
	p.arrival = t->env.created;
	p.now = time(NULL);
	p.delayed = delayed;
	p.retry_until = delayed ? t->env.created + d->lifetime : 0;
	p.rcpts = dr;
	p.rcpt_count = n_dr;
	p.original = orig;
	p.original_len = n > 0 ? (size_t)n : 0;
	dsn = dsn_format(&p, len_r);
	free(orig);
	return dsn;
}

/*
 * Pool thread: delivers a DSN to the original sender, straight into the
 * Maildir when the sender is local, else through the queue from <>.
 * 0 = done (or nobody to tell); -1 with *err_r (malloc'd).
 */
static int
dsn_send(struct qtask *t, const char *dsn, size_t len,
    char id_r[SPOOL_ID_LEN + 1], bool *local_r, char **err_r)
{
	struct qd *d = t->d;
	char *err = NULL;
	const char *cerr = NULL;
	int r = -1;

	*local_r = false;
	id_r[0] = '\0';
	if (t->acc != NULL && accounts_is_local_domain(t->acc,
	    addr_domain(t->env.from))) {
		struct accounts_resolution res;
		const char **dirs = NULL;
		size_t nd = 0;
		int rr = accounts_resolve(t->acc, t->env.from, &res, &cerr);

		*local_r = true;
		if (rr == 1) {
			dirs = xcalloc(res.count + 1, sizeof(*dirs));
			for (size_t i = 0; i < res.count; i++)
				if (res.targets[i].kind ==
				    ACCOUNTS_TARGET_LOCAL)
					dirs[nd++] = res.targets[i].maildir;
		}
		if (nd > 0) {
			struct maildir_msg *m = maildir_msg_create(dirs[0],
			    &err);

			static const char rp[] = "Return-Path: <>\r\n";

			if (m != NULL && maildir_msg_write(m, rp,
			    sizeof(rp) - 1, &cerr) == 0 &&
			    maildir_msg_write(m, dsn, len,
			    &cerr) == 0 && maildir_msg_commit(m, dirs, nd,
			    &err) == 0)
				r = 0;
			else if (err == NULL)
				err = xstrdup(cerr != NULL ? cerr :
				    "maildir write failed");
			maildir_msg_free(&m);
		} else {
			/* The sender is no local account (any more):
			 * nobody to tell. */
			log_warn("msgid=%s event=bounce_dropped sender=<%s> "
			    "reason=\"not a local account\"", t->env.id,
			    t->env.from);
			r = 0;
		}
		free(dirs);
		accounts_resolution_free(&res);
	} else {
		struct spool_msg *m = spool_msg_create(d->spool, &err);
		struct spool_envelope env;

		memset(&env, 0, sizeof(env));
		if (m != NULL) {
			env.from = xstrdup("");
			env.body = SPOOL_BODY_8BITMIME;
			spool_envelope_add_rcpt(&env, t->env.from);
			str_copy(id_r, SPOOL_ID_LEN + 1,
			    spool_msg_id(m));
			if (spool_msg_write(m, dsn, len, &cerr) < 0)
				err = xstrdup(cerr);
			else if (spool_msg_commit(m, &env, &err) == 0)
				r = 0;
			spool_msg_free(&m);
			spool_envelope_free(&env);
		}
	}
	if (r < 0)
		*err_r = err != NULL ? err : xstrdup("unknown error");
	else
		free(err);
	return r;
}

/* Pool thread: queue or deliver the DSN for the failed recipients. */
static int
bounce(struct qtask *t)
{
	struct dsn_rcpt *dr;
	size_t nfail = 0, len = 0;
	char *dsn = NULL;
	int r;
	char *err = NULL;

	for (size_t i = 0; i < t->env.rcpt_count; i++)
		if (t->env.rcpts[i].state == SPOOL_RCPT_FAILED)
			nfail++;
	if (nfail == 0)
		return 0;
	if (!dsn_wanted(t->env.from)) {
		for (size_t i = 0; i < t->env.rcpt_count; i++)
			if (t->env.rcpts[i].state == SPOOL_RCPT_FAILED)
				t->env.rcpts[i].state = SPOOL_RCPT_BOUNCED;
		return 0;
	}
	dr = xcalloc(nfail, sizeof(*dr));
	nfail = 0;
	for (size_t i = 0; i < t->env.rcpt_count; i++) {
		struct spool_rcpt *rc = &t->env.rcpts[i];
		struct rcpt_info *in = &t->info[i];

		if (rc->state != SPOOL_RCPT_FAILED)
			continue;
		if (!in->touched)
			dsn_status_from_reply(rc->last_reply != NULL ?
			    rc->last_reply : "", in->status);
		/* A deferral that expired is a failure: 4.x.x becomes 5.x.x
		 * only in the Status field's class. */
		if (in->status[0] == '4')
			in->status[0] = '5';
		dr[nfail].address = rc->address;
		dr[nfail].orcpt = rc->orcpt;
		dr[nfail].status = in->status;
		dr[nfail].remote_mta = in->remote;
		dr[nfail].diagnostic = rc->last_reply != NULL ?
		    rc->last_reply : "delivery time expired";
		dr[nfail].last_attempt = in->when;
		nfail++;
	}
	dsn = make_dsn(t, dr, nfail, false, &len);
	r = dsn_send(t, dsn, len, t->dsn_id, &t->dsn_local, &err);
	if (r == 0) {
		t->dsn_count = (unsigned int)nfail;
		for (size_t i = 0; i < t->env.rcpt_count; i++)
			if (t->env.rcpts[i].state == SPOOL_RCPT_FAILED)
				t->env.rcpts[i].state = SPOOL_RCPT_BOUNCED;
	} else {
		t->err = xasprintf("bounce not queued: %s", err);
		t->dsn_id[0] = '\0';
	}
	free(err);
	free(dsn);
	free(dr);
	return r;
}

/*
 * Pool thread: the delay warning (Action: delayed) for the recipients
 * still deferred, once the message is older than TEGAMI_QUEUE_DELAY_WARNING.
 * The envelope's "warned" flag is set here and written by finish_work
 * with the rest of the entry, so the warning goes once (a crash between
 * the two can send it twice, never lose the entry).
 */
static void
delay_warn(struct qtask *t)
{
	struct dsn_rcpt *dr;
	size_t n = 0, len = 0;
	char *dsn, *err = NULL;

	dr = xcalloc(t->env.rcpt_count, sizeof(*dr));
	for (size_t i = 0; i < t->env.rcpt_count; i++) {
		struct spool_rcpt *rc = &t->env.rcpts[i];
		struct rcpt_info *in = &t->info[i];

		if (!rcpt_warnable(rc))
			continue;
		if (!in->touched)
			dsn_status_from_reply(rc->last_reply != NULL ?
			    rc->last_reply : "", in->status);
		/* Still being tried: the class is "persistent transient". */
		if (in->status[0] == '5' || in->status[0] == '\0')
			str_copy(in->status, sizeof(in->status), "4.0.0");
		dr[n].address = rc->address;
		dr[n].orcpt = rc->orcpt;
		dr[n].status = in->status;
		dr[n].remote_mta = in->remote;
		dr[n].diagnostic = rc->last_reply != NULL ? rc->last_reply :
		    "not delivered yet";
		dr[n].last_attempt = in->when;
		n++;
	}
	dsn = make_dsn(t, dr, n, true, &len);
	if (dsn_send(t, dsn, len, t->warn_id, &t->warn_local, &err) == 0) {
		t->env.delay_warned = true;
		t->warn_count = (unsigned int)n;
	} else {
		char *both = xasprintf("%s%sdelay warning not sent: %s",
		    t->err != NULL ? t->err : "", t->err != NULL ? "; " : "",
		    err);

		free(t->err);
		t->err = both;
		t->warn_id[0] = '\0';
	}
	free(err);
	free(dsn);
	free(dr);
}

static void
finish_work(void *arg)
{
	struct qtask *t = arg;
	bool left = false;
	char *err = NULL;

	if (t->after != AFTER_DELETE) {
		bounce(t);
		if (warning_due(t->d, &t->env, time(NULL)))
			delay_warn(t);
	}
	for (size_t i = 0; i < t->env.rcpt_count; i++)
		if (t->env.rcpts[i].state == SPOOL_RCPT_PENDING ||
		    t->env.rcpts[i].state == SPOOL_RCPT_FAILED)
			left = true;
	if (t->after == AFTER_HOLD)
		t->env.hold = true;
	if (!left || t->after == AFTER_DELETE) {
		if (spool_remove(t->d->spool, t->env.id, &err) == 0)
			t->removed = true;
	} else {
		spool_update_envelope(t->d->spool, &t->env, &err);
	}
	if (err != NULL) {
		char *both = xasprintf("%s%s%s", t->err != NULL ? t->err : "",
		    t->err != NULL ? "; " : "", err);

		free(t->err);
		free(err);
		t->err = both;
	}
}

static void
task_unlink(struct qd *d, struct qtask *t)
{
	for (struct qtask **pp = &d->tasks; *pp != NULL; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			d->ntasks--;
			return;
		}
	panic("task %s not in the list", t->env.id);
}

static void
finish_done(void *arg)
{
	struct qtask *t = arg;
	struct qd *d = t->d;

	if (t->err != NULL)
		log_error("msgid=%s event=queue_update_failed error=\"%s\"",
		    t->env.id, t->err);
	if (t->dsn_count > 0)
		log_info("msgid=%s event=bounce_queued rcpts=%u to=<%s>%s%s",
		    t->env.id, t->dsn_count, t->env.from,
		    t->dsn_local ? " delivered=local" : " dsnid=",
		    t->dsn_local ? "" : t->dsn_id);
	if (t->warn_count > 0)
		log_info("msgid=%s event=delay_warning_sent rcpts=%u to=<%s>%s%s",
		    t->env.id, t->warn_count, t->env.from,
		    t->warn_local ? " delivered=local" : " dsnid=",
		    t->warn_local ? "" : t->warn_id);
	if (t->removed) {
		log_info("msgid=%s event=removed%s", t->env.id,
		    t->after == AFTER_DELETE ? " reason=operator" : "");
		due_set(d, t->env.id, DUE_NEVER);
	} else {
		due_set(d, t->env.id, t->err != NULL ? time(NULL) + 60 :
		    envelope_due(d, &t->env));
	}
	task_unlink(d, t);
	task_free(t);
	if (d->w->stopping) {
		if (d->tasks == NULL)
			worker_exit(d->w);
		return;
	}
	schedule_dispatch(d);
}

static void
task_finish(struct qtask *t)
{
	struct qd *d = t->d;

	if (t->acc == NULL)
		t->acc = accounts_watch_get(d->accounts);
	pool_submit(d->pool, finish_work, finish_done, t);
}

/*
 * Starts work on an entry whose envelope was just read (env is taken).
 * When due recipients had to stay behind because their destination had
 * no free slot, *wait_r is that destination's key (malloc'd).
 */
static void
task_start(struct qd *d, struct spool_envelope *env, bool force,
    char **wait_r)
{
	struct qtask *t = xcalloc(1, sizeof(*t));
	time_t now = time(NULL);
	bool expired = queue_expired(env->created, now, d->lifetime);
	bool bounce_due = false, relayed;
	struct relay_target rt;
	char relay_key[300];

	t->d = d;
	t->env = *env;
	memset(env, 0, sizeof(*env));
	t->info = xcalloc(t->env.rcpt_count + 1, sizeof(*t->info));
	t->msg_path = spool_msg_path(d->spool, t->env.id);
	t->jobs = xcalloc(t->env.rcpt_count + 1, sizeof(*t->jobs));
	relayed = relay_for_sender(d->relay, t->env.from, &rt) == 1;
	if (relayed)
		snprintf(relay_key, sizeof(relay_key), "[%s]:%u", rt.host,
		    rt.port);
	for (size_t i = 0; i < t->env.rcpt_count; i++) {
		struct spool_rcpt *r = &t->env.rcpts[i];
		const char *dom = relayed ? relay_key : addr_domain(r->address);
		struct qjob *j = NULL;
		struct domcount *dc;

		if (r->state == SPOOL_RCPT_FAILED)
			bounce_due = true;
		if (r->state != SPOOL_RCPT_PENDING)
			continue;
		if (expired) {
			char line[256];

			snprintf(line, sizeof(line), "4.4.7 delivery time "
			    "expired after %llds%s%s",
			    (long long)(now - t->env.created),
			    r->last_reply != NULL ? "; last error: " : "",
			    r->last_reply != NULL ? r->last_reply : "");
			record(t, i, OUT_BOUNCED, NULL, NULL, line, "4.4.7");
			bounce_due = true;
			continue;
		}
		if (r->next_attempt > now && !force)
			continue;
		for (size_t k = 0; k < t->njobs; k++)
			if (strcasecmp(t->jobs[k]->domain, dom) == 0)
				j = t->jobs[k];
		if (j == NULL) {
			dc = dom_find(d, dom);
			if (dc != NULL && dc->n >= d->dom_limit) {
				/* When one of its jobs ends. */
				if (*wait_r == NULL)
					*wait_r = xstrdup(dom);
				continue;
			}
			if (d->conns >= d->total_limit)
				continue;	/* when any job ends */
			dc = dom_get(d, dom);
			dc->n++;
			d->conns++;
			j = xcalloc(1, sizeof(*j));
			j->t = t;
			j->fd = -1;
			j->domain = xstrdup(dom);
			j->via_relay = relayed;
			j->lookup = xstrdup(relayed ? rt.host : dom);
			j->port = relayed ? rt.port : d->port;
			if (relayed && rt.user != NULL) {
				j->user = xstrdup(rt.user);
				j->password = xstrdup(rt.password != NULL ?
				    rt.password : "");
			}
			j->idx = xcalloc(t->env.rcpt_count, sizeof(*j->idx));
			j->addrs = xcalloc(t->env.rcpt_count + 1,
			    sizeof(*j->addrs));
			t->jobs[t->njobs++] = j;
		}
		j->idx[j->nrcpt] = i;
		j->addrs[j->nrcpt++] = r->address;
	}
	t->next = d->tasks;
	d->tasks = t;
	d->ntasks++;
	due_set(d, t->env.id, DUE_NEVER);
	if (t->njobs == 0) {
		/* Nothing to send now: bounce, clean up, or just let go. */
		bool left = false;

		for (size_t i = 0; i < t->env.rcpt_count; i++)
			if (t->env.rcpts[i].state == SPOOL_RCPT_PENDING)
				left = true;
		if (bounce_due || !left || warning_due(d, &t->env, now)) {
			task_finish(t);
		} else {
			/* Held back by the limits: still due, picked up when
			 * a job ends (dispatch). Otherwise not due after all. */
			due_set(d, t->env.id, *wait_r != NULL ||
			    d->conns >= d->total_limit ? now :
			    envelope_due(d, &t->env));
			task_unlink(d, t);
			task_free(t);
		}
		return;
	}
	t->jobs_left = t->njobs;
	d->signing++;
	pool_submit(d->pool, prepare_work, sign_done, t);
}

/* ---- scanning the spool */

/* Re-reads the list of entries (env/), keeping what is known of each. */
static void
refresh_list(struct qd *d)
{
	char **ids = NULL;
	char *err = NULL;
	size_t n = 0, nd = 0;
	struct due *nue;

	if (spool_list(d->spool, &ids, &n, &err) < 0) {
		log_error("event=queue_scan_failed error=\"%s\"", err);
		free(err);
		return;
	}
	nue = xcalloc(n + 1, sizeof(*nue));
	for (size_t i = 0; i < n; i++) {
		struct due *old = due_find(d, ids[i]);

		str_copy(nue[nd].id, sizeof(nue[nd].id), ids[i]);
		nue[nd].due = old != NULL ? old->due : 0;
		nue[nd].forced = old != NULL && old->forced;
		if (old != NULL) {
			nue[nd].wait = old->wait;
			old->wait = NULL;
		}
		nd++;
	}
	for (size_t i = 0; i < d->ndue; i++)
		free(d->due[i].wait);
	free(d->due);
	d->due = nue;
	d->ndue = nd;
	str_array_free(ids);
}

/* Does entry e wait for a destination that still has no free slot? */
static bool
still_waiting(struct qd *d, const struct due *e)
{
	const struct domcount *dc;

	if (e->wait == NULL)
		return false;
	dc = dom_find(d, e->wait);
	return dc != NULL && dc->n >= d->dom_limit;
}

/*
 * Starts the entries that are due, oldest first, as far as the limits
 * allow. Runs after every change that may let one start (a new entry, a
 * job that ended, the one-second tick), and reads only the envelopes of
 * entries that are due and not waiting for a full destination.
 */
static void
dispatch(struct qd *d)
{
	time_t now = time(NULL);
	char *err = NULL;

	if (d->w->stopping || !d->locked)
		return;
	for (size_t i = 0; i < d->ndue; i++) {
		struct due *e = &d->due[i];
		struct spool_envelope env;
		bool force = e->forced;
		char *wait = NULL;
		int r;

		if (d->conns >= d->total_limit)
			break;
		if ((e->due > now && !force) || still_waiting(d, e) ||
		    task_find(d, e->id))
			continue;
		x_free(&e->wait);
		r = spool_read_envelope(d->spool, e->id, &env, &err);
		if (r == 0) {
			e->due = DUE_NEVER;
			continue;
		}
		if (r < 0) {
			log_error("msgid=%s event=envelope_unreadable "
			    "error=\"%s\" hint=\"look at the file; tegami "
			    "queue delete removes it\"", e->id, err);
			x_free(&err);
			e->due = DUE_NEVER;
			continue;
		}
		e->due = envelope_due(d, &env);
		e->forced = false;
		if (e->due > now && !(force && !env.hold)) {
			spool_envelope_free(&env);
			continue;
		}
		task_start(d, &env, force, &wait);
		/* task_start may have set the due time through due_set. */
		e = due_find(d, e->id);
		if (e != NULL && wait != NULL && e->due <= now) {
			e->wait = wait;
			wait = NULL;
		}
		free(wait);
	}
}

static void
scan(struct qd *d)
{
	if (d->w->stopping || !d->locked)
		return;
	refresh_list(d);
	dispatch(d);
}

static void
scan_cb(evutil_socket_t fd, short what, void *arg)
{
	scan(arg);
}

static void
dispatch_cb(evutil_socket_t fd, short what, void *arg)
{
	dispatch(arg);
}

static void
schedule_dispatch(struct qd *d)
{
	struct timeval tv = { 0, 0 };

	if (!evtimer_pending(d->dispatch_ev, NULL))
		evtimer_add(d->dispatch_ev, &tv);
}

static void
schedule_scan(struct qd *d, long msec)
{
	struct timeval tv = { msec / 1000, (msec % 1000) * 1000 };

	if (!evtimer_pending(d->scan_ev, NULL))
		evtimer_add(d->scan_ev, &tv);
}

static void
inotify_cb(evutil_socket_t fd, short what, void *arg)
{
	struct qd *d = arg;
	char buf[4096];

	/* Drain; any new entry is a reason to look. */
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	schedule_scan(d, 20);
}

static void
keys_reload(struct qd *d)
{
	struct dkim_keyset *ks = NULL;
	char *err = NULL;

	if (dkim_keyset_load(d->set->config_dir, &ks, &err) < 0) {
		log_error("event=dkim_keys_failed error=\"%s\" hint=\"outgoing "
		    "mail is sent unsigned until this is fixed\"", err);
		free(err);
		if (d->keys == NULL)
			dkim_keyset_load("/nonexistent", &d->keys, NULL);
		return;
	}
	if (d->keys != NULL)
		dkim_keyset_free(&d->keys);
	d->keys = ks;
	log_info("event=dkim_keys_loaded keys=%zu", dkim_keyset_count(ks));
}

static int ctl_open(struct qd *d);

/*
 * One queue worker at a time owns the spool: after a reload the old one
 * finishes its deliveries while the new one waits here (1 = ours now,
 * 0 = still held, -1 = error, logged).
 */
static int
take_lock(struct qd *d)
{
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			return 0;
		log_error("event=queue_lock_failed error=\"%s\"",
		    strerror(errno));
		return -1;
	}
	d->locked = true;
	log_debug("event=queue_lock_taken");
	if (ctl_open(d) < 0)
		log_error("event=queue_socket_unavailable hint=\"tegami queue "
		    "flush/delete/hold/release will not work\"");
	d->last_cleanup = time(NULL);
	spool_cleanup(d->spool, d->last_cleanup);
	schedule_scan(d, 0);
	return 1;
}

static int
relay_reload(struct qd *d)
{
	struct relay_config *rc;
	char *err = NULL;

	rc = settings_relay_config(d->set, &err);
	if (rc == NULL) {
		log_error("event=relay_config_failed error=\"%s\"", err);
		free(err);
		return -1;
	}
	relay_config_free(&d->relay);
	d->relay = rc;
	return 0;
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct qd *d = arg;
	time_t now = time(NULL);

	if (!d->locked && take_lock(d) <= 0)
		return;
	accounts_watch_refresh(d->accounts, false);
	if (relay_config_changed(d->relay))
		relay_reload(d);
	if (d->signing == 0 && (d->keys == NULL ||
	    dkim_keyset_changed(d->keys)))
		keys_reload(d);
	if (now - d->last_cleanup > 600) {
		unsigned int n = spool_cleanup(d->spool, now);

		if (n > 0)
			log_info("event=queue_cleanup removed=%u", n);
		d->last_cleanup = now;
	}
	scan(d);
}

/* ---- control socket */

static void
ctl_close(struct ctl_client *c)
{
	c->d->ctl_clients--;
	bufferevent_free(c->bev);
	free(c);
}

static void
ctl_answer(struct ctl_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
ctl_answer(struct ctl_client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
	evbuffer_add(bufferevent_get_output(c->bev), "\n", 1);
}

/* Pool job for delete/hold/release of an entry no task holds. */
struct ctl_job {
	struct qd *d;
	struct ctl_client *c;
	char op[16];
	char id[SPOOL_ID_LEN + 1];
	char *err;
	int found;
	time_t due;
};

static void
ctl_work(void *arg)
{
	struct ctl_job *cj = arg;
	struct spool_envelope env;

	if (strcmp(cj->op, "delete") == 0) {
		cj->found = spool_read_envelope(cj->d->spool, cj->id, &env,
		    &cj->err);
		if (cj->found == 1)
			spool_envelope_free(&env);
		x_free(&cj->err);	/* a malformed one may be deleted */
		if (cj->found != 0)
			cj->found = 1;
		spool_remove(cj->d->spool, cj->id, &cj->err);
		cj->due = DUE_NEVER;
		return;
	}
	cj->found = spool_read_envelope(cj->d->spool, cj->id, &env, &cj->err);
	if (cj->found != 1)
		return;
	env.hold = strcmp(cj->op, "hold") == 0;
	spool_update_envelope(cj->d->spool, &env, &cj->err);
	cj->due = envelope_due(cj->d, &env);
	spool_envelope_free(&env);
}

static void
ctl_done(void *arg)
{
	struct ctl_job *cj = arg;

	if (cj->found == 1 && cj->err == NULL) {
		due_set(cj->d, cj->id, cj->due);
		log_info("msgid=%s event=%s reason=operator", cj->id, cj->op);
	}
	if (cj->c != NULL) {
		if (cj->err != NULL)
			ctl_answer(cj->c, "ERR %s", cj->err);
		else if (cj->found == 0)
			ctl_answer(cj->c, "ERR no such entry");
		else
			ctl_answer(cj->c, "OK");
	}
	if (cj->c != NULL)
		bufferevent_enable(cj->c->bev, EV_READ);
	schedule_scan(cj->d, 0);
	free(cj->err);
	free(cj);
}

static void
ctl_request(struct ctl_client *c, char *line)
{
	struct qd *d = c->d;
	char **argv;
	size_t argc;

	argv = str_split(line, " ", &argc);
	if (argc == 1 && strcmp(argv[0], "flush") == 0) {
		/* Entries beyond the connection limits stay forced until
		 * their turn comes. */
		for (size_t i = 0; i < d->ndue; i++) {
			d->due[i].forced = true;
			x_free(&d->due[i].wait);
		}
		schedule_scan(d, 0);
		ctl_answer(c, "OK");
	} else if (argc == 2 && (strcmp(argv[0], "delete") == 0 ||
	    strcmp(argv[0], "hold") == 0 || strcmp(argv[0], "release") == 0)) {
		struct qtask *t;

		if (!spool_id_valid(argv[1])) {
			ctl_answer(c, "ERR not a queue id");
		} else if ((t = task_find(d, argv[1])) != NULL) {
			/* In delivery: applied when the attempt ends. */
			if (strcmp(argv[0], "delete") == 0)
				t->after = AFTER_DELETE;
			else if (strcmp(argv[0], "hold") == 0)
				t->after = AFTER_HOLD;
			ctl_answer(c, "OK in delivery; applied after this "
			    "attempt");
		} else {
			struct ctl_job *cj = xcalloc(1, sizeof(*cj));

			cj->d = d;
			cj->c = c;
			str_copy(cj->op, sizeof(cj->op), argv[0]);
			str_copy(cj->id, sizeof(cj->id), argv[1]);
			/* No more requests from c until this one is over. */
			bufferevent_disable(c->bev, EV_READ);
			pool_submit(d->pool, ctl_work, ctl_done, cj);
		}
	} else {
		ctl_answer(c, "ERR usage: flush | delete ID | hold ID | "
		    "release ID");
	}
	str_array_free(argv);
}

static void
ctl_read_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_client *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line;
	size_t len;

	while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF)) != NULL) {
		ctl_request(c, line);
		free(line);
		if (!(bufferevent_get_enabled(bev) & EV_READ))
			return;
	}
	if (evbuffer_get_length(in) > CTL_LINE_MAX) {
		ctl_answer(c, "ERR line too long");
		ctl_close(c);
	}
}

static void
ctl_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ctl_client *c = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		ctl_close(c);
}

static void
ctl_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct qd *d = arg;
	struct ctl_client *c;
	struct timeval tv = { 30, 0 };

	if (d->ctl_clients >= CTL_MAX_CLIENTS) {
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->d = d;
	c->bev = bufferevent_socket_new(d->w->base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(c->bev, ctl_read_cb, NULL, ctl_event_cb, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	d->ctl_clients++;
}

static int
ctl_open(struct qd *d)
{
	struct sockaddr_un sun;
	const char *path = config_str(d->set->cfg, "TEGAMI_QUEUE_SOCKET");
	mode_t old;

	if (path != NULL && path[0] != '\0')
		d->ctl_path = xstrdup(path);
	else
		d->ctl_path = xasprintf("%s/queue.sock", d->set->tegami_state);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(d->ctl_path) >= sizeof(sun.sun_path)) {
		log_error("event=queue_socket_failed path=%s error=\"path too "
		    "long\" hint=\"set TEGAMI_QUEUE_SOCKET\"", d->ctl_path);
		return -1;
	}
	str_copy(sun.sun_path, sizeof(sun.sun_path), d->ctl_path);
	unlink(d->ctl_path);
	old = umask(0117);
	d->ctl = evconnlistener_new_bind(d->w->base, ctl_accept_cb, d,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
	    (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (d->ctl == NULL) {
		log_error("event=queue_socket_failed path=%s error=\"%s\"",
		    d->ctl_path, strerror(errno));
		return -1;
	}
	{
		struct stat st;

		if (stat(d->ctl_path, &st) == 0) {
			d->ctl_ino = st.st_ino;
			d->ctl_dev = st.st_dev;
		}
	}
	return 0;
}

/* ---- the worker */

static void
stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct qd *d = arg;

	log_info("event=stop_cut_off in_delivery=%zu", d->ntasks);
	worker_exit(d->w);
}

static void
queued_stop(struct worker *w)
{
	struct qd *d = w->ctx;
	struct timeval tv = { STOP_GRACE_SECS, 0 };

	if (d->ctl != NULL) {
		struct stat st;

		evconnlistener_free(d->ctl);
		d->ctl = NULL;
		/* After a reload the path may already be the new worker's. */
		if (stat(d->ctl_path, &st) == 0 && st.st_ino == d->ctl_ino &&
		    st.st_dev == d->ctl_dev)
			unlink(d->ctl_path);
	}
	event_del(d->tick_ev);
	event_del(d->scan_ev);
	event_del(d->dispatch_ev);
	while (d->idle != NULL) {
		struct idle_conn *ic = d->idle;

		d->idle = ic->next;
		idle_free(ic, true);
	}
	if (d->tasks == NULL) {
		worker_exit(w);
		return;
	}
	/* Deliveries in flight get a moment; what is cut off is tried again
	 * after the restart (at least once). */
	d->stop_ev = evtimer_new(w->base, stop_cb, d);
	evtimer_add(d->stop_ev, &tv);
}

static void
queued_status(struct worker *w, char *out, size_t outsize)
{
	struct qd *d = w->ctx;

	snprintf(out, outsize, "entries=%zu in_delivery=%zu connections=%u",
	    d->ndue, d->ntasks, d->conns);
}

int
queued_init(struct worker *w)
{
	struct qd *d = xcalloc(1, sizeof(*d));
	const struct config *cfg = w->settings->cfg;
	struct accounts_settings as;
	const char *extra[3] = { w->settings->domain, w->settings->hostname,
	    NULL };
	struct dns_config dc;
	struct timeval sec = { 1, 0 };
	char *err = NULL, *envdir, *lockpath;

	d->w = w;
	d->set = w->settings;
	w->ctx = d;
	w->stop = queued_stop;
	w->status = queued_status;
	d->ino_fd = -1;
	d->port = (unsigned int)config_num(cfg, "TEGAMI_SMTP_PORT");
	d->lifetime = (time_t)config_num(cfg, "TEGAMI_QUEUE_LIFETIME");
	d->retry_first = (time_t)config_num(cfg, "TEGAMI_QUEUE_RETRY_FIRST");
	d->delay_warning = (time_t)config_num(cfg,
	    "TEGAMI_QUEUE_DELAY_WARNING");
	d->dom_limit = (unsigned int)config_num(cfg,
	    "TEGAMI_QUEUE_DOMAIN_CONCURRENCY");
	d->total_limit = (unsigned int)config_num(cfg,
	    "TEGAMI_QUEUE_CONCURRENCY");

	d->spool = spool_open(w->settings->state_dir, &err);
	if (d->spool == NULL) {
		log_error("event=queue_open_failed error=\"%s\"", err);
		free(err);
		return -1;
	}
	memset(&as, 0, sizeof(as));
	as.config_dir = w->settings->config_dir;
	as.mail_dir = w->settings->mail_dir;
	as.extra_domains = extra;
	as.hostname = w->settings->hostname;
	as.postmaster = config_str(w->settings->cfg, "POSTMASTER_ADDRESS");
	d->accounts = accounts_watch_create(&as, &err);
	if (d->accounts == NULL) {
		log_error("event=accounts_load_failed error=\"%s\"", err);
		free(err);
		return -1;
	}
	memset(&dc, 0, sizeof(dc));
	dc.trust_anchor_file = config_str(cfg, "TEGAMI_DNS_TRUST_ANCHOR");
	d->dns = settings_dns_resolver(w->settings, w->base, &dc, &err);
	if (d->dns == NULL) {
		log_error("event=dns_failed error=\"%s\" hint=\"check "
		    "TEGAMI_DNS_SERVERS (or /etc/resolv.conf) and "
		    "TEGAMI_DNS_TRUST_ANCHOR\"", err);
		free(err);
		return -1;
	}
	d->client_tls = tls_client_ctx_new(&err);
	if (d->client_tls == NULL) {
		log_warn("event=tls_client_failed error=\"%s\" hint=\"mail is "
		    "sent without STARTTLS\"", err);
		x_free(&err);
	}
	keys_reload(d);
	if (relay_reload(d) < 0)
		return -1;
	d->pool = pool_create(w->base, 8);
	d->scan_ev = evtimer_new(w->base, scan_cb, d);
	d->dispatch_ev = evtimer_new(w->base, dispatch_cb, d);
	d->tick_ev = event_new(w->base, -1, EV_PERSIST, tick_cb, d);
	event_add(d->tick_ev, &sec);

	d->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	envdir = xasprintf("%s/env", spool_dir(d->spool));
	if (d->ino_fd < 0 || inotify_add_watch(d->ino_fd, envdir,
	    IN_MOVED_TO | IN_CREATE) < 0) {
		log_warn("event=inotify_failed dir=%s error=\"%s\" "
		    "hint=\"new mail is noticed within a second\"", envdir,
		    strerror(errno));
	} else {
		d->ino_ev = event_new(w->base, d->ino_fd, EV_READ | EV_PERSIST,
		    inotify_cb, d);
		event_add(d->ino_ev, NULL);
	}
	free(envdir);
	lockpath = xasprintf("%s/queue.lock", w->settings->tegami_state);
	d->lock_fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (d->lock_fd < 0) {
		log_error("event=queue_lock_failed path=%s error=\"%s\"",
		    lockpath, strerror(errno));
		free(lockpath);
		return -1;
	}
	free(lockpath);
	if (take_lock(d) == 0)
		log_info("event=queue_waiting reason=\"the previous queue "
		    "worker is finishing\"");
	return 0;
}
