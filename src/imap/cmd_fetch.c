/*
 * FETCH and UID FETCH: FLAGS, UID, INTERNALDATE, RFC822.SIZE, ENVELOPE,
 * BODYSTRUCTURE, BODY, BODY[section]<partial>, BODY.PEEK, RFC822,
 * RFC822.HEADER, RFC822.TEXT and the ALL/FAST/FULL macros.
 *
 * Maildir files may have LF line ends; every byte range sent is converted
 * to CRLF first and partial offsets count in the converted form, so sizes
 * agree with RFC822.SIZE and BODYSTRUCTURE.
 */
#include "imap/session-private.h"

#include "imap/bodystructure.h"
#include "lib/file.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "mail/binary.h"
#include "mail/header.h"
#include "mail/mime.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_FETCH_ITEMS 64
#define MESSAGE_MAX (1024u * 1024 * 1024)

enum fetch_kind {
	F_UID, F_FLAGS, F_INTERNALDATE, F_SIZE, F_ENVELOPE, F_BODYSTRUCTURE,
	F_BODY, F_SECTION, F_RFC822, F_RFC822_HEADER, F_RFC822_TEXT, F_MODSEQ,
	F_BINARY, F_BINARY_SIZE,	/* RFC 3516 */
};

struct fetch_item {
	enum fetch_kind kind;
	char *section;		/* F_SECTION: text between the brackets */
	bool peek;
	bool partial;
	uint64_t offset, length;
};

struct fetch_ctx {
	struct fetch_item items[MAX_FETCH_ITEMS];
	unsigned int n;
	bool need_msg;
	bool sets_seen;
	bool has_flags, has_uid, has_modseq;
};

static bool
add_item(struct fetch_ctx *c, enum fetch_kind kind)
{
	if (c->n == MAX_FETCH_ITEMS)
		return false;
	memset(&c->items[c->n], 0, sizeof(c->items[c->n]));
	c->items[c->n++].kind = kind;
	if (kind == F_FLAGS)
		c->has_flags = true;
	if (kind == F_UID)
		c->has_uid = true;
	if (kind == F_MODSEQ)
		c->has_modseq = true;
	if (kind == F_ENVELOPE || kind == F_BODYSTRUCTURE || kind == F_BODY ||
	    kind == F_SECTION || kind == F_RFC822 || kind == F_RFC822_HEADER ||
	    kind == F_RFC822_TEXT || kind == F_BINARY || kind == F_BINARY_SIZE)
		c->need_msg = true;
	if (kind == F_RFC822 || kind == F_RFC822_TEXT)
		c->sets_seen = true;
	return true;
}

/* "BODY[...]<o.n>", "BODY.PEEK[...]", "BINARY[1.2]<o.n>", "BINARY.SIZE[1]" */
static bool
parse_section_item(struct fetch_ctx *c, const char *atom)
{
	const char *open = strchr(atom, '['), *close = strrchr(atom, ']');
	struct fetch_item *it;
	size_t plen;
	enum fetch_kind kind = F_SECTION;

	if (open == NULL || close == NULL || close < open)
		return false;
	plen = (size_t)(open - atom);
	if (strncasecmp(atom, "BINARY", 6) == 0) {
		/* section-binary: part numbers only (RFC 3516 4.1) */
		for (const char *p = open + 1; p < close; p++) {
			if (!((*p >= '0' && *p <= '9') || (*p == '.' && p > open + 1 &&
			    p[-1] != '.' && p + 1 < close)))
				return false;
		}
		kind = plen == 11 && strncasecmp(atom, "BINARY.SIZE", 11) == 0 ?
		    F_BINARY_SIZE : F_BINARY;
	}
	if (!add_item(c, kind))
		return false;
	it = &c->items[c->n - 1];
	if (kind == F_BINARY_SIZE) {
		it->peek = true;
		if (close[1] != '\0')
			return false;
	} else if (kind == F_BINARY && plen == 11 &&
	    strncasecmp(atom, "BINARY.PEEK", 11) == 0)
		it->peek = true;
	else if (kind == F_BINARY && plen == 6)
		;
	else if (kind == F_SECTION && plen == 9 &&
	    strncasecmp(atom, "BODY.PEEK", 9) == 0)
		it->peek = true;
	else if (!(kind == F_SECTION && plen == 4 &&
	    strncasecmp(atom, "BODY", 4) == 0))
		return false;
	if (!it->peek)
		c->sets_seen = true;
	it->section = xstrndup(open + 1, (size_t)(close - open - 1));
	if (close[1] == '<') {
		char *end;

		it->partial = true;
		it->offset = strtoull(close + 2, &end, 10);
		if (*end != '.' || end == close + 2)
			return false;
		it->length = strtoull(end + 1, &end, 10);
		if (strcmp(end, ">") != 0 || it->length == 0)
			return false;
	} else if (close[1] != '\0') {
		return false;
	}
	return true;
}

