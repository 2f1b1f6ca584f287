/*
 * The IMAP session engine: reading commands, the command table, the
 * state rules, authentication and IDLE. Commands that are more than a
 * screen live in cmd_*.c.
 */
#include "imap/esearch.h"
#include "imap/session-private.h"

#include "lib/log.h"
#include "lib/pool.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "net/deflate.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/time.h>

#define DEFAULT_MAX_LINE 65536
#define DEFAULT_MAX_LITERAL 10240000
#define DEFAULT_IDLE_TIMEOUT_MS (30u * 60 * 1000)
#define DEFAULT_IDLE_POLL_MS 1000
#define MAX_ARGS 10000
#define MAX_DEPTH 16
#define AUTH_LINE_MAX 8192
#define IDLE_KEEPALIVE_MS (2u * 60 * 1000)

static void process_input(struct imap_session *s);
static void finish(struct imap_session *s);

/* --- output --------------------------------------------------------------- */

void
imap_write(struct imap_session *s, const void *data, size_t len)
{
	if (!s->closing || s->state == IMAP_STATE_LOGOUT)
		bufferevent_write(s->bev, data, len);
}

void
imap_printf(struct imap_session *s, const char *fmt, ...)
{
	struct buf b;
	va_list ap;

	buf_init(&b, BUF_UNLIMITED);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	imap_write(s, b.data, b.len);
	buf_free(&b);
}

void
imap_tagged(struct imap_session *s, const char *status, const char *fmt, ...)
{
	struct buf b;
	va_list ap;

	/* CONTEXT=SEARCH updates go out before a command completes */
	if (s->contexts != NULL)
		imap_context_notify(s);
	buf_init(&b, BUF_UNLIMITED);
	buf_printf(&b, "%s %s ", s->tag != NULL ? s->tag : "*", status);
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	buf_append_str(&b, "\r\n");
	imap_write(s, b.data, b.len);
	buf_free(&b);
}

static void
capability_string(const struct imap_session *s, struct buf *b)
{
	/* LOGIN-REFERRALS (RFC 2221): a client must understand [REFERRAL];
	   tegami never sends one, it is listed as in Dovecot's set */
	buf_append_str(b, "IMAP4rev1 IMAP4rev2 LOGIN-REFERRALS LITERAL+ ID ENABLE"
	    " IDLE NAMESPACE"
	    " UNSELECT UIDPLUS MOVE CHILDREN SPECIAL-USE CONDSTORE QRESYNC");
	buf_append_str(b, " ESEARCH SEARCHRES WITHIN CONTEXT=SEARCH CONTEXT=SORT"
	    " SORT SORT=DISPLAY ESORT THREAD=REFERENCES THREAD=REFS"
	    " THREAD=ORDEREDSUBJECT UTF8=ACCEPT I18NLEVEL=1");
	buf_append_str(b, " PREVIEW PREVIEW=FUZZY SNIPPET=FUZZY");
	buf_append_str(b, " LIST-EXTENDED LIST-STATUS STATUS=SIZE"
	    " CREATE-SPECIAL-USE BINARY MULTIAPPEND CATENATE URL-PARTIAL"
	    " SAVEDATE NOTIFY");
	if (s->set.urlauth)
		buf_append_str(b, " URLAUTH URLAUTH=BINARY");
	if (s->set.quota)
		buf_append_str(b, " QUOTA QUOTA=RES-STORAGE");
	buf_printf(b, " APPENDLIMIT=%llu",
	    (unsigned long long)s->set.max_literal);
	if (s->state != IMAP_STATE_NOT_AUTH && s->set.compress)
		buf_append_str(b, " COMPRESS=DEFLATE");
	if (s->state == IMAP_STATE_NOT_AUTH) {
		if (s->set.ssl_ctx != NULL && !s->tls)
			buf_append_str(b, " STARTTLS");
		buf_append_str(b, s->set.secure ? " SASL-IR AUTH=PLAIN AUTH=LOGIN" :
		    " LOGINDISABLED");
	}
}

size_t
imap_output_pending(const struct imap_session *s)
{
	return evbuffer_get_length(bufferevent_get_output(s->bev));
}

void
imap_cont_set(struct imap_session *s, void (*fn)(struct imap_session *),
    void (*free_fn)(void *), void *state)
{
	s->cont.fn = fn;
	s->cont.free_fn = free_fn;
	s->cont.state = state;
	s->wait = WAIT_OUTPUT;
	/* be told when the output has drained to the low mark */
	bufferevent_setwatermark(s->bev, EV_WRITE, IMAP_OUTPUT_LOW, 0);
}

void
imap_cont_done(struct imap_session *s)
{
	memset(&s->cont, 0, sizeof(s->cont));
	s->wait = WAIT_NONE;
	bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
	imap_notify_command_done(s);
	x_free(&s->tag);
	/* commands the client pipelined meanwhile */
	event_active(s->resume_ev, EV_TIMEOUT, 0);
}

/* --- blocking store work ------------------------------------------------------ */

struct imap_job {
	struct imap_session *s;		/* NULL once the session is gone */
	void (*work)(void *arg);
	void (*done)(struct imap_session *s, void *arg);
	void *arg;
};

static void
job_work(void *arg)
{
	struct imap_job *j = arg;

	j->work(j->arg);
}

static void
job_done(void *arg)
{
	struct imap_job *j = arg;
	struct imap_session *s = j->s;

	if (s == NULL) {
		j->done(NULL, j->arg);
		free(j);
		return;
	}
	s->job = NULL;
	s->wait = WAIT_NONE;
	j->done(s, j->arg);
	free(j);
	if (s->wait == WAIT_JOB)
		return;		/* done() started the command's next step */
	x_free(&s->tag);
	if (s->closing) {
		/* finish() was asked for while we waited */
		finish(s);
		return;
	}
	imap_notify_command_done(s);
	/* commands the client pipelined meanwhile */
	event_active(s->resume_ev, EV_TIMEOUT, 0);
}

void
imap_run_blocking(struct imap_session *s, void (*work)(void *arg),
    void (*done)(struct imap_session *s, void *arg), void *arg)
{
	struct imap_job *j;

	if (s->set.pool == NULL) {
		work(arg);
		done(s, arg);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->s = s;
	j->work = work;
	j->done = done;
	j->arg = arg;
	s->job = j;
	s->wait = WAIT_JOB;
	pool_submit(s->set.pool, job_work, job_done, j);
}

/* --- the view of the selected mailbox -------------------------------------- */

bool
imap_keywords_learn(struct imap_session *s, const char *keywords)
{
	size_t nk;
	char **kw;
	bool added = false;
	struct buf b;

	if (keywords == NULL || keywords[0] == '\0')
		return false;
	kw = str_split(keywords, " ", &nk);
	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, s->keywords_known != NULL ? s->keywords_known : "");
	for (size_t i = 0; i < nk; i++) {
		const char *p = b.data;
		size_t l = strlen(kw[i]);
		bool have = false;

		if (l == 0)
			continue;
		/* whole words only; keywords are compared exactly, as stored */
		while ((p = strstr(p, kw[i])) != NULL) {
			if ((p == b.data || p[-1] == ' ') &&
			    (p[l] == '\0' || p[l] == ' ')) {
				have = true;
				break;
			}
			p += l;
		}
		if (have)
			continue;
		if (b.len > 0)
			buf_append_c(&b, ' ');
		buf_append_str(&b, kw[i]);
		added = true;
	}
	str_array_free(kw);
	free(s->keywords_known);
	s->keywords_known = buf_steal(&b);
	return added;
}

