/*
 * imapd: the imap worker (DESIGN.md §2). Serves IMAP on 143 (STARTTLS) and
 * 993 (implicit TLS) when ENABLE_IMAP=1, and POP3 on 110 (STLS) and 995
 * when ENABLE_POP3=1. Fills the engines' hooks (imap/session.h,
 * pop3/server.h) with policy: accounts and passwords (auth/accounts.h,
 * checked on a pool thread; a failure costs a second), the account's
 * Maildir for IMAP (the engine opens the store), and the INBOX view for
 * POP3 (store/pop3box.h, opened and expunged on a pool thread).
 *
 * Plaintext logins: allowed without TLS only from loopback, and only while
 * TEGAMI_POP3_PLAINTEXT_LOOPBACK=1 (the default; the tests turn it off to
 * see the refusal).
 *
 * Brute-force bans (ENABLE_FAIL2BAN): the ban table the smtp worker uses
 * too (filter/ban.h, one SQLite file): failed IMAP and POP3 logins count
 * towards the same FAIL2BAN_MAXRETRY as failed SMTP AUTH, and a banned
 * client gets "* BYE" (IMAP) or "-ERR" (POP3) at connect.
 *
 * Junk training (TEGAMI_JUNK_FILTER and TEGAMI_JUNK_TRAIN_IMAP): a message
 * a user puts into Junk (COPY, MOVE, APPEND) is trained as spam for that
 * account; one taken out of Junk into anything but Trash as ham. The
 * engine tells us through on_filed; we open the files at once (MOVE
 * removes them) and train on a pool thread after the reply has gone.
 */
#include "daemon/worker.h"
#include "daemon/authcheck.h"
#include "daemon/iptable.h"
#include "daemon/sessiontab.h"
#include "auth/accounts.h"
#include "daemon/antispam.h"
#include "filter/ban.h"
#include "filter/bayes.h"
#include "ipc/msg.h"
#include "imap/hdrcache.h"
#include "imap/session.h"
#include "lib/file.h"
#include "lib/log.h"
#include "lib/pool.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "net/listen.h"
#include "pop3/server.h"
#include "store/dbmem.h"
#include "store/mailbox.h"
#include "store/pop3box.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#define AUTH_THREADS 4
/* Junk training: files read per message, and files held open at once
 * (a user moving thousands of messages trains on the first ones only). */
#define TRAIN_READ_MAX (1024 * 1024)
#define TRAIN_OPEN_MAX 512
#define BANNED_TEXT "Too many failed logins from your address, try again later"
/* APPEND's fsyncs: threads wait on the disk, and many fsyncs in flight
   are what the filesystem can group */
#define IO_THREADS 16
#define INDEX_IDLE_SECS 10
/* Balance between imap workers: one with this many sessions more than
   another leaves new connections to it for a moment. */
#define BALANCE_SLACK 1
#define YIELD_USECS 20000
#define YIELD_MAX 50		/* turns in a row: 1 s */

struct imapd {
	struct worker *w;
	struct pop3_server_settings pop3_set;
	struct pop3_hooks pop3_hooks;
	struct imap_settings imap_set;
	struct imap_hooks imap_hooks;
	unsigned int nimap;
	unsigned int imap_max_per_ip;
	unsigned int imap_max_per_user, imap_max_per_user_ip;
	bool quotas;
	uint64_t default_quota;		/* POSTFIX_MAILBOX_SIZE_LIMIT */
	struct evconnlistener **listeners;
	struct pool *pool;
	struct pool *io_pool;		/* blocking store work of sessions */
	struct accounts_watch *accounts;
	struct event *refresh_ev;
	struct conn *conns;
	unsigned int nconns, nlogged_in;
	unsigned int max_per_ip;
	bool plaintext_loopback;
	unsigned int pending_jobs;
	uint64_t logins, login_failures, retrieved, deleted;
	struct iptable ips;		/* sessions per address */
	struct sessiontab *tab;		/* ... and per account, every worker's */
	struct event *yield_ev;		/* listeners off: another worker's turn */
	bool yielding;
	unsigned int yields;		/* turns given in a row */
	struct ban *ban;		/* ENABLE_FAIL2BAN, shared with smtp */
	bool ban_refreshing;
	/* junk training */
	bool train;
	char *bayes_path;
	pthread_mutex_t bayes_lock;
	struct bayes *bayes;		/* opened on the first training */
	unsigned int train_open;	/* files held by queued trainings */
	uint64_t trained_spam, trained_ham, train_skipped;
};

struct conn {
	struct imapd *d;
	struct pop3_session *s;
	struct imap_session *is;	/* IMAP instead of POP3 */
	bool auth_pending;		/* an IMAP auth job is out */
	bool close_after_auth;		/* stopping: close when it is back */
	enum listener_kind kind;
	struct ip_entry *ipe;
	uint64_t ipkey;			/* sessiontab keys counted */
	uint64_t userkey, useripkey;	/* 0: not logged in */
	char *master;		/* master user that logged in, or NULL */
	char *user;		/* IMAP: the account logged in, or NULL */
	struct pop3box *box;
	unsigned int removed;	/* messages unlinked at QUIT */
	bool logged_in;
	struct conn *prev, *next;
};

static struct imapd *imapd;

static void trash_work(void *arg);
static void trash_free(char **paths);

static void
maybe_exit(struct imapd *d)
{
	char **trash;

	if (!d->w->stopping || d->nconns != 0 || d->pending_jobs != 0)
		return;
	store_names_flush();
	/* expunged files the janitor has not had yet: no session is left to
	   wait for the loop, so they go now rather than at the next scan */
	trash = store_trash_take();
	if (trash != NULL) {
		trash_work(trash);
		trash_free(trash);
	}
	/* the master clears our slot of the session table once we are gone */
	worker_exit(d->w);
}

