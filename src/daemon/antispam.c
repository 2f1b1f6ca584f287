#include "daemon/antispam.h"
#include "daemon/settings.h"
#include "dns/dns.h"
#include "filter/ban.h"
#include "filter/bayes.h"
#include "filter/clamd.h"
#include "filter/greylist.h"
#include "filter/rspamd.h"
#include "lib/file.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "msgauth/check.h"
#include "msgauth/dns_resolver.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct antispam_private {
	struct msgauth_dns dns;
	struct psl *psl;
	pthread_mutex_t gl_lock;
	struct greylist *gl;
	pthread_mutex_t bayes_lock;
	struct bayes *bayes;
	char *bayes_path;
	double spam_prob;
	char *wl_clients, *wl_recipients;	/* Postgrey's whitelist files */
	struct file_stamp wl_clients_st, wl_recipients_st;
	struct clamd_settings clamd;
	struct rspamd_settings rspamd;
	const char *hostname;
	char *subject;
};

char *
settings_ban_path(const struct settings *st)
{
	return xasprintf("%s/fail2ban.db", st->tegami_state);
}

char *
settings_bayes_path(const struct settings *st)
{
	return xasprintf("%s/bayes.db", st->tegami_state);
}

int
antispam_parse_duration(const char *s, unsigned int *seconds_r)
{
	char *end;
	unsigned long long v, mul = 1;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (end == s || errno != 0)
		return -1;
	switch (*end) {
	case '\0': case 's': mul = 1; break;
	case 'm': mul = 60; break;
	case 'h': mul = 3600; break;
	case 'd': mul = 86400; break;
	case 'w': mul = 7 * 86400; break;
	default: return -1;
	}
	if (*end != '\0' && end[1] != '\0')
		return -1;
	if (v == 0 || v * mul > 10ULL * 365 * 86400)
		return -1;
	*seconds_r = (unsigned int)(v * mul);
	return 0;
}

static int
open_resolver(const struct settings *st, struct event_base *base,
    struct antispam *as, char **error_r)
{
	struct dns_config dc;

	memset(&dc, 0, sizeof(dc));
	dc.cache_bytes = (size_t)config_num(st->cfg, "TEGAMI_DNS_CACHE_SIZE");
	dc.no_cache = dc.cache_bytes == 0;
	as->resolver = settings_dns_resolver(st, base, &dc, error_r);
	return as->resolver == NULL ? -1 : 0;
}

int
antispam_ban_settings(const struct settings *st, struct ban_settings *bs,
    char **error_r)
{
	*bs = ban_default_settings;
	bs->maxretry = (unsigned int)config_num(st->cfg, "FAIL2BAN_MAXRETRY");
	if (antispam_parse_duration(config_str(st->cfg, "FAIL2BAN_FINDTIME"),
	    &bs->findtime) < 0) {
		*error_r = xstrdup("FAIL2BAN_FINDTIME: not a duration "
		    "(600, 10m, 1h, 1d, 1w)");
		return -1;
	}
	if (antispam_parse_duration(config_str(st->cfg, "FAIL2BAN_BANTIME"),
	    &bs->bantime) < 0) {
		*error_r = xstrdup("FAIL2BAN_BANTIME: not a duration "
		    "(600, 10m, 1h, 1d, 1w)");
		return -1;
	}
	return 0;
}

int
antispam_ban_open(const struct settings *st, struct ban **ban_r,
    char **error_r)
{
	struct ban_settings bs;
	char *path, *err = NULL;
	int r;

	*ban_r = NULL;
	if (!config_bool(st->cfg, "ENABLE_FAIL2BAN"))
		return 0;
	if (antispam_ban_settings(st, &bs, error_r) < 0)
		return -1;
	mkdir_p(st->tegami_state, 0700);
	path = settings_ban_path(st);
	r = ban_open(path, &bs, time(NULL), ban_r, &err);
	free(path);
	if (r < 0) {
		*error_r = xasprintf("ENABLE_FAIL2BAN: %s", err);
		free(err);
		return -1;
	}
	return 0;
}

int
antispam_open(const struct settings *st, struct event_base *base,
    struct antispam **as_r, char **error_r)
{
	const struct config *cfg = st->cfg;
	struct antispam *as = xcalloc(1, sizeof(*as));
	struct antispam_private *p = xcalloc(1, sizeof(*p));
	char *err = NULL, *path, *path2;