void
imap_write_flags(struct imap_session *s)
{
	const char *kw = s->keywords_known != NULL ? s->keywords_known : "";
	const char *sp = kw[0] != '\0' ? " " : "";

	imap_printf(s, "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft%s%s)\r\n"
	    "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft%s%s \\*)]"
	    " Flags permitted.\r\n", sp, kw, sp, kw);
}

void
imap_keywords_announce(struct imap_session *s, const char *keywords)
{
	if (imap_keywords_learn(s, keywords))
		imap_write_flags(s);
}

bool
imap_msg_recent(const struct imap_session *s, uint32_t uid)
{
	unsigned int lo = 0, hi = s->nrecent;

	if (s->rev2)
		return false;	/* IMAP4rev2 has no \Recent (RFC 9051 E.1) */
	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (s->recent[mid] == uid)
			return true;
		if (s->recent[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

unsigned int
imap_recent_update(struct imap_session *s)
{
	const struct store_msg *msgs;
	unsigned int n, count = 0;
	uint32_t first;
	char *err = NULL;

	if (store_mailbox_recent(s->box, !s->readonly, &first, &err) < 0) {
		/* \Recent is advisory: carry on without new ones */
		log_warn("event=imap_recent_failed error=\"%s\"", err);
		free(err);
		first = UINT32_MAX;
	}
	msgs = store_mailbox_msgs(s->box, &n);
	if (s->readonly)
		s->nrecent = 0;
	for (unsigned int i = 0; i < n; i++) {
		if (msgs[i].uid < first || imap_msg_recent(s, msgs[i].uid))
			continue;
		if (s->nrecent > 0 && s->recent[s->nrecent - 1] > msgs[i].uid)
			continue;	/* keeps the array sorted; cannot happen */
		s->recent = xreallocarray(s->recent, s->nrecent + 1,
		    sizeof(*s->recent));
		s->recent[s->nrecent++] = msgs[i].uid;
	}
	for (unsigned int i = 0; i < n; i++)
		count += imap_msg_recent(s, msgs[i].uid);
	return count;
}

void
imap_append_flags(struct buf *out, const struct store_msg *m, bool recent)
{
	static const struct { unsigned int bit; const char *name; } fl[] = {
		{ STORE_FLAG_SEEN, "\\Seen" },
		{ STORE_FLAG_ANSWERED, "\\Answered" },
		{ STORE_FLAG_FLAGGED, "\\Flagged" },
		{ STORE_FLAG_DELETED, "\\Deleted" },
		{ STORE_FLAG_DRAFT, "\\Draft" },
	};
	bool first = !recent;

	buf_append_c(out, '(');
	if (recent)
		buf_append_str(out, "\\Recent");
	for (size_t i = 0; i < sizeof(fl) / sizeof(fl[0]); i++) {
		if ((m->flags & fl[i].bit) == 0)
			continue;
		if (!first)
			buf_append_c(out, ' ');
		buf_append_str(out, fl[i].name);
		first = false;
	}
	if (m->keywords[0] != '\0') {
		if (!first)
			buf_append_c(out, ' ');
		buf_append_str(out, m->keywords);
	}
	buf_append_c(out, ')');
}

int
imap_view_find_uid(const struct imap_session *s, uint32_t uid)
{
	return s->box != NULL ? store_mailbox_find_uid(s->box, uid) : -1;
}

uint32_t
imap_view_last_uid(const struct imap_session *s)
{
	const struct store_msg *msgs;
	unsigned int n;

	if (s->box == NULL)
		return 0;
	msgs = store_mailbox_msgs(s->box, &n);
	return n > 0 ? msgs[n - 1].uid : 0;
}

/* Appends "a:b" (or "a") to a set being built, with a comma between. */
static void
set_add(struct buf *b, bool *first, uint32_t lo, uint32_t hi)
{
	if (!*first)
		buf_append_c(b, ',');
	*first = false;
	buf_append_uint(b, lo);
	if (hi > lo) {
		buf_append_c(b, ':');
		buf_append_uint(b, hi);
	}
}

/* The parts of lo..hi that no message of the view has, as ranges. */
static void
set_add_gaps(struct imap_session *s, struct buf *b, bool *first, uint32_t lo,
    uint32_t hi)
{
	unsigned int n, i = 0;
	const struct store_msg *msgs = store_mailbox_msgs(s->box, &n);

	/* the first message at or above lo */
	{
		unsigned int l = 0, h = n;

		while (l < h) {
			unsigned int mid = l + (h - l) / 2;

			if (msgs[mid].uid < lo)
				l = mid + 1;
			else
				h = mid;
		}
		i = l;
	}
	while (lo <= hi) {
		uint32_t next = i < n ? msgs[i].uid : UINT32_MAX;

		if (next > hi) {
			set_add(b, first, lo, hi);
			return;
		}
		if (next > lo)
			set_add(b, first, lo, next - 1);
		if (next == UINT32_MAX)
			return;
		lo = next + 1;
		i++;
	}
}

void
imap_send_vanished_earlier(struct imap_session *s,
    const struct imap_seqset *set, uint64_t modseq)
{
	uint32_t *uids = NULL, top;
	unsigned int n = 0;
	bool complete = false, first = true;
	char *err = NULL;
	struct buf b;

	if (s->box == NULL)
		return;
	if (store_mailbox_expunged_since(s->box, modseq, &uids, &n, &complete,
	    &err) < 0) {
		log_warn("sid=%s event=imap_vanished_failed error=\"%s\"", s->sid,
		    err);
		free(err);
		complete = false;
	}
	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "* VANISHED (EARLIER) ");
	if (complete) {
		for (unsigned int i = 0; i < n; i++) {
			uint32_t hi = uids[i];
			unsigned int j = i;

			if ((set != NULL && !imap_seqset_contains(set, uids[i])) ||
			    store_mailbox_find_uid(s->box, uids[i]) >= 0)
				continue;
			/* consecutive ones as a:b */
			while (j + 1 < n && uids[j + 1] == hi + 1 &&
			    (set == NULL || imap_seqset_contains(set, hi + 1)) &&
			    store_mailbox_find_uid(s->box, hi + 1) < 0)
				hi = uids[++j];
			set_add(&b, &first, uids[i], hi);
			i = j;
		}
	} else {
		/* no log that far back: whatever is missing may be gone */
		top = store_mailbox_uidnext(s->box) - 1;
		if (set == NULL && top > 0) {
			set_add_gaps(s, &b, &first, 1, top);
		} else if (set != NULL) {
			for (unsigned int r = 0; r < set->count; r++) {
				uint32_t hi = set->ranges[r].hi < top ? set->ranges[r].hi : top;

				if (set->ranges[r].lo <= hi)
					set_add_gaps(s, &b, &first, set->ranges[r].lo, hi);
			}
		}
	}
	if (!first) {
		buf_append_str(&b, "\r\n");
		imap_write(s, b.data, b.len);
	}
	buf_free(&b);
	free(uids);
}

void
imap_sync_selected(struct imap_session *s)
{
	struct store_sync_changes ch;
	const struct store_msg *msgs;
	unsigned int n;
	char *err = NULL;

	if (s->box == NULL)
		return;
	if (store_mailbox_sync(s->box, &ch, &err) < 0) {
		log_warn("sid=%s event=imap_sync_failed error=\"%s\"", s->sid, err);
		free(err);
		return;
	}
	if (ch.nexpunged > 0 && s->qresync) {
		/* RFC 7162 3.2.10: one VANISHED instead of the EXPUNGEs */
		struct buf b;

		for (unsigned int i = 0; i < ch.nexpunged; i++)
			imap_context_expunged(s, ch.expunged[i],
			    ch.expunged_pos[i] - i + 1);
		buf_init(&b, BUF_UNLIMITED);
		buf_append_str(&b, "* VANISHED ");
		imap_append_numset(&b, ch.expunged, ch.nexpunged);
		buf_append_str(&b, "\r\n");
		imap_write(s, b.data, b.len);
		buf_free(&b);
	} else {
		/* each EXPUNGE renumbers the messages after it; a context's
		   REMOVEFROM goes before the EXPUNGE (RFC 5267 4.3) */
		for (unsigned int i = 0; i < ch.nexpunged; i++) {
			unsigned int seq = ch.expunged_pos[i] - i + 1;

			imap_context_expunged(s, ch.expunged[i], seq);
			imap_printf(s, "* %u EXPUNGE\r\n", seq);
		}
	}
	s->nview -= ch.nexpunged;
	msgs = store_mailbox_msgs(s->box, &n);
	if (ch.nnew > 0 || n != s->nview) {
		unsigned int before = s->nview;

		s->nview = n;
		imap_printf(s, "* %u EXISTS\r\n", n);
		if (ch.nnew > 0) {
			unsigned int recent = imap_recent_update(s);

			if (!s->rev2)
				imap_printf(s, "* %u RECENT\r\n", recent);
		}
		/* NOTIFY's MessageNew (fetch-att) */
		if (s->notify != NULL && n > before) {
			imap_notify_new_messages(s, before, n);
			msgs = store_mailbox_msgs(s->box, &n);
		}
	}
	for (unsigned int i = 0; i < ch.nchanged; i++) {
		int idx = store_mailbox_find_uid(s->box, ch.changed[i]);
		struct buf b;

		if (idx < 0)
			continue;
		imap_keywords_announce(s, msgs[idx].keywords);
		buf_init(&b, BUF_UNLIMITED);
		buf_printf(&b, "* %d FETCH (UID %u FLAGS ", idx + 1, msgs[idx].uid);
		imap_append_flags(&b, &msgs[idx], imap_msg_recent(s, msgs[idx].uid));
		if (s->condstore)
			buf_printf(&b, " MODSEQ (%llu)",
			    (unsigned long long)msgs[idx].modseq);
		buf_append_str(&b, ")\r\n");
		imap_write(s, b.data, b.len);
		buf_free(&b);
	}
	store_sync_changes_free(&ch);
	imap_context_notify(s);
}

void
imap_condstore_enable(struct imap_session *s)
{
	if (s->condstore)
		return;
	s->condstore = true;
	/* RFC 7162 §3.1: the first CONDSTORE-enabling command tells */
	if (s->box != NULL)
		imap_printf(s, "* OK [HIGHESTMODSEQ %llu] Highest\r\n",
		    (unsigned long long)store_mailbox_highestmodseq(s->box));
}

int
imap_resolve_set(struct imap_session *s, const char *setstr, bool uid,
    unsigned int **idx_r, unsigned int *n_r)
{
	struct imap_seqset set;
	const struct store_msg *msgs;
	const char *err;
	unsigned int *idx, n = 0, count = 0;

	if (setstr == NULL || imap_seqset_parse(setstr, 10000, &set, &err) < 0) {
		imap_tagged(s, "BAD", "%s", setstr == NULL ?
		    "Missing sequence set" : err);
		return -1;
	}
	idx = xcalloc(s->nview + 1, sizeof(*idx));
	msgs = s->box != NULL ? store_mailbox_msgs(s->box, &count) : NULL;
	if (set.searchres) {
		/* "$" (RFC 5182): the saved UIDs still in the view (both
		   ascending) */
		for (unsigned int i = 0, k = 0; i < s->nview &&
		    k < s->nsearchres;) {
			if (s->searchres[k] == msgs[i].uid) {
				idx[n++] = i++;
				k++;
			} else if (s->searchres[k] < msgs[i].uid) {
				k++;
			} else {
				i++;
			}
		}
	} else if (uid) {
		imap_seqset_normalize(&set, imap_view_last_uid(s));
		for (unsigned int i = 0; i < s->nview; i++) {
			if (imap_seqset_contains(&set, msgs[i].uid))
				idx[n++] = i;
		}
	} else {
		imap_seqset_normalize(&set, s->nview);
		if (set.count == 0 || set.ranges[set.count - 1].hi > s->nview) {
			imap_seqset_free(&set);
			free(idx);
			imap_tagged(s, "BAD", "Invalid sequence set: no such message");
			return -1;
		}
		for (unsigned int r = 0; r < set.count; r++) {
			for (uint32_t q = set.ranges[r].lo; q <= set.ranges[r].hi; q++)
				idx[n++] = q - 1;
		}
	}
	imap_seqset_free(&set);
	*idx_r = idx;
	*n_r = n;
	return 0;
}

static bool
is_keyword_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\]", c) == NULL;
}

