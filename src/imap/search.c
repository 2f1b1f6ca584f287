/*
 * The search program: parsing keys into a tree, and running it on the
 * messages of the selected mailbox. SENT* compare the calendar day
 * written in the Date: field, ignoring its zone (RFC 9051 6.4.4);
 * without a readable Date: they use the internal date.
 */
#include "imap/search.h"

#include "imap/bodystructure.h"
#include "imap/session-private.h"
#include "lib/file.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "mail/charset.h"
#include "mail/decode.h"
#include "mail/header.h"
#include "mail/mime.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MESSAGE_MAX (1024u * 1024 * 1024)
#define MAX_SEARCH_DEPTH 32
#define MAX_SEARCH_KEYS 1000
#define SEARCH_STRING_MAX 16384	/* of one string searched for, folded */
#define HEADER_TEXT_MAX (1024 * 1024)	/* decoded header block */
#define BODY_TEXT_MAX (32u * 1024 * 1024)	/* decoded text parts */
#define FIELD_MAX 65536			/* one field, unfolded */

enum skey_type {
	SK_AND, SK_OR, SK_NOT, SK_ALL,
	SK_FLAG,	/* mask, want */
	SK_KEYWORD,	/* str, want */
	SK_RECENT, SK_NEW, SK_OLD,
	SK_LARGER, SK_SMALLER,	/* num */
	SK_SEQ, SK_UID,		/* setstr, or saved ("$") */
	SK_BEFORE, SK_ON, SK_SINCE,
	SK_SENTBEFORE, SK_SENTON, SK_SENTSINCE,	/* t */
	SK_OLDER, SK_YOUNGER,	/* num seconds */
	SK_SAVEDBEFORE, SK_SAVEDON, SK_SAVEDSINCE,	/* t (RFC 8514) */
	SK_MODSEQ,		/* num */
	SK_HEADER,		/* name, str; address for FROM/TO/CC/BCC */
	SK_BODY, SK_TEXT,	/* str */
};

struct skey {
	enum skey_type type;
	struct skey *kids;	/* AND/OR/NOT */
	unsigned int nkids;
	unsigned int mask;
	bool want, address, saved;
	char *name, *str;
	unsigned long long num;
	time_t t;
	char *setstr;
	struct imap_seqset set;	/* resolved for the current run */
	bool set_ready;
	unsigned int leaf;	/* its number among the program's leaves */
};

struct imap_search {
	struct skey root;	/* SK_AND */
	bool modseq, uses_saved;
	/* an answer can change without the message changing: sequence
	   numbers, "$", \Recent, the clock, "*" in a UID set */
	bool volatile_keys;
	unsigned int nkeys;
	unsigned int nleaves;
};

/*
 * The message being tested. On the loop, s and m; on a pool thread
 * (imap_search_start), no session: the file's path, its internal date,
 * and the answers of the keys that need no file, worked out before.
 */
struct msgctx {
	struct imap_session *s;
	unsigned int idx;
	const struct store_msg *m;
	time_t now;
	time_t internaldate;
	const char *path;
	const uint8_t *leafv;	/* bit per leaf, or NULL */
	bool loaded, missing;	/* missing: the file was not there */
	char *data;
	size_t len;
	char *hdr_text;		/* decoded, folded header block */
	char *body_text;	/* decoded, folded text parts */
};

/* --- parsing ---------------------------------------------------------------- */

struct parser {
	const struct imap_arg *a;
	unsigned int n, i;
	const char *charset;
	const char *error;
	bool badcharset;
	struct imap_search *p;
};

