/*
 * SEARCH and UID SEARCH with the basic RFC 9051 keys: flags, KEYWORD,
 * sizes, sequence and UID sets, internal dates, NOT, OR, parentheses and
 * substring searches in header fields, the body and the whole text
 * (ASCII case-insensitive, on the raw message). SENT* compare the
 * calendar day written in the Date: field, ignoring its zone (RFC 9051
 * 6.4.4); without a readable Date: they use the internal date. Not yet:
 * MIME decoding of the text, ESEARCH, SEARCHRES.
 */
#include "imap/session-private.h"
#include "imap/bodystructure.h"

#include "lib/file.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "mail/header.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MESSAGE_MAX (1024u * 1024 * 1024)
#define MAX_SEARCH_DEPTH 32
#define ADDRESS_SEARCH_MAX 16384	/* of one address header, unfolded */

struct search_ctx {
	struct imap_session *s;
	bool uid;
	bool syntax_only;
	bool error;
	const char *errtext;
	/* the message being tested */
	unsigned int idx;
	const struct store_msg *m;
	bool used_modseq;	/* a MODSEQ key: say the highest (RFC 7162) */
	char *data;		/* loaded on demand */
	size_t len;
	bool loaded;
};

static bool
load(struct search_ctx *c)
{
	if (!c->loaded) {
		char *path = store_msg_full_path(c->s->box, c->m);

		c->loaded = true;
		if (file_read_all(path, MESSAGE_MAX, &c->data, &c->len) < 0) {
			c->data = NULL;
			c->len = 0;
		}
		free(path);
	}
	return c->data != NULL;
}

static bool
contains_ci(const char *hay, size_t hlen, const char *needle)
{
	size_t nlen = strlen(needle);

	if (nlen == 0)
		return true;
	for (size_t i = 0; i + nlen <= hlen; i++) {
		if (strncasecmp(hay + i, needle, nlen) == 0)
			return true;
	}
	return false;
}

/*
 * address: FROM/TO/CC/BCC also match the parsed addresses ("name
 * <mailbox@host>"), so that comments, quoting and folding inside an
 * address do not hide it (imaptest search-addresses).
 */
static bool
header_contains(struct search_ctx *c, const char *field, const char *needle,
    bool address)
{
	struct mail_header_iter it;
	struct mail_header_field f;
	size_t end, flen = strlen(field);

	if (!load(c))
		return false;
	end = mail_header_block_end(c->data, 0, c->len);
	mail_header_iter_init(&it, c->data, 0, end);
	while (mail_header_next(&it, &f) > 0) {
		if (f.name_len != flen || strncasecmp(f.name, field, flen) != 0)
			continue;
		if (contains_ci(f.value, f.value_len, needle))
			return true;
		if (address) {
			char *v = mail_header_unfold(f.value, f.value_len,
			    ADDRESS_SEARCH_MAX);
			char *t = v != NULL ? imap_address_list_text(v) : NULL;
			bool hit = t != NULL && contains_ci(t, strlen(t), needle);

			free(v);
			free(t);
			if (hit)
				return true;
		}
	}
	return false;
}

/* "1-Feb-1994" -> start of that day (UTC); -1 if invalid */
static time_t
parse_date(const char *s)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	struct tm tm;
	char mon[4];
	int day, year, n = 0;
	const char *p;

	if (sscanf(s, "%2d-%3s-%4d%n", &day, mon, &year, &n) != 3 || s[n] != '\0')
		return -1;
	p = strcasestr(months, mon);
	if (p == NULL || (p - months) % 3 != 0 || day < 1 || day > 31)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_mday = day;
	tm.tm_mon = (int)(p - months) / 3;
	tm.tm_year = year - 1900;
	return timegm(&tm);
}

/*
 * The day written in an RFC 5322 date ("Sun, 25 Mar 2007 04:00:00 +0300"
 * -> 25-Mar-2007 00:00 UTC); the zone is ignored, as SENT* want. -1 if
 * the text is not a date.
 */