int
imap_parse_flag_list(const struct imap_arg *arg, unsigned int *flags_r,
    char **keywords_r)
{
	static const struct { const char *name; unsigned int bit; } fl[] = {
		{ "\\Seen", STORE_FLAG_SEEN }, { "\\Answered", STORE_FLAG_ANSWERED },
		{ "\\Flagged", STORE_FLAG_FLAGGED }, { "\\Deleted", STORE_FLAG_DELETED },
		{ "\\Draft", STORE_FLAG_DRAFT },
	};
	const struct imap_arg *items = arg;
	unsigned int n = 1;
	struct buf kw;

	if (arg->type == IMAP_ARG_LIST) {
		items = arg->list;
		n = arg->count;
	}
	*flags_r = 0;
	buf_init(&kw, 64 * 1024);
	buf_append_str(&kw, "");
	for (unsigned int i = 0; i < n; i++) {
		const char *f = items[i].str;
		bool known = false;

		/* the keyword "NIL" is an atom like any other (a flag list
		   holds atoms only; NIL is not the empty list) */
		if (items[i].type != IMAP_ARG_ATOM && items[i].type != IMAP_ARG_NIL)
			goto bad;
		for (size_t j = 0; j < sizeof(fl) / sizeof(fl[0]); j++) {
			if (strcasecmp(f, fl[j].name) == 0) {
				*flags_r |= fl[j].bit;
				known = true;
			}
		}
		if (known || strcasecmp(f, "\\Recent") == 0)
			continue;
		if (f[0] == '\\')
			goto bad;
		for (const char *c = f; *c != '\0'; c++) {
			if (!is_keyword_char((unsigned char)*c))
				goto bad;
		}
		if (kw.len > 0)
			buf_append_c(&kw, ' ');
		if (buf_append_str(&kw, f) < 0)
			goto bad;
	}
	*keywords_r = buf_steal(&kw);
	return 0;
bad:
	buf_free(&kw);
	return -1;
}

/* --- simple commands -------------------------------------------------------- */

static void
cmd_capability(struct imap_session *s, const struct imap_arg *a,
    unsigned int n, bool uid)
{
	struct buf b;

	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "* CAPABILITY ");
	capability_string(s, &b);
	buf_append_str(&b, "\r\n");
	imap_write(s, b.data, b.len);
	buf_free(&b);
	imap_tagged(s, "OK", "Capability completed.");
}

static void
cmd_noop(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	imap_sync_selected(s);
	imap_tagged(s, "OK", "NOOP completed.");
}

void
imap_cmd_check(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	imap_sync_selected(s);
	imap_tagged(s, "OK", "CHECK completed.");
}

static void
cmd_logout(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	imap_printf(s, "* BYE Logging out\r\n");
	imap_tagged(s, "OK", "Logout completed.");
	s->state = IMAP_STATE_LOGOUT;
	s->closing = true;
}

static void
cmd_id(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	if (n != 1 || (a[0].type != IMAP_ARG_NIL && a[0].type != IMAP_ARG_LIST)) {
		imap_tagged(s, "BAD", "Invalid ID arguments");
		return;
	}
	imap_printf(s, "* ID (\"name\" \"tegami\")\r\n");
	imap_tagged(s, "OK", "ID completed.");
}

