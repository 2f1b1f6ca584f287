/*
 * smtpd: the smtp worker. Fills the SMTP engine's hooks (smtp/server.h)
 * with policy: accounts and aliases (auth/accounts.h), relay rules, sender
 * ownership, and durable in-line delivery to Maildir (store/maildir.h) or
 * the outbound queue (queue/spool.h). A 250 after DATA is sent only when
 * every copy is on disk (DESIGN.md §1).
 *
 * Relay policy (PERMIT_DOCKER=none): no client address is trusted, loopback
 * included. Port 25 accepts mail for local domains only; mail for anywhere
 * else needs an authenticated session on 587 or 465.
 */
#include "daemon/smtpd.h"
#include "daemon/antispam.h"
#include "daemon/delivery.h"
#include "daemon/worker.h"
#include "daemon/authcheck.h"
#include "daemon/iptable.h"
#include "auth/accounts.h"
#include "dns/cache.h"
#include "dns/dns.h"
#include "filter/ban.h"
#include "filter/dnsbl.h"
#include "filter/ratelimit.h"
#include "lib/file.h"
#include "lib/log.h"
#include "lib/pool.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "net/listen.h"
#include "queue/spool.h"
#include "smtp/server.h"
#include "store/dbmem.h"
#include "store/mailbox.h"
#include "store/maildir.h"
#include "store/quota.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#define GREET_PASS_TTL (24 * 3600)
/* Unknown recipients one session may try before it is cut off (guessing). */
#define MAX_BAD_RCPTS 20

struct smtpd {
	struct worker *w;
	struct smtp_server_settings set[3];
	struct smtp_server_settings set_passed;	/* port 25 without the pause */
	struct smtp_hooks hooks;
	struct evconnlistener **listeners;
	struct pool *pool;
	struct accounts_watch *accounts;
	struct spool *spool;
	struct event *refresh_ev;
	struct conn *conns;
	unsigned int nconns, ntx;
	unsigned int max_per_ip;
	unsigned int greet_pause_ms;
	bool spoof_protection;
	bool quotas;
	uint64_t default_quota;		/* POSTFIX_MAILBOX_SIZE_LIMIT, 0 = none */
	uint64_t delivered, queued, rejected;
	/* per address: sessions, and when it passed the early-talker test */
	struct iptable ips;
	struct antispam *as;
	struct ratelimit *send_limit;	/* recipients per authenticated user */
	bool ban_refreshing;		/* a ban_refresh job is out */
	bool trim_due;			/* sessions came since the last trim */
	char *incoming_dir;
};

struct rcpt {
	char *address;				/* as accepted, lower-case */
	struct accounts_resolution res;
};

struct conn {
	struct smtpd *d;
	struct smtp_session *s;
	enum listener_kind kind;
	struct ip_entry *ipe;
	unsigned int bad_rcpts;
	/* transaction */
	struct accounts *acc;
	struct rcpt *rcpts;
	size_t nrcpts;
	struct delivery *dlv;
	struct timespec tx_start;
	/* SPF of the transaction, from its first RCPT (antispam_spf_rcpt) */
	bool spf_done;
	struct spf_outcome spf;
	struct antispam_reply spf_refusal;	/* code 0 = none */
	struct dnsbl_query *dnsbl;
	struct conn *prev, *next;
};

static struct smtpd *smtpd;

static void
tx_clear(struct conn *c)
{
	for (size_t i = 0; i < c->nrcpts; i++) {
		free(c->rcpts[i].address);
		accounts_resolution_free(&c->rcpts[i].res);
	}
	x_free(&c->rcpts);
	c->nrcpts = 0;
	if (c->spf_done) {
		spf_outcome_free(&c->spf);
		c->spf_done = false;
	}
	memset(&c->spf_refusal, 0, sizeof(c->spf_refusal));
	if (c->dlv != NULL) {
		delivery_abort(c->dlv);
		c->dlv = NULL;
	}
	if (c->acc != NULL) {
		accounts_unref(c->acc);
		c->acc = NULL;
		c->d->ntx--;
	}
}

/* ---- hooks ------------------------------------------------------------ */

static void
dnsbl_done(const struct dnsbl_result *r, void *ctx)
{
	struct conn *c = ctx;
	struct smtp_session *s = c->s;

	c->dnsbl = NULL;
	log_info("sid=%s event=dnsbl ip=%s score=%d listed=%s refused_zones=%u "
	    "failed_zones=%u%s", smtp_session_id(s), c->ipe->ip, r->score,
	    r->first_listed[0] != '\0' ? r->first_listed : "-", r->refused,
	    r->errors, r->allowlisted ? " allowlisted=yes" : "");
	if (r->refused > 0)
		log_warn("sid=%s event=dnsbl_resolver_refused zones=%u "
		    "hint=\"a DNSBL answered 127.255.255.x: it refuses our "
		    "resolver (public or over quota); use a local resolver\"",
		    smtp_session_id(s), r->refused);
	if (r->reject) {
		c->d->rejected++;
		smtp_session_reply(s, 554, "5.7.1", "Service unavailable; "
		    "client [%s] blocked using %s", c->ipe->ip,
		    r->first_listed);
		return;
	}
	smtp_session_reply(s, 220, NULL, "ok");
}

