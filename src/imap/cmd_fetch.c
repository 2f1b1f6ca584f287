/*
 * FETCH and UID FETCH: FLAGS, UID, INTERNALDATE, RFC822.SIZE, ENVELOPE,
 * BODYSTRUCTURE, BODY, BODY[section]<partial>, BODY.PEEK, RFC822,
 * RFC822.HEADER, RFC822.TEXT and the ALL/FAST/FULL macros; PREVIEW (RFC
 * 8970) and the SNIPPET (FUZZY) of its draft, which Dovecot still serves.
 *
 * Maildir files may have LF line ends; every byte range sent is converted
 * to CRLF first and partial offsets count in the converted form, so sizes
 * agree with RFC822.SIZE and BODYSTRUCTURE.
 */
#include "imap/session-private.h"

#include "imap/bodystructure.h"
#include "imap/hdrcache.h"
#include "lib/file.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "mail/binary.h"
#include "mail/header.h"
#include "mail/mime.h"
#include "mail/preview.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define MAX_FETCH_ITEMS 64
#define MESSAGE_MAX (1024u * 1024 * 1024)

enum fetch_kind {
	F_UID, F_FLAGS, F_INTERNALDATE, F_SIZE, F_ENVELOPE, F_BODYSTRUCTURE,
	F_BODY, F_SECTION, F_RFC822, F_RFC822_HEADER, F_RFC822_TEXT, F_MODSEQ,
	F_BINARY, F_BINARY_SIZE,	/* RFC 3516 */
	F_PREVIEW, F_SNIPPET,		/* RFC 8970, its draft */
	F_SAVEDATE,			/* RFC 8514 */
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
	bool batch;		/* cache writes of this step in one transaction */
	/* the cache of the next messages, read in one query */
	uint32_t *win_uid;
	struct store_msg_cache *win;
	unsigned int win_n, win_pos;
	uint32_t win_lo, win_hi;
	uint32_t ahead_hi;	/* set by the caller: read ahead up to this UID */
};

#define CACHE_AHEAD 64		/* messages read ahead from the cache */

static void
win_free(struct fetch_ctx *c)
{
	for (unsigned int i = 0; i < c->win_n; i++)
		store_msg_cache_free(&c->win[i]);
	x_free(&c->win);
	x_free(&c->win_uid);
	c->win_n = c->win_pos = 0;
	c->win_lo = c->win_hi = 0;
}

/* The cached renderings of uid (moved out of the window into *mc). */
static void
win_take(struct imap_session *s, struct fetch_ctx *c, uint32_t uid,
    struct store_msg_cache *mc)
{
	memset(mc, 0, sizeof(*mc));
	if (c->win_uid == NULL || uid < c->win_lo || uid > c->win_hi) {
		uint32_t hi = c->ahead_hi > uid ? c->ahead_hi : uid;

		win_free(c);
		/* a sparse set would read rows nobody asked for */
		if (hi - uid > 4 * CACHE_AHEAD)
			hi = uid;
		if (store_msg_cache_load_range(s->box, uid, hi, &c->win_uid,
		    &c->win, &c->win_n) < 0)
			return;
		if (c->win_uid == NULL)
			c->win_uid = xcalloc(1, sizeof(*c->win_uid));
		c->win_lo = uid;
		c->win_hi = hi;
	}
	while (c->win_pos < c->win_n && c->win_uid[c->win_pos] < uid)
		c->win_pos++;
	if (c->win_pos < c->win_n && c->win_uid[c->win_pos] == uid) {
		*mc = c->win[c->win_pos];
		memset(&c->win[c->win_pos], 0, sizeof(c->win[c->win_pos]));
	}
}

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
	    kind == F_RFC822_TEXT || kind == F_BINARY || kind == F_BINARY_SIZE ||
	    kind == F_PREVIEW || kind == F_SNIPPET)
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
is_preview(const struct imap_arg *a)
{
	return a->type == IMAP_ARG_ATOM && (strcasecmp(a->str, "PREVIEW") == 0 ||
	    strcasecmp(a->str, "SNIPPET") == 0);
}

/*
 * PREVIEW [(LAZY)] (RFC 8970), SNIPPET [(FUZZY)] or [(LAZY=FUZZY)] (its
 * draft, as Dovecot takes it). Every preview is made at once, so LAZY
 * changes nothing.
 */