static void
cmd_enable(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	bool now_condstore = false, now_rev2 = false, now_utf8 = false;
	bool now_qresync = false;

	if (n == 0) {
		imap_tagged(s, "BAD", "Missing capability");
		return;
	}
	for (unsigned int i = 0; i < n; i++) {
		if (imap_arg_is_atom(&a[i], "CONDSTORE") && !s->condstore) {
			s->condstore = true;
			now_condstore = true;
		} else if (imap_arg_is_atom(&a[i], "QRESYNC") && !s->qresync) {
			/* QRESYNC implies CONDSTORE (RFC 7162 3.2.3) */
			s->qresync = true;
			s->condstore = true;
			now_qresync = true;
		}
		/* RFC 9051: no \Recent, ESEARCH replies, LIST in SELECT */
		if (imap_arg_is_atom(&a[i], "IMAP4rev2") && !s->rev2) {
			s->rev2 = true;
			now_rev2 = true;
		}
		if (imap_arg_is_atom(&a[i], "UTF8=ACCEPT") && !s->utf8) {
			s->utf8 = true;
			now_utf8 = true;
		}
	}
	/* only what this command newly enabled is listed (RFC 5161) */
	imap_printf(s, "* ENABLED%s%s%s%s\r\n", now_condstore ? " CONDSTORE" : "",
	    now_qresync ? " QRESYNC" : "", now_rev2 ? " IMAP4rev2" : "",
	    now_utf8 ? " UTF8=ACCEPT" : "");
	imap_tagged(s, "OK", "Enabled.");
}

void
imap_cmd_namespace(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	imap_printf(s, "* NAMESPACE ((\"\" \".\")) NIL NIL\r\n");
	imap_tagged(s, "OK", "Namespace completed.");
}

/* --- authentication ----------------------------------------------------------- */

static void
ask_auth(struct imap_session *s, const char *user, const char *pass)
{
	char esc[256];

	free(s->user);
	s->user = xstrdup(log_escape(esc, sizeof(esc), user, strlen(user)));
	free(s->login);
	s->login = xstrdup(user);
	if (s->hooks->on_auth == NULL) {
		imap_tagged(s, "NO", "[UNAVAILABLE] Authentication is not configured");
		return;
	}
	s->wait = WAIT_AUTH_HOOK;
	s->hooks->on_auth(s, user, pass, s->ctx);
}

static void
cmd_login(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	const char *user, *pass;

	if (n != 2 || (user = imap_arg_astring(&a[0])) == NULL ||
	    (pass = imap_arg_astring(&a[1])) == NULL) {
		imap_tagged(s, "BAD", "LOGIN needs a user name and a password");
		return;
	}
	if (!s->set.secure) {
		imap_tagged(s, "NO", "[PRIVACYREQUIRED] Use STARTTLS or port 993 first");
		return;
	}
	ask_auth(s, user, pass);
	/* the password lives in the parser's argument: wipe it now */
	str_wipe(a[1].str, a[1].len);
}

/* AUTHENTICATE PLAIN data: base64 of authzid NUL authcid NUL password. */
static void
auth_plain(struct imap_session *s, const char *b64)
{
	size_t len = strlen(b64);
	unsigned char *raw;
	int n;
	const char *authz, *user, *pass;
	size_t ul, pl;

	if (len == 0 || len % 4 != 0 || len > AUTH_LINE_MAX) {
		imap_tagged(s, "BAD", "Invalid base64 data");
		return;
	}
	raw = xmalloc(len + 1);
	n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len);
	if (n < 0) {
		free(raw);
		imap_tagged(s, "BAD", "Invalid base64 data");
		return;
	}
	/* EVP_DecodeBlock counts the padding as data */
	if (len >= 1 && b64[len - 1] == '=')
		n--;
	if (len >= 2 && b64[len - 2] == '=')
		n--;
	raw[n] = '\0';
	authz = (const char *)raw;
	user = memchr(raw, '\0', (size_t)n) != NULL ?
	    (const char *)raw + strlen(authz) + 1 : NULL;
	if (user == NULL || user >= (const char *)raw + n) {
		str_wipe(raw, (size_t)n);
		free(raw);
		imap_tagged(s, "BAD", "Invalid PLAIN data");
		return;
	}
	ul = strnlen(user, (size_t)((const char *)raw + n - user));
	pass = user + ul + 1;
	if (pass > (const char *)raw + n) {
		str_wipe(raw, (size_t)n);
		free(raw);
		imap_tagged(s, "BAD", "Invalid PLAIN data");
		return;
	}
	pl = (size_t)((const char *)raw + n - pass);
	if (strnlen(pass, pl) != pl || (*authz != '\0' && strcmp(authz, user) != 0)) {
		str_wipe(raw, (size_t)n);
		free(raw);
		imap_tagged(s, "NO", "[AUTHENTICATIONFAILED] Authentication failed.");
		return;
	}
	ask_auth(s, user, pass);
	str_wipe(raw, (size_t)n);
	free(raw);
}

/* base64 text, decoded and NUL-terminated (malloc'd), or NULL. */
static char *
b64_decode(const char *b64, size_t *len_r)
{
	size_t len = strlen(b64);
	unsigned char *raw;
	int n;

	if (len == 0 || len % 4 != 0 || len > AUTH_LINE_MAX)
		return NULL;
	raw = xmalloc(len + 1);
	n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len);
	if (n < 0) {
		free(raw);
		return NULL;
	}
	/* EVP_DecodeBlock counts the padding as data */
	if (b64[len - 1] == '=')
		n--;
	if (len >= 2 && b64[len - 2] == '=')
		n--;
	raw[n] = '\0';
	*len_r = (size_t)n;
	return (char *)raw;
}

/*
 * AUTHENTICATE LOGIN (the de-facto mechanism Outlook and others use):
 * "Username:" then "Password:", each answered in base64. Called with each
 * answer; the user name waits in s->auth_login between the two.
 */
static void
auth_login_step(struct imap_session *s, const char *b64)
{
	size_t len = 0;
	char *v = *b64 == '\0' ? NULL : b64_decode(b64, &len);

	if (v == NULL || strlen(v) != len || len == 0) {
		if (v != NULL)
			str_wipe(v, len);
		free(v);
		x_free(&s->auth_login);
		imap_tagged(s, "BAD", "Invalid base64 data");
		return;
	}
	if (s->auth_login == NULL) {
		s->auth_login = v;
		/* base64("Password:") */
		imap_printf(s, "+ UGFzc3dvcmQ6\r\n");
		s->wait = WAIT_AUTH_DATA;
		return;
	}
	ask_auth(s, s->auth_login, v);
	str_wipe(v, len);
	free(v);
	x_free(&s->auth_login);
}

static void
cmd_authenticate(struct imap_session *s, const struct imap_arg *a,
    unsigned int n, bool uid)
{
	const char *mech = n >= 1 ? imap_arg_astring(&a[0]) : NULL;
	const char *ir = n == 2 ? imap_arg_astring(&a[1]) : NULL;

	if (mech == NULL || n > 2 || (n == 2 && ir == NULL)) {
		imap_tagged(s, "BAD", "AUTHENTICATE needs a mechanism");
		return;
	}
	if (strcasecmp(mech, "PLAIN") == 0)
		s->auth_mech_login = false;
	else if (strcasecmp(mech, "LOGIN") == 0)
		s->auth_mech_login = true;
	else {
		imap_tagged(s, "NO", "Unsupported authentication mechanism");
		return;
	}
	if (!s->set.secure) {
		imap_tagged(s, "NO", "[PRIVACYREQUIRED] Use STARTTLS or port 993 first");
		return;
	}
	x_free(&s->auth_login);
	if (n == 2) {
		/* SASL-IR (RFC 4959): "=" is an empty initial response */
		if (s->auth_mech_login)
			auth_login_step(s, strcmp(ir, "=") != 0 ? ir : "");
		else
			auth_plain(s, strcmp(ir, "=") != 0 ? ir : "");
		str_wipe(a[1].str, a[1].len);
		return;
	}
	/* LOGIN asks "Username:" (base64) first; PLAIN asks nothing */
	imap_printf(s, s->auth_mech_login ? "+ VXNlcm5hbWU6\r\n" : "+ \r\n");
	s->wait = WAIT_AUTH_DATA;
}