static void
on_connect(struct smtp_session *s, void *ctx)
{
	struct conn *c = ctx;

	c->s = s;
	if (c->ipe->sessions > c->d->max_per_ip) {
		log_info("sid=%s event=refused ip=%s reason=too_many_sessions "
		    "limit=%u", smtp_session_id(s), c->ipe->ip, c->d->max_per_ip);
		smtp_session_reply(s, 421, "4.7.0", "Too many connections from "
		    "your address, try again later");
		return;
	}
	if (antispam_banned(c->d->as, c->ipe->ip, NULL)) {
		log_info("sid=%s event=refused ip=%s reason=banned",
		    smtp_session_id(s), c->ipe->ip);
		smtp_session_reply(s, 421, "4.7.0", "Too many failed logins "
		    "from your address, try again later");
		return;
	}
	log_info("sid=%s event=connect ip=%s service=%s", smtp_session_id(s),
	    c->ipe->ip, listener_info[c->kind].name);
	if (c->kind == LISTENER_SMTP && c->d->as->dnsbl_on) {
		struct msgauth_ip ip;

		/* All zones at once; the greeting waits for the answers. */
		if (msgauth_ip_parse(c->ipe->ip, &ip) == 0) {
			c->dnsbl = dnsbl_check_async(c->d->as->resolver,
			    &c->d->as->dnsbl, &ip, dnsbl_done, c);
			if (c->dnsbl != NULL)
				return;
		}
	}
	smtp_session_reply(s, 220, NULL, "ok");
}

static void
on_helo(struct smtp_session *s, const char *name, bool ehlo, void *ctx)
{
	struct conn *c = ctx;

	/* It waited for the greeting: spare it the pause for a day. */
	if (c->kind == LISTENER_SMTP && c->d->greet_pause_ms > 0)
		c->ipe->mark = time(NULL);
	smtp_session_reply(s, 250, NULL, "ok");
}

/* The answer to AUTH, once authcheck has the verdict. */
static void
auth_checked(const struct authcheck_result *r, void *ctx)
{
	struct conn *c = ctx;
	struct smtp_session *s = c->s;
	char esc[256];

	log_escape(esc, sizeof(esc), r->login, strlen(r->login));
	if (r->result == 1) {
		log_info("sid=%s event=auth result=ok login=%s ip=%s",
		    smtp_session_id(s), esc, c->ipe->ip);
		smtp_session_reply(s, 235, "2.7.0", "Authentication successful");
	} else {
		log_info("sid=%s event=auth result=failed login=%s ip=%s%s%s",
		    smtp_session_id(s), esc, c->ipe->ip,
		    r->error != NULL ? " error=" : "",
		    r->error != NULL ? r->error : "");
		if (r->result < 0)
			smtp_session_reply(s, 454, "4.7.0", "Temporary "
			    "authentication failure");
		else if (r->banned) {
			log_info("sid=%s event=banned ip=%s", smtp_session_id(s),
			    c->ipe->ip);
			smtp_session_reply(s, 421, "4.7.0", "Too many failed "
			    "logins from your address, try again later");
		} else
			smtp_session_reply(s, 535, "5.7.8", "Authentication "
			    "credentials invalid");
	}
}

static void
on_auth(struct smtp_session *s, const char *mech, const char *authzid,
    const char *login, char *password, void *ctx)
{
	struct conn *c = ctx;

	if (*authzid != '\0' && strcasecmp(authzid, login) != 0) {
		smtp_session_reply(s, 535, "5.7.8", "Authorization identity "
		    "must be the login");
		return;
	}
	authcheck_start(c->d->pool, c->d->w->base, c->d->accounts,
	    c->d->as->ban, c->ipe->ip, login, password, auth_checked, c);
}

static void
on_mail(struct smtp_session *s, const struct address *from, void *ctx)
{
	struct conn *c = ctx;
	struct smtpd *d = c->d;
	const char *login = smtp_session_auth_login(s);
	char *addr = address_to_string(from);
	struct accounts *acc = accounts_watch_get(d->accounts);

	str_lower(addr);
	if (login != NULL && d->spoof_protection && !from->null_path &&
	    !accounts_sender_allowed(acc, login, addr)) {
		log_info("sid=%s event=reject stage=mail from=<%s> login=%s "
		    "reason=spoof_protection", smtp_session_id(s), addr, login);
		smtp_session_reply(s, 553, "5.7.1", "<%s>: Sender address "
		    "rejected: not owned by user %s", addr, login);
		goto refuse;
	}
	/* setup email restrict add send: postfix-send-access.cf */
	if (login != NULL && accounts_send_restricted(acc, login)) {
		smtp_session_reply(s, 553, "5.7.1", "<%s>: Sender address "
		    "rejected: this account may not send", login);
		goto refuse;
	}
	if (!from->null_path && accounts_send_restricted(acc, addr)) {
		smtp_session_reply(s, 553, "5.7.1", "<%s>: Sender address "
		    "rejected: access denied", addr);
		goto refuse;
	}
	c->acc = acc;
	d->ntx++;
	clock_gettime(CLOCK_MONOTONIC, &c->tx_start);
	free(addr);
	smtp_session_reply(s, 250, "2.1.0", "Ok");
	return;
refuse:
	d->rejected++;
	accounts_unref(acc);
	free(addr);
}