static const struct {
	const char *name;
	unsigned int mask;
	bool want;
} flag_keys[] = {
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

static const struct {
	const char *name;
	enum skey_type type;
} simple_keys[] = {
	{ "ALL", SK_ALL }, { "RECENT", SK_RECENT }, { "NEW", SK_NEW },
	{ "OLD", SK_OLD },
	/* every folder keeps save dates: the same as ALL (RFC 8514 §4.3) */
	{ "SAVEDATESUPPORTED", SK_ALL },
};

static const struct {
	const char *name;
	enum skey_type type;
} date_keys[] = {
	{ "BEFORE", SK_BEFORE }, { "ON", SK_ON }, { "SINCE", SK_SINCE },
	{ "SENTBEFORE", SK_SENTBEFORE }, { "SENTON", SK_SENTON },
	{ "SENTSINCE", SK_SENTSINCE },
	{ "SAVEDBEFORE", SK_SAVEDBEFORE }, { "SAVEDON", SK_SAVEDON },
	{ "SAVEDSINCE", SK_SAVEDSINCE },
};

static const char *const address_keys[] = { "FROM", "TO", "CC", "BCC" };

static bool
fail(struct parser *ps, const char *why)
{
	if (ps->error == NULL)
		ps->error = why;
	return false;
}

static const char *
next_astring(struct parser *ps)
{
	const char *v = ps->i < ps->n ? imap_arg_astring(&ps->a[ps->i]) : NULL;

	if (v == NULL) {
		fail(ps, "Missing search argument");
		return NULL;
	}
	ps->i++;
	return v;
}

/* A string searched for: converted to UTF-8 and folded (malloc'd). */
static char *
search_string(struct parser *ps)
{
	const char *v = next_astring(ps);
	struct buf conv, fold;
	size_t vlen;

	if (v == NULL)
		return NULL;
	vlen = strlen(v);
	buf_init(&conv, SEARCH_STRING_MAX);
	buf_init(&fold, SEARCH_STRING_MAX);
	buf_append_str(&fold, "");
	if (charset_to_utf8(ps->charset, v, vlen, &conv) < 0 ||
	    charset_utf8_fold(conv.data != NULL ? conv.data : "", conv.len,
	    &fold) < 0) {
		buf_free(&conv);
		buf_free(&fold);
		fail(ps, "Search string too long");
		return NULL;
	}
	buf_free(&conv);
	return buf_steal(&fold);
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
	if (strlen(mon) != 3 || p == NULL || (p - months) % 3 != 0 ||
	    day < 1 || day > 31)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_mday = day;
	tm.tm_mon = (int)(p - months) / 3;
	tm.tm_year = year - 1900;
	return timegm(&tm);
}

static bool parse_key(struct parser *ps, struct skey *k, unsigned int depth);

/* Keys up to the end of a[0..n) into k's children. */
static bool
parse_list(struct parser *ps, struct skey *k, unsigned int depth)
{
	while (ps->i < ps->n) {
		k->kids = xreallocarray(k->kids, k->nkids + 1, sizeof(*k->kids));
		memset(&k->kids[k->nkids], 0, sizeof(*k->kids));
		k->nkids++;
		if (!parse_key(ps, &k->kids[k->nkids - 1], depth + 1))
			return false;
	}
	return true;
}

static bool
parse_kids(struct parser *ps, struct skey *k, unsigned int count,
    unsigned int depth)
{
	k->kids = xcalloc(count, sizeof(*k->kids));
	k->nkids = count;
	for (unsigned int i = 0; i < count; i++) {
		if (!parse_key(ps, &k->kids[i], depth + 1))
			return false;
	}
	return true;
}

static bool
parse_set(struct parser *ps, struct skey *k, const char *v)
{
	struct imap_seqset set;
	const char *err;

	if (imap_seqset_parse(v, 10000, &set, &err) < 0) {
		imap_seqset_free(&set);
		return fail(ps, "Invalid sequence set");
	}
	k->saved = set.searchres;
	if (k->saved)
		ps->p->uses_saved = true;
	if (k->saved || k->type == SK_SEQ || strchr(v, '*') != NULL)
		ps->p->volatile_keys = true;
	imap_seqset_free(&set);
	k->setstr = xstrdup(v);
	return true;
}

static bool
parse_number(struct parser *ps, unsigned long long *v_r)
{
	const char *v = next_astring(ps);

	if (v == NULL)
		return false;
	if (str_to_ullong(v, v_r) < 0)
		return fail(ps, "Invalid number");
	return true;
}

static bool
parse_key(struct parser *ps, struct skey *k, unsigned int depth)
{
	const struct imap_arg *arg;
	const char *name;

	if (ps->i >= ps->n)
		return fail(ps, "Missing search key");
	if (depth > MAX_SEARCH_DEPTH || ++ps->p->nkeys > MAX_SEARCH_KEYS)
		return fail(ps, "Search program too deep or too long");
	arg = &ps->a[ps->i++];
	if (arg->type == IMAP_ARG_LIST) {
		struct parser sub = *ps;

		if (arg->count == 0)
			return fail(ps, "Empty search list");
		k->type = SK_AND;
		sub.a = arg->list;
		sub.n = arg->count;
		sub.i = 0;
		sub.error = NULL;
		if (!parse_list(&sub, k, depth)) {
			ps->error = sub.error;
			ps->badcharset = sub.badcharset;
			return false;
		}
		return true;
	}
	if (arg->type != IMAP_ARG_ATOM)
		return fail(ps, "Unknown search key");
	name = arg->str;
	for (size_t f = 0; f < sizeof(flag_keys) / sizeof(flag_keys[0]); f++) {
		if (strcasecmp(name, flag_keys[f].name) == 0) {
			k->type = SK_FLAG;
			k->mask = flag_keys[f].mask;
			k->want = flag_keys[f].want;
			return true;
		}
	}
	for (size_t f = 0; f < sizeof(simple_keys) / sizeof(simple_keys[0]); f++) {
		if (strcasecmp(name, simple_keys[f].name) == 0) {
			k->type = simple_keys[f].type;
			if (k->type != SK_ALL)
				ps->p->volatile_keys = true;
			return true;
		}
	}
	for (size_t f = 0; f < sizeof(date_keys) / sizeof(date_keys[0]); f++) {
		const char *v;

		if (strcasecmp(name, date_keys[f].name) != 0)
			continue;
		k->type = date_keys[f].type;
		if ((v = next_astring(ps)) == NULL)
			return false;
		if ((k->t = parse_date(v)) == -1)
			return fail(ps, "Invalid date");
		return true;
	}
	for (size_t f = 0; f < sizeof(address_keys) / sizeof(address_keys[0]); f++) {
		if (strcasecmp(name, address_keys[f]) == 0) {
			k->type = SK_HEADER;
			k->address = true;
			k->name = xstrdup(address_keys[f]);
			return (k->str = search_string(ps)) != NULL;
		}
	}
	if (strcasecmp(name, "NOT") == 0) {
		k->type = SK_NOT;
		return parse_kids(ps, k, 1, depth);
	}
	if (strcasecmp(name, "OR") == 0) {
		k->type = SK_OR;
		return parse_kids(ps, k, 2, depth);
	}
	if (strcasecmp(name, "KEYWORD") == 0 || strcasecmp(name, "UNKEYWORD") == 0) {
		const char *v = next_astring(ps);

		k->type = SK_KEYWORD;
		k->want = strcasecmp(name, "KEYWORD") == 0;
		if (v == NULL)
			return false;
		k->str = xstrdup(v);
		return true;
	}
	if (strcasecmp(name, "LARGER") == 0 || strcasecmp(name, "SMALLER") == 0) {
		k->type = strcasecmp(name, "LARGER") == 0 ? SK_LARGER : SK_SMALLER;
		return parse_number(ps, &k->num);
	}
	if (strcasecmp(name, "OLDER") == 0 || strcasecmp(name, "YOUNGER") == 0) {
		k->type = strcasecmp(name, "OLDER") == 0 ? SK_OLDER : SK_YOUNGER;
		ps->p->volatile_keys = true;
		if (!parse_number(ps, &k->num))
			return false;
		/* RFC 5032: interval = 1*DIGIT, a positive number of seconds */
		if (k->num == 0 || k->num > (1ull << 40))
			return fail(ps, "Invalid interval");
		return true;
	}
	if (strcasecmp(name, "MODSEQ") == 0) {
		/* MODSEQ [<entry-name> <entry-type>] <mod-sequence> */
		k->type = SK_MODSEQ;
		if (ps->i < ps->n && ps->a[ps->i].type == IMAP_ARG_QUOTED) {
			const char *type;

			ps->i++;
			if ((type = next_astring(ps)) == NULL)
				return false;
			if (strcasecmp(type, "priv") != 0 &&
			    strcasecmp(type, "shared") != 0 &&
			    strcasecmp(type, "all") != 0)
				return fail(ps, "Invalid MODSEQ entry type");
		}
		if (!parse_number(ps, &k->num))
			return false;
		ps->p->modseq = true;
		return true;
	}
	if (strcasecmp(name, "UID") == 0) {
		const char *v = next_astring(ps);

		k->type = SK_UID;
		return v != NULL && parse_set(ps, k, v);
	}
	if (strcasecmp(name, "HEADER") == 0) {
		const char *field = next_astring(ps);

		k->type = SK_HEADER;
		if (field == NULL)
			return false;
		k->name = xstrdup(field);
		return (k->str = search_string(ps)) != NULL;
	}
	if (strcasecmp(name, "SUBJECT") == 0) {
		k->type = SK_HEADER;
		k->name = xstrdup("Subject");
		return (k->str = search_string(ps)) != NULL;
	}
	if (strcasecmp(name, "BODY") == 0 || strcasecmp(name, "TEXT") == 0) {
		k->type = strcasecmp(name, "BODY") == 0 ? SK_BODY : SK_TEXT;
		return (k->str = search_string(ps)) != NULL;
	}
	if (strchr("0123456789*$", name[0]) != NULL) {
		k->type = SK_SEQ;
		return parse_set(ps, k, name);
	}
	return fail(ps, "Unknown search key");
}

static void
skey_free(struct skey *k)
{
	for (unsigned int i = 0; i < k->nkids; i++)
		skey_free(&k->kids[i]);
	free(k->kids);
	free(k->name);
	free(k->str);
	free(k->setstr);
	if (k->set_ready)
		imap_seqset_free(&k->set);
}

static bool
is_branch(const struct skey *k)
{
	return k->type == SK_AND || k->type == SK_OR || k->type == SK_NOT;
}

static void
number_leaves(struct imap_search *p, struct skey *k)
{
	if (!is_branch(k)) {
		k->leaf = p->nleaves++;
		return;
	}
	for (unsigned int i = 0; i < k->nkids; i++)
		number_leaves(p, &k->kids[i]);
}

struct imap_search *
imap_search_parse(const struct imap_arg *a, unsigned int n, const char *charset,
    const char **error_r, bool *badcharset_r)
{
	struct imap_search *p = xcalloc(1, sizeof(*p));
	struct parser ps = { .a = a, .n = n, .charset = charset, .p = p };

	*badcharset_r = false;
	p->root.type = SK_AND;
	if (charset != NULL && !charset_known(charset)) {
		*badcharset_r = true;
		*error_r = "Unsupported charset";
		imap_search_free(&p);
		return NULL;
	}
	if (n == 0) {
		*error_r = "Missing search keys";
		imap_search_free(&p);
		return NULL;
	}
	if (!parse_list(&ps, &p->root, 0)) {
		*error_r = ps.error != NULL ? ps.error : "Invalid search";
		imap_search_free(&p);
		return NULL;
	}
	number_leaves(p, &p->root);
	return p;
}

void
imap_search_free(struct imap_search **p)
{
	if (*p == NULL)
		return;
	skey_free(&(*p)->root);
	free(*p);
	*p = NULL;
}

bool
imap_search_has_modseq(const struct imap_search *p)
{
	return p->modseq;
}

bool
imap_search_uses_saved(const struct imap_search *p)
{
	return p->uses_saved;
}

bool
imap_search_is_stable(const struct imap_search *p)
{
	return !p->volatile_keys;
}

/* --- message text ------------------------------------------------------------------ */

static bool
load(struct msgctx *c)
{
	if (!c->loaded) {
		char *path = c->path != NULL ? NULL :
		    store_msg_full_path(c->s->box, c->m);

		c->loaded = true;
		if (file_read_all(c->path != NULL ? c->path : path, MESSAGE_MAX,
		    &c->data, &c->len) < 0) {
			c->missing = errno == ENOENT;
			c->data = NULL;
			c->len = 0;
		}
		free(path);
	}
	return c->data != NULL;
}

static bool
contains(const char *hay, size_t hlen, const char *needle)
{
	size_t nlen = strlen(needle);

	if (nlen == 0)
		return true;
	return hlen >= nlen && memmem(hay, hlen, needle, nlen) != NULL;
}

/* A field value unfolded, decoded to UTF-8 and folded (into out). */
static void
decode_field(const char *value, size_t len, struct buf *out)
{
	char *v = mail_header_unfold(value, len, FIELD_MAX);
	struct buf dec;

	buf_init(&dec, FIELD_MAX * 4);
	(void)charset_decode_header(v, strlen(v), &dec);
	(void)charset_utf8_fold(dec.data != NULL ? dec.data : "", dec.len, out);
	buf_free(&dec);
	free(v);
}

/* The header block data[start..end) decoded: "NAME: value\n" each. */
static void
append_header_text(struct buf *out, const char *data, size_t start, size_t end)
{
	struct mail_header_iter it;
	struct mail_header_field f;

	mail_header_iter_init(&it, data, start, end);
	while (mail_header_next(&it, &f) > 0) {
		(void)charset_utf8_fold(f.name, f.name_len, out);
		(void)buf_append_str(out, ": ");
		decode_field(f.value, f.value_len, out);
		if (buf_append_c(out, '\n') < 0)
			return;
	}
}

/* One leaf's body: transfer decoding undone, charset converted, folded. */
static void
append_part_text(struct buf *out, const char *data, const struct mime_part *p)
{
	const char *enc = p->encoding;
	const char *body = data + p->body_offset;
	struct buf raw, conv;

	buf_init(&raw, BODY_TEXT_MAX);
	buf_init(&conv, BODY_TEXT_MAX);
	if (enc != NULL && strcasecmp(enc, "base64") == 0)
		(void)decode_base64(body, p->body_size, &raw);
	else if (enc != NULL && strcasecmp(enc, "quoted-printable") == 0)
		(void)decode_qp(body, p->body_size, &raw);
	else
		(void)buf_append(&raw, body, p->body_size);
	(void)charset_to_utf8(mime_part_param(p, "charset"),
	    raw.data != NULL ? raw.data : "", raw.len, &conv);
	(void)charset_utf8_fold(conv.data != NULL ? conv.data : "", conv.len, out);
	(void)buf_append_c(out, '\n');
	buf_free(&raw);
	buf_free(&conv);
}

/*
 * The text of the body: every text part decoded, with the header blocks
 * of the parts and of attached messages (as a reader of the body sees
 * them). Iterative walk: no recursion on hostile nesting.
 */
static char *
body_text(const char *data, size_t len)
{
	struct mime_message *msg = mime_parse(data, len, &mime_default_limits);
	struct mime_part **stack;
	unsigned int sp = 0;
	struct buf out;

	buf_init(&out, BODY_TEXT_MAX);
	buf_append_str(&out, "");
	stack = xcalloc(msg->nparts * 2 + 4, sizeof(*stack));
	stack[sp++] = msg->root;
	while (sp > 0) {
		struct mime_part *p = stack[--sp];

		if (p != msg->root)
			append_header_text(&out, data, p->hdr_offset,
			    p->hdr_offset + p->hdr_size);
		if (p->message != NULL) {
			stack[sp++] = p->message;
		} else if (p->children != NULL) {
			unsigned int j;

			/* pushed in reverse: the first part is read first */
			for (struct mime_part *c = p->children; c != NULL; c = c->next)
				sp++;
			j = sp;
			for (struct mime_part *c = p->children; c != NULL; c = c->next)
				stack[--j] = c;
		} else if ((p->flags & MIME_PART_TEXT) != 0 ||
		    mime_part_is(p, "message", NULL)) {
			append_part_text(&out, data, p);
		}
	}
	free(stack);
	mime_message_free(&msg);
	return buf_steal(&out);
}

static const char *
msg_body_text(struct msgctx *c)
{
	if (c->body_text == NULL) {
		if (!load(c))
			c->body_text = xstrdup("");
		else
			c->body_text = body_text(c->data, c->len);
	}
	return c->body_text;
}

static const char *
msg_header_text(struct msgctx *c)
{
	if (c->hdr_text == NULL) {
		struct buf b;

		buf_init(&b, HEADER_TEXT_MAX);
		buf_append_str(&b, "");
		if (load(c))
			append_header_text(&b, c->data, 0,
			    mail_header_block_end(c->data, 0, c->len));
		c->hdr_text = buf_steal(&b);
	}
	return c->hdr_text;
}

/*
 * HEADER field string. FROM/TO/CC/BCC also match the parsed addresses
 * ("name <mailbox@host>"), so that comments, quoting and folding inside
 * an address do not hide it. An empty string matches any message that
 * has the field.
 */
static bool
header_match(struct msgctx *c, const struct skey *k)
{
	struct mail_header_iter it;
	struct mail_header_field f;
	size_t end, flen = strlen(k->name);
	bool hit = false;

	if (!load(c))
		return false;
	end = mail_header_block_end(c->data, 0, c->len);
	mail_header_iter_init(&it, c->data, 0, end);
	while (!hit && mail_header_next(&it, &f) > 0) {
		struct buf b;

		if (f.name_len != flen || strncasecmp(f.name, k->name, flen) != 0)
			continue;
		if (k->str[0] == '\0')
			return true;
		buf_init(&b, FIELD_MAX * 8);
		buf_append_str(&b, "");
		decode_field(f.value, f.value_len, &b);
		hit = contains(b.data, b.len, k->str);
		if (!hit && k->address) {
			char *v = mail_header_unfold(f.value, f.value_len, FIELD_MAX);
			char *t = imap_address_list_text(v);

			buf_reset(&b);
			buf_append_str(&b, "");
			decode_field(t, strlen(t), &b);
			hit = contains(b.data, b.len, k->str);
			free(v);
			free(t);
		}
		buf_free(&b);
	}
	return hit;
}

/*
 * The day of an RFC 5322 date ("Sun, 25 Mar 2007 04:00:00 +0300" ->
 * 25-Mar-2007 00:00 UTC); the zone is ignored, as SENT* want. -1 if
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
sent_day(struct msgctx *c)
{
	struct mail_header_iter it;
	struct mail_header_field f;
	time_t t = c->internaldate;

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

static bool
saved_contains(const struct imap_session *s, uint32_t uid)
{
	unsigned int lo = 0, hi = s->nsearchres;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (s->searchres[mid] == uid)
			return true;
		if (s->searchres[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

static bool
keyword_has(const char *keywords, const char *kw)
{
	size_t vl = strlen(kw);

	if (vl == 0)
		return false;
	for (const char *p = keywords; (p = strstr(p, kw)) != NULL; p += vl) {
		if ((p == keywords || p[-1] == ' ') && (p[vl] == '\0' || p[vl] == ' '))
			return true;
	}
	return false;
}

/* Sequence sets with '*' are resolved against the view at each run. */
static void
prepare(struct imap_session *s, struct skey *k)
{
	for (unsigned int i = 0; i < k->nkids; i++)
		prepare(s, &k->kids[i]);
	if ((k->type == SK_SEQ || k->type == SK_UID) && !k->saved) {
		const char *err;

		if (k->set_ready)
			imap_seqset_free(&k->set);
		if (imap_seqset_parse(k->setstr, 10000, &k->set, &err) < 0)
			panic("search: a set that parsed once did not again");
		imap_seqset_normalize(&k->set, k->type == SK_SEQ ? s->nview :
		    imap_view_last_uid(s));
		k->set_ready = true;
	}
}

/*
 * The date keys come in threes, BEFORE/ON/SINCE (rel 0, 1, 2), against
 * day, the start of a day: when is before it, on it, or on it or later.
 */
static bool
day_match(time_t when, int rel, time_t day)
{
	if (rel == 0)
		return when < day;
	if (rel == 1)
		return when >= day && when < day + 86400;
	return when >= day;
}

/* Keys answered from the message's file, the rest from the index. */
static bool
needs_file(const struct skey *k)
{
	switch (k->type) {
	case SK_HEADER: case SK_BODY: case SK_TEXT:
	case SK_SENTBEFORE: case SK_SENTON: case SK_SENTSINCE:
		return true;
	default:
		return false;
	}
}

static bool
eval(struct msgctx *c, const struct skey *k)
{
	const struct store_msg *m = c->m;

	/* on a pool thread: the answers worked out on the loop */
	if (c->leafv != NULL && !is_branch(k) && !needs_file(k))
		return (c->leafv[k->leaf / 8] >> (k->leaf % 8)) & 1;
	switch (k->type) {
	case SK_AND:
		for (unsigned int i = 0; i < k->nkids; i++) {
			if (!eval(c, &k->kids[i]))
				return false;
		}
		return true;
	case SK_OR:
		return eval(c, &k->kids[0]) || eval(c, &k->kids[1]);
	case SK_NOT:
		return !eval(c, &k->kids[0]);
	case SK_ALL:
		return true;
	case SK_FLAG:
		return ((m->flags & k->mask) != 0) == k->want;
	case SK_KEYWORD:
		return keyword_has(m->keywords, k->str) == k->want;
	case SK_RECENT:
		return imap_msg_recent(c->s, m->uid);
	case SK_NEW:
		return imap_msg_recent(c->s, m->uid) &&
		    (m->flags & STORE_FLAG_SEEN) == 0;
	case SK_OLD:
		return !imap_msg_recent(c->s, m->uid);
	case SK_LARGER:
		return m->size > k->num;
	case SK_SMALLER:
		return m->size < k->num;
	case SK_SEQ:
		if (k->saved)
			return saved_contains(c->s, m->uid);
		return imap_seqset_contains(&k->set, c->idx + 1);
	case SK_UID:
		if (k->saved)
			return saved_contains(c->s, m->uid);
		return imap_seqset_contains(&k->set, m->uid);
	case SK_BEFORE: case SK_ON: case SK_SINCE:
		return day_match(m->internaldate, k->type - SK_BEFORE, k->t);
	case SK_SENTBEFORE: case SK_SENTON: case SK_SENTSINCE:
		return day_match(sent_day(c), k->type - SK_SENTBEFORE, k->t);
	case SK_SAVEDBEFORE: case SK_SAVEDON: case SK_SAVEDSINCE:
		return day_match(m->savedate, k->type - SK_SAVEDBEFORE, k->t);
	case SK_OLDER:
		return (unsigned long long)(c->now - m->internaldate) >= k->num &&
		    c->now >= m->internaldate;
	case SK_YOUNGER:
		return c->now < m->internaldate ||
		    (unsigned long long)(c->now - m->internaldate) <= k->num;
	case SK_MODSEQ:
		return m->modseq >= k->num;
	case SK_HEADER:
		return header_match(c, k);
	case SK_BODY: {
		const char *t = msg_body_text(c);

		return contains(t, strlen(t), k->str);
	}
	case SK_TEXT: {
		const char *h = msg_header_text(c), *t;

		if (contains(h, strlen(h), k->str))
			return true;
		t = msg_body_text(c);
		return contains(t, strlen(t), k->str);
	}
	}
	return false;
}

static void
msgctx_reset(struct msgctx *c)
{
	x_free(&c->data);
	x_free(&c->hdr_text);
	x_free(&c->body_text);
	c->loaded = false;
	c->len = 0;
}

bool
imap_search_match_one(struct imap_session *s, struct imap_search *p,
    unsigned int idx)
{
	const struct store_msg *msgs;
	unsigned int count;
	struct msgctx c = { .s = s, .now = time(NULL) };
	bool r;

	msgs = store_mailbox_msgs(s->box, &count);
	if (idx >= count)
		return false;
	prepare(s, &p->root);
	c.idx = idx;
	c.m = &msgs[idx];
	c.internaldate = c.m->internaldate;
	r = eval(&c, &p->root);
	msgctx_reset(&c);
	return r;
}

unsigned int *
imap_search_run(struct imap_session *s, struct imap_search *p, unsigned int *n_r)
{
	const struct store_msg *msgs;
	unsigned int count, n = 0, *out;
	struct msgctx c = { .s = s, .now = time(NULL) };

	msgs = store_mailbox_msgs(s->box, &count);
	out = xcalloc(count + 1, sizeof(*out));
	prepare(s, &p->root);
	for (unsigned int i = 0; i < count; i++) {
		c.idx = i;
		c.m = &msgs[i];
		c.internaldate = c.m->internaldate;
		if (eval(&c, &p->root))
			out[n++] = i;
		msgctx_reset(&c);
	}
	*n_r = n;
	return out;
}

/* --- searching off the loop ------------------------------------------------- */

/*
 * imap_search_start, in three steps:
 *   1. on the loop, every message is tried with the keys that need no
 *      file (three-valued: a file key is "unknown"); most are decided
 *      here. For the others the job keeps the file's path and the answer
 *      of each key that needs no file (a bit per leaf).
 *   2. on a pool thread, those messages are read and the whole program
 *      is run on each, the bits standing in for the index.
 *   3. on the loop again, a file that was renamed meanwhile (a flag
 *      change) is tried once more with its new name, and the two lists
 *      are merged.
 * The answer is the same as imap_search_run's (test_search runs both).
 */
#define SEARCH_BITS_MAX (16u * 1024 * 1024)	/* beyond: all on the loop */

enum { NO, YES, MAYBE };

struct search_pending {
	unsigned int idx;
	uint32_t uid;
	time_t internaldate;
	char *path;
	bool match, missing;
};

struct search_job {
	struct imap_search *p;
	imap_search_done_fn *done;
	void *ctx;
	time_t now;
	/* decided on the loop: store index and UID, ascending */
	unsigned int *sure;
	uint32_t *sure_uid;
	unsigned int nsure;
	struct search_pending *pend;
	unsigned int npend, cap;
	uint8_t *bits;		/* npend * leafbytes */
	size_t leafbytes;
};

static int
eval3(struct msgctx *c, const struct skey *k)
{
	int r, any_maybe = 0;

	switch (k->type) {
	case SK_AND:
		for (unsigned int i = 0; i < k->nkids; i++) {
			if ((r = eval3(c, &k->kids[i])) == NO)
				return NO;
			any_maybe |= r == MAYBE;
		}
		return any_maybe ? MAYBE : YES;
	case SK_OR:
		for (unsigned int i = 0; i < k->nkids; i++) {
			if ((r = eval3(c, &k->kids[i])) == YES)
				return YES;
			any_maybe |= r == MAYBE;
		}
		return any_maybe ? MAYBE : NO;
	case SK_NOT:
		r = eval3(c, &k->kids[0]);
		return r == MAYBE ? MAYBE : r == YES ? NO : YES;
	default:
		if (needs_file(k))
			return MAYBE;
		return eval(c, k) ? YES : NO;
	}
}

/* The bit of every leaf that needs no file. */
static void
leaf_bits(struct msgctx *c, const struct skey *k, uint8_t *bits)
{
	if (is_branch(k)) {
		for (unsigned int i = 0; i < k->nkids; i++)
			leaf_bits(c, &k->kids[i], bits);
	} else if (!needs_file(k) && eval(c, k)) {
		bits[k->leaf / 8] |= (uint8_t)(1u << (k->leaf % 8));
	}
}

static void
search_job_free(struct search_job *j)
{
	for (unsigned int i = 0; i < j->npend; i++)
		free(j->pend[i].path);
	free(j->pend);
	free(j->bits);
	free(j->sure);
	free(j->sure_uid);
	free(j);
}

/* Runs on a pool thread: touches nothing but the job. */
static void
search_work(void *arg)
{
	struct search_job *j = arg;

	for (unsigned int i = 0; i < j->npend; i++) {
		struct search_pending *q = &j->pend[i];
		struct msgctx c = {
			.now = j->now, .idx = q->idx, .internaldate = q->internaldate,
			.path = q->path, .leafv = j->bits + i * j->leafbytes,
		};

		q->match = eval(&c, &j->p->root);
		q->missing = c.missing;
		msgctx_reset(&c);
	}
}

/* The store index of uid in the view now (it was idx), or -1. */
static int
view_index(struct imap_session *s, unsigned int idx, uint32_t uid)
{
	const struct store_msg *msgs;
	unsigned int count;

	msgs = store_mailbox_msgs(s->box, &count);
	if (idx < count && msgs[idx].uid == uid)
		return (int)idx;
	return store_mailbox_find_uid(s->box, uid);
}

static void
search_done(struct imap_session *s, void *arg)
{
	struct search_job *j = arg;
	const struct store_msg *msgs;
	unsigned int count, n = 0, a = 0, b = 0, *out;
	bool prepared = false;

	if (s == NULL) {
		j->done(NULL, j->ctx, NULL, 0);
		search_job_free(j);
		return;
	}
	msgs = store_mailbox_msgs(s->box, &count);
	out = xcalloc(j->nsure + j->npend + 1, sizeof(*out));
	/* both lists ascend by store index: merge them */
	while (a < j->nsure || b < j->npend) {
		bool take_sure = b >= j->npend ||
		    (a < j->nsure && j->sure[a] < j->pend[b].idx);
		int at;

		if (take_sure) {
			at = view_index(s, j->sure[a], j->sure_uid[a]);
			a++;
		} else {
			struct search_pending *q = &j->pend[b++];

			at = view_index(s, q->idx, q->uid);
			if (at >= 0 && q->missing) {
				/* renamed while we read: once more, by its
				   name now */
				struct msgctx c = { .s = s, .now = j->now,
				    .idx = (unsigned int)at, .m = &msgs[at],
				    .internaldate = msgs[at].internaldate };

				if (!prepared) {
					prepare(s, &j->p->root);
					prepared = true;
				}
				q->match = eval(&c, &j->p->root);
				msgctx_reset(&c);
			}
			if (!q->match)
				at = -1;
		}
		if (at >= 0 && (n == 0 || (unsigned int)at > out[n - 1]))
			out[n++] = (unsigned int)at;
	}
	j->done(s, j->ctx, out, n);
	search_job_free(j);
}

void
imap_search_start(struct imap_session *s, struct imap_search *p,
    imap_search_done_fn *done, void *ctx)
{
	const struct store_msg *msgs;
	unsigned int count;
	struct search_job *j = xcalloc(1, sizeof(*j));
	struct msgctx c = { .s = s, .now = time(NULL) };
	bool too_big = false;

	j->p = p;
	j->done = done;
	j->ctx = ctx;
	j->now = c.now;
	j->leafbytes = (p->nleaves + 7) / 8;
	msgs = store_mailbox_msgs(s->box, &count);
	prepare(s, &p->root);
	j->sure = xcalloc(count + 1, sizeof(*j->sure));
	j->sure_uid = xcalloc(count + 1, sizeof(*j->sure_uid));
	for (unsigned int i = 0; i < count; i++) {
		int r;

		c.idx = i;
		c.m = &msgs[i];
		c.internaldate = c.m->internaldate;
		if ((r = eval3(&c, &p->root)) == YES) {
			j->sure[j->nsure] = i;
			j->sure_uid[j->nsure++] = msgs[i].uid;
		} else if (r == MAYBE) {
			struct search_pending *q;

			if ((size_t)(j->npend + 1) * j->leafbytes > SEARCH_BITS_MAX) {
				too_big = true;
				break;
			}
			if (j->npend == j->cap) {
				j->cap = j->cap == 0 ? 16 : j->cap * 2;
				j->pend = xreallocarray(j->pend, j->cap, sizeof(*j->pend));
				j->bits = xreallocarray(j->bits, j->cap, j->leafbytes);
			}
			q = &j->pend[j->npend];
			memset(q, 0, sizeof(*q));
			q->idx = i;
			q->uid = msgs[i].uid;
			q->internaldate = msgs[i].internaldate;
			q->path = store_msg_full_path(s->box, &msgs[i]);
			memset(j->bits + j->npend * j->leafbytes, 0, j->leafbytes);
			leaf_bits(&c, &p->root, j->bits + j->npend * j->leafbytes);
			j->npend++;
		}
	}
	if (too_big) {
		/* a program of a thousand keys on a huge folder: the old way */
		unsigned int n, *idx = imap_search_run(s, p, &n);

		search_job_free(j);
		done(s, ctx, idx, n);
		return;
	}
	if (j->npend == 0) {
		search_done(s, j);
		return;
	}
	imap_run_blocking(s, search_work, search_done, j);
}