static time_t
parse_header_day(const char *s, size_t len)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	char tmp[64], mon[4];
	const char *p, *m;
	struct tm tm;
	int day, year, n = 0;

	if (len >= sizeof(tmp))
		len = sizeof(tmp) - 1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	p = strchr(tmp, ',');
	p = p != NULL ? p + 1 : tmp;
	if (sscanf(p, " %2d %3s %4d%n", &day, mon, &year, &n) != 3)
		return -1;
	if (strlen(mon) != 3 || (m = strcasestr(months, mon)) == NULL ||
	    (m - months) % 3 != 0 || day < 1 || day > 31 || year < 0)
		return -1;
	/* RFC 5322 4.3: obsolete two- and three-digit years */
	if (year < 50)
		year += 2000;
	else if (year < 1000)
		year += 1900;
	memset(&tm, 0, sizeof(tm));
	tm.tm_mday = day;
	tm.tm_mon = (int)(m - months) / 3;
	tm.tm_year = year - 1900;
	return timegm(&tm);
}

/* the day of the message's Date: field, or of its internal date */
static time_t
sent_day(struct search_ctx *c)
{
	struct mail_header_iter it;
	struct mail_header_field f;
	time_t t = c->m->internaldate;

	if (load(c)) {
		size_t end = mail_header_block_end(c->data, 0, c->len);

		mail_header_iter_init(&it, c->data, 0, end);
		while (mail_header_next(&it, &f) > 0) {
			if (f.name_len == 4 && strncasecmp(f.name, "Date", 4) == 0) {
				time_t d = parse_header_day(f.value, f.value_len);

				if (d != -1)
					return d;
				break;
			}
		}
	}
	return t - t % 86400;
}

static bool match_key(struct search_ctx *c, const struct imap_arg *a,
    unsigned int n, unsigned int *i, unsigned int depth);

static const char *
next_string(struct search_ctx *c, const struct imap_arg *a, unsigned int n,
    unsigned int *i)
{
	const char *v = *i < n ? imap_arg_astring(&a[*i]) : NULL;

	if (v == NULL) {
		c->error = true;
		c->errtext = "Missing search argument";
		return NULL;
	}
	(*i)++;
	return v;
}

static bool
match_set(struct search_ctx *c, const char *setstr, bool uid)
{
	struct imap_seqset set;
	const char *err;
	bool r;

	if (imap_seqset_parse(setstr, 10000, &set, &err) < 0 || set.searchres) {
		imap_seqset_free(&set);
		c->error = true;
		c->errtext = "Invalid sequence set";
		return false;
	}
	if (c->syntax_only) {
		imap_seqset_free(&set);
		return false;
	}
	if (uid) {
		imap_seqset_normalize(&set, imap_view_last_uid(c->s));
		r = imap_seqset_contains(&set, c->m->uid);
	} else {
		imap_seqset_normalize(&set, c->s->nview);
		r = imap_seqset_contains(&set, c->idx + 1);
	}
	imap_seqset_free(&set);
	return r;
}