static bool
is_local_domain(struct conn *c, const char *domain)
{
	const struct settings *st = c->d->w->settings;

	return accounts_is_local_domain(c->acc, domain) ||
	    strcasecmp(domain, st->domain) == 0 ||
	    strcasecmp(domain, st->hostname) == 0;
}

/*
 * Would the message (its declared SIZE, if any) take a local target over
 * its quota (dovecot-quotas.cf, else POSTFIX_MAILBOX_SIZE_LIMIT)? The usage
 * is the figure IMAP QUOTA shows (store/quota.h: the account's index plus
 * what was delivered since), so the two never disagree.
 */
static bool
over_quota(struct conn *c, struct smtp_session *s,
    const struct accounts_resolution *res)
{
	for (size_t i = 0; i < res->count; i++) {
		const struct accounts_target *t = &res->targets[i];
		uint64_t quota, used;
		struct store_usage u;
		char *err = NULL;

		if (t->kind != ACCOUNTS_TARGET_LOCAL)
			continue;
		quota = accounts_quota(c->acc, t->address);
		if (quota == 0)
			quota = c->d->default_quota;
		if (quota == 0)
			continue;
		if (store_maildir_usage(t->maildir, &u, &err) < 0) {
			/* unreadable: let delivery decide */
			log_warn("sid=%s event=quota_usage_failed to=<%s> error=\"%s\"",
			    smtp_session_id(s), t->address, err);
			free(err);
			continue;
		}
		used = u.bytes;
		if (used + smtp_session_declared_size(s) > quota) {
			log_info("sid=%s event=reject stage=rcpt to=<%s> "
			    "reason=quota used=%llu quota=%llu",
			    smtp_session_id(s), t->address,
			    (unsigned long long)used, (unsigned long long)quota);
			return true;
		}
	}
	return false;
}

/*
 * The RCPT checks that ask DNS or SQLite, on a pool thread: SPF once per
 * transaction (its first RCPT; policyd-spf's place in docker-mailserver)
 * and greylisting per recipient.
 */
struct rcpt_job {
	struct conn *c;
	struct rcpt r;
	char *sender, *helo;
	char ip[64];
	bool do_spf;			/* evaluate SPF now */
	bool have_spf;			/* spf holds the transaction's result */
	struct spf_outcome spf;
	struct antispam_reply refusal;
	bool do_grey;
	int verdict;
	unsigned int wait;
};

static void
rcpt_work(void *arg)
{
	struct rcpt_job *j = arg;
	struct antispam *as = j->c->d->as;

	if (j->do_spf) {
		antispam_spf_rcpt(as, j->ip, j->helo, j->sender, &j->spf,
		    &j->refusal);
		j->have_spf = true;
	}
	if (j->do_grey && j->refusal.code == 0)
		j->verdict = antispam_greylist(as, j->ip, j->sender, j->r.address,
		    j->have_spf ? &j->spf : NULL, &j->wait);
}

static void
rcpt_refuse_spf(struct conn *c, struct smtp_session *s, const char *addr)
{
	log_info("sid=%s event=reject stage=rcpt to=<%s> ip=%s reason=spf "
	    "spf=%s domain=%s", smtp_session_id(s), addr, c->ipe->ip,
	    spf_result_name(c->spf.result), c->spf.domain);
	c->d->rejected++;
	smtp_session_reply(s, c->spf_refusal.code, c->spf_refusal.enhanced, "%s",
	    c->spf_refusal.text);
}

static void
rcpt_done(void *arg)
{
	struct rcpt_job *j = arg;
	struct conn *c = j->c;
	struct smtp_session *s = c->s;

	if (j->do_spf) {
		c->spf = j->spf;		/* the transaction keeps it */
		c->spf_done = true;
		c->spf_refusal = j->refusal;
		j->have_spf = false;
		log_debug("sid=%s event=spf_rcpt ip=%s from=<%s> spf=%s domain=%s",
		    smtp_session_id(s), j->ip, j->sender,
		    spf_result_name(c->spf.result), c->spf.domain);
	}
	if (c->spf_refusal.code != 0) {
		rcpt_refuse_spf(c, s, j->r.address);
		free(j->r.address);
		accounts_resolution_free(&j->r.res);
	} else if (j->verdict == 1) {
		log_info("sid=%s event=greylisted ip=%s from=<%s> to=<%s> "
		    "wait=%us", smtp_session_id(s), j->ip, j->sender,
		    j->r.address, j->wait);
		smtp_session_reply(s, 451, "4.7.1", "<%s>: Recipient address "
		    "rejected: %s", j->r.address, c->d->as->postgrey_text);
		free(j->r.address);
		accounts_resolution_free(&j->r.res);
	} else {
		c->rcpts = xreallocarray(c->rcpts, c->nrcpts + 1,
		    sizeof(*c->rcpts));
		c->rcpts[c->nrcpts++] = j->r;
		smtp_session_reply(s, 250, "2.1.5", "Ok");
	}
	if (j->have_spf)
		spf_outcome_free(&j->spf);
	free(j->sender);
	free(j->helo);
	free(j);
}