static bool
parse_item(struct fetch_ctx *c, const struct imap_arg *a)
{
	static const struct { const char *name; enum fetch_kind kind; } simple[] = {
		{ "UID", F_UID }, { "FLAGS", F_FLAGS },
		{ "INTERNALDATE", F_INTERNALDATE }, { "RFC822.SIZE", F_SIZE },
		{ "ENVELOPE", F_ENVELOPE }, { "BODYSTRUCTURE", F_BODYSTRUCTURE },
		{ "BODY", F_BODY }, { "RFC822", F_RFC822 },
		{ "RFC822.HEADER", F_RFC822_HEADER }, { "RFC822.TEXT", F_RFC822_TEXT },
		{ "MODSEQ", F_MODSEQ },
	};

	if (a->type != IMAP_ARG_ATOM)
		return false;
	for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
		if (strcasecmp(a->str, simple[i].name) == 0)
			return add_item(c, simple[i].kind);
	}
	return parse_section_item(c, a->str);
}

static void
fetch_ctx_free(struct fetch_ctx *c)
{
	for (unsigned int i = 0; i < c->n; i++)
		free(c->items[i].section);
}

static int
parse_items(struct fetch_ctx *c, const struct imap_arg *a)
{
	memset(c, 0, sizeof(*c));
	if (a->type == IMAP_ARG_ATOM) {
		if (strcasecmp(a->str, "ALL") == 0 || strcasecmp(a->str, "FULL") == 0) {
			add_item(c, F_FLAGS);
			add_item(c, F_INTERNALDATE);
			add_item(c, F_SIZE);
			add_item(c, F_ENVELOPE);
			if (strcasecmp(a->str, "FULL") == 0)
				add_item(c, F_BODY);
			return 0;
		}
		if (strcasecmp(a->str, "FAST") == 0) {
			add_item(c, F_FLAGS);
			add_item(c, F_INTERNALDATE);
			add_item(c, F_SIZE);
			return 0;
		}
		return parse_item(c, a) ? 0 : -1;
	}
	if (a->type != IMAP_ARG_LIST || a->count == 0)
		return -1;
	for (unsigned int i = 0; i < a->count; i++) {
		if (!parse_item(c, &a->list[i]))
			return -1;
	}
	return 0;
}

/* data[start..end) with every bare LF made CRLF */
static void
append_crlf(struct buf *out, const char *data, size_t start, size_t end)
{
	size_t run = start;

	for (size_t i = start; i < end; i++) {
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r')) {
			buf_append(out, data + run, i - run);
			buf_append_str(out, "\r\n");
			run = i + 1;
		}
	}
	buf_append(out, data + run, end - run);
}

/* "(From To "X-Y")" after HEADER.FIELDS: the names, NULL-terminated */
static char **
parse_field_names(const char *s)
{
	struct buf b;
	char **names;

	while (*s == ' ')
		s++;
	if (*s != '(')
		return NULL;
	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "");
	for (s++; *s != '\0' && *s != ')'; s++)
		buf_append_c(&b, *s == '"' ? ' ' : *s);
	if (*s != ')') {
		buf_free(&b);
		return NULL;
	}
	names = str_split(buf_cstr(&b), " ", NULL);
	buf_free(&b);
	return names;
}

static bool
name_in(char **names, const char *name, size_t len)
{
	for (char **n = names; *n != NULL; n++) {
		if (strlen(*n) == len && strncasecmp(*n, name, len) == 0)
			return true;
	}
	return false;
}