static bool
parse_preview(struct fetch_ctx *c, const char *name, const struct imap_arg *mods)
{
	bool snippet = strcasecmp(name, "SNIPPET") == 0;

	for (unsigned int i = 0; mods != NULL && i < mods->count; i++) {
		const struct imap_arg *m = &mods->list[i];

		if (m->type != IMAP_ARG_ATOM)
			return false;
		if (strcasecmp(m->str, "LAZY") == 0)
			continue;
		if (snippet && (strcasecmp(m->str, "FUZZY") == 0 ||
		    strcasecmp(m->str, "LAZY=FUZZY") == 0))
			continue;
		return false;
	}
	return add_item(c, snippet ? F_SNIPPET : F_PREVIEW);
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
		{ "MODSEQ", F_MODSEQ }, { "SAVEDATE", F_SAVEDATE },
	};

	if (a->type != IMAP_ARG_ATOM)
		return false;
	if (is_preview(a))
		return parse_preview(c, a->str, NULL);
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
	win_free(c);
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
		const struct imap_arg *it = &a->list[i];

		/* PREVIEW and SNIPPET may take a list of modifiers */
		if (is_preview(it) && i + 1 < a->count &&
		    a->list[i + 1].type == IMAP_ARG_LIST) {
			if (!parse_preview(c, it->str, &a->list[++i]))
				return -1;
			continue;
		}
		if (!parse_item(c, it))
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
	buf_append_c(out, '{');
	buf_append_uint(out, len);
	buf_append_str(out, "}\r\n");
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
cache_put(struct imap_session *s, struct fetch_ctx *c, uint32_t uid,
    const char *env, const char *bs, const char *body)
{
	struct store_msg_cache mc = { (char *)env, (char *)bs, (char *)body };
	char *err = NULL;

	/* one transaction for the step, not one per message */
	if (!c->batch && store_batch_begin(s->box, &err) == 0)
		c->batch = true;
	x_free(&err);
	/* a cache that cannot be written costs speed, not correctness */
	if (store_msg_cache_store(s->box, uid, &mc, &err) < 0) {
		log_debug("event=imap_cache_failed error=\"%s\"", err);
		free(err);
	}
}

static void
cache_flush(struct imap_session *s, struct fetch_ctx *c)
{
	char *err = NULL;

	if (!c->batch)
		return;
	c->batch = false;
	if (store_batch_end(s->box, &err) < 0) {
		log_debug("event=imap_cache_failed error=\"%s\"", err);
		free(err);
	}
}

/*
 * What of the message file an item needs: nothing (index or cache), its
 * header only, the whole file split into header and body, or the whole
 * MIME tree. Cheaper levels save reading big bodies and parsing parts.
 */
enum need {
	NEED_NONE,
	NEED_HEADER,
	NEED_SPLIT,
	NEED_TREE,
};

static enum need
item_need(const struct fetch_item *it, const struct store_msg_cache *mc)
{
	const char *sec = it->section;

	switch (it->kind) {
	case F_UID: case F_FLAGS: case F_INTERNALDATE: case F_SIZE: case F_MODSEQ:
	case F_SAVEDATE:
		return NEED_NONE;
	case F_ENVELOPE:
		return mc->envelope != NULL ? NEED_NONE : NEED_HEADER;
	case F_BODYSTRUCTURE:
		return mc->bodystructure != NULL ? NEED_NONE : NEED_TREE;
	case F_BODY:
		return mc->body != NULL ? NEED_NONE : NEED_TREE;
	case F_RFC822_HEADER:
		return NEED_HEADER;
	case F_RFC822: case F_RFC822_TEXT:
		return NEED_SPLIT;
	case F_BINARY: case F_BINARY_SIZE: case F_PREVIEW: case F_SNIPPET:
		return NEED_TREE;
	case F_SECTION:
		if (strcasecmp(sec, "HEADER") == 0 ||
		    strncasecmp(sec, "HEADER.FIELDS", 13) == 0)
			return NEED_HEADER;
		if (*sec == '\0' || strcasecmp(sec, "TEXT") == 0)
			return NEED_SPLIT;
		return NEED_TREE;
	}
	return NEED_TREE;
}