static void
on_rcpt(struct smtp_session *s, const struct address *to, void *ctx)
{
	struct conn *c = ctx;
	struct smtpd *d = c->d;
	const struct settings *st = d->w->settings;
	char *addr;
	struct rcpt r;
	const char *err = NULL;
	int res;

	if (*to->domain == '\0')	/* RCPT TO:<Postmaster> (RFC 5321 4.5.1) */
		addr = xasprintf("postmaster@%s", st->domain);
	else
		addr = address_to_string(to);
	str_lower(addr);
	memset(&r, 0, sizeof(r));
	if (!is_local_domain(c, strrchr(addr, '@') + 1) &&
	    smtp_session_auth_login(s) == NULL) {
		log_info("sid=%s event=reject stage=rcpt to=<%s> ip=%s "
		    "reason=relay_denied", smtp_session_id(s), addr, c->ipe->ip);
		smtp_session_reply(s, 554, "5.7.1", "<%s>: Relay access denied",
		    addr);
		goto refuse;
	}
	res = accounts_resolve(c->acc, addr, &r.res, &err);
	if (res == 0 && strncmp(addr, "postmaster@", 11) == 0) {
		/* RFC 5321 4.5.1: postmaster must always be accepted. */
		const char *pm = config_str(st->cfg, "POSTMASTER_ADDRESS");

		accounts_resolution_free(&r.res);
		if (*pm != '\0')
			res = accounts_resolve(c->acc, pm, &r.res, &err);
	}
	if (res == 0) {
		log_info("sid=%s event=reject stage=rcpt to=<%s> "
		    "reason=unknown_user", smtp_session_id(s), addr);
		if (++c->bad_rcpts > MAX_BAD_RCPTS) {
			/* A directory harvest: answer no more guesses. */
			log_info("sid=%s event=disconnect_harvest ip=%s "
			    "unknown=%u", smtp_session_id(s), c->ipe->ip,
			    c->bad_rcpts);
			smtp_session_reply(s, 421, "4.7.0", "Too many unknown "
			    "recipients, closing connection");
		} else {
			smtp_session_reply(s, 550, "5.1.1", "<%s>: Recipient "
			    "address rejected: User unknown", addr);
		}
		goto refuse;
	}
	if (res < 0) {
		log_warn("sid=%s event=reject stage=rcpt to=<%s> error=\"%s\"",
		    smtp_session_id(s), addr, err);
		smtp_session_reply(s, 550, "5.4.6", "<%s>: Alias expansion "
		    "failed: %s", addr, err);
		goto refuse;
	}
	/* setup email restrict add receive: postfix-receive-access.cf */
	if (accounts_receive_restricted(c->acc, addr)) {
		smtp_session_reply(s, 550, "5.7.1", "<%s>: Recipient address "
		    "rejected: access denied", addr);
		goto refuse;
	}
	if (d->quotas && over_quota(c, s, &r.res)) {
		smtp_session_reply(s, 552, "5.2.2", "<%s>: Mailbox is full", addr);
		goto refuse;
	}
	r.address = addr;
	if (d->send_limit != NULL && smtp_session_auth_login(s) != NULL) {
		unsigned int retry = 0;

		/* A stolen password must not become a spam cannon. */
		if (ratelimit_take(d->send_limit, smtp_session_auth_login(s), 1,
		    time(NULL), &retry) == 0) {
			log_info("sid=%s event=reject stage=rcpt to=<%s> login=%s "
			    "reason=send_limit retry_after=%us",
			    smtp_session_id(s), addr, smtp_session_auth_login(s),
			    retry);
			smtp_session_reply(s, 450, "4.7.1", "<%s>: Sending rate "
			    "limit exceeded, try again in %u seconds", addr,
			    retry);
			goto refuse;
		}
	}
	if (smtp_session_auth_login(s) == NULL && c->spf_refusal.code != 0) {
		rcpt_refuse_spf(c, s, addr);	/* the transaction's SPF said so */
		goto refuse_quiet;
	}
	if (smtp_session_auth_login(s) == NULL &&
	    ((antispam_spf_at_rcpt(d->as) && !c->spf_done) ||
	    d->as->greylist_on)) {
		struct rcpt_job *j = xcalloc(1, sizeof(*j));

		j->c = c;
		j->r = r;
		j->sender = address_to_string(smtp_session_mail_from(s));
		str_copy(j->ip, sizeof(j->ip), c->ipe->ip);
		j->helo = smtp_session_helo(s) != NULL ?
		    xstrdup(smtp_session_helo(s)) : NULL;
		j->do_spf = antispam_spf_at_rcpt(d->as) && !c->spf_done;
		if (c->spf_done) {
			spf_outcome_copy(&j->spf, &c->spf);
			j->have_spf = true;
		}
		j->do_grey = d->as->greylist_on;
		pool_submit(d->pool, rcpt_work, rcpt_done, j);
		return;
	}
	c->rcpts = xreallocarray(c->rcpts, c->nrcpts + 1, sizeof(*c->rcpts));
	c->rcpts[c->nrcpts++] = r;
	smtp_session_reply(s, 250, "2.1.5", "Ok");
	return;
refuse:
	d->rejected++;
refuse_quiet:
	accounts_resolution_free(&r.res);
	free(addr);
}

static const char *
protocol_name(struct smtp_session *s)
{
	bool tls = smtp_session_tls(s), auth = smtp_session_auth_login(s) != NULL;

	if (!smtp_session_esmtp(s))
		return "SMTP";
	/* RFC 3848 */
	return auth ? (tls ? "ESMTPSA" : "ESMTPA") : (tls ? "ESMTPS" : "ESMTP");
}