static void
resume_cb(evutil_socket_t fd, short what, void *arg)
{
	process_input(arg);
}

/*
 * A banned client: NO [AUTHENTICATIONFAILED] to its login, then BYE and
 * the connection is closed.
 */
void
imap_session_auth_refuse_bye(struct imap_session *s, const char *bye)
{
	bool gone = s->closing;

	imap_session_auth_reply(s, false, NULL);
	if (gone)
		return;		/* finished already */
	imap_printf(s, "* BYE %s\r\n", bye);
	s->state = IMAP_STATE_LOGOUT;
	s->closing = true;
	bufferevent_disable(s->bev, EV_READ);
	bufferevent_enable(s->bev, EV_WRITE);
}

/*
 * The glue's verdict on a login: user+maildir (logged in), refuse (NO with
 * that text) or neither (wrong credentials).
 */
static void
auth_answer(struct imap_session *s, const char *user, const char *maildir,
    const char *refuse)
{
	char *err = NULL;

	if (s->wait != WAIT_AUTH_HOOK)
		panic("imap_session_auth_reply without a question");
	s->wait = WAIT_NONE;
	if (s->closing) {
		/* the client went away while we asked */
		finish(s);
		return;
	}
	if (refuse != NULL) {
		log_info("sid=%s event=imap_login_refused user=%s", s->sid, s->user);
		imap_tagged(s, "NO", "%s", refuse);
	} else if (user == NULL || maildir == NULL) {
		log_info("sid=%s event=imap_login_failed user=%s", s->sid, s->user);
		imap_tagged(s, "NO", "[AUTHENTICATIONFAILED] Authentication failed.");
	} else if (store_account_open(maildir, &s->acct, &err) < 0) {
		log_error("sid=%s event=imap_store_open_failed user=%s error=\"%s\"",
		    s->sid, s->user, err);
		free(err);
		imap_tagged(s, "NO", "[UNAVAILABLE] Mailbox is not available");
	} else {
		struct buf b;

		s->state = IMAP_STATE_AUTH;
		s->account = xstrdup(user);
		log_info("sid=%s event=imap_login user=%s", s->sid, s->user);
		buf_init(&b, BUF_UNLIMITED);
		capability_string(s, &b);
		imap_tagged(s, "OK", "[CAPABILITY %s] Logged in", buf_cstr(&b));
		buf_free(&b);
	}
	x_free(&s->login);
	x_free(&s->tag);
	/* go on from the loop, never from inside the glue's call */
	event_active(s->resume_ev, EV_TIMEOUT, 0);
}

void
imap_session_auth_reply(struct imap_session *s, bool ok, const char *maildir)
{
	if (ok)
		auth_answer(s, s->login, maildir, NULL);
	else
		auth_answer(s, NULL, NULL, NULL);
}

void
imap_session_auth_ok(struct imap_session *s, const char *user,
    const char *maildir)
{
	auth_answer(s, user, maildir, NULL);
}

void
imap_session_auth_refuse(struct imap_session *s, const char *resp)
{
	auth_answer(s, NULL, NULL, resp);
}

/* --- pushed changes and IDLE ------------------------------------------------------ */

/*
 * One reader of the store's inotify descriptor per event base, shared by
 * every session that has a mailbox selected; the store tells the sessions
 * concerned (notify_cb), so nothing polls per session.
 */
struct watch_reader {
	struct event_base *base;
	struct event *ev;
	struct event *retry;	/* folders wait for the index: look again */
	unsigned int refs;
};
static struct watch_reader readers[4];

#define WATCH_RETRY_MS 50

static void
watch_read_cb(evutil_socket_t fd, short what, void *arg)
{
	store_watch_dispatch();
}

static void
watch_retry_arm(struct watch_reader *r)
{
	struct timeval tv = { 0, WATCH_RETRY_MS * 1000 };

	if (!evtimer_pending(r->retry, NULL))
		evtimer_add(r->retry, &tv);
}

static void
watch_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	if (store_watch_retry())
		watch_retry_arm(arg);
}

/* From inside the store: only schedule. */
static void
watch_waiting_hook(void)
{
	for (size_t i = 0; i < sizeof(readers) / sizeof(readers[0]); i++) {
		if (readers[i].refs > 0)
			watch_retry_arm(&readers[i]);
	}
}

static void
watch_ref(struct imap_session *s, bool *held)
{
	int fd = store_watch_fd();
	struct watch_reader *free_slot = NULL;

	if (fd < 0)
		return;
	for (size_t i = 0; i < sizeof(readers) / sizeof(readers[0]); i++) {
		if (readers[i].refs > 0 && readers[i].base == s->base) {
			readers[i].refs++;
			*held = true;
			return;
		}
		if (readers[i].refs == 0 && free_slot == NULL)
			free_slot = &readers[i];
	}
	if (free_slot == NULL)
		return;		/* more loops than slots: those poll */
	free_slot->base = s->base;
	free_slot->ev = event_new(s->base, fd, EV_READ | EV_PERSIST,
	    watch_read_cb, NULL);
	event_add(free_slot->ev, NULL);
	free_slot->retry = evtimer_new(s->base, watch_retry_cb, free_slot);
	store_watch_set_waiting_hook(watch_waiting_hook);
	free_slot->refs = 1;
	*held = true;
}

static void
watch_unref(struct imap_session *s, bool *held)
{
	for (size_t i = 0; i < sizeof(readers) / sizeof(readers[0]); i++) {
		struct watch_reader *r = &readers[i];

		if (r->refs > 0 && r->base == s->base) {
			if (--r->refs == 0) {
				event_free(r->ev);
				event_free(r->retry);
				memset(r, 0, sizeof(*r));
			}
			break;
		}
	}
	*held = false;
}

void
imap_watch_reader(struct imap_session *s, bool *held, bool on)
{
	if (on && !*held)
		watch_ref(s, held);
	else if (!on && *held)
		watch_unref(s, held);
}

/* From inside the store: only schedule. */
static void
notify_cb(void *ctx)
{
	struct imap_session *s = ctx;

	/* with NOTIFY (selected ...), also between commands (RFC 5465 5) */
	if (s->wait == WAIT_IDLE || imap_notify_selected_push(s))
		event_active(s->notify_ev, EV_TIMEOUT, 0);
}

static void
notify_ev_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imap_session *s = arg;

	if ((s->wait == WAIT_IDLE || imap_notify_selected_push(s)) &&
	    s->box != NULL && !s->closing)
		imap_sync_selected(s);
}

void
imap_watch_selected(struct imap_session *s, bool on)
{
	if (on && s->box != NULL) {
		store_mailbox_set_notify(s->box, notify_cb, s);
		if (!s->watching)
			watch_ref(s, &s->watching);
	} else {
		if (s->box != NULL)
			store_mailbox_set_notify(s->box, NULL, NULL);
		if (s->watching)
			watch_unref(s, &s->watching);
	}
}

/* Are changes pushed to this session, or must IDLE poll? */
static bool
idle_pushed(const struct imap_session *s)
{
	return s->box == NULL || (s->watching && store_mailbox_watched(s->box));
}