	as->priv = p;
	p->hostname = st->hostname;
	pthread_mutex_init(&p->gl_lock, NULL);
	pthread_mutex_init(&p->bayes_lock, NULL);
	as->spf = config_bool(cfg, "ENABLE_POLICYD_SPF");
	{
		const char *pol = config_str(cfg, "TEGAMI_SPF_REJECT");

		as->spf_reject = strcmp(pol, "off") == 0 ? ANTISPAM_SPF_REJECT_OFF :
		    strcmp(pol, "softfail") == 0 ? ANTISPAM_SPF_REJECT_SOFTFAIL :
		    ANTISPAM_SPF_REJECT_FAIL;
	}
	as->spf_permerror_reject = config_bool(cfg, "TEGAMI_SPF_PERMERROR_REJECT");
	as->spf_temperror_defer = config_bool(cfg, "TEGAMI_SPF_TEMPERROR_DEFER");
	as->dkim = config_bool(cfg, "ENABLE_OPENDKIM");
	as->dmarc = config_bool(cfg, "ENABLE_OPENDMARC");
	as->dnsbl_on = config_bool(cfg, "ENABLE_DNSBL");
	as->greylist_on = config_bool(cfg, "ENABLE_POSTGREY");
	as->ban_on = config_bool(cfg, "ENABLE_FAIL2BAN");
	as->junk_on = config_bool(cfg, "TEGAMI_JUNK_FILTER");
	as->clamav_on = config_bool(cfg, "ENABLE_CLAMAV");
	as->rspamd_on = config_bool(cfg, "ENABLE_RSPAMD");
	as->postgrey_text = config_str(cfg, "POSTGREY_TEXT");
	p->subject = xstrdup(config_str(cfg, "SPAM_SUBJECT"));
	as->mark.move_to_junk = config_bool(cfg, "MOVE_SPAM_TO_JUNK");
	as->mark.mark_read = config_bool(cfg, "MARK_SPAM_AS_READ");
	as->mark.subject_prefix = p->subject;
	mkdir_p(st->tegami_state, 0700);

	if ((as->spf || as->dkim || as->dmarc || as->dnsbl_on) &&
	    open_resolver(st, base, as, &err) < 0) {
		*error_r = xasprintf("TEGAMI_DNS_SERVERS: %s", err);
		goto fail;
	}
	if (as->resolver != NULL)
		msgauth_dns_resolver_init(&p->dns, as->resolver);
	if (as->dmarc) {
		const char *psl = config_str(cfg, "TEGAMI_PSL_FILE");

		if (psl_load(psl, &p->psl, &err) < 0) {
			*error_r = xasprintf("TEGAMI_PSL_FILE: %s (install the "
			    "publicsuffix package, or set ENABLE_OPENDMARC=0)",
			    err);
			goto fail;
		}
	}
	if (as->dnsbl_on) {
		const char *sites = config_str(cfg, "TEGAMI_DNSBL_SITES");

		if (dnsbl_list_parse(*sites != '\0' ? sites : dnsbl_dms_sites,
		    (int)config_num(cfg, "TEGAMI_DNSBL_THRESHOLD"),
		    DNSBL_DMS_ALLOW_THRESHOLD, &as->dnsbl, &err) < 0) {
			*error_r = xasprintf("TEGAMI_DNSBL_SITES: %s", err);
			goto fail;
		}
	}
	if (as->greylist_on) {
		struct greylist_settings gs;

		gs.delay = (unsigned int)config_num(cfg, "POSTGREY_DELAY");
		gs.max_age_days = (unsigned int)config_num(cfg,
		    "POSTGREY_MAX_AGE");
		gs.awl_clients = (unsigned int)config_num(cfg,
		    "POSTGREY_AUTO_WHITELIST_CLIENTS");
		if (greylist_open(st->tegami_state, &gs, &p->gl, &err) < 0) {
			*error_r = xasprintf("ENABLE_POSTGREY: %s", err);
			goto fail;
		}
		path = xasprintf("%s/whitelist_clients.local", st->config_dir);
		path2 = xasprintf("%s/whitelist_recipients", st->config_dir);
		p->wl_clients = path;
		p->wl_recipients = path2;
		file_stamp_get(path, &p->wl_clients_st);
		file_stamp_get(path2, &p->wl_recipients_st);
		if (greylist_load_whitelists(p->gl, path, path2, &err) < 0) {
			log_warn("event=greylist_whitelist_failed error=\"%s\"",
			    err);
			x_free(&err);
		}
	}
	if (antispam_ban_open(st, &as->ban, &err) < 0) {
		*error_r = err;
		err = NULL;
		goto fail;
	}
	p->bayes_path = settings_bayes_path(st);
	p->spam_prob = (double)config_num(cfg, "TEGAMI_JUNK_SPAM_PERCENT") /
	    100.0;
	p->clamd.address = config_str(cfg, "TEGAMI_CLAMD_SOCKET");
	p->clamd.max_size = config_num(cfg, "CLAMAV_MESSAGE_SIZE_LIMIT");
	p->rspamd.address = config_str(cfg, "TEGAMI_RSPAMD_ADDRESS");
	*as_r = as;
	return 0;
fail:
	free(err);
	antispam_close(&as);
	return -1;
}