static void
on_data_begin(struct smtp_session *s, void *ctx)
{
	struct conn *c = ctx;
	struct smtpd *d = c->d;
	const struct settings *st = d->w->settings;
	const char **laddr = NULL, **lmd = NULL, **remote = NULL;
	size_t nl = 0, nr = 0;
	struct delivery_params p;
	char *sender = address_to_string(smtp_session_mail_from(s));
	char *err = NULL;

	/* Every distinct final target once: one file, many links. */
	for (size_t i = 0; i < c->nrcpts; i++) {
		for (size_t k = 0; k < c->rcpts[i].res.count; k++) {
			const struct accounts_target *t = &c->rcpts[i].res.targets[k];
			bool seen = false;

			if (t->kind == ACCOUNTS_TARGET_LOCAL) {
				for (size_t j = 0; j < nl; j++)
					seen |= strcmp(laddr[j], t->address) == 0;
				if (seen)
					continue;
				laddr = xreallocarray(laddr, nl + 1, sizeof(*laddr));
				lmd = xreallocarray(lmd, nl + 1, sizeof(*lmd));
				laddr[nl] = t->address;
				lmd[nl++] = t->maildir;
			} else if (t->kind == ACCOUNTS_TARGET_REMOTE) {
				for (size_t j = 0; j < nr; j++)
					seen |= strcmp(remote[j], t->address) == 0;
				if (seen)
					continue;
				remote = xreallocarray(remote, nr + 1,
				    sizeof(*remote));
				remote[nr++] = t->address;
			}
		}
	}
	memset(&p, 0, sizeof(p));
	p.hostname = st->hostname;
	p.spool = d->spool;
	p.incoming_dir = d->incoming_dir;
	p.sender = sender;
	p.auth_login = smtp_session_auth_login(s);
	p.local_addrs = laddr;
	p.local_maildirs = lmd;
	p.nlocal = nl;
	p.remote = remote;
	p.nremote = nr;
	p.body_type = smtp_session_body_type(s);
	p.smtputf8 = smtp_session_smtputf8(s);
	p.helo = smtp_session_helo(s);
	p.client_ip = c->ipe->ip;
	p.protocol = protocol_name(s);
	p.tls_version = smtp_session_tls_version(s);
	p.tls_cipher = smtp_session_tls_cipher(s);
	p.rcpt_for = c->nrcpts == 1 ? c->rcpts[0].address : NULL;
	p.hide_client = p.auth_login != NULL;
	p.add_missing_fields = p.auth_login != NULL;
	c->dlv = delivery_begin(&p, &err);
	free(laddr);
	free(lmd);
	free(remote);
	free(sender);
	if (c->dlv == NULL) {
		log_error("sid=%s event=spool_failed error=\"%s\"",
		    smtp_session_id(s), err);
		free(err);
		smtp_session_reply(s, 451, "4.3.0", "Local error in processing, "
		    "try again later");
		return;
	}
	smtp_session_reply(s, SMTP_REPLY_DATA_GO, NULL, "go");
}

static int
on_data_chunk(struct smtp_session *s, const unsigned char *data, size_t len,
    void *ctx)
{
	struct conn *c = ctx;

	return delivery_write(c->dlv, data, len);
}

struct commit_job {
	struct conn *c;
	struct delivery *dlv;
	int result;
	const char *error;
	/* for the checks, copied on the loop */
	struct antispam_request req;
	char *helo, *sender, *login, *account;
	const char **rcpts;
	struct antispam_result ar;
	bool checked;
	bool have_spf;
	struct spf_outcome spf;		/* from RCPT */
};

static void
commit_work(void *arg)
{
	struct commit_job *j = arg;
	struct delivery_extra x;
	const char *msg;
	size_t len;

	memset(&x, 0, sizeof(x));
	if (delivery_message(j->dlv, &msg, &len, &j->error) < 0) {
		j->result = -1;
		return;
	}
	j->req.msg = msg;
	j->req.len = len;
	antispam_message(j->c->d->as, &j->req, &j->ar);
	j->checked = true;
	if (j->ar.action == ANTISPAM_REJECT || j->ar.action == ANTISPAM_TEMPFAIL) {
		j->result = 1;
		return;
	}
	x.fields[0] = j->ar.received_spf;
	x.fields[1] = j->ar.authentication_results;
	if (j->ar.action == ANTISPAM_JUNK)
		x.folder = "Junk";
	x.seen = j->ar.seen;
	if (j->ar.mark) {
		x.mark = &j->c->d->as->mark;
		x.verdict = &j->ar.verdict;
	}
	j->result = delivery_commit(j->dlv, &x, &j->error);
}

static void
commit_job_free(struct commit_job *j)
{
	antispam_result_free(&j->ar);
	if (j->have_spf)
		spf_outcome_free(&j->spf);
	free(j->helo);
	free(j->sender);
	free(j->login);
	free(j->account);
	free(j->rcpts);
	free(j);
}

