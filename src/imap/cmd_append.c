/*
 * APPEND, with MULTIAPPEND (RFC 3502), CATENATE (RFC 4469), BINARY
 * literal8 (RFC 3516) and the UIDPLUS code:
 *
 *   APPEND mailbox 1*( [flags] [date-time]
 *                      (literal | literal8 | CATENATE (part ...) |
 *                       UTF8 (literal8)) )
 *   part = TEXT literal | TEXT literal8 | URL "imap-url"
 *
 * All or nothing: every message is put together and checked (URLs, size,
 * binary content, quota) before any is stored, and the store writes them
 * in one go (store_mailbox_append_many). Replies, in this order:
 *   BAD            syntax
 *   NO [TRYCREATE] the mailbox does not exist (checked before URLs)
 *   NO [BADURL u]  a CATENATE URL names nothing in this account
 *   NO [TOOBIG]    a message is over APPENDLIMIT
 *   NO [OVERQUOTA] the messages would take the account over its quota
 *   OK [APPENDUID uidvalidity uid-set]
 * A message with raw binary content (a NUL, or "binary" parts sent as
 * literal8) is stored with those parts base64-encoded (mail/binary.h), so
 * FETCH BODY[] never sends a NUL and BINARY[] gives the bytes back.
 */
#include "imap/esearch.h"
#include "imap/session-private.h"

#include "imap/url.h"
#include "imap/urlpart.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "mail/binary.h"
#include "mail/mime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_APPEND_MESSAGES 1000

struct append_msg {
	unsigned int flags;
	char *keywords;
	time_t date;
	const struct imap_arg *literal;		/* a plain literal, or */
	const struct imap_arg *catenate;	/* CATENATE's list */
	bool binary;				/* a literal8 was used */
	struct buf data;
};

/* "dd-Mon-yyyy hh:mm:ss +zzzz" (RFC 9051 date-time); -1 if invalid */
static time_t
parse_date_time(const char *s)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	struct tm tm;
	char mon[4];
	int day, year, h, mi, sec, zone, n = 0;
	const char *p;

	if (sscanf(s, "%2d-%3s-%4d %2d:%2d:%2d %5d%n", &day, mon, &year, &h,
	    &mi, &sec, &zone, &n) != 7 || s[n] != '\0')
		return -1;
	p = strstr(months, mon);
	if (p == NULL || (p - months) % 3 != 0 || day < 1 || day > 31 ||
	    h > 23 || mi > 59 || sec > 60 || year < 1970)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_mday = day;
	tm.tm_mon = (int)(p - months) / 3;
	tm.tm_year = year - 1900;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	{
		int sign = zone < 0 ? -1 : 1;
		int az = zone * sign;

		return timegm(&tm) - sign * ((az / 100) * 3600 + (az % 100) * 60);
	}
}

static void
msgs_free(struct append_msg *m, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		free(m[i].keywords);
		buf_free(&m[i].data);
	}
	free(m);
}

static bool
catenate_valid(const struct imap_arg *list)
{
	if (list->count == 0 || list->count % 2 != 0)
		return false;
	for (unsigned int i = 0; i < list->count; i += 2) {
		const struct imap_arg *k = &list->list[i], *v = &list->list[i + 1];

		if (imap_arg_is_atom(k, "TEXT")) {
			if (v->type != IMAP_ARG_LITERAL)
				return false;
		} else if (imap_arg_is_atom(k, "URL")) {
			if (imap_arg_astring(v) == NULL || v->type == IMAP_ARG_NIL)
				return false;
		} else {
			return false;
		}
	}
	return true;
}