void
antispam_close(struct antispam **asp)
{
	struct antispam *as = *asp;
	struct antispam_private *p;

	if (as == NULL)
		return;
	p = as->priv;
	dnsbl_list_free(&as->dnsbl);
	greylist_close(&p->gl);
	bayes_close(&p->bayes);
	ban_close(&as->ban);
	psl_free(&p->psl);
	dns_resolver_destroy(&as->resolver);
	pthread_mutex_destroy(&p->gl_lock);
	pthread_mutex_destroy(&p->bayes_lock);
	free(p->bayes_path);
	free(p->wl_clients);
	free(p->wl_recipients);
	free(p->subject);
	free(p);
	free(as);
	*asp = NULL;
}

bool
antispam_banned(struct antispam *as, const char *ip, time_t *until_r)
{
	return as->ban != NULL && ban_is_banned(as->ban, ip, time(NULL),
	    until_r);
}

bool
antispam_spf_at_rcpt(const struct antispam *as)
{
	return as->spf && as->resolver != NULL &&
	    (as->spf_reject != ANTISPAM_SPF_REJECT_OFF ||
	    as->spf_permerror_reject || as->spf_temperror_defer ||
	    as->greylist_on);
}

static bool
spf_refuses(const struct antispam *as, enum spf_result r)
{
	return (r == SPF_RESULT_FAIL && as->spf_reject != ANTISPAM_SPF_REJECT_OFF) ||
	    (r == SPF_RESULT_SOFTFAIL &&
	    as->spf_reject == ANTISPAM_SPF_REJECT_SOFTFAIL);
}

/* The refusal text: the domain's own explanation (exp=) when it gave one
 * (RFC 7208 section 8.4), else ours. */
static void
spf_refusal(const struct spf_outcome *o, const char *ip, const char *what,
    struct antispam_reply *r)
{
	r->code = 550;
	str_copy(r->enhanced, sizeof(r->enhanced), "5.7.23");
	if (o->explanation != NULL && o->explanation[0] != '\0') {
		snprintf(r->text, sizeof(r->text), "Message rejected due to SPF "
		    "%s: %.160s", spf_result_name(o->result), o->explanation);
		/* the domain's text, from DNS: one line of printable ASCII */
		for (char *c = r->text; *c != '\0'; c++)
			if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
				*c = '?';
	} else
		snprintf(r->text, sizeof(r->text), "Message rejected due to SPF "
		    "%s: %s is not allowed to send mail as %s %.100s",
		    spf_result_name(o->result), ip, what, o->domain);
}

int
antispam_spf_rcpt(struct antispam *as, const char *client_ip,
    const char *helo, const char *sender, struct spf_outcome *mfrom,
    struct antispam_reply *reply)
{
	struct antispam_private *p = as->priv;
	struct spf_request sr;
	struct spf_outcome ho;