/* ---- connections and the balance between workers ---------------------- */

static void
listeners_enable(struct imapd *d, bool on)
{
	for (size_t i = 0; i < d->w->nlisteners; i++)
		if (d->listeners[i] != NULL) {
			if (on)
				evconnlistener_enable(d->listeners[i]);
			else
				evconnlistener_disable(d->listeners[i]);
		}
}

/*
 * The workers share the listening sockets, and whichever is woken first
 * would take a whole burst. So a worker with more sessions than another
 * stops accepting while that lasts, looking again every YIELD_USECS; but
 * never for more than YIELD_MAX turns in a row, so that a worker stuck in
 * a long command keeps nobody waiting for long.
 */
static void
yield_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imapd *d = arg;
	struct timeval tv = { 0, YIELD_USECS };

	if (d->w->stopping)
		return;
	if (++d->yields < YIELD_MAX &&
	    sessiontab_should_yield(d->tab, BALANCE_SLACK)) {
		evtimer_add(d->yield_ev, &tv);
		return;
	}
	d->yielding = false;
	listeners_enable(d, true);
}

/* Our session count changed. */
static void
balance(struct imapd *d)
{
	struct timeval tv = { 0, YIELD_USECS };

	sessiontab_set_sessions(d->tab, d->nconns);
	if (d->yielding || d->w->stopping ||
	    !sessiontab_should_yield(d->tab, BALANCE_SLACK))
		return;
	d->yielding = true;
	d->yields = 0;
	listeners_enable(d, false);
	evtimer_add(d->yield_ev, &tv);
}

/* A new connection from ip: counted, in the list. */
static struct conn *
conn_link(struct imapd *d, enum listener_kind kind, const char *ip)
{
	struct conn *c = xcalloc(1, sizeof(*c));

	c->d = d;
	c->kind = kind;
	c->ipe = iptable_get(&d->ips, ip);
	c->ipe->sessions++;
	c->ipkey = sessiontab_key("ip", ip, NULL);
	sessiontab_add(d->tab, c->ipkey, 1);
	c->next = d->conns;
	if (d->conns != NULL)
		d->conns->prev = c;
	d->conns = c;
	d->nconns++;
	balance(d);
	return c;
}

/* The account logged in on c counts towards its limits now. */
static void
conn_count_user(struct conn *c, const char *user)
{
	struct imapd *d = c->d;

	c->userkey = sessiontab_key("user", user, NULL);
	c->useripkey = sessiontab_key("userip", user, c->ipe->ip);
	sessiontab_add(d->tab, c->userkey, 1);
	sessiontab_add(d->tab, c->useripkey, 1);
}

static void
conn_unlink(struct conn *c)
{
	struct imapd *d = c->d;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		d->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (c->userkey != 0) {
		sessiontab_add(d->tab, c->userkey, -1);
		sessiontab_add(d->tab, c->useripkey, -1);
	}
	sessiontab_add(d->tab, c->ipkey, -1);
	iptable_release(&d->ips, c->ipe);
	d->nconns--;
	sessiontab_set_sessions(d->tab, d->nconns);
}

/* ---- POP3 hooks ------------------------------------------------------ */

static void
pop3_on_connect(struct pop3_session *s, void *ctx)
{
	struct conn *c = ctx;

	/* counted already, in every worker */
	if (sessiontab_count(c->d->tab, c->ipkey) > c->d->max_per_ip) {
		log_info("sid=%s event=refused ip=%s reason=too_many_sessions "
		    "limit=%u", pop3_session_id(s), c->ipe->ip,
		    c->d->max_per_ip);
		pop3_session_reply(s, false, "[SYS/TEMP] Too many connections "
		    "from your address, try again later");
		return;
	}
	if (c->d->ban != NULL && ban_is_banned(c->d->ban, c->ipe->ip,
	    time(NULL), NULL)) {
		log_info("sid=%s event=refused service=pop3 ip=%s reason=banned",
		    pop3_session_id(s), c->ipe->ip);
		pop3_session_reply(s, false, "[SYS/TEMP] " BANNED_TEXT);
		return;
	}
	log_info("sid=%s event=connect ip=%s service=%s", pop3_session_id(s),
	    c->ipe->ip, listener_info[c->kind].name);
	pop3_session_reply(s, true, "ok");
}

static void conn_free(struct conn *c);
static void imap_auth_checked(const struct authcheck_result *r, void *ctx);

/* The answer to a POP3 login, once authcheck has the verdict. */
static void
pop3_auth_checked(const struct authcheck_result *r, void *ctx)
{
	struct conn *c = ctx;
	struct pop3_session *s = c->s;
	char esc[256];

	c->d->pending_jobs--;
	log_escape(esc, sizeof(esc), r->login, strlen(r->login));
	if (r->result == 1) {
		log_info("sid=%s event=auth result=ok service=pop3 login=%s "
		    "user=%s%s%s ip=%s", pop3_session_id(s), esc, r->user,
		    r->master != NULL ? " master=" : "",
		    r->master != NULL ? r->master : "", c->ipe->ip);
		c->d->logins++;
		free(c->master);
		c->master = r->master != NULL ? xstrdup(r->master) : NULL;
		/* the engine asks on_open with this login: the account */
		pop3_session_reply(s, true, "%s", r->user);
	} else {
		log_info("sid=%s event=auth result=failed service=pop3 "
		    "login=%s ip=%s%s%s", pop3_session_id(s), esc, c->ipe->ip,
		    r->error != NULL ? " error=" : "",
		    r->error != NULL ? r->error : "");
		c->d->login_failures++;
		if (r->result < 0)
			pop3_session_reply(s, false, "[SYS/TEMP] Temporary "
			    "authentication failure");
		else if (r->banned)
			/* no more guesses on this connection either */
			pop3_session_refuse_close(s, "[AUTH] " BANNED_TEXT);
		else
			pop3_session_reply(s, false, "[AUTH] Authentication "
			    "failed.");
	}
	maybe_exit(imapd);
}