/* The messages of the command; NULL after a BAD reply. */
static struct append_msg *
parse_messages(struct imap_session *s, const struct imap_arg *a,
    unsigned int n, unsigned int *count_r)
{
	struct append_msg *msgs = NULL;
	unsigned int count = 0, i = 1;
	const char *bad = NULL;

	while (i < n && bad == NULL) {
		struct append_msg *m;

		if (count == MAX_APPEND_MESSAGES) {
			bad = "Too many messages";
			break;
		}
		msgs = xreallocarray(msgs, count + 1, sizeof(*msgs));
		m = &msgs[count++];
		memset(m, 0, sizeof(*m));
		buf_init(&m->data, BUF_UNLIMITED);
		if (i < n && a[i].type == IMAP_ARG_LIST) {
			if (imap_parse_flag_list(&a[i], &m->flags, &m->keywords) < 0) {
				bad = "Invalid flags";
				break;
			}
			i++;
		}
		if (i < n && a[i].type == IMAP_ARG_QUOTED) {
			m->date = parse_date_time(a[i].str);
			if (m->date < 0) {
				bad = "Invalid date-time";
				break;
			}
			i++;
		}
		if (i < n && a[i].type == IMAP_ARG_LITERAL) {
			m->literal = &a[i];
			m->binary = a[i].literal8;
			i++;
		} else if (s->utf8 && i + 1 < n && imap_arg_is_atom(&a[i], "UTF8") &&
		    a[i + 1].type == IMAP_ARG_LIST && a[i + 1].count == 1 &&
		    a[i + 1].list[0].type == IMAP_ARG_LITERAL) {
			/* RFC 6855 4: UTF8 (~{n}) once UTF8=ACCEPT is enabled */
			m->literal = &a[i + 1].list[0];
			m->binary = m->literal->literal8;
			i += 2;
		} else if (i + 1 < n && imap_arg_is_atom(&a[i], "CATENATE") &&
		    a[i + 1].type == IMAP_ARG_LIST && catenate_valid(&a[i + 1])) {
			m->catenate = &a[i + 1];
			i += 2;
		} else {
			bad = "APPEND needs the message as a literal";
		}
	}
	if (bad == NULL && count == 0)
		bad = "APPEND needs a mailbox and a message";
	if (bad != NULL) {
		msgs_free(msgs, count);
		imap_tagged(s, "BAD", "%s", bad);
		return NULL;
	}
	*count_r = count;
	return msgs;
}

/*
 * Puts a CATENATE message together. -1 with the URL that failed in
 * *badurl_r (NO [BADURL]); -2 as soon as the message is over APPENDLIMIT
 * (NO [TOOBIG]: a list of URLs must not make us read without bound).
 */
static int
catenate(struct imap_session *s, struct append_msg *m, const char **badurl_r)
{
	const struct imap_arg *list = m->catenate;

	for (unsigned int i = 0; i < list->count; i += 2) {
		if (m->data.len > s->set.max_literal)
			return -2;
		const struct imap_arg *v = &list->list[i + 1];
		struct imap_url u;
		struct imap_urlpart part;
		const char *err;

		if (imap_arg_is_atom(&list->list[i], "TEXT")) {
			buf_append(&m->data, v->str, v->len);
			m->binary = m->binary || v->literal8;
			continue;
		}
		*badurl_r = v->str;
		if (imap_url_parse(v->str, &u, &err) < 0)
			return -1;
		/* only this account's messages: a server part must be ours */
		if ((u.user != NULL && !imap_url_names_account(s, &u)) ||
		    u.access != NULL ||
		    imap_urlpart_get(s->acct, &u, false, false, &part, &err) < 0) {
			log_debug("sid=%s event=imap_catenate_badurl error=\"%s\"",
			    s->sid, u.access != NULL ? "URLAUTH URL" : err);
			imap_url_free(&u);
			return -1;
		}
		buf_append(&m->data, part.body.data, part.body.len);
		imap_urlpart_free(&part);
		imap_url_free(&u);
	}
	return 0;
}

/*
 * Binary content the store cannot keep as is gets base64 (mail/binary.h).
 * -1: a NUL that cannot be encoded away (in a header).
 */
static int
store_form(struct append_msg *m)
{
	struct mime_message *msg;
	struct buf enc;
	int r;

	if (!m->binary && memchr(m->data.data, '\0', m->data.len) == NULL)
		return 0;
	msg = mime_parse(m->data.data, m->data.len, &mime_default_limits);
	buf_init(&enc, BUF_UNLIMITED);
	r = mime_binary_encode(msg, &enc);
	mime_message_free(&msg);
	if (r < 0 || memchr(enc.data, '\0', enc.len) != NULL) {
		buf_free(&enc);
		return -1;
	}
	if (r > 0) {
		buf_free(&m->data);
		m->data = enc;
	} else {
		buf_free(&enc);
	}
	return 0;
}

/* An APPEND whose messages are being written and fsync'd on the pool. */
struct append_job {
	struct store_account *acct;	/* our reference: the session may go */
	struct store_mailbox *box;
	struct store_append_op *op;
	struct append_msg *msgs;	/* as the client sent them (on_filed) */
	unsigned int count;
};

static void
append_job_free(struct append_job *job)
{
	store_mailbox_close(&job->box);
	store_account_close(&job->acct);
	msgs_free(job->msgs, job->count);
	free(job);
}