static void
log_summary(struct conn *c, struct delivery *dlv, const char *status,
    const char *error)
{
	struct smtp_session *s = c->s;
	struct timespec now;
	double delay;
	char *from = address_to_string(smtp_session_mail_from(s));

	clock_gettime(CLOCK_MONOTONIC, &now);
	delay = (double)(now.tv_sec - c->tx_start.tv_sec) +
	    (double)(now.tv_nsec - c->tx_start.tv_nsec) / 1e9;
	for (size_t i = 0; i < c->nrcpts; i++) {
		const struct accounts_resolution *res = &c->rcpts[i].res;

		for (size_t k = 0; k < res->count; k++) {
			const struct accounts_target *t = &res->targets[k];
			bool local = t->kind == ACCOUNTS_TARGET_LOCAL;
			bool discard = t->kind == ACCOUNTS_TARGET_DISCARD;

			log_info("sid=%s msgid=%s from=<%s> to=<%s>%s%s%s "
			    "status=%s relay=%s delay=%.3fs size=%llu%s%s%s",
			    smtp_session_id(s), delivery_id(dlv), from,
			    t->address, strcmp(t->address, c->rcpts[i].address)
			    != 0 ? " orig_to=<" : "", strcmp(t->address,
			    c->rcpts[i].address) != 0 ? c->rcpts[i].address : "",
			    strcmp(t->address, c->rcpts[i].address) != 0 ? ">" : "",
			    strcmp(status, "ok") != 0 ? status : discard ?
			    "discarded" : local ? "delivered" : "queued",
			    discard ? "none" : local ? "maildir" : "queue",
			    delay, (unsigned long long)delivery_size(dlv),
			    error != NULL ? " error=\"" : "",
			    error != NULL ? error : "", error != NULL ? "\"" : "");
			if (strcmp(status, "ok") == 0 && !discard) {
				if (local)
					c->d->delivered++;
				else
					c->d->queued++;
			}
		}
	}
	free(from);
}

static void
commit_done(void *arg)
{
	struct commit_job *j = arg;
	struct conn *c = j->c;

	if (j->checked && j->ar.log[0] != '\0')
		log_info("sid=%s msgid=%s event=checks%s", smtp_session_id(c->s),
		    delivery_id(j->dlv), j->ar.log);
	if (j->result == 1) {
		log_summary(c, j->dlv, j->ar.action == ANTISPAM_REJECT ?
		    "rejected" : "deferred", j->ar.text);
		c->d->rejected++;
		smtp_session_reply(c->s, j->ar.code, j->ar.enhanced, "%s",
		    j->ar.text);
		delivery_abort(j->dlv);
	} else if (j->result == 0) {
		log_summary(c, j->dlv, "ok", NULL);
		smtp_session_reply(c->s, 250, "2.0.0", "Ok: queued as %s",
		    delivery_id(j->dlv));
		delivery_free(j->dlv);
	} else {
		log_summary(c, j->dlv, "deferred", j->error);
		smtp_session_reply(c->s, 451, "4.3.0", "Local error in "
		    "processing, try again later");
		delivery_abort(j->dlv);
	}
	tx_clear(c);
	commit_job_free(j);
}

static void
on_data_end(struct smtp_session *s, void *ctx)
{
	struct conn *c = ctx;
	struct commit_job *j = xcalloc(1, sizeof(*j));
	size_t nlocal = 0;

	j->c = c;
	j->dlv = c->dlv;
	c->dlv = NULL;
	j->helo = smtp_session_helo(s) != NULL ?
	    xstrdup(smtp_session_helo(s)) : NULL;
	j->sender = address_to_string(smtp_session_mail_from(s));
	j->login = smtp_session_auth_login(s) != NULL ?
	    xstrdup(smtp_session_auth_login(s)) : NULL;
	j->rcpts = xcalloc(c->nrcpts + 1, sizeof(*j->rcpts));
	for (size_t i = 0; i < c->nrcpts; i++) {
		const struct accounts_resolution *res = &c->rcpts[i].res;

		j->rcpts[i] = c->rcpts[i].address;
		/* One local account: its own junk filter store. */
		for (size_t k = 0; k < res->count; k++) {
			if (res->targets[k].kind != ACCOUNTS_TARGET_LOCAL)
				continue;
			if (j->account == NULL && nlocal == 0)
				j->account = xstrdup(res->targets[k].address);
			nlocal++;
		}
	}
	if (nlocal != 1)
		x_free(&j->account);
	j->req.client_ip = c->ipe->ip;
	j->req.helo = j->helo;
	j->req.sender = j->sender;
	j->req.recipients = j->rcpts;
	j->req.nrecipients = c->nrcpts;
	j->req.account = j->account;
	j->req.auth_login = j->login;
	j->req.queue_id = delivery_id(j->dlv);
	if (c->spf_done) {
		spf_outcome_copy(&j->spf, &c->spf);
		j->have_spf = true;
		j->req.spf = &j->spf;
	}
	pool_submit(c->d->pool, commit_work, commit_done, j);
}

static void
on_tx_abort(struct smtp_session *s, const char *reason, void *ctx)
{
	struct conn *c = ctx;

	if (c->dlv != NULL)
		log_info("sid=%s event=transaction_aborted reason=\"%s\"",
		    smtp_session_id(s), reason);
	tx_clear(c);
}

static void
maybe_exit(struct smtpd *d)
{
	if (d->w->stopping && d->nconns == 0 && pool_pending(d->pool) == 0)
		worker_exit(d->w);
}