/*
 * The bytes of a section (RFC 9051 §6.4.5), CRLF line ends. -1 when the
 * section text is not valid; a part that does not exist gives "".
 */
int
imap_section_data(struct mime_message *msg, const char *section, struct buf *out)
{
	const char *p = section, *spec;
	char *partspec;
	struct mime_part *part;
	const char *d = msg->data;
	size_t hs, he;

	/* the part number: digits and dots up to a letter */
	spec = p;
	while ((*spec >= '0' && *spec <= '9') || *spec == '.') {
		if (*spec == '.' && !(spec[1] >= '0' && spec[1] <= '9'))
			break;
		spec++;
	}
	partspec = xstrndup(p, (size_t)(spec - p));
	if (*spec == '.')
		spec++;
	else if (*spec != '\0' && spec != p) {
		free(partspec);
		return -1;
	}
	part = mime_part_find(msg, partspec);
	if (part == NULL) {
		bool valid = true;

		/* syntax fine, but no such part: empty data */
		free(partspec);
		if (strcmp(spec, "") != 0 && strcasecmp(spec, "MIME") != 0 &&
		    strcasecmp(spec, "HEADER") != 0 && strcasecmp(spec, "TEXT") != 0 &&
		    strncasecmp(spec, "HEADER.FIELDS", 13) != 0)
			valid = false;
		return valid ? 0 : -1;
	}
	if (*spec == '\0') {
		if (*partspec == '\0')
			append_crlf(out, d, 0, msg->size);
		else
			append_crlf(out, d, part->body_offset,
			    part->body_offset + part->body_size);
		free(partspec);
		return 0;
	}
	if (strcasecmp(spec, "MIME") == 0) {
		bool top = *partspec == '\0';

		free(partspec);
		if (top)
			return -1;
		append_crlf(out, d, part->hdr_offset, part->hdr_offset + part->hdr_size);
		return 0;
	}
	/* HEADER, TEXT, HEADER.FIELDS: of the message at this level */
	if (*partspec != '\0') {
		if ((part->flags & MIME_PART_MESSAGE) == 0) {
			free(partspec);
			return 0;
		}
		part = part->message;
	}
	free(partspec);
	hs = part->hdr_offset;
	he = part->hdr_offset + part->hdr_size;
	if (strcasecmp(spec, "HEADER") == 0) {
		append_crlf(out, d, hs, he);
		return 0;
	}
	if (strcasecmp(spec, "TEXT") == 0) {
		append_crlf(out, d, part->body_offset, part->body_offset + part->body_size);
		return 0;
	}
	if (strncasecmp(spec, "HEADER.FIELDS", 13) == 0) {
		bool not = strncasecmp(spec + 13, ".NOT", 4) == 0;
		char **names = parse_field_names(spec + 13 + (not ? 4 : 0));
		struct mail_header_iter it;
		struct mail_header_field f;

		if (names == NULL)
			return -1;
		mail_header_iter_init(&it, d, hs, he);
		while (mail_header_next(&it, &f) > 0) {
			if (name_in(names, f.name, f.name_len) != not)
				append_crlf(out, d, f.offset, f.offset + f.size);
		}
		buf_append_str(out, "\r\n");
		str_array_free(names);
		return 0;
	}
	return -1;
}

static void
append_literal(struct buf *out, const struct buf *data, const struct fetch_item *it)
{
	size_t off = 0, len = data->len;

	if (it != NULL && it->partial) {
		off = it->offset < data->len ? (size_t)it->offset : data->len;
		len = data->len - off;
		if (it->length < len)
			len = (size_t)it->length;
	}
	/* decoded content with a NUL goes as literal8 (RFC 3516 4.3) */
	if (it != NULL && it->kind == F_BINARY && len > 0 &&
	    memchr(data->data + off, '\0', len) != NULL)
		buf_append_c(out, '~');
	buf_printf(out, "{%zu}\r\n", len);
	buf_append(out, data->data != NULL ? data->data + off : "", len);
}