static bool
match_key(struct search_ctx *c, const struct imap_arg *a, unsigned int n,
    unsigned int *i, unsigned int depth)
{
	static const struct { const char *name; unsigned int flag; bool set; } fl[] = {
		{ "ANSWERED", STORE_FLAG_ANSWERED, true },
		{ "DELETED", STORE_FLAG_DELETED, true },
		{ "DRAFT", STORE_FLAG_DRAFT, true },
		{ "FLAGGED", STORE_FLAG_FLAGGED, true },
		{ "SEEN", STORE_FLAG_SEEN, true },
		{ "UNANSWERED", STORE_FLAG_ANSWERED, false },
		{ "UNDELETED", STORE_FLAG_DELETED, false },
		{ "UNDRAFT", STORE_FLAG_DRAFT, false },
		{ "UNFLAGGED", STORE_FLAG_FLAGGED, false },
		{ "UNSEEN", STORE_FLAG_SEEN, false },
	};
	static const char *const hdrkeys[] = { "SUBJECT", "FROM", "TO", "CC", "BCC" };
	const struct imap_arg *k;
	const char *v, *v2;
	bool sy = c->syntax_only;

	if (*i >= n || depth > MAX_SEARCH_DEPTH) {
		c->error = true;
		c->errtext = "Missing or too deep search key";
		return false;
	}
	k = &a[(*i)++];
	if (k->type == IMAP_ARG_LIST) {
		unsigned int j = 0;
		bool all = true;

		if (k->count == 0) {
			c->error = true;
			c->errtext = "Empty search list";
			return false;
		}
		while (j < k->count && !c->error) {
			if (!match_key(c, k->list, k->count, &j, depth + 1))
				all = false;
		}
		return all;
	}
	if (k->type != IMAP_ARG_ATOM) {
		c->error = true;
		c->errtext = "Unknown search key";
		return false;
	}
	for (size_t f = 0; f < sizeof(fl) / sizeof(fl[0]); f++) {
		if (strcasecmp(k->str, fl[f].name) == 0)
			return !sy && ((c->m->flags & fl[f].flag) != 0) == fl[f].set;
	}
	if (strcasecmp(k->str, "ALL") == 0)
		return !sy;
	if (strcasecmp(k->str, "RECENT") == 0 || strcasecmp(k->str, "OLD") == 0 ||
	    strcasecmp(k->str, "NEW") == 0) {
		bool recent = !sy && imap_msg_recent(c->s, c->m->uid);

		if (sy)
			return false;
		if (strcasecmp(k->str, "OLD") == 0)
			return !recent;
		if (strcasecmp(k->str, "NEW") == 0)
			return recent && (c->m->flags & STORE_FLAG_SEEN) == 0;
		return recent;
	}
	if (strcasecmp(k->str, "NOT") == 0) {
		bool r = match_key(c, a, n, i, depth + 1);

		return !sy && !r;
	}
	if (strcasecmp(k->str, "OR") == 0) {
		bool r1 = match_key(c, a, n, i, depth + 1);
		bool r2 = match_key(c, a, n, i, depth + 1);

		return !sy && (r1 || r2);
	}
	if (strcasecmp(k->str, "KEYWORD") == 0 || strcasecmp(k->str, "UNKEYWORD") == 0) {
		bool want = strcasecmp(k->str, "KEYWORD") == 0, has = false;
		size_t vl;
		const char *p;

		if ((v = next_string(c, a, n, i)) == NULL || sy)
			return false;
		vl = strlen(v);
		for (p = c->m->keywords; (p = strstr(p, v)) != NULL; p += vl) {
			if ((p == c->m->keywords || p[-1] == ' ') &&
			    (p[vl] == '\0' || p[vl] == ' '))
				has = true;
		}
		return has == want;
	}
	if (strcasecmp(k->str, "LARGER") == 0 || strcasecmp(k->str, "SMALLER") == 0) {
		unsigned long long sz;

		if ((v = next_string(c, a, n, i)) == NULL)
			return false;
		if (str_to_ullong(v, &sz) < 0) {
			c->error = true;
			c->errtext = "Invalid size";
			return false;
		}
		if (sy)
			return false;
		return strcasecmp(k->str, "LARGER") == 0 ? c->m->size > sz :
		    c->m->size < sz;
	}
	if (strcasecmp(k->str, "MODSEQ") == 0) {
		unsigned long long ms;

		/* MODSEQ [<entry-name> <entry-type>] <mod-sequence> */
		if (*i < n && a[*i].type == IMAP_ARG_QUOTED) {
			if (next_string(c, a, n, i) == NULL ||
			    next_string(c, a, n, i) == NULL)
				return false;
		}
		if ((v = next_string(c, a, n, i)) == NULL)
			return false;
		if (str_to_ullong(v, &ms) < 0) {
			c->error = true;
			c->errtext = "Invalid mod-sequence";
			return false;
		}
		c->used_modseq = true;
		return !sy && c->m->modseq >= ms;
	}
	if (strcasecmp(k->str, "UID") == 0) {
		if ((v = next_string(c, a, n, i)) == NULL)
			return false;
		return match_set(c, v, true);
	}
	if (strcasecmp(k->str, "BEFORE") == 0 || strcasecmp(k->str, "ON") == 0 ||
	    strcasecmp(k->str, "SINCE") == 0 || strcasecmp(k->str, "SENTBEFORE") == 0 ||
	    strcasecmp(k->str, "SENTON") == 0 || strcasecmp(k->str, "SENTSINCE") == 0) {
		bool sent = strncasecmp(k->str, "SENT", 4) == 0;
		const char *key = k->str + (sent ? 4 : 0);
		time_t day, t;

		if ((v = next_string(c, a, n, i)) == NULL)
			return false;
		if ((day = parse_date(v)) < 0) {
			c->error = true;
			c->errtext = "Invalid date";
			return false;
		}
		if (sy)
			return false;
		t = sent ? sent_day(c) : c->m->internaldate;
		if (strcasecmp(key, "BEFORE") == 0)
			return t < day;
		if (strcasecmp(key, "ON") == 0)
			return t >= day && t < day + 86400;
		return t >= day;
	}
	for (size_t h = 0; h < sizeof(hdrkeys) / sizeof(hdrkeys[0]); h++) {
		if (strcasecmp(k->str, hdrkeys[h]) == 0) {
			if ((v = next_string(c, a, n, i)) == NULL || sy)
				return false;
			return header_contains(c, hdrkeys[h], v, h > 0);
		}
	}
	if (strcasecmp(k->str, "HEADER") == 0) {
		if ((v = next_string(c, a, n, i)) == NULL ||
		    (v2 = next_string(c, a, n, i)) == NULL || sy)
			return false;
		return header_contains(c, v, v2, false);
	}
	if (strcasecmp(k->str, "BODY") == 0 || strcasecmp(k->str, "TEXT") == 0) {
		size_t start;

		if ((v = next_string(c, a, n, i)) == NULL || sy || !load(c))
			return false;
		start = strcasecmp(k->str, "BODY") == 0 ?
		    mail_header_block_end(c->data, 0, c->len) : 0;
		return contains_ci(c->data + start, c->len - start, v);
	}
	if (strchr("0123456789*", k->str[0]) != NULL)
		return match_set(c, k->str, false);
	c->error = true;
	c->errtext = "Unknown search key";
	return false;
}