static void
on_disconnect(struct smtp_session *s, void *ctx)
{
	struct conn *c = ctx;
	struct smtpd *d = c->d;

	log_info("sid=%s event=disconnect ip=%s", smtp_session_id(s),
	    c->ipe->ip);
	tx_clear(c);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		d->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	iptable_release(&d->ips, c->ipe);
	d->nconns--;
	free(c);
	maybe_exit(d);
}

/* ---- listening -------------------------------------------------------- */

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct worker_listener *wl = arg;
	struct smtpd *d = smtpd;
	struct conn *c;
	struct bufferevent *bev;
	const struct smtp_server_settings *set;
	char ip[64];

	if (d->w->stopping) {
		close(fd);
		return;
	}
	sockaddr_ip_text(sa, ip, sizeof(ip));
	c = xcalloc(1, sizeof(*c));
	c->d = d;
	c->kind = wl->kind;
	c->ipe = iptable_get(&d->ips, ip);
	c->ipe->sessions++;
	if (wl->kind == LISTENER_SUBMISSIONS) {
		SSL *ssl;

		if (d->w->tls == NULL) {
			close(fd);
			iptable_release(&d->ips, c->ipe);
			free(c);
			return;
		}
		ssl = SSL_new(d->w->tls);
		bev = bufferevent_openssl_socket_new(d->w->base, fd, ssl,
		    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		set = &d->set[SMTP_PORT_SUBMISSIONS];
	} else {
		bev = bufferevent_socket_new(d->w->base, fd,
		    BEV_OPT_CLOSE_ON_FREE);
		set = &d->set[wl->kind == LISTENER_SMTP ? SMTP_PORT_MTA :
		    SMTP_PORT_SUBMISSION];
	}
	c->next = d->conns;
	if (d->conns != NULL)
		d->conns->prev = c;
	d->conns = c;
	d->nconns++;
	d->trim_due = true;
	/* Passed the early-talker test lately: no pause again. */
	if (wl->kind == LISTENER_SMTP && d->greet_pause_ms > 0 &&
	    c->ipe->mark + GREET_PASS_TTL > time(NULL))
		set = &d->set_passed;
	c->s = smtp_session_new(d->w->base, bev, set, &d->hooks, c, sa,
	    (socklen_t)salen);
}

static void
expire_work(void *arg)
{
	struct smtpd *d = arg;

	antispam_expire(d->as);
}

static void
expire_done(void *arg)
{
	maybe_exit(arg);	/* a stop may have waited for this job */
}

/* Every second, off the loop: bans made or lifted by the imap worker or
 * `tegami fail2ban`, and Postgrey's whitelist files. */
static void
ban_refresh_work(void *arg)
{
	struct smtpd *d = arg;
	char *err = NULL;

	if (d->as->ban != NULL && ban_refresh(d->as->ban, time(NULL), &err) < 0) {
		log_warn("event=ban_refresh_failed error=\"%s\"", err);
		free(err);
	}
	antispam_refresh_files(d->as);
}

static void
ban_refresh_done(void *arg)
{
	struct smtpd *d = arg;

	d->ban_refreshing = false;
	maybe_exit(d);
}

static void
refresh_cb(evutil_socket_t fd, short what, void *arg)
{
	struct smtpd *d = arg;
	static unsigned int ticks;

	accounts_watch_refresh(d->accounts, false);
	if ((d->as->ban != NULL || d->as->greylist_on) && !d->ban_refreshing &&
	    !d->w->stopping) {
		d->ban_refreshing = true;
		pool_submit(d->pool, ban_refresh_work, ban_refresh_done, d);
	}
	if (++ticks % 60 == 0)
		iptable_expire(&d->ips, time(NULL) - GREET_PASS_TTL);
	/* Old greylist entries go once an hour (the first a minute in). */
	if (d->as->greylist_on && ticks % 3600 == 60 && !d->w->stopping)
		pool_submit(d->pool, expire_work, expire_done, d);
	/* A burst is over (no session for a second): give the pages freed
	 * by its sessions and pool threads back to the system (bench/memory:
	 * the pool threads' malloc arenas went from 9.2 to 5.2 MB three
	 * seconds after its load). Never under load, where the next session
	 * would fault the pages in again. */
	if (d->trim_due && d->nconns == 0 && d->ntx == 0) {
		d->trim_due = false;
		store_dbmem_trim();
		malloc_trim(0);
	}
}

static void
smtpd_stop(struct worker *w)
{
	struct smtpd *d = w->ctx;

	for (size_t i = 0; i < w->nlisteners; i++)
		if (d->listeners[i] != NULL)
			evconnlistener_disable(d->listeners[i]);
	for (struct conn *c = d->conns, *next; c != NULL; c = next) {
		next = c->next;
		smtp_session_shutdown(c->s);
	}
	maybe_exit(d);
}