static void
pop3_on_auth(struct pop3_session *s, const char *mech, const char *authzid,
    const char *login, char *password, void *ctx)
{
	struct conn *c = ctx;

	if (*authzid != '\0' && strcasecmp(authzid, login) != 0) {
		pop3_session_reply(s, false, "[AUTH] Authorization identity "
		    "must be the login");
		return;
	}
	c->d->pending_jobs++;
	authcheck_start(c->d->pool, c->d->w->base, c->d->accounts, c->d->ban,
	    c->ipe->ip, login, password, pop3_auth_checked, c);
}

struct open_job {
	struct conn *c;
	char *maildir;
	char *user;
	struct pop3box *box;
	int result;
	char *error;
};

static void
open_work(void *arg)
{
	struct open_job *j = arg;

	j->result = pop3box_open(j->maildir, &j->box, &j->error);
}

static void
open_done(void *arg)
{
	struct open_job *j = arg;
	struct conn *c = j->c;
	struct pop3_session *s = c->s;

	c->d->pending_jobs--;
	if (j->result == 1) {
		size_t n = pop3box_count(j->box);
		struct pop3_msg *msgs = xcalloc(n + 1, sizeof(*msgs));
		uint64_t total = 0;

		for (size_t i = 0; i < n; i++) {
			const struct pop3box_msg *m = pop3box_msg(j->box, i);

			msgs[i].size = m->size;
			msgs[i].uidl = m->uidl;
			total += m->size;
		}
		c->box = j->box;
		c->logged_in = true;
		c->d->nlogged_in++;
		log_info("sid=%s event=pop3_login user=%s ip=%s tls=%s "
		    "messages=%zu bytes=%llu", pop3_session_id(s), j->user,
		    c->ipe->ip, pop3_session_tls(s) ? "yes" : "no", n,
		    (unsigned long long)total);
		pop3_session_open_ok(s, msgs, n);
		free(msgs);
	} else if (j->result == 0) {
		log_info("sid=%s event=pop3_in_use user=%s ip=%s",
		    pop3_session_id(s), j->user, c->ipe->ip);
		pop3_session_reply(s, false, "[IN-USE] Mailbox is locked by "
		    "another POP3 session");
	} else {
		log_error("sid=%s event=pop3_open_failed user=%s error=\"%s\"",
		    pop3_session_id(s), j->user, j->error);
		pop3_session_reply(s, false, "[SYS/TEMP] Cannot open the "
		    "mailbox, try again later");
	}
	free(j->error);
	free(j->maildir);
	free(j->user);
	free(j);
	maybe_exit(imapd);
}