/* The top-level header and the body as one opaque part. */
static const struct mime_limits top_only_limits = {
	.max_depth = 1,
	.max_parts = 1,
	.max_params = 64,
	.max_value = 64 * 1024,
};

/*
 * Reads a message file up to and including the blank line after its
 * header (all of it when there is none). -1 with errno.
 */
static int
read_header(const char *path, char **data_r, size_t *len_r)
{
	int fd = file_open_read(path);
	struct buf b;
	char chunk[8192];
	ssize_t n;

	if (fd < 0)
		return -1;
	buf_init(&b, MESSAGE_MAX);
	buf_append_str(&b, "");
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		size_t end;

		if (buf_append(&b, chunk, (size_t)n) < 0) {
			errno = EFBIG;
			n = -1;
			break;
		}
		end = mail_header_block_end(b.data, 0, b.len);
		/* the blank line is in: the header is complete */
		if (end < b.len || (end == b.len && end >= 1 &&
		    b.data[end - 1] == '\n' && (end == 1 || b.data[end - 2] == '\n' ||
		    (end >= 3 && b.data[end - 2] == '\r' && b.data[end - 3] == '\n')))) {
			b.len = end;
			b.data[end] = '\0';
			break;
		}
	}
	close(fd);
	if (n < 0) {
		buf_free(&b);
		return -1;
	}
	*len_r = b.len;
	*data_r = buf_steal(&b);
	return 0;
}

/* The header or the whole file, as need says. -1 with errno set. */
static int
read_msg(const char *path, enum need need, char **data_r, size_t *len_r)
{
	if (need == NEED_HEADER)
		return read_header(path, data_r, len_r);
	return file_read_all(path, MESSAGE_MAX, data_r, len_r);
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
	char *data = NULL;
	struct store_msg_cache mc = { NULL, NULL, NULL };
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
		enum need need = NEED_NONE;
		char *path;
		bool cached;
		int r;

		for (unsigned int i = 0; i < c->n && need < NEED_HEADER; i++) {
			enum fetch_kind k = c->items[i].kind;

			if (k == F_ENVELOPE || k == F_BODYSTRUCTURE || k == F_BODY)
				need = NEED_HEADER;	/* look in the cache */
		}
		/* the cache holds the renderings for clients without
		   UTF8=ACCEPT; a UTF-8 client gets its own (RFC 6855 3) */
		if (need != NEED_NONE && !s->utf8)
			win_take(s, c, m->uid, &mc);
		need = NEED_NONE;
		for (unsigned int i = 0; i < c->n; i++) {
			enum need n2 = item_need(&c->items[i], &mc);

			if (n2 > need)
				need = n2;
		}
		if (need != NEED_NONE) {
			path = store_msg_full_path(s->box, m);
			cached = need == NEED_HEADER && imap_hdrcache_get(m->base,
			    m->size, &data, &len) == 0;
			r = cached ? 0 : read_msg(path, need, &data, &len);
			if (r < 0 && errno == ENOENT) {
				/* renamed under us (the other worker, before
				   its commit; Dovecot): its name now */
				free(path);
				path = store_msg_relocated_path(s->box, m);
				if (path != NULL)
					r = read_msg(path, need, &data, &len);
			}
			if (r == 0 && need == NEED_HEADER && !cached)
				imap_hdrcache_put(m->base, m->size, data, len);
			free(path);
			if (r < 0) {
				store_msg_cache_free(&mc);
				return -1;
			}
			msg = mime_parse(data, len, need == NEED_TREE ?
			    &mime_default_limits : &top_only_limits);
		}
	}
	if (c->has_flags || set_seen)
		imap_keywords_announce(s, m->keywords);
	buf_init(&out, BUF_UNLIMITED);
	buf_init(&tmp, BUF_UNLIMITED);
	buf_append_str(&out, "* ");
	buf_append_uint(&out, idx + 1);
	buf_append_str(&out, " FETCH (");