static void
smtpd_status(struct worker *w, char *out, size_t outsize)
{
	struct smtpd *d = w->ctx;
	struct accounts *acc = accounts_watch_get(d->accounts);

	struct dns_cache_stats cs;
	int n;

	n = snprintf(out, outsize, "connections=%u transactions=%u accounts=%zu "
	    "delivered=%llu queued=%llu rejected=%llu", d->nconns, d->ntx,
	    accounts_count(acc), (unsigned long long)d->delivered,
	    (unsigned long long)d->queued, (unsigned long long)d->rejected);
	accounts_unref(acc);
	if (n > 0 && (size_t)n < outsize && d->as->resolver != NULL &&
	    dns_resolver_cache_stats(d->as->resolver, &cs))
		snprintf(out + n, outsize - (size_t)n, " dns_cache_hits=%llu "
		    "dns_cache_misses=%llu dns_cache_entries=%zu",
		    (unsigned long long)cs.hits, (unsigned long long)cs.misses,
		    cs.entries);
}

static void
smtpd_tls_changed(struct worker *w)
{
	struct smtpd *d = w->ctx;

	for (int i = 0; i < 3; i++)
		d->set[i].ssl_ctx = w->tls;
	d->set_passed.ssl_ctx = w->tls;
}

int
smtpd_init(struct worker *w)
{
	struct smtpd *d = xcalloc(1, sizeof(*d));
	const struct config *cfg = w->settings->cfg;
	struct accounts_settings as;
	const char *extra[3] = { w->settings->domain, w->settings->hostname,
	    NULL };
	struct timeval sec = { 1, 0 };
	char *err = NULL;

	smtpd = d;
	d->w = w;
	/* before any SQLite call: the filters' page caches are long-lived
	   and filled from every pool thread; kept out of malloc's
	   per-thread arenas they cannot pin pages there that a burst's
	   short-lived allocations freed (the measured effect on the peak
	   was within the runs' spread: docs/benchmarks.md) */
	(void)store_dbmem_install();
	(void)store_sqlite_noatime();
	w->ctx = d;
	w->stop = smtpd_stop;
	w->status = smtpd_status;
	w->tls_changed = smtpd_tls_changed;
	d->max_per_ip = (unsigned int)config_num(cfg, "SMTP_MAX_SESSIONS_PER_IP");
	d->greet_pause_ms = (unsigned int)config_num(cfg, "SMTP_GREET_PAUSE") *
	    1000;
	d->spoof_protection = config_bool(cfg, "SPOOF_PROTECTION");
	d->quotas = config_bool(cfg, "ENABLE_QUOTAS");
	d->default_quota = config_num(cfg, "POSTFIX_MAILBOX_SIZE_LIMIT");
	for (int i = 0; i < 3; i++) {
		struct smtp_server_settings *s = &d->set[i];

		s->hostname = w->settings->hostname;
		s->port_kind = (enum smtp_port_kind)i;
		s->max_message_size = config_num(cfg, "POSTFIX_MESSAGE_SIZE_LIMIT");
		s->max_recipients = (unsigned int)config_num(cfg,
		    "SMTP_MAX_RECIPIENTS");
		s->cmd_timeout_ms = (unsigned int)config_num(cfg,
		    "SMTP_TIMEOUT") * 1000;
		s->greet_pause_ms = i == SMTP_PORT_MTA ? d->greet_pause_ms : 0;
		s->auth_enabled = i != SMTP_PORT_MTA;
		s->ssl_ctx = w->tls;
	}
	d->set_passed = d->set[SMTP_PORT_MTA];
	d->set_passed.greet_pause_ms = 0;
	d->hooks.on_connect = on_connect;
	d->hooks.on_helo = on_helo;
	d->hooks.on_auth = on_auth;
	d->hooks.on_mail = on_mail;
	d->hooks.on_rcpt = on_rcpt;
	d->hooks.on_data_begin = on_data_begin;
	d->hooks.on_data_chunk = on_data_chunk;
	d->hooks.on_data_end = on_data_end;
	d->hooks.on_tx_abort = on_tx_abort;
	d->hooks.on_disconnect = on_disconnect;
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
	d->spool = spool_open(w->settings->state_dir, &err);
	if (d->spool == NULL) {
		log_error("event=queue_open_failed error=\"%s\"", err);
		free(err);
		return -1;
	}
	d->incoming_dir = xasprintf("%s/incoming", w->settings->tegami_state);
	if (mkdir_p(d->incoming_dir, 0700) < 0) {
		log_error("event=incoming_dir_failed path=%s error=\"%s\"",
		    d->incoming_dir, strerror(errno));
		return -1;
	}
	if (antispam_open(w->settings, w->base, &d->as, &err) < 0) {
		log_error("event=antispam_config_failed error=\"%s\"", err);
		free(err);
		return -1;
	}
	log_info("event=antispam spf=%d dkim=%d dmarc=%d dnsbl=%d greylist=%d "
	    "fail2ban=%d junk=%d clamav=%d rspamd=%d", d->as->spf, d->as->dkim,
	    d->as->dmarc, d->as->dnsbl_on, d->as->greylist_on, d->as->ban_on,
	    d->as->junk_on, d->as->clamav_on, d->as->rspamd_on);
	if (config_num(cfg, "TEGAMI_SEND_LIMIT") > 0)
		d->send_limit = ratelimit_create((unsigned int)config_num(cfg,
		    "TEGAMI_SEND_LIMIT"), (unsigned int)config_num(cfg,
		    "TEGAMI_SEND_LIMIT_WINDOW"), 100000);
	d->pool = pool_create(w->base, (unsigned int)config_num(cfg,
	    "TEGAMI_DELIVERY_THREADS"));
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