static void
pop3_on_open(struct pop3_session *s, const char *user, void *ctx)
{
	struct conn *c = ctx;
	const char *at = strrchr(user, '@');
	struct open_job *j;

	/* The account name becomes a path: refuse what could climb out. */
	if (at == NULL || at == user || at[1] == '\0' ||
	    strchr(user, '/') != NULL || user[0] == '.' || at[1] == '.') {
		log_error("sid=%s event=pop3_open_failed user=%s "
		    "error=\"account name unusable as a path\"",
		    pop3_session_id(s), user);
		pop3_session_reply(s, false, "[SYS/PERM] Mailbox unavailable");
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->c = c;
	j->user = xstrdup(user);
	j->maildir = xasprintf("%s/%s/%.*s/", c->d->w->settings->mail_dir,
	    at + 1, (int)(at - user), user);
	c->d->pending_jobs++;
	pool_submit(c->d->pool, open_work, open_done, j);
}

static int
pop3_on_message_fd(struct pop3_session *s, size_t idx, void *ctx)
{
	struct conn *c = ctx;
	int fd = pop3box_message_fd(c->box, idx);

	if (fd < 0)
		log_warn("sid=%s event=pop3_message_gone user=%s msg=%zu "
		    "error=\"%s\"", pop3_session_id(s), pop3_session_user(s),
		    idx + 1, strerror(errno));
	return fd;
}

struct commit_job {
	struct conn *c;
	struct pop3box *box;
	bool *deleted;
	unsigned int removed;
	int result;
	char *error;
};

static void
commit_work(void *arg)
{
	struct commit_job *j = arg;

	j->result = pop3box_expunge(j->box, j->deleted, &j->removed, &j->error);
}

static void
commit_done(void *arg)
{
	struct commit_job *j = arg;
	struct conn *c = j->c;
	struct pop3_session *s = c->s;

	c->d->pending_jobs--;
	c->d->deleted += j->removed;
	c->removed = j->removed;
	/* unlocked before the client hears +OK: it may log in again at once */
	pop3box_close(&c->box);
	if (j->result == 0) {
		pop3_session_reply(s, true, "ok");
	} else {
		log_error("sid=%s event=pop3_expunge_failed user=%s "
		    "removed=%u error=\"%s\"", pop3_session_id(s),
		    pop3_session_user(s), j->removed, j->error);
		pop3_session_reply(s, false, "[SYS/TEMP] Some deleted "
		    "messages were not removed");
	}
	free(j->error);
	free(j->deleted);
	free(j);
	maybe_exit(imapd);
}

static void
pop3_on_commit(struct pop3_session *s, const bool *deleted, size_t count,
    void *ctx)
{
	struct conn *c = ctx;
	struct commit_job *j;

	if (pop3_session_deleted(s) == 0) {
		pop3box_close(&c->box);
		pop3_session_reply(s, true, "ok");
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->c = c;
	j->box = c->box;
	j->deleted = xcalloc(count + 1, sizeof(*j->deleted));
	memcpy(j->deleted, deleted, count * sizeof(*deleted));
	c->d->pending_jobs++;
	pool_submit(c->d->pool, commit_work, commit_done, j);
}

static void
pop3_on_disconnect(struct pop3_session *s, void *ctx)
{
	struct conn *c = ctx;
	struct imapd *d = c->d;

	if (c->logged_in) {
		unsigned int marked = pop3_session_deleted(s);

		/* deleted= what QUIT removed; marked but never committed (a
		 * dropped connection, a timeout, a stop) adds uncommitted=yes */
		log_info("sid=%s event=pop3_logout user=%s%s%s ip=%s "
		    "retrieved=%u deleted=%u%s", pop3_session_id(s),
		    pop3_session_user(s), c->master != NULL ? " master=" : "",
		    c->master != NULL ? c->master : "", c->ipe->ip,
		    pop3_session_retrieved(s), c->removed,
		    marked > c->removed ? " uncommitted=yes" : "");
		d->retrieved += pop3_session_retrieved(s);
		d->nlogged_in--;
	}
	log_info("sid=%s event=disconnect ip=%s", pop3_session_id(s),
	    c->ipe->ip);
	pop3box_close(&c->box);
	free(c->master);
	conn_unlink(c);
	free(c);
	maybe_exit(d);
}

/* ---- IMAP hooks ------------------------------------------------------ */

/* The IMAP sessions of user, and of user from c's address, in every
   worker (c itself is not counted yet). */
static void
count_user_sessions(struct imapd *d, const struct conn *c, const char *user,
    unsigned int *all_r, unsigned int *from_ip_r)
{
	*all_r = sessiontab_count(d->tab, sessiontab_key("user", user, NULL));
	*from_ip_r = sessiontab_count(d->tab, sessiontab_key("userip", user,
	    c->ipe->ip));
}

/* The answer to an IMAP login, once authcheck has the verdict. */
static void
imap_auth_checked(const struct authcheck_result *r, void *ctx)
{
	struct conn *c = ctx;
	struct imapd *d = c->d;
	char esc[256];
	char *maildir = NULL;
	const char *refuse = NULL;

	d->pending_jobs--;
	c->auth_pending = false;
	log_escape(esc, sizeof(esc), r->login, strlen(r->login));
	if (r->result == 1) {
		const char *at = strrchr(r->user, '@');
		unsigned int all, from_ip;

		/* the session limits apply to good passwords only: a wrong
		   one tells nothing about the account */
		count_user_sessions(d, c, r->user, &all, &from_ip);
		if (from_ip >= d->imap_max_per_user_ip) {
			refuse = "[LIMIT] Too many connections for this account "
			    "from your address";
			log_info("event=refused service=imap user=%s ip=%s "
			    "reason=too_many_user_ip_sessions limit=%u", r->user,
			    c->ipe->ip, d->imap_max_per_user_ip);
		} else if (all >= d->imap_max_per_user) {
			refuse = "[LIMIT] Too many connections for this account";
			log_info("event=refused service=imap user=%s ip=%s "
			    "reason=too_many_user_sessions limit=%u", r->user,
			    c->ipe->ip, d->imap_max_per_user);
		} else {
			log_info("event=auth result=ok service=imap login=%s user=%s%s%s "
			    "ip=%s", esc, r->user, r->master != NULL ?
			    " master=" : "", r->master != NULL ? r->master : "",
			    c->ipe->ip);
			d->logins++;
			/* MAIL_DIR/<domain>/<localpart>/, as docker-mailserver lays out */
			if (at != NULL)
				maildir = xasprintf("%s/%s/%.*s/", d->w->settings->mail_dir,
				    at + 1, (int)(at - r->user), r->user);
		}
	} else {
		log_info("event=auth result=failed service=imap login=%s ip=%s%s%s",
		    esc, c->ipe->ip, r->error != NULL ? " error=" : "",
		    r->error != NULL ? r->error : "");
		d->login_failures++;
	}
	if (c->close_after_auth) {
		imap_session_destroy(c->is);
		conn_free(c);
	} else if (r->banned) {
		log_info("event=banned service=imap ip=%s", c->ipe->ip);
		imap_session_auth_refuse_bye(c->is, "[UNAVAILABLE] " BANNED_TEXT);
	} else if (refuse != NULL) {
		imap_session_auth_refuse(c->is, refuse);
	} else if (maildir != NULL) {
		free(c->user);
		c->user = xstrdup(r->user);
		conn_count_user(c, r->user);
		d->nlogged_in++, c->logged_in = true;
		imap_session_auth_ok(c->is, r->user, maildir);
	} else {
		imap_session_auth_reply(c->is, false, NULL);
	}
	free(maildir);
	maybe_exit(d);
}

/* The quota of the account logged in now (dovecot-quotas.cf, else the default). */
static uint64_t
imap_quota(struct imap_session *s, void *ctx)
{
	struct conn *c = ctx;
	struct accounts *acc;
	uint64_t q;

	if (!c->d->quotas || c->user == NULL)
		return 0;
	acc = accounts_watch_get(c->d->accounts);
	q = accounts_quota(acc, c->user);
	accounts_unref(acc);
	return q != 0 ? q : c->d->default_quota;
}

/* URLAUTH: another account's Maildir, if it is an account. */
static char *
imap_account_maildir(struct imap_session *s, const char *user, void *ctx)
{
	struct conn *c = ctx;
	struct accounts *acc = accounts_watch_get(c->d->accounts);
	const char *at = strrchr(user, '@');
	char *maildir = NULL;

	if (at != NULL && at != user && at[1] != '\0' && at[1] != '.' &&
	    strchr(user, '/') == NULL && user[0] != '.' &&
	    accounts_exists(acc, user)) {
		char *lower = str_lower(xstrdup(user));

		at = strrchr(lower, '@');
		maildir = xasprintf("%s/%s/%.*s/", c->d->w->settings->mail_dir,
		    at + 1, (int)(at - lower), lower);
		free(lower);
	}
	accounts_unref(acc);
	return maildir;
}

static void
imap_on_auth(struct imap_session *s, const char *user, const char *password,
    void *ctx)
{
	struct conn *c = ctx;

	c->auth_pending = true;
	c->d->pending_jobs++;
	authcheck_start(c->d->pool, c->d->w->base, c->d->accounts, c->d->ban,
	    c->ipe->ip, user, password, imap_auth_checked, c);
}

/* ---- junk training ---------------------------------------------------- */

struct train_job {
	struct imapd *d;
	char *account;
	enum bayes_class cls;
	int *fds;		/* COPY/MOVE: the files, opened on the loop */
	unsigned int nfds;
	char *data;		/* APPEND: the message */
	size_t len;
	unsigned int trained, already, failed;
};

/* Up to TRAIN_READ_MAX bytes of fd (the tokenizer looks at no more). */
static char *
read_fd(int fd, size_t *len_r)
{
	char *buf = xmalloc(TRAIN_READ_MAX);
	size_t n = 0;

	while (n < TRAIN_READ_MAX) {
		ssize_t r = read(fd, buf + n, TRAIN_READ_MAX - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	*len_r = n;
	return buf;
}

static void
train_one(struct train_job *j, const char *msg, size_t len)
{
	struct imapd *d = j->d;
	char *err = NULL;
	int r;

	pthread_mutex_lock(&d->bayes_lock);
	if (d->bayes == NULL && bayes_open(d->bayes_path, NULL, &d->bayes,
	    &err) < 0) {
		log_warn("event=junk_train_failed error=\"%s\"", err);
		x_free(&err);
	}
	r = d->bayes == NULL ? -1 : bayes_train(d->bayes, j->account, msg, len,
	    j->cls, time(NULL), &err);
	pthread_mutex_unlock(&d->bayes_lock);
	if (r < 0) {
		if (err != NULL)
			log_warn("event=junk_train_failed account=%s error=\"%s\"",
			    j->account, err);
		free(err);
		j->failed++;
	} else if (r == 1) {
		j->trained++;
	} else {
		j->already++;
	}
}

static void
train_work(void *arg)
{
	struct train_job *j = arg;

	if (j->data != NULL)
		train_one(j, j->data, j->len);
	for (unsigned int i = 0; i < j->nfds; i++) {
		size_t len;
		char *msg = read_fd(j->fds[i], &len);

		close(j->fds[i]);
		j->fds[i] = -1;
		train_one(j, msg, len);
		free(msg);
	}
}

static void
train_done(void *arg)
{
	struct train_job *j = arg;
	struct imapd *d = j->d;

	d->pending_jobs--;
	d->train_open -= j->nfds;
	if (j->cls == BAYES_SPAM)
		d->trained_spam += j->trained;
	else
		d->trained_ham += j->trained;
	log_info("event=junk_trained account=%s class=%s trained=%u "
	    "already=%u failed=%u", j->account, j->cls == BAYES_SPAM ? "spam" :
	    "ham", j->trained, j->already, j->failed);
	free(j->account);
	free(j->fds);
	free(j->data);
	free(j);
	maybe_exit(d);
}

/*
 * Dovecot's antispam convention (docker-mailserver's RSPAMD_LEARN):
 * into Junk = spam; out of Junk into anything but Trash = ham; moves
 * between other folders teach nothing.
 */
static void
imap_on_filed(struct imap_session *s, const char *from, const char *to,
    const char *const *paths, unsigned int n, const char *data, size_t len,
    void *ctx)
{
	struct conn *c = ctx;
	struct imapd *d = c->d;
	bool to_junk = strcmp(to, "Junk") == 0;
	bool from_junk = from != NULL && strcmp(from, "Junk") == 0;
	struct train_job *j;

	if (!d->train || c->user == NULL)
		return;
	if (to_junk == from_junk || (from_junk && strcmp(to, "Trash") == 0))
		return;
	j = xcalloc(1, sizeof(*j));
	j->d = d;
	j->account = xstrdup(c->user);
	j->cls = to_junk ? BAYES_SPAM : BAYES_HAM;
	if (paths == NULL) {
		j->data = xmalloc(len + 1);
		memcpy(j->data, data, len);
		j->len = len;
	} else {
		j->fds = xcalloc(n, sizeof(*j->fds));
		for (unsigned int i = 0; i < n; i++) {
			int fd;

			if (d->train_open >= TRAIN_OPEN_MAX) {
				d->train_skipped += n - i;
				log_warn("event=junk_train_skipped account=%s "
				    "messages=%u reason=too_many_at_once",
				    c->user, n - i);
				break;
			}
			fd = file_open_read(paths[i]);
			if (fd < 0)
				continue;	/* gone meanwhile: nothing to learn */
			j->fds[j->nfds++] = fd;
			d->train_open++;
		}
		if (j->nfds == 0) {
			free(j->fds);
			free(j->account);
			free(j);
			return;
		}
	}
	d->pending_jobs++;
	pool_submit(d->pool, train_work, train_done, j);
}

/*
 * NOTIFY across the imap workers: a mailbox-list change goes to the master
 * as what, then root, name and oldname each ending in NUL ("" for none),
 * and from there to the other workers' NOTIFY sessions.
 */
static void
imap_on_mailbox_change(struct imap_session *s, const char *root,
    enum imap_notify_change what, const char *name, const char *oldname,
    void *ctx)
{
	struct conn *c = ctx;
	const char *parts[3] = { root, name, oldname != NULL ? oldname : "" };
	size_t len = 1, at = 1;
	char *msg;

	if (sessiontab_workers(c->d->tab) < 2)
		return;		/* nobody else to tell */
	for (int i = 0; i < 3; i++)
		len += strlen(parts[i]) + 1;
	if (len > IPC_MAX_PAYLOAD)
		return;
	msg = xmalloc(len);
	msg[0] = (char)('0' + what);
	for (int i = 0; i < 3; i++) {
		size_t n = strlen(parts[i]) + 1;

		memcpy(msg + at, parts[i], n);
		at += n;
	}
	worker_send(c->d->w, IPC_MAILBOX_CHANGE, msg, len);
	free(msg);
}

static void
imapd_ipc(struct worker *w, uint32_t type, const char *data, size_t len)
{
	const char *parts[3], *p = data + 1, *end = data + len;
	int what;

	if (type != IPC_MAILBOX_CHANGE || len < 4) {
		log_warn("event=ipc_unknown type=%u", type);
		return;
	}
	what = data[0] - '0';
	for (int i = 0; i < 3; i++) {
		const char *nul = memchr(p, '\0', (size_t)(end - p));

		if (nul == NULL)
			return;
		parts[i] = p;
		p = nul + 1;
	}
	if (what < NOTIFY_CHANGE_CREATE || what > NOTIFY_CHANGE_UNSUBSCRIBE)
		return;
	imap_notify_foreign_change(parts[0], (enum imap_notify_change)what,
	    parts[1], *parts[2] != '\0' ? parts[2] : NULL);
}

static void
imap_on_disconnect(struct imap_session *s, void *ctx)
{
	struct conn *c = ctx;

	log_info("event=disconnect service=imap ip=%s", c->ipe->ip);
	conn_free(c);
	maybe_exit(imapd);
}

/* Unlinks an IMAP connection and frees it (the session is already gone). */
static void
conn_free(struct conn *c)
{
	struct imapd *d = c->d;

	if (c->logged_in)
		d->nlogged_in--;
	free(c->user);
	conn_unlink(c);
	d->nimap--;
	free(c);
}

static void
imap_accept(struct imapd *d, struct worker_listener *wl, evutil_socket_t fd,
    struct sockaddr *sa)
{
	struct imap_settings set = d->imap_set;
	struct bufferevent *bev;
	struct conn *c;
	char ip[64];

	sockaddr_ip_text(sa, ip, sizeof(ip));
	if (sessiontab_count(d->tab, sessiontab_key("ip", ip, NULL)) >=
	    d->imap_max_per_ip) {
		static const char bye[] = "* BYE [UNAVAILABLE] Too many "
		    "connections from your address, try again later\r\n";

		log_info("event=refused service=imap ip=%s "
		    "reason=too_many_sessions limit=%u", ip, d->imap_max_per_ip);
		if (wl->kind == LISTENER_IMAP && write(fd, bye, sizeof(bye) - 1) < 0)
			log_debug("event=write_failed ip=%s", ip);
		close(fd);
		return;
	}
	if (d->ban != NULL && ban_is_banned(d->ban, ip, time(NULL), NULL)) {
		/* the engine greets with BYE (under TLS on 993) and closes */
		log_info("event=refused service=imap ip=%s reason=banned", ip);
		set.greeting_bye = "[UNAVAILABLE] " BANNED_TEXT;
	}
	if (wl->kind == LISTENER_IMAPS) {
		bev = bufferevent_openssl_socket_new(d->w->base, fd,
		    SSL_new(d->w->tls), BUFFEREVENT_SSL_ACCEPTING,
		    BEV_OPT_CLOSE_ON_FREE);
		set.ssl_ctx = NULL;		/* no STARTTLS under TLS */
		set.secure = true;
	} else {
		bev = bufferevent_socket_new(d->w->base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
		set.ssl_ctx = d->w->tls;
		/* Logins in clear text only over loopback (RFC 9051 LOGINDISABLED). */
		set.secure = sockaddr_is_loopback(sa) == 1;
	}
	if (bev == NULL) {
		close(fd);
		return;
	}
	c = conn_link(d, wl->kind, ip);
	d->nimap++;
	if (set.greeting_bye == NULL)
		log_info("event=connect service=%s ip=%s",
		    listener_info[wl->kind].name, ip);
	/* The engine sends the greeting; nothing calls back before it returns. */
	c->is = imap_session_new(d->w->base, bev, &set, &d->imap_hooks, c);
}

/* ---- listening -------------------------------------------------------- */

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct worker_listener *wl = arg;
	struct imapd *d = imapd;
	struct pop3_server_settings set = d->pop3_set;
	struct bufferevent *bev;
	struct conn *c;
	char ip[64];

	if (d->w->stopping) {
		close(fd);
		return;
	}
	if (wl->kind == LISTENER_IMAP || wl->kind == LISTENER_IMAPS) {
		if (wl->kind == LISTENER_IMAPS && d->w->tls == NULL) {
			close(fd);
			return;
		}
		imap_accept(d, wl, fd, sa);
		return;
	}
	if (wl->kind != LISTENER_POP3 && wl->kind != LISTENER_POP3S) {
		close(fd);
		return;
	}
	if (wl->kind == LISTENER_POP3S) {
		if (d->w->tls == NULL) {
			close(fd);
			return;
		}
		bev = bufferevent_openssl_socket_new(d->w->base, fd,
		    SSL_new(d->w->tls), BUFFEREVENT_SSL_ACCEPTING,
		    BEV_OPT_CLOSE_ON_FREE);
		set.ssl_ctx = NULL;	/* no STLS under TLS */
	} else {
		bev = bufferevent_socket_new(d->w->base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
		set.ssl_ctx = d->w->tls;
	}
	if (bev == NULL) {
		close(fd);
		return;
	}
	set.plaintext_auth = d->plaintext_loopback &&
	    sockaddr_is_loopback(sa) == 1;
	sockaddr_ip_text(sa, ip, sizeof(ip));
	c = conn_link(d, wl->kind, ip);
	c->s = pop3_session_new(d->w->base, bev, &set, &d->pop3_hooks, c, sa,
	    (socklen_t)salen);
}

/* Bans made or lifted by the smtp worker or `tegami fail2ban`. */
static void
ban_refresh_work(void *arg)
{
	struct imapd *d = arg;
	char *err = NULL;

	if (ban_refresh(d->ban, time(NULL), &err) < 0) {
		log_warn("event=ban_refresh_failed error=\"%s\"", err);
		free(err);
	}
}

static void
ban_refresh_done(void *arg)
{
	struct imapd *d = arg;

	d->ban_refreshing = false;
	d->pending_jobs--;
	maybe_exit(d);
}

static void
checkpoint_work(void *arg)
{
	char *err = NULL;

	if (store_index_checkpoint(arg, &err) < 0) {
		log_warn("event=index_checkpoint_failed error=\"%s\"", err);
		free(err);
	}
}

static void
checkpoint_done(void *arg)
{
	store_checkpoint_done(arg);
	free(arg);
	imapd->pending_jobs--;
	maybe_exit(imapd);
}

static void
trash_work(void *arg)
{
	char **paths = arg;

	for (size_t i = 0; paths[i] != NULL; i++)
		(void)unlink(paths[i]);
}

static void
trash_free(char **paths)
{
	for (size_t i = 0; paths[i] != NULL; i++)
		free(paths[i]);
	free(paths);
}

static void
trash_done(void *arg)
{
	trash_free(arg);
	imapd->pending_jobs--;
	maybe_exit(imapd);
}

static void
refresh_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imapd *d = arg;
	char **ckpt, **trash;

	accounts_watch_refresh(d->accounts, false);
	if (d->ban != NULL && !d->ban_refreshing && !d->w->stopping) {
		d->ban_refreshing = true;
		d->pending_jobs++;
		pool_submit(d->pool, ban_refresh_work, ban_refresh_done, d);
	}
	/* an account whose sessions all sit in IDLE gives back its index
	   connection (most of what it costs); the next command reopens it */
	(void)imap_hdrcache_expire(0);
	if (store_accounts_idle(INDEX_IDLE_SECS) > 0) {
		/* give the freed pages back to the system */
		store_dbmem_trim();
		malloc_trim(0);
	}
	/* flag changes of the last second: their files renamed in one go */
	store_names_flush();
	/* expunged files: unlinked on the I/O pool */
	trash = store_trash_take();
	if (trash != NULL) {
		d->pending_jobs++;
		pool_submit(d->io_pool, trash_work, trash_done, trash);
	}
	/* index checkpoints fsync: on the I/O pool, never on the loop */
	ckpt = store_checkpoints_wanted();
	for (size_t i = 0; ckpt != NULL && ckpt[i] != NULL; i++) {
		d->pending_jobs++;
		pool_submit(d->io_pool, checkpoint_work, checkpoint_done, ckpt[i]);
	}
	free(ckpt);
}

static void
imapd_stop(struct worker *w)
{
	struct imapd *d = w->ctx;

	listeners_enable(d, false);
	sessiontab_set_accepting(d->tab, false);
	for (struct conn *c = d->conns, *next; c != NULL; c = next) {
		next = c->next;
		if (c->is == NULL) {
			pop3_session_shutdown(c->s);
		} else if (c->auth_pending) {
			c->close_after_auth = true;
		} else {
			/* IMAP commits every change as it is made: close now,
			   or once an APPEND being fsync'd has its UID */
			imap_session_shutdown(c->is);
		}
	}
	maybe_exit(d);
}

static void
imapd_status(struct worker *w, char *out, size_t outsize)
{
	struct imapd *d = w->ctx;

	snprintf(out, outsize, "connections=%u imap_connections=%u "
	    "logged_in=%u logins=%llu login_failures=%llu retrieved=%llu "
	    "deleted=%llu trained_spam=%llu trained_ham=%llu", d->nconns,
	    d->nimap, d->nlogged_in, (unsigned long long)d->logins,
	    (unsigned long long)d->login_failures,
	    (unsigned long long)d->retrieved, (unsigned long long)d->deleted,
	    (unsigned long long)d->trained_spam,
	    (unsigned long long)d->trained_ham);
}

/* The session table the master shares (TEGAMI_WORKER_SESSIONS="fd slot"),
   else one of our own. */
static int
attach_sessions(struct imapd *d)
{
	const char *v = getenv("TEGAMI_WORKER_SESSIONS");
	int fd = -1, slot = -1;
	char *err = NULL;

	if (v != NULL && sscanf(v, "%d %d", &fd, &slot) != 2)
		fd = slot = -1;
	d->tab = sessiontab_attach(fd, slot, &err);
	if (d->tab == NULL) {
		log_error("event=imap_sessions_failed error=\"%s\"", err);
		free(err);
		return -1;
	}
	d->yield_ev = evtimer_new(d->w->base, yield_cb, d);
	return 0;
}

int
imapd_init(struct worker *w)
{
	struct imapd *d = xcalloc(1, sizeof(*d));
	const struct config *cfg = w->settings->cfg;
	struct accounts_settings as;
	const char *extra[3] = { w->settings->domain, w->settings->hostname,
	    NULL };
	struct timeval sec = { 1, 0 };
	char *err = NULL;

	imapd = d;
	d->w = w;
	/* before any SQLite call: index connections of idle accounts are
	   closed, and their memory must really go back */
	(void)store_dbmem_install();
	(void)store_sqlite_noatime();
	w->ctx = d;
	w->stop = imapd_stop;
	w->status = imapd_status;
	d->max_per_ip = (unsigned int)config_num(cfg,
	    "TEGAMI_POP3_MAX_SESSIONS_PER_IP");
	d->plaintext_loopback = config_bool(cfg,
	    "TEGAMI_POP3_PLAINTEXT_LOOPBACK");
	d->pop3_set.hostname = w->settings->hostname;
	d->pop3_set.cmd_timeout_ms = (unsigned int)config_num(cfg,
	    "TEGAMI_POP3_TIMEOUT") * 1000;
	d->imap_max_per_ip = (unsigned int)config_num(cfg,
	    "TEGAMI_IMAP_MAX_SESSIONS_PER_IP");
	d->imap_max_per_user = (unsigned int)config_num(cfg,
	    "TEGAMI_IMAP_MAX_SESSIONS_PER_USER");
	d->imap_max_per_user_ip = (unsigned int)config_num(cfg,
	    "TEGAMI_IMAP_MAX_SESSIONS_PER_USER_IP");
	d->quotas = config_bool(cfg, "ENABLE_QUOTAS");
	d->default_quota = config_num(cfg, "POSTFIX_MAILBOX_SIZE_LIMIT");
	d->imap_set.hostname = w->settings->hostname;
	d->imap_set.max_literal = config_num(cfg, "POSTFIX_MESSAGE_SIZE_LIMIT");
	d->imap_set.idle_timeout_ms = (unsigned int)config_num(cfg,
	    "TEGAMI_IMAP_TIMEOUT") * 1000;
	d->imap_set.quota = d->quotas;
	d->imap_set.compress = config_bool(cfg, "TEGAMI_IMAP_COMPRESS");
	d->imap_set.urlauth = config_bool(cfg, "TEGAMI_IMAP_URLAUTH");
	d->imap_hooks.on_auth = imap_on_auth;
	d->imap_hooks.on_disconnect = imap_on_disconnect;
	d->imap_hooks.quota = imap_quota;
	d->imap_hooks.account_maildir = imap_account_maildir;
	d->imap_hooks.on_filed = imap_on_filed;
	d->imap_hooks.on_mailbox_change = imap_on_mailbox_change;
	w->ipc = imapd_ipc;
	d->train = config_bool(cfg, "TEGAMI_JUNK_FILTER") &&
	    config_bool(cfg, "TEGAMI_JUNK_TRAIN_IMAP");
	d->bayes_path = settings_bayes_path(w->settings);
	pthread_mutex_init(&d->bayes_lock, NULL);
	d->pop3_hooks.on_connect = pop3_on_connect;
	d->pop3_hooks.on_auth = pop3_on_auth;
	d->pop3_hooks.on_open = pop3_on_open;
	d->pop3_hooks.on_message_fd = pop3_on_message_fd;
	d->pop3_hooks.on_commit = pop3_on_commit;
	d->pop3_hooks.on_disconnect = pop3_on_disconnect;
	memset(&as, 0, sizeof(as));
	as.config_dir = w->settings->config_dir;
	as.mail_dir = w->settings->mail_dir;
	as.extra_domains = extra;
	d->accounts = accounts_watch_create(&as, &err);
	if (d->accounts == NULL) {
		log_error("event=accounts_load_failed error=\"%s\"", err);
		free(err);
		return -1;
	}
	if (antispam_ban_open(w->settings, &d->ban, &err) < 0) {
		log_error("event=antispam_config_failed error=\"%s\"", err);
		free(err);
		return -1;
	}
	if (attach_sessions(d) < 0)
		return -1;
	d->pool = pool_create(w->base, AUTH_THREADS);
	d->io_pool = pool_create(w->base, IO_THREADS);
	store_trash_janitor();	/* refresh_cb takes the trash */
	d->imap_set.pool = d->io_pool;
	d->refresh_ev = event_new(w->base, -1, EV_PERSIST, refresh_cb, d);
	event_add(d->refresh_ev, &sec);
	d->listeners = xcalloc(w->nlisteners + 1, sizeof(*d->listeners));
	for (size_t i = 0; i < w->nlisteners; i++) {
		struct worker_listener *wl = &w->listeners[i];

		evutil_make_socket_nonblocking(wl->fd);
		d->listeners[i] = evconnlistener_new(w->base, accept_cb, wl,
		    LEV_OPT_CLOSE_ON_FREE, -1, wl->fd);
		if (d->listeners[i] == NULL)
			fatal("event=listen_failed addr=%s", wl->addr);
	}
	return 0;
}