/*
 * BINARY[section] content (mail/binary.h); a part that does not exist is
 * empty. -1: an encoding that cannot be undone (NO [UNKNOWN-CTE]).
 */
static int
binary_data(struct mime_message *msg, const char *section, struct buf *out)
{
	struct mime_part *part = mime_part_find(msg, section);

	if (part == NULL)
		return 0;
	return mime_binary_section(msg, part, *section == '\0', out);
}

static void
append_internaldate(struct buf *out, time_t t)
{
	static const char *const mon[] = { "Jan", "Feb", "Mar", "Apr", "May",
	    "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	gmtime_r(&t, &tm);
	buf_printf(out, "\"%02d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday,
	    mon[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void
cache_put(struct imap_session *s, uint32_t uid, const char *env, const char *bs)
{
	char *err = NULL;

	/* a cache that cannot be written costs speed, not correctness */
	if (store_msg_cache_set(s->box, uid, env, bs, &err) < 0) {
		log_debug("event=imap_cache_failed error=\"%s\"", err);
		free(err);
	}
}

/*
 * One message's FETCH response. -1: the message file is gone; -2: a
 * BINARY part has an unknown encoding (nothing sent for it).
 */
static int
fetch_one(struct imap_session *s, struct fetch_ctx *c, unsigned int idx,
    bool uid)
{
	const struct store_msg *msgs;
	const struct store_msg *m;
	unsigned int count;
	char *data = NULL, *env = NULL, *bs = NULL;
	size_t len = 0;
	struct mime_message *msg = NULL;
	struct buf out, tmp;
	bool first = true, set_seen = false, cte_failed = false;

	msgs = store_mailbox_msgs(s->box, &count);
	m = &msgs[idx];
	if (c->sets_seen && !s->readonly && (m->flags & STORE_FLAG_SEEN) == 0) {
		char *err = NULL;

		if (store_msg_set_flags(s->box, idx, m->flags | STORE_FLAG_SEEN,
		    NULL, &err) == 0)
			set_seen = true;
		free(err);
		msgs = store_mailbox_msgs(s->box, &count);
		m = &msgs[idx];
	}
	if (c->need_msg) {
		bool need_file = false;

		for (unsigned int i = 0; i < c->n; i++) {
			enum fetch_kind k = c->items[i].kind;

			if (k != F_ENVELOPE && k != F_BODYSTRUCTURE && k != F_UID &&
			    k != F_FLAGS && k != F_INTERNALDATE && k != F_SIZE)
				need_file = true;
		}
		/* the cache holds the rendering for clients without
		   UTF8=ACCEPT; a UTF-8 client gets its own (RFC 6855 §3) */
		if (!need_file && (s->utf8 ||
		    store_msg_cache_get(s->box, m->uid, &env, &bs) < 0))
			need_file = true;
		for (unsigned int i = 0; i < c->n; i++) {
			if ((c->items[i].kind == F_ENVELOPE && env == NULL) ||
			    (c->items[i].kind == F_BODYSTRUCTURE && bs == NULL))
				need_file = true;
		}
		if (need_file) {
			char *path = store_msg_full_path(s->box, m);

			if (file_read_all(path, MESSAGE_MAX, &data, &len) < 0) {
				free(path);
				free(env);
				free(bs);
				return -1;
			}
			free(path);
			msg = mime_parse(data, len, &mime_default_limits);
		}
	}
	if (c->has_flags || set_seen)
		imap_keywords_announce(s, m->keywords);
	buf_init(&out, BUF_UNLIMITED);
	buf_init(&tmp, BUF_UNLIMITED);
	buf_printf(&out, "* %u FETCH (", idx + 1);
#define SEP() do { if (!first) buf_append_c(&out, ' '); first = false; } while (0)
	if (uid && !c->has_uid) {
		SEP();
		buf_printf(&out, "UID %u", m->uid);
	}
	for (unsigned int i = 0; i < c->n; i++) {
		const struct fetch_item *it = &c->items[i];

		SEP();
		buf_reset(&tmp);
		switch (it->kind) {
		case F_UID:
			buf_printf(&out, "UID %u", m->uid);
			break;
		case F_FLAGS:
			buf_append_str(&out, "FLAGS ");
			imap_append_flags(&out, m, imap_msg_recent(s, m->uid));
			break;
		case F_INTERNALDATE:
			buf_append_str(&out, "INTERNALDATE ");
			append_internaldate(&out, m->internaldate);
			break;
		case F_SIZE:
			buf_printf(&out, "RFC822.SIZE %llu", (unsigned long long)m->size);
			break;
		case F_MODSEQ:
			buf_printf(&out, "MODSEQ (%llu)", (unsigned long long)m->modseq);
			break;
		case F_ENVELOPE:
			buf_append_str(&out, "ENVELOPE ");
			if (env == NULL) {
				imap_envelope_render(&tmp, data, 0, msg->root->hdr_size,
				    s->utf8);
				env = xstrdup(buf_cstr(&tmp));
				if (!s->utf8)
					cache_put(s, m->uid, env, NULL);
			}
			buf_append_str(&out, env);
			break;
		case F_BODYSTRUCTURE:
			buf_append_str(&out, "BODYSTRUCTURE ");
			if (bs == NULL) {
				imap_bodystructure_render(&tmp, msg, msg->root, true,
				    s->utf8);
				bs = xstrdup(buf_cstr(&tmp));
				if (!s->utf8)
					cache_put(s, m->uid, NULL, bs);
			}
			buf_append_str(&out, bs);
			break;
		case F_BODY:
			buf_append_str(&out, "BODY ");
			imap_bodystructure_render(&out, msg, msg->root, false,
			    s->utf8);
			break;
		case F_RFC822:
			append_crlf(&tmp, data, 0, len);
			buf_append_str(&out, "RFC822 ");
			append_literal(&out, &tmp, NULL);
			break;
		case F_RFC822_HEADER:
			append_crlf(&tmp, data, 0, msg->root->hdr_size);
			buf_append_str(&out, "RFC822.HEADER ");
			append_literal(&out, &tmp, NULL);
			break;
		case F_RFC822_TEXT:
			append_crlf(&tmp, data, msg->root->body_offset, len);
			buf_append_str(&out, "RFC822.TEXT ");
			append_literal(&out, &tmp, NULL);
			break;
		case F_BINARY:
		case F_BINARY_SIZE:
			if (binary_data(msg, it->section, &tmp) < 0) {
				cte_failed = true;
				break;
			}
			if (it->kind == F_BINARY_SIZE) {
				buf_printf(&out, "BINARY.SIZE[%s] %zu", it->section,
				    tmp.len);
				break;
			}
			buf_printf(&out, "BINARY[%s]", it->section);
			if (it->partial)
				buf_printf(&out, "<%llu>", (unsigned long long)it->offset);
			buf_append_c(&out, ' ');
			append_literal(&out, &tmp, it);
			break;
		case F_SECTION:
			(void)imap_section_data(msg, it->section, &tmp);
			buf_printf(&out, "BODY[%s]", it->section);
			if (it->partial)
				buf_printf(&out, "<%llu>", (unsigned long long)it->offset);
			buf_append_c(&out, ' ');
			append_literal(&out, &tmp, it);
			break;
		}
	}
	if (set_seen && !c->has_flags) {
		SEP();
		buf_append_str(&out, "FLAGS ");
		imap_append_flags(&out, m, imap_msg_recent(s, m->uid));
	}
	if (set_seen && s->condstore && !c->has_modseq) {
		SEP();
		buf_printf(&out, "MODSEQ (%llu)", (unsigned long long)m->modseq);
	}
#undef SEP
	buf_append_str(&out, ")\r\n");
	/* a part whose encoding is unknown fails this message's reply */
	if (!cte_failed)
		imap_write(s, out.data, out.len);
	buf_free(&out);
	buf_free(&tmp);
	mime_message_free(&msg);
	free(data);
	free(env);
	free(bs);
	return cte_failed ? -2 : 0;
}

/* A FETCH in progress, sent in steps when the reply is large. */
struct fetch_run {
	struct fetch_ctx c;
	unsigned int *idx;
	unsigned int nidx, pos;
	bool uid, gone, unknown_cte;
};

static void
fetch_run_free(void *arg)
{
	struct fetch_run *r = arg;

	fetch_ctx_free(&r->c);
	free(r->idx);
	free(r);
}

static void
fetch_continue(struct imap_session *s)
{
	struct fetch_run *r = s->cont.state;

	while (r->pos < r->nidx) {
		int ret = fetch_one(s, &r->c, r->idx[r->pos++], r->uid);

		if (ret == -1)
			r->gone = true;
		else if (ret == -2)
			r->unknown_cte = true;
		/* a client that does not read must not make us buffer the
		   whole mailbox: go on when it has read most of it */
		if (r->pos < r->nidx && imap_output_pending(s) > IMAP_OUTPUT_HIGH) {
			if (s->cont.fn == NULL)
				imap_cont_set(s, fetch_continue, fetch_run_free, r);
			return;
		}
	}
	if (r->unknown_cte)
		imap_tagged(s, "NO", "[UNKNOWN-CTE] Unknown Content-Transfer-Encoding.");
	else if (r->gone)
		imap_tagged(s, "NO", "[EXPUNGEISSUED] Some of the requested messages no longer exist.");
	else
		imap_tagged(s, "OK", "Fetch completed.");
	if (s->cont.fn != NULL)
		imap_cont_done(s);
	fetch_run_free(r);
}

void
imap_cmd_fetch(struct imap_session *s, const struct imap_arg *a, unsigned int n,
    bool uid)
{
	struct fetch_run *r = xcalloc(1, sizeof(*r));

	uint64_t changedsince = 0;
	bool filter = false;

	if ((n != 2 && n != 3) || a[0].type != IMAP_ARG_ATOM) {
		free(r);
		imap_tagged(s, "BAD", "FETCH needs a sequence set and items");
		return;
	}
	if (parse_items(&r->c, &a[1]) < 0) {
		fetch_run_free(r);
		imap_tagged(s, "BAD", "Invalid FETCH items");
		return;
	}
	if (n == 3) {
		/* RFC 7162 §3.1.4: (CHANGEDSINCE <mod-sequence>) */
		unsigned long long v;

		if (a[2].type != IMAP_ARG_LIST || a[2].count != 2 ||
		    !imap_arg_is_atom(&a[2].list[0], "CHANGEDSINCE") ||
		    a[2].list[1].type != IMAP_ARG_ATOM ||
		    str_to_ullong(a[2].list[1].str, &v) < 0) {
			fetch_run_free(r);
			imap_tagged(s, "BAD", "Invalid FETCH modifier");
			return;
		}
		changedsince = v;
		filter = true;
		if (!r->c.has_modseq && !add_item(&r->c, F_MODSEQ)) {
			fetch_run_free(r);
			imap_tagged(s, "BAD", "Too many FETCH items");
			return;
		}
	}
	if (r->c.has_modseq)
		imap_condstore_enable(s);
	/* check every section's syntax before sending anything */
	for (unsigned int i = 0; i < r->c.n; i++) {
		struct mime_message *empty;
		struct buf tmp;
		int ret;

		if (r->c.items[i].kind != F_SECTION)
			continue;
		empty = mime_parse("", 0, &mime_default_limits);
		buf_init(&tmp, BUF_UNLIMITED);
		ret = imap_section_data(empty, r->c.items[i].section, &tmp);
		buf_free(&tmp);
		mime_message_free(&empty);
		if (ret < 0) {
			fetch_run_free(r);
			imap_tagged(s, "BAD", "Invalid BODY[] section");
			return;
		}
	}
	if (imap_resolve_set(s, a[0].str, uid, &r->idx, &r->nidx) < 0) {
		fetch_run_free(r);
		return;
	}
	if (filter) {
		unsigned int count, out = 0;
		const struct store_msg *msgs = store_mailbox_msgs(s->box, &count);

		for (unsigned int i = 0; i < r->nidx; i++) {
			if (msgs[r->idx[i]].modseq > changedsince)
				r->idx[out++] = r->idx[i];
		}
		r->nidx = out;
	}
	r->uid = uid;
	/* the state is owned by s->cont from the first pause on */
	s->cont.state = r;
	fetch_continue(s);
	if (s->cont.fn == NULL)
		s->cont.state = NULL;
}