	memset(mfrom, 0, sizeof(*mfrom));
	memset(reply, 0, sizeof(*reply));
	memset(&sr, 0, sizeof(sr));
	mfrom->result = SPF_RESULT_NONE;
	if (msgauth_ip_parse(client_ip, &sr.ip) < 0)
		return 0;
	sr.sender = sender;
	sr.helo = helo != NULL ? helo : "";
	sr.receiver = p->hostname;
	sr.now = time(NULL);
	/* HELO first, as policyd-spf does (HELO_reject = Fail) */
	if (as->spf_reject != ANTISPAM_SPF_REJECT_OFF && *sr.helo != '\0' &&
	    *sender != '\0') {
		memset(&ho, 0, sizeof(ho));
		spf_check_helo(&p->dns, &sr, &ho);
		log_debug("event=spf_helo ip=%s helo=%s spf=%s", client_ip, sr.helo,
		    spf_result_name(ho.result));
		if (spf_refuses(as, ho.result)) {
			spf_refusal(&ho, client_ip, "HELO", reply);
			*mfrom = ho;	/* what the log and nobody else sees */
			return 1;
		}
		spf_outcome_free(&ho);
	}
	spf_check_mailfrom(&p->dns, &sr, mfrom);
	if (spf_refuses(as, mfrom->result)) {
		spf_refusal(mfrom, client_ip, mfrom->identity == SPF_IDENTITY_HELO ?
		    "HELO" : "MAIL FROM", reply);
		return 1;
	}
	if (mfrom->result == SPF_RESULT_PERMERROR && as->spf_permerror_reject) {
		reply->code = 550;
		str_copy(reply->enhanced, sizeof(reply->enhanced), "5.7.24");
		snprintf(reply->text, sizeof(reply->text), "Message rejected due "
		    "to SPF permerror for %.100s: %.90s", mfrom->domain,
		    mfrom->problem);
		return 1;
	}
	if (mfrom->result == SPF_RESULT_TEMPERROR && as->spf_temperror_defer) {
		reply->code = 451;
		str_copy(reply->enhanced, sizeof(reply->enhanced), "4.7.24");
		snprintf(reply->text, sizeof(reply->text), "SPF temporary error "
		    "for %.100s, try again later", mfrom->domain);
		return 1;
	}
	return 0;
}

int
antispam_greylist(struct antispam *as, const char *client_ip,
    const char *sender, const char *recipient, const struct spf_outcome *spf,
    unsigned int *wait_r)
{
	struct antispam_private *p = as->priv;
	struct greylist_request req;
	enum greylist_verdict v;
	char *err = NULL;
	int r;

	memset(&req, 0, sizeof(req));
	/* a sender domain verified before is not delayed */
	if (spf != NULL && spf->result == SPF_RESULT_PASS)
		req.verified_domain = spf->domain;
	req.client_ip = client_ip;
	req.sender = sender;
	req.recipient = recipient;
	req.now = time(NULL);
	pthread_mutex_lock(&p->gl_lock);
	r = greylist_check(p->gl, &req, &v, wait_r, &err);
	pthread_mutex_unlock(&p->gl_lock);
	if (r < 0) {
		log_warn("event=greylist_failed ip=%s error=\"%s\"", client_ip,
		    err != NULL ? err : "?");
		free(err);
		return -1;
	}
	return v == GREYLIST_DEFER ? 1 : 0;
}

void
antispam_refresh_files(struct antispam *as)
{
	struct antispam_private *p = as->priv;
	struct file_stamp c, r;
	char *err = NULL;
	int ret;

	if (p->gl == NULL)
		return;
	file_stamp_get(p->wl_clients, &c);
	file_stamp_get(p->wl_recipients, &r);
	if (file_stamp_equal(&c, &p->wl_clients_st) &&
	    file_stamp_equal(&r, &p->wl_recipients_st))
		return;
	p->wl_clients_st = c;
	p->wl_recipients_st = r;
	pthread_mutex_lock(&p->gl_lock);
	ret = greylist_load_whitelists(p->gl, p->wl_clients, p->wl_recipients,
	    &err);
	pthread_mutex_unlock(&p->gl_lock);
	if (ret < 0) {
		/* the old lists stay: a typo must not open the gate */
		log_warn("event=greylist_whitelist_failed error=\"%s\"", err);
		free(err);
	} else {
		log_info("event=greylist_whitelists_reloaded");
	}
}

void
antispam_expire(struct antispam *as)
{
	struct antispam_private *p = as->priv;
	char *err = NULL;

	if (p->gl == NULL)
		return;
	pthread_mutex_lock(&p->gl_lock);
	if (greylist_expire(p->gl, time(NULL), &err) < 0) {
		log_warn("event=greylist_expire_failed error=\"%s\"", err);
		free(err);
	}
	pthread_mutex_unlock(&p->gl_lock);
}

static void
set_reply(struct antispam_result *r, enum antispam_action a, int code,
    const char *enhanced, const char *text)
{
	r->action = a;
	r->code = code;
	str_copy(r->enhanced, sizeof(r->enhanced), enhanced);
	str_copy(r->text, sizeof(r->text), text);
}

static void
logf_append(struct antispam_result *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
logf_append(struct antispam_result *r, const char *fmt, ...)
{
	size_t n = strlen(r->log);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->log + n, sizeof(r->log) - n, fmt, ap);
	va_end(ap);
}