/* All keys of the top level must match (an implicit AND). */
static bool
match_all(struct search_ctx *c, const struct imap_arg *a, unsigned int n)
{
	unsigned int i = 0;
	bool all = true;

	while (i < n && !c->error) {
		if (!match_key(c, a, n, &i, 0))
			all = false;
	}
	return all && !c->error;
}

void
imap_cmd_search(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	struct search_ctx c = { .s = s, .uid = uid, .syntax_only = true };
	const struct store_msg *msgs;
	unsigned int count;
	struct buf out;

	if (n >= 2 && imap_arg_is_atom(&a[0], "CHARSET")) {
		const char *cs = imap_arg_astring(&a[1]);

		if (cs == NULL || (strcasecmp(cs, "UTF-8") != 0 &&
		    strcasecmp(cs, "US-ASCII") != 0)) {
			imap_tagged(s, "NO", "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
			return;
		}
		a += 2;
		n -= 2;
	}
	if (n == 0) {
		imap_tagged(s, "BAD", "Missing search keys");
		return;
	}
	(void)match_all(&c, a, n);
	if (c.error) {
		imap_tagged(s, "BAD", "%s", c.errtext);
		return;
	}
	c.syntax_only = false;
	msgs = store_mailbox_msgs(s->box, &count);
	buf_init(&out, BUF_UNLIMITED);
	buf_append_str(&out, "* SEARCH");
	{
		uint64_t maxmod = 0;

		for (unsigned int i = 0; i < count; i++) {
			c.idx = i;
			c.m = &msgs[i];
			c.loaded = false;
			if (match_all(&c, a, n)) {
				buf_printf(&out, " %u", uid ? msgs[i].uid : i + 1);
				if (msgs[i].modseq > maxmod)
					maxmod = msgs[i].modseq;
			}
			x_free(&c.data);
		}
		if (c.used_modseq) {
			s->condstore = true;
			if (maxmod > 0)
				buf_printf(&out, " (MODSEQ %llu)",
				    (unsigned long long)maxmod);
		}
	}
	buf_append_str(&out, "\r\n");
	imap_write(s, out.data, out.len);
	buf_free(&out);
	imap_tagged(s, "OK", "Search completed.");
}