static unsigned int
idle_tick_ms(const struct imap_session *s)
{
	return idle_pushed(s) ? IDLE_KEEPALIVE_MS : s->set.idle_poll_ms;
}

static void
idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imap_session *s = arg;

	/* polling (no inotify): cheap unless something changed */
	if (!idle_pushed(s) && store_mailbox_changed(s->box))
		imap_sync_selected(s);
	/* a line every two minutes keeps NAT and firewall state alive */
	if (++s->idle_polls * idle_tick_ms(s) >= IDLE_KEEPALIVE_MS) {
		s->idle_polls = 0;
		imap_printf(s, "* OK Still here\r\n");
	}
}

static void
cmd_idle(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	unsigned int ms = idle_tick_ms(s);
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	imap_sync_selected(s);
	imap_printf(s, "+ idling\r\n");
	/* an IDLE client stays as long as it likes: the inactivity timeout
	   is off until DONE, the keepalive lines find dead peers */
	bufferevent_set_timeouts(s->bev, NULL, NULL);
	s->wait = WAIT_IDLE;
	s->idle_polls = 0;
	event_add(s->idle_ev, &tv);
	/* a change between the sync above and now */
	if (s->box != NULL && idle_pushed(s) && store_mailbox_changed(s->box))
		event_active(s->notify_ev, EV_TIMEOUT, 0);
}

/* --- STARTTLS ----------------------------------------------------------------------- */

static void read_cb(struct bufferevent *bev, void *arg);
static void write_cb(struct bufferevent *bev, void *arg);
static void event_cb(struct bufferevent *bev, short what, void *arg);

/*
 * Puts a filter (TLS, DEFLATE) on top of the session's bufferevent: the
 * read timeout moves up to it, the callbacks are ours.
 */
static void
push_filter(struct imap_session *s, struct bufferevent *top)
{
	struct timeval tv;

	bufferevent_set_timeouts(s->bev, NULL, NULL);
	s->bev = top;
	tv.tv_sec = s->set.idle_timeout_ms / 1000;
	tv.tv_usec = (s->set.idle_timeout_ms % 1000) * 1000;
	bufferevent_set_timeouts(top, &tv, NULL);
	bufferevent_setcb(top, read_cb, write_cb, event_cb, s);
	bufferevent_enable(top, EV_READ | EV_WRITE);
}

static void
cmd_starttls(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	struct bufferevent *tls;
	SSL *ssl;
	size_t junk;

	if (s->tls) {
		imap_tagged(s, "BAD", "TLS is already active");
		return;
	}
	if (s->set.ssl_ctx == NULL || (ssl = SSL_new(s->set.ssl_ctx)) == NULL) {
		imap_tagged(s, "BAD", "STARTTLS is not available");
		return;
	}
	imap_tagged(s, "OK", "Begin TLS negotiation now.");
	/* what the client sent before it could see our OK is dropped */
	junk = evbuffer_get_length(in);
	if (junk > 0) {
		log_info("sid=%s event=imap_starttls_injection bytes=%zu", s->sid, junk);
		evbuffer_drain(in, junk);
	}
	imap_parser_reset(s->parser);
	/* the OK is already queued on the plain bufferevent, ahead of
	   anything the TLS filter will write */
	tls = bufferevent_openssl_filter_new(s->base, s->bev, ssl,
	    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (tls == NULL) {
		SSL_free(ssl);
		log_error("event=imap_starttls_failed");
		s->closing = true;
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(tls, 1);
	s->tls = true;
	s->set.secure = true;
	push_filter(s, tls);
}

/* --- COMPRESS (RFC 4978) ------------------------------------------------------------ */

static void
cmd_compress(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	struct bufferevent *under = s->bev, *z;

	if (!s->set.compress) {
		imap_tagged(s, "BAD", "Unknown command");
		return;
	}
	if (n != 1 || imap_arg_astring(&a[0]) == NULL) {
		imap_tagged(s, "BAD", "COMPRESS needs a mechanism");
		return;
	}
	if (!imap_arg_is_atom(&a[0], "DEFLATE")) {
		imap_tagged(s, "NO", "Unknown compression mechanism");
		return;
	}
	if (s->compressed) {
		imap_tagged(s, "NO", "[COMPRESSIONACTIVE] DEFLATE is active already");
		return;
	}
	/* the OK goes out plain, ahead of everything the filter writes */
	imap_tagged(s, "OK", "DEFLATE active");
	z = deflate_filter_new(under, BEV_OPT_DEFER_CALLBACKS);
	if (z == NULL) {
		log_error("sid=%s event=imap_compress_failed", s->sid);
		s->closing = true;
		return;
	}
	s->compressed = true;
	push_filter(s, z);
	log_debug("sid=%s event=imap_compress", s->sid);
	/* bytes the client sent right after the command are compressed
	   already: let the filter take them */
	if (evbuffer_get_length(bufferevent_get_input(under)) > 0)
		bufferevent_trigger(under, EV_READ, BEV_TRIG_IGNORE_WATERMARKS);
}

/* --- the command table ---------------------------------------------------------------- */

static const struct imap_cmd_def commands[] = {
	{ "CAPABILITY", cmd_capability, CMD_NOT_AUTH | CMD_AUTH },
	{ "NOOP", cmd_noop, CMD_NOT_AUTH | CMD_AUTH },
	{ "LOGOUT", cmd_logout, CMD_NOT_AUTH | CMD_AUTH },
	{ "ID", cmd_id, CMD_NOT_AUTH | CMD_AUTH },
	{ "STARTTLS", cmd_starttls, CMD_NOT_AUTH },
	{ "LOGIN", cmd_login, CMD_NOT_AUTH },
	{ "AUTHENTICATE", cmd_authenticate, CMD_NOT_AUTH },
	{ "ENABLE", cmd_enable, CMD_AUTH },
	{ "COMPRESS", cmd_compress, CMD_AUTH },
	{ "NAMESPACE", imap_cmd_namespace, CMD_AUTH },
	{ "SELECT", imap_cmd_select, CMD_AUTH },
	{ "EXAMINE", imap_cmd_examine, CMD_AUTH },
	{ "CREATE", imap_cmd_create, CMD_AUTH },
	{ "DELETE", imap_cmd_delete, CMD_AUTH },
	{ "RENAME", imap_cmd_rename, CMD_AUTH },
	{ "SUBSCRIBE", imap_cmd_subscribe, CMD_AUTH },
	{ "UNSUBSCRIBE", imap_cmd_unsubscribe, CMD_AUTH },
	{ "LIST", imap_cmd_list, CMD_AUTH },
	{ "LSUB", imap_cmd_lsub, CMD_AUTH },
	{ "STATUS", imap_cmd_status, CMD_AUTH },
	{ "APPEND", imap_cmd_append, CMD_AUTH },
	{ "GETQUOTA", imap_cmd_getquota, CMD_AUTH },
	{ "GETQUOTAROOT", imap_cmd_getquotaroot, CMD_AUTH },
	{ "SETQUOTA", imap_cmd_setquota, CMD_AUTH },
	{ "GENURLAUTH", imap_cmd_genurlauth, CMD_AUTH | CMD_URLAUTH },
	{ "RESETKEY", imap_cmd_resetkey, CMD_AUTH | CMD_URLAUTH },
	{ "URLFETCH", imap_cmd_urlfetch, CMD_AUTH | CMD_URLAUTH },
	{ "IDLE", cmd_idle, CMD_AUTH },
	{ "NOTIFY", imap_cmd_notify, CMD_AUTH },
	{ "CHECK", imap_cmd_check, CMD_AUTH | CMD_SELECTED },
	{ "CLOSE", imap_cmd_close, CMD_AUTH | CMD_SELECTED },
	{ "UNSELECT", imap_cmd_unselect, CMD_AUTH | CMD_SELECTED },
	{ "EXPUNGE", imap_cmd_expunge, CMD_AUTH | CMD_SELECTED | CMD_UID },
	{ "FETCH", imap_cmd_fetch, CMD_AUTH | CMD_SELECTED | CMD_UID },
	{ "STORE", imap_cmd_store, CMD_AUTH | CMD_SELECTED | CMD_UID },
	{ "COPY", imap_cmd_copy, CMD_AUTH | CMD_SELECTED | CMD_UID },
	{ "MOVE", imap_cmd_move, CMD_AUTH | CMD_SELECTED | CMD_UID },
	{ "SEARCH", imap_cmd_search, CMD_AUTH | CMD_SELECTED | CMD_UID },
	{ "SORT", imap_cmd_sort, CMD_AUTH | CMD_SELECTED | CMD_UID },
	{ "THREAD", imap_cmd_thread, CMD_AUTH | CMD_SELECTED | CMD_UID },
	{ "CANCELUPDATE", imap_cmd_cancelupdate, CMD_AUTH | CMD_SELECTED },
};

static const struct imap_cmd_def *
find_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcasecmp(commands[i].name, name) == 0)
			return &commands[i];
	}
	return NULL;
}