static void
check_auth(struct antispam *as, const struct antispam_request *req,
    struct antispam_result *r)
{
	struct antispam_private *p = as->priv;
	struct msgauth_check_request mr;
	struct msgauth_check_result cr;

	memset(&mr, 0, sizeof(mr));
	if (msgauth_ip_parse(req->client_ip, &mr.spf.ip) < 0)
		return;
	mr.spf.sender = req->sender;
	mr.spf.helo = req->helo != NULL ? req->helo : "";
	mr.spf.receiver = p->hostname;
	mr.spf.now = time(NULL);
	mr.message = req->msg;
	mr.message_len = req->len;
	mr.authenticated = false;
	mr.check_spf = as->spf;
	mr.check_dkim = as->dkim;
	mr.check_dmarc = as->dmarc && p->psl != NULL;
	mr.spf_done = req->spf;
	memset(&cr, 0, sizeof(cr));
	msgauth_check_message(&p->dns, p->psl, &mr, "\r\n", &cr);
	r->received_spf = cr.received_spf;
	r->authentication_results = cr.authentication_results;
	cr.received_spf = NULL;
	cr.authentication_results = NULL;
	logf_append(r, " spf=%s dmarc=%s", as->spf ?
	    spf_result_name(cr.spf.result) : "off", mr.check_dmarc ?
	    dmarc_result_name(cr.dmarc.result) : "off");
	if (p->gl != NULL && cr.action == MSGAUTH_ACCEPT) {
		/* Remember verified senders: their next mail is not delayed. */
		const char *dom = NULL;
		char *err = NULL;

		if (cr.dmarc.result == DMARC_RESULT_PASS && cr.from_domain[0] != '\0')
			dom = cr.from_domain;
		else if (cr.spf.result == SPF_RESULT_PASS &&
		    cr.spf.identity == SPF_IDENTITY_MAILFROM)
			dom = cr.spf.domain;
		log_debug("event=greylist_verified domain=%s", dom != NULL ?
		    dom : "-");
		if (dom != NULL) {
			pthread_mutex_lock(&p->gl_lock);
			if (greylist_note_verified(p->gl, dom, time(NULL), &err) < 0)
				x_free(&err);
			pthread_mutex_unlock(&p->gl_lock);
		}
	}
	if (cr.action == MSGAUTH_REJECT) {
		const char *text = cr.reply;

		/* cr.reply is "5.7.1 text": keep the text. */
		if (str_has_prefix(text, "5.7.1 "))
			text += 6;
		set_reply(r, ANTISPAM_REJECT, 550, "5.7.1", *text != '\0' ?
		    text : "Rejected by DMARC policy");
	} else if (cr.action == MSGAUTH_QUARANTINE) {
		r->action = ANTISPAM_JUNK;
		logf_append(r, " quarantine=dmarc");
	}
	msgauth_check_result_free(&cr);
}

static void
check_clamd(struct antispam *as, const struct antispam_request *req,
    struct antispam_result *r)
{
	char virus[128] = "", *err = NULL, text[200];
	enum clamd_verdict v;

	v = clamd_scan(&as->priv->clamd, req->msg, req->len, virus,
	    sizeof(virus), &err);
	logf_append(r, " clamav=%s", clamd_verdict_name(v));
	if (v == CLAMD_INFECTED) {
		logf_append(r, " virus=\"%s\"", virus);
		snprintf(text, sizeof(text), "Message rejected: infected "
		    "with %s", virus);
		set_reply(r, ANTISPAM_REJECT, 554, "5.7.1", text);
	} else if (v == CLAMD_ERROR) {
		/* A scanner that is asked for and down: try again later. */
		log_warn("event=clamd_failed error=\"%s\"", err != NULL ? err :
		    "?");
		set_reply(r, ANTISPAM_TEMPFAIL, 451, "4.3.0", "Virus scanner "
		    "unavailable, try again later");
	}
	free(err);
}

static void
check_rspamd(struct antispam *as, const struct antispam_request *req,
    struct antispam_result *r)
{
	struct rspamd_request rq;
	struct rspamd_result rr;
	char *err = NULL;