static void
append_work(void *arg)
{
	struct append_job *job = arg;

	store_append_write(job->op);
}

static void
append_done(struct imap_session *s, void *arg)
{
	struct append_job *job = arg;
	uint32_t *uids = xcalloc(job->count + 1, sizeof(*uids));
	char *err = NULL;
	struct buf code;

	/* durable now: they get their UIDs even if the client has gone */
	if (store_append_finish(&job->op, uids, &err) < 0) {
		if (s != NULL) {
			log_error("sid=%s event=imap_append_failed error=\"%s\"",
			    s->sid, err);
			imap_tagged(s, "NO", "%s", err);
		}
		free(err);
		goto out;
	}
	if (s == NULL)
		goto out;
	/* junk training and the like: each message as the client sent it */
	if (s->hooks->on_filed != NULL) {
		for (unsigned int i = 0; i < job->count; i++)
			s->hooks->on_filed(s, NULL, store_mailbox_name(job->box),
			    NULL, 1, job->msgs[i].data.data != NULL ?
			    job->msgs[i].data.data : "", job->msgs[i].data.len,
			    s->ctx);
	}
	imap_sync_selected(s);
	buf_init(&code, BUF_UNLIMITED);
	imap_append_numset(&code, uids, job->count);
	imap_tagged(s, "OK", "[APPENDUID %u %s] Append completed.",
	    store_mailbox_uidvalidity(job->box), buf_cstr(&code));
	buf_free(&code);
out:
	free(uids);
	append_job_free(job);
}

void
imap_cmd_append(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	const char *name = n >= 2 ? imap_arg_astring(&a[0]) : NULL;
	struct append_msg *msgs;
	struct store_append *sa = NULL;
	struct append_job *job;
	unsigned int count = 0;
	struct store_mailbox *box = NULL;
	uint64_t total = 0;
	char *err = NULL;

	if (name == NULL) {
		imap_tagged(s, "BAD", "APPEND needs a mailbox and a message");
		return;
	}
	if ((msgs = parse_messages(s, a, n, &count)) == NULL)
		return;
	if (store_mailbox_open_target(s->acct, name, &box, &err) < 0) {
		free(err);
		imap_tagged(s, "NO", "[TRYCREATE] Mailbox doesn't exist");
		goto out;
	}
	for (unsigned int i = 0; i < count; i++) {
		struct append_msg *m = &msgs[i];
		const char *badurl = NULL;
		int r = 0;

		if (m->literal != NULL)
			buf_append(&m->data, m->literal->str, m->literal->len);
		else
			r = catenate(s, m, &badurl);
		if (r == -1) {
			imap_tagged(s, "NO", "[BADURL %s] CATENATE URL is not valid",
			    badurl);
			goto out;
		}
		if (m->data.len > s->set.max_literal) {
			imap_tagged(s, "NO", "[TOOBIG] Message too large");
			goto out;
		}
		if (store_form(m) < 0) {
			imap_tagged(s, "NO", "Message has NUL characters where "
			    "they cannot be kept");
			goto out;
		}
		total += m->data.len;
	}
	if (imap_quota_check(s, store_mailbox_name(box), total) < 0) {
		imap_tagged(s, "NO", "[OVERQUOTA] Quota exceeded (mailbox for user is full)");
		goto out;
	}
	sa = xcalloc(count, sizeof(*sa));
	for (unsigned int i = 0; i < count; i++) {
		sa[i].data = msgs[i].data.data != NULL ? msgs[i].data.data : "";
		sa[i].len = msgs[i].data.len;
		sa[i].flags = msgs[i].flags;
		sa[i].keywords = msgs[i].keywords;
		sa[i].internaldate = msgs[i].date;
	}
	job = xcalloc(1, sizeof(*job));
	if (store_append_begin(box, sa, count, &job->op, &err) < 0) {
		log_error("sid=%s event=imap_append_failed error=\"%s\"", s->sid, err);
		imap_tagged(s, "NO", "%s", err);
		free(err);
		free(job);
		goto out;
	}
	free(sa);
	job->box = box;
	job->acct = store_account_ref(s->acct);
	job->msgs = msgs;
	job->count = count;
	/* the files' and cur/'s fsyncs: off the loop */
	imap_run_blocking(s, append_work, append_done, job);
	return;
out:
	store_mailbox_close(&box);
	msgs_free(msgs, count);
	free(sa);
}