static void
run_command(struct imap_session *s, const struct imap_command *cmd)
{
	const struct imap_cmd_def *def;
	const struct imap_arg *args = cmd->args.list;
	unsigned int nargs = cmd->args.count;
	bool uid = false;

	s->tag = xstrdup(cmd->tag);
	def = find_command(cmd->name);
	if (def == NULL && strcasecmp(cmd->name, "UID") == 0 && nargs > 0 &&
	    args[0].type == IMAP_ARG_ATOM) {
		def = find_command(args[0].str);
		if (def != NULL && (def->flags & CMD_UID) == 0)
			def = NULL;
		uid = true;
		args++;
		nargs--;
	}
	if (def != NULL && (def->flags & CMD_URLAUTH) != 0 && !s->set.urlauth)
		def = NULL;
	if (def == NULL) {
		imap_tagged(s, "BAD", "Unknown command");
	} else if (s->state == IMAP_STATE_NOT_AUTH &&
	    (def->flags & CMD_NOT_AUTH) == 0) {
		imap_tagged(s, "BAD", "Log in first");
	} else if (s->state != IMAP_STATE_NOT_AUTH &&
	    (def->flags & CMD_AUTH) == 0) {
		imap_tagged(s, "BAD", "Already logged in");
	} else if ((def->flags & CMD_SELECTED) != 0 &&
	    s->state != IMAP_STATE_SELECTED) {
		imap_tagged(s, "BAD", "No mailbox selected");
	} else if (imap_utf8_mailbox_args(s, def->name, args, nargs) == 0) {
		/* (names in UTF-8 are now the store's modified UTF-7) */
		def->fn(s, args, nargs, uid);
	}
	if (s->wait == WAIT_NONE) {
		x_free(&s->tag);
		imap_notify_command_done(s);
	}
}

static void
parse_error(struct imap_session *s)
{
	const struct imap_parse_error *e = imap_parser_error(s->parser);
	const char *tag = imap_parser_tag(s->parser);
	const char *name = imap_parser_name(s->parser);

	s->tag = xstrdup(tag != NULL ? tag : "*");
	if (e->line_too_long) {
		imap_printf(s, "* BYE Command line too long\r\n");
		s->closing = true;
		s->state = IMAP_STATE_LOGOUT;
	} else if (e->code != NULL && strcmp(e->code, "TOOBIG") == 0 &&
	    name != NULL && strcasecmp(name, "APPEND") == 0) {
		imap_tagged(s, "NO", "[TOOBIG] Message too large");
	} else if (e->code != NULL) {
		imap_tagged(s, "BAD", "[%s] %s", e->code, e->text);
	} else {
		imap_tagged(s, "BAD", "[CLIENTBUG] %s", e->text);
	}
	x_free(&s->tag);
}

/* A line while waiting for AUTHENTICATE data or for DONE. */
static void
handle_line(struct imap_session *s, char *line, size_t len)
{
	if (s->wait == WAIT_IDLE) {
		struct timeval tv = {
			.tv_sec = s->set.idle_timeout_ms / 1000,
			.tv_usec = (s->set.idle_timeout_ms % 1000) * 1000,
		};

		event_del(s->idle_ev);
		bufferevent_set_timeouts(s->bev, &tv, NULL);
		s->wait = WAIT_NONE;
		if (strcasecmp(line, "DONE") == 0)
			imap_tagged(s, "OK", "Idle completed.");
		else
			imap_tagged(s, "BAD", "Expected DONE");
		x_free(&s->tag);
		return;
	}
	/* WAIT_AUTH_DATA */
	s->wait = WAIT_NONE;
	if (strcmp(line, "*") == 0) {
		x_free(&s->auth_login);
		imap_tagged(s, "BAD", "Authentication aborted");
	} else if (s->auth_mech_login) {
		auth_login_step(s, line);
	} else {
		auth_plain(s, line);
	}
	str_wipe(line, len);
	if (s->wait != WAIT_AUTH_HOOK && s->wait != WAIT_AUTH_DATA)
		x_free(&s->tag);
}

/*
 * An APPEND literal that would take the account over its quota is
 * refused before the client sends it (RFC 9208 4.2: NO [OVERQUOTA]).
 */
static bool
append_over_quota(struct imap_session *s)
{
	const char *name = imap_parser_name(s->parser);
	const char *tag = imap_parser_tag(s->parser);

	if (s->state == IMAP_STATE_NOT_AUTH || name == NULL || tag == NULL ||
	    strcasecmp(name, "APPEND") != 0 ||
	    imap_quota_check(s, NULL, imap_parser_literal_total(s->parser)) == 0)
		return false;
	imap_parser_refuse_literal(s->parser);
	s->tag = xstrdup(tag);
	imap_tagged(s, "NO", "[OVERQUOTA] Quota exceeded (mailbox for user is full)");
	x_free(&s->tag);
	return true;
}

static void
process_input(struct imap_session *s)
{
	while (!s->closing) {
		/* fetched each time: STARTTLS replaces s->bev */
		struct evbuffer *in = bufferevent_get_input(s->bev);
		struct evbuffer_iovec v;
		enum imap_parse_result r;
		size_t consumed;

		if (s->wait == WAIT_AUTH_HOOK || s->wait == WAIT_OUTPUT ||
		    s->wait == WAIT_JOB)
			return;
		/* the last command is over: its arguments can go */
		if (s->wait == WAIT_NONE)
			imap_parser_release(s->parser);
		if (s->wait == WAIT_IDLE || s->wait == WAIT_AUTH_DATA) {
			size_t len;
			char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);

			if (line == NULL) {
				if (evbuffer_get_length(in) > AUTH_LINE_MAX) {
					imap_printf(s, "* BYE Line too long\r\n");
					s->closing = true;
				}
				return;
			}
			handle_line(s, line, len);
			free(line);
			continue;
		}
		if (evbuffer_get_length(in) == 0)
			return;
		if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
			return;
		r = imap_parser_feed(s->parser, v.iov_base, v.iov_len, &consumed);
		/* command bytes may hold passwords: wipe before draining */
		str_wipe(v.iov_base, consumed);
		evbuffer_drain(in, consumed);
		switch (r) {
		case IMAP_PARSE_MORE:
			break;
		case IMAP_PARSE_CONTINUE:
			if (append_over_quota(s))
				break;
			imap_printf(s, "+ OK\r\n");
			break;
		case IMAP_PARSE_DONE:
			run_command(s, imap_parser_command(s->parser));
			break;
		case IMAP_PARSE_ERROR:
			parse_error(s);
			break;
		}
	}
}