#define SEP() do { if (!first) buf_append_c(&out, ' '); first = false; } while (0)
	if (uid && !c->has_uid) {
		SEP();
		buf_append_str(&out, "UID ");
		buf_append_uint(&out, m->uid);
	}
	for (unsigned int i = 0; i < c->n; i++) {
		const struct fetch_item *it = &c->items[i];

		SEP();
		buf_reset(&tmp);
		switch (it->kind) {
		case F_UID:
			buf_append_str(&out, "UID ");
			buf_append_uint(&out, m->uid);
			break;
		case F_FLAGS:
			buf_append_str(&out, "FLAGS ");
			imap_append_flags(&out, m, imap_msg_recent(s, m->uid));
			break;
		case F_INTERNALDATE:
			buf_append_str(&out, "INTERNALDATE ");
			append_internaldate(&out, m->internaldate);
			break;
		case F_SAVEDATE:
			buf_append_str(&out, "SAVEDATE ");
			append_internaldate(&out, m->savedate);
			break;
		case F_SIZE:
			buf_append_str(&out, "RFC822.SIZE ");
			buf_append_uint(&out, m->size);
			break;
		case F_MODSEQ:
			buf_append_str(&out, "MODSEQ (");
			buf_append_uint(&out, m->modseq);
			buf_append_c(&out, ')');
			break;
		case F_ENVELOPE:
			buf_append_str(&out, "ENVELOPE ");
			if (mc.envelope == NULL) {
				imap_envelope_render(&tmp, data, 0, msg->root->hdr_size,
				    s->utf8);
				mc.envelope = xstrdup(buf_cstr(&tmp));
				if (!s->utf8)
					cache_put(s, c, m->uid, mc.envelope, NULL, NULL);
			}
			buf_append_str(&out, mc.envelope);
			break;
		case F_BODYSTRUCTURE:
			buf_append_str(&out, "BODYSTRUCTURE ");
			if (mc.bodystructure == NULL) {
				imap_bodystructure_render(&tmp, msg, msg->root, true,
				    s->utf8);
				mc.bodystructure = xstrdup(buf_cstr(&tmp));
				if (!s->utf8)
					cache_put(s, c, m->uid, NULL, mc.bodystructure,
					    NULL);
			}
			buf_append_str(&out, mc.bodystructure);
			break;
		case F_BODY:
			buf_append_str(&out, "BODY ");
			if (mc.body == NULL) {
				imap_bodystructure_render(&tmp, msg, msg->root, false,
				    s->utf8);
				mc.body = xstrdup(buf_cstr(&tmp));
				if (!s->utf8)
					cache_put(s, c, m->uid, NULL, NULL, mc.body);
			}
			buf_append_str(&out, mc.body);
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
		case F_PREVIEW:
		case F_SNIPPET: {
			char *text = mail_preview(msg, PREVIEW_CHARS);

			buf_append_str(&out, it->kind == F_PREVIEW ? "PREVIEW " :
			    "SNIPPET (FUZZY ");
			imap_append_nstr(&out, text, s->utf8);
			if (it->kind == F_SNIPPET)
				buf_append_c(&out, ')');
			free(text);
			break;
		}
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
	store_msg_cache_free(&mc);
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

	/* \Seen set by this step's messages: one transaction (cache_put
	   joins it) */
	if (r->c.sets_seen && !s->readonly && !r->c.batch && r->pos < r->nidx) {
		char *err = NULL;

		if (store_batch_begin(s->box, &err) == 0)
			r->c.batch = true;
		free(err);
	}
	while (r->pos < r->nidx) {
		unsigned int count, ahead = r->pos + CACHE_AHEAD - 1;
		const struct store_msg *msgs = store_mailbox_msgs(s->box, &count);
		int ret;

		if (ahead >= r->nidx)
			ahead = r->nidx - 1;
		r->c.ahead_hi = msgs[r->idx[ahead]].uid;
		ret = fetch_one(s, &r->c, r->idx[r->pos++], r->uid);
		if (ret == -1)
			r->gone = true;
		else if (ret == -2)
			r->unknown_cte = true;
		/* a client that does not read must not make us buffer the
		   whole mailbox: go on when it has read most of it */
		if (r->pos < r->nidx && imap_output_pending(s) > IMAP_OUTPUT_HIGH) {
			cache_flush(s, &r->c);
			if (s->cont.fn == NULL)
				imap_cont_set(s, fetch_continue, fetch_run_free, r);
			return;
		}
	}
	cache_flush(s, &r->c);
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
	bool filter = false, vanished = false;
	unsigned int next = 2;		/* where the modifiers would be */
	int ret;

	if (n < 2 || a[0].type != IMAP_ARG_ATOM) {
		free(r);
		imap_tagged(s, "BAD", "FETCH needs a sequence set and items");
		return;
	}
	/* "FETCH 1 PREVIEW (LAZY)": one item with its own list */
	if (is_preview(&a[1]) && n >= 3 && a[2].type == IMAP_ARG_LIST &&
	    !(a[2].count > 0 && imap_arg_is_atom(&a[2].list[0], "CHANGEDSINCE"))) {
		memset(&r->c, 0, sizeof(r->c));
		ret = parse_preview(&r->c, a[1].str, &a[2]) ? 0 : -1;
		next = 3;
	} else {
		ret = parse_items(&r->c, &a[1]);
	}
	if (ret < 0 || n > next + 1) {
		fetch_run_free(r);
		imap_tagged(s, "BAD", ret < 0 ? "Invalid FETCH items" :
		    "FETCH needs a sequence set and items");
		return;
	}
	if (n == next + 1) {
		/* RFC 7162 §3.1.4: (CHANGEDSINCE <mod-sequence>), and with
		   QRESYNC on UID FETCH, VANISHED after it (§3.2.6) */
		unsigned long long v;
		const struct imap_arg *mods = a[next].list;
		unsigned int nmods = a[next].type == IMAP_ARG_LIST ? a[next].count : 0;

		if ((nmods != 2 && nmods != 3) ||
		    !imap_arg_is_atom(&mods[0], "CHANGEDSINCE") ||
		    mods[1].type != IMAP_ARG_ATOM ||
		    str_to_ullong(mods[1].str, &v) < 0 ||
		    (nmods == 3 && !imap_arg_is_atom(&mods[2], "VANISHED"))) {
			fetch_run_free(r);
			imap_tagged(s, "BAD", "Invalid FETCH modifier");
			return;
		}
		if (nmods == 3 && (!uid || !s->qresync)) {
			fetch_run_free(r);
			imap_tagged(s, "BAD", "VANISHED needs UID FETCH and ENABLE QRESYNC");
			return;
		}
		vanished = nmods == 3;
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
	if (vanished) {
		/* the client's UID set as it sent it: expunged UIDs in it are
		   by definition no longer in the view */
		struct imap_seqset set;
		const char *err;

		if (imap_seqset_parse(a[0].str, 10000, &set, &err) == 0) {
			imap_seqset_normalize(&set, store_mailbox_uidnext(s->box) - 1);
			imap_send_vanished_earlier(s, &set, changedsince);
			imap_seqset_free(&set);
		}
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

/* --- NOTIFY's MessageNew fetch attributes (RFC 5465 5.2) --------------------------- */

struct imap_fetch_spec {
	struct fetch_ctx c;
};

struct imap_fetch_spec *
imap_fetch_spec_new(const struct imap_arg *atts)
{
	struct imap_fetch_spec *f = xcalloc(1, sizeof(*f));

	if (parse_items(&f->c, atts) < 0) {
		imap_fetch_spec_free(&f);
		return NULL;
	}
	for (unsigned int i = 0; i < f->c.n; i++) {
		struct mime_message *empty;
		struct buf tmp;
		int ret;

		/* unasked-for mail must not turn \Seen: every item peeks */
		f->c.items[i].peek = true;
		if (f->c.items[i].kind != F_SECTION)
			continue;
		empty = mime_parse("", 0, &mime_default_limits);
		buf_init(&tmp, BUF_UNLIMITED);
		ret = imap_section_data(empty, f->c.items[i].section, &tmp);
		buf_free(&tmp);
		mime_message_free(&empty);
		if (ret < 0) {
			imap_fetch_spec_free(&f);
			return NULL;
		}
	}
	f->c.sets_seen = false;
	return f;
}

void
imap_fetch_spec_free(struct imap_fetch_spec **f)
{
	if (*f == NULL)
		return;
	fetch_ctx_free(&(*f)->c);
	x_free(f);
}

void
imap_fetch_spec_send(struct imap_session *s, struct imap_fetch_spec *f,
    unsigned int idx)
{
	unsigned int count;

	store_mailbox_msgs(s->box, &count);
	if (idx >= count)
		return;
	if (f->c.has_modseq)
		imap_condstore_enable(s);
	/* with the UID, as a UID FETCH, so the client can place it */
	(void)fetch_one(s, &f->c, idx, true);
	cache_flush(s, &f->c);
	win_free(&f->c);
}