	memset(&rq, 0, sizeof(rq));
	rq.client_ip = req->client_ip;
	rq.helo = req->helo;
	rq.sender = req->sender;
	rq.recipients = req->recipients;
	rq.recipient_count = req->nrecipients;
	rq.user = req->auth_login;
	rq.queue_id = req->queue_id;
	rq.message = req->msg;
	rq.message_len = req->len;
	memset(&rr, 0, sizeof(rr));
	if (rspamd_check(&as->priv->rspamd, &rq, &rr, &err) < 0) {
		log_warn("event=rspamd_failed error=\"%s\"", err != NULL ? err :
		    "?");
		free(err);
		return;		/* rspamd down: deliver, as its milter does */
	}
	{
		char act[32];

		/* "add header" -> add_header: one key=value token */
		str_copy(act, sizeof(act), rspamd_action_name(rr.action));
		for (char *c = act; *c != '\0'; c++)
			if (*c == ' ')
				*c = '_';
		logf_append(r, " rspamd=%s rspamd_score=%.2f", act, rr.score);
	}
	switch (rr.action) {
	case RSPAMD_REJECT:
		set_reply(r, ANTISPAM_REJECT, 554, "5.7.1", "Spam message "
		    "rejected");
		break;
	case RSPAMD_GREYLIST:
	case RSPAMD_SOFT_REJECT:
		set_reply(r, ANTISPAM_TEMPFAIL, 451, "4.7.1", "Try again later");
		break;
	case RSPAMD_ADD_HEADER:
	case RSPAMD_REWRITE_SUBJECT:
		r->verdict.spam = true;
		r->verdict.score = rr.score;
		r->verdict.reason = "rspamd";
		/* rspamd's milter puts its subject in; so do we */
		if (rr.action == RSPAMD_REWRITE_SUBJECT && rr.subject[0] != '\0') {
			str_copy(r->rspamd_subject, sizeof(r->rspamd_subject),
			    rr.subject);
			r->verdict.subject = r->rspamd_subject;
		}
		break;
	default:
		break;
	}
}

static void
check_bayes(struct antispam *as, const struct antispam_request *req,
    struct antispam_result *r)
{
	struct antispam_private *p = as->priv;
	struct stat sb;
	double prob = 0.5;
	char *err = NULL;
	int rc = 0;

	pthread_mutex_lock(&p->bayes_lock);
	/* Nothing trained yet (no file): nothing to ask. */
	if (p->bayes == NULL && stat(p->bayes_path, &sb) == 0 &&
	    bayes_open(p->bayes_path, NULL, &p->bayes, &err) < 0) {
		log_warn("event=bayes_open_failed error=\"%s\"", err);
		x_free(&err);
	}
	if (p->bayes != NULL)
		rc = bayes_classify(p->bayes, req->account, req->msg, req->len,
		    &prob, NULL, &err);
	pthread_mutex_unlock(&p->bayes_lock);
	if (rc < 0) {
		log_warn("event=bayes_failed error=\"%s\"", err);
		free(err);
		return;
	}
	if (p->bayes == NULL)
		return;
	logf_append(r, " bayes=%.3f", prob);
	if (prob >= p->spam_prob && !r->verdict.spam) {
		r->verdict.spam = true;
		r->verdict.score = prob;
		r->verdict.reason = "bayes";
	}
}

void
antispam_message(struct antispam *as, const struct antispam_request *req,
    struct antispam_result *r)
{
	bool inbound = req->auth_login == NULL;

	memset(r, 0, sizeof(*r));
	r->action = ANTISPAM_ACCEPT;
	r->verdict.score = -1;
	/* Submissions are ours: OpenDMARC's IgnoreAuthenticatedClients. */
	if (inbound && (as->spf || as->dkim || as->dmarc) && as->resolver != NULL)
		check_auth(as, req, r);
	if (r->action == ANTISPAM_REJECT)
		return;
	if (as->clamav_on) {
		check_clamd(as, req, r);
		if (r->action == ANTISPAM_REJECT || r->action == ANTISPAM_TEMPFAIL)
			return;
	}
	if (!inbound)
		return;
	if (as->rspamd_on) {
		check_rspamd(as, req, r);
		if (r->action == ANTISPAM_REJECT || r->action == ANTISPAM_TEMPFAIL)
			return;
	}
	if (as->junk_on)
		check_bayes(as, req, r);
	/* X-Spam fields are rewritten on every inbound message: a sender's
	 * own "X-Spam: No" must not be believed. */
	r->mark = true;
	if (r->verdict.spam) {
		struct spammark_delivery d;

		spammark_delivery(&as->mark, &r->verdict, &d);
		if (d.folder != NULL)
			r->action = ANTISPAM_JUNK;
		r->seen = d.seen;
		logf_append(r, " spam=yes reason=%s", r->verdict.reason);
	}
}

void
antispam_result_free(struct antispam_result *r)
{
	x_free(&r->received_spf);
	x_free(&r->authentication_results);
}