/* --- the connection --------------------------------------------------------------------- */

#define DRAIN_TICK_MS 20
#define DRAIN_MAX_TICKS 1500	/* 30 s for a client to take the last reply */

/*
 * Is everything we wrote on its way? After STARTTLS the session's
 * bufferevent is a TLS filter: its output drains into the socket's
 * bufferevent below, which must be empty too before the socket is closed,
 * or the last reply (LOGOUT's OK, a BYE) is lost.
 */
static bool
output_drained(struct imap_session *s)
{
	/* every layer: DEFLATE over TLS over the socket */
	for (struct bufferevent *b = s->bev; b != NULL;
	    b = bufferevent_get_underlying(b)) {
		if (evbuffer_get_length(bufferevent_get_output(b)) > 0)
			return false;
	}
	return true;
}

static void
drain_cb(evutil_socket_t fd, short what, void *arg)
{
	struct imap_session *s = arg;
	struct timeval tv = { 0, DRAIN_TICK_MS * 1000 };

	if (output_drained(s) || ++s->drain_ticks >= DRAIN_MAX_TICKS) {
		finish(s);
		return;
	}
	evtimer_add(s->drain_ev, &tv);
}

/* Closes once the output has left; never from inside a callback chain. */
static void
finish_when_drained(struct imap_session *s)
{
	struct timeval tv = { 0, output_drained(s) ? 0 : DRAIN_TICK_MS * 1000 };

	if (output_drained(s) && bufferevent_get_underlying(s->bev) == NULL) {
		finish(s);
		return;
	}
	if (s->drain_ev == NULL)
		s->drain_ev = evtimer_new(bufferevent_get_base(s->bev), drain_cb,
		    s);
	if (!evtimer_pending(s->drain_ev, NULL))
		evtimer_add(s->drain_ev, &tv);
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct imap_session *s = arg;

	process_input(s);
	if (s->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		finish_when_drained(s);
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct imap_session *s = arg;

	if (s->closing) {
		finish_when_drained(s);
		return;
	}
	if (s->wait == WAIT_OUTPUT && s->cont.fn != NULL &&
	    imap_output_pending(s) <= IMAP_OUTPUT_LOW)
		s->cont.fn(s);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct imap_session *s = arg;

	if ((what & BEV_EVENT_TIMEOUT) != 0) {
		s->state = IMAP_STATE_LOGOUT;
		s->closing = true;
		imap_printf(s, "* BYE Disconnected for inactivity.\r\n");
		bufferevent_disable(bev, EV_READ);
		bufferevent_enable(bev, EV_WRITE);
		return;
	}
	if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) != 0)
		finish(s);
}

struct imap_session *
imap_session_new(struct event_base *base, struct bufferevent *bev,
    const struct imap_settings *settings, const struct imap_hooks *hooks,
    void *ctx)
{
	struct imap_session *s = xcalloc(1, sizeof(*s));
	struct imap_parser_limits lim;
	struct timeval tv;
	struct buf b;

	s->base = base;
	s->bev = bev;
	s->set = *settings;
	/* Our own reference: a certificate reload may drop the worker's. */
	if (s->set.ssl_ctx != NULL)
		SSL_CTX_up_ref(s->set.ssl_ctx);
	if (s->set.max_line == 0)
		s->set.max_line = DEFAULT_MAX_LINE;
	if (s->set.max_literal == 0)
		s->set.max_literal = DEFAULT_MAX_LITERAL;
	if (s->set.idle_timeout_ms == 0)
		s->set.idle_timeout_ms = DEFAULT_IDLE_TIMEOUT_MS;
	if (s->set.idle_poll_ms == 0)
		s->set.idle_poll_ms = DEFAULT_IDLE_POLL_MS;
	s->hooks = hooks;
	s->ctx = ctx;
	lim.max_line = s->set.max_line;
	lim.max_literal = s->set.max_literal;
	lim.max_literal_total = s->set.max_literal * 2;
	lim.max_depth = MAX_DEPTH;
	lim.max_args = MAX_ARGS;
	s->parser = imap_parser_create(&lim);
	{
		static unsigned long long seq;
		struct timeval now;

		/* the time, the process (the imap workers are several), a
		   count: unique in the log unless 65,536 come in a second */
		gettimeofday(&now, NULL);
		snprintf(s->sid, sizeof(s->sid), "%08llx%04x%04llx",
		    (unsigned long long)(now.tv_sec & 0xffffffff),
		    (unsigned int)getpid() & 0xffff, ++seq & 0xffff);
	}
	log_debug("sid=%s event=imap_connect", s->sid);
	s->resume_ev = event_new(base, -1, 0, resume_cb, s);
	s->idle_ev = event_new(base, -1, EV_PERSIST, idle_cb, s);
	s->notify_ev = event_new(base, -1, 0, notify_ev_cb, s);
	tv.tv_sec = s->set.idle_timeout_ms / 1000;
	tv.tv_usec = (s->set.idle_timeout_ms % 1000) * 1000;
	bufferevent_set_timeouts(bev, &tv, NULL);
	bufferevent_setcb(bev, read_cb, write_cb, event_cb, s);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	if (s->set.greeting_bye != NULL) {
		imap_printf(s, "* BYE %s\r\n", s->set.greeting_bye);
		s->state = IMAP_STATE_LOGOUT;
		s->closing = true;
		bufferevent_disable(bev, EV_READ);
		return s;
	}
	buf_init(&b, BUF_UNLIMITED);
	capability_string(s, &b);
	imap_printf(s, "* OK [CAPABILITY %s] %s ready.\r\n", buf_cstr(&b),
	    s->set.hostname != NULL ? s->set.hostname : "tegami");
	buf_free(&b);
	return s;
}

void
imap_session_shutdown(struct imap_session *s)
{
	s->state = IMAP_STATE_LOGOUT;
	finish(s);
}

void
imap_session_destroy(struct imap_session *s)
{
	/* work on the pool finishes without us */
	if (s->job != NULL)
		s->job->s = NULL;
	if (s->cont.free_fn != NULL)
		s->cont.free_fn(s->cont.state);
	imap_search_reset(s);
	imap_notify_free(s);
	imap_watch_selected(s, false);
	store_mailbox_close(&s->box);
	store_account_close(&s->acct);
	if (s->set.ssl_ctx != NULL)
		SSL_CTX_free(s->set.ssl_ctx);
	imap_parser_free(&s->parser);
	event_free(s->resume_ev);
	event_free(s->idle_ev);
	event_free(s->notify_ev);
	if (s->drain_ev != NULL)
		event_free(s->drain_ev);
	bufferevent_free(s->bev);
	free(s->keywords_known);
	free(s->recent);
	free(s->tag);
	free(s->user);
	free(s->login);
	free(s->account);
	if (s->auth_login != NULL)
		str_wipe(s->auth_login, strlen(s->auth_login));
	free(s->auth_login);
	free(s);
}

static void
finish(struct imap_session *s)
{
	const struct imap_hooks *hooks = s->hooks;
	void *ctx = s->ctx;

	if (s->wait == WAIT_AUTH_HOOK || s->wait == WAIT_JOB) {
		/* the glue or the pool still owes us an answer: wait for it */
		s->closing = true;
		bufferevent_disable(s->bev, EV_READ | EV_WRITE);
		return;
	}
	log_debug("sid=%s event=imap_disconnect user=%s", s->sid,
	    s->user != NULL ? s->user : "-");
	if (hooks->on_disconnect != NULL)
		hooks->on_disconnect(s, ctx);
	imap_session_destroy(s);
}
