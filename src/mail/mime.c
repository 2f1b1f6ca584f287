/*
 * The MIME parser. Each part is parsed from a byte range its parent gave
 * it: a multipart finds all its delimiter lines first and only then parses
 * its children inside the ranges between them, so a broken inner part can
 * never swallow its parent's boundaries. See mime.h for the contract.
 */
#include "mail/mime.h"

#include "lib/buf.h"
#include "lib/xalloc.h"
#include "mail/header.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

const struct mime_limits mime_default_limits = {
	.max_depth = 50,
	.max_parts = 5000,
	.max_params = 32,
	.max_value = 8192,
};

/* Boundaries are at most 70 characters (RFC 2046 §5.1.1); allow slack. */
#define MAX_BOUNDARY 200
/* RFC 2231 continuations joined per parameter */
#define MAX_CONTINUATIONS 64

struct mime_ctx {
	struct mime_message *msg;
	const struct mime_limits *lim;
};

unsigned int
mime_count_lines(const char *data, size_t start, size_t end)
{
	unsigned int n = 0;
	size_t pos = start;

	while (pos < end) {
		const char *lf = memchr(data + pos, '\n', end - pos);

		n++;
		if (lf == NULL)
			break;
		pos = (size_t)(lf - data) + 1;
	}
	return n;
}

size_t
mime_vsize(const char *data, size_t start, size_t end)
{
	size_t n = end - start, pos = start;

	while (pos < end) {
		const char *lf = memchr(data + pos, '\n', end - pos);

		if (lf == NULL)
			break;
		pos = (size_t)(lf - data);
		if (pos == start || data[pos - 1] != '\r')
			n++;
		pos++;
	}
	return n;
}

void
mime_params_free(struct mime_param *params, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		free(params[i].name);
		free(params[i].value);
	}
	free(params);
}

static void
part_free(struct mime_part *part)
{
	struct mime_part *c, *next;

	for (c = part->children; c != NULL; c = next) {
		next = c->next;
		part_free(c);
	}
	if (part->message != NULL)
		part_free(part->message);
	free(part->type);
	free(part->subtype);
	mime_params_free(part->params, part->nparams);
	free(part->id);
	free(part->description);
	free(part->encoding);
	free(part->md5);
	free(part->language);
	free(part->location);
	free(part->disposition);
	mime_params_free(part->disp_params, part->ndisp_params);
	free(part);
}

void
mime_message_free(struct mime_message **msgp)
{
	struct mime_message *msg = *msgp;

	if (msg == NULL)
		return;
	if (msg->root != NULL)
		part_free(msg->root);
	free(msg);
	*msgp = NULL;
}

/* --- RFC 2045 tokens ------------------------------------------------- */

static bool
is_tspecial(unsigned char c)
{
	return strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

static bool
is_token_char(unsigned char c)
{
	return c > ' ' && c != 0x7f && !is_tspecial(c);
}

/* Skips white space and (nested (comments)). */
static void
skip_cfws(const char *s, size_t *ip)
{
	size_t i = *ip;
	unsigned int depth = 0;

	while (s[i] != '\0') {
		if (depth == 0 && (s[i] == ' ' || s[i] == '\t')) {
			i++;
		} else if (s[i] == '(') {
			depth++;
			i++;
		} else if (depth > 0 && s[i] == ')') {
			depth--;
			i++;
		} else if (depth > 0 && s[i] == '\\' && s[i + 1] != '\0') {
			i += 2;
		} else if (depth > 0) {
			i++;
		} else {
			break;
		}
	}
	*ip = i;
}

static char *
read_token(const char *s, size_t *ip)
{
	size_t i = *ip;

	while (is_token_char((unsigned char)s[i]))
		i++;
	if (i == *ip)
		return NULL;
	{
		char *t = xstrndup(s + *ip, i - *ip);

		*ip = i;
		return t;
	}
}

static void
skip_to_semicolon(const char *s, size_t *ip)
{
	size_t i = *ip;
	bool quoted = false;

	while (s[i] != '\0' && (quoted || s[i] != ';')) {
		if (s[i] == '"')
			quoted = !quoted;
		else if (quoted && s[i] == '\\' && s[i + 1] != '\0')
			i++;
		i++;
	}
	*ip = i;
}

static char *
read_value(const char *s, size_t *ip)
{
	size_t i = *ip, end;
	struct buf b;

	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "");
	if (s[i] == '"') {
		i++;
		while (s[i] != '\0' && s[i] != '"') {
			if (s[i] == '\\' && s[i + 1] != '\0')
				i++;
			buf_append_c(&b, s[i]);
			i++;
		}
		if (s[i] == '"')
			i++;
		*ip = i;
		return buf_steal(&b);
	}
	/* unquoted: RFC 2045 wants a token (perhaps with a comment after
	   it), but mailers send file names with spaces unquoted: then take
	   everything up to ';' */
	end = i;
	while (is_token_char((unsigned char)s[end]))
		end++;
	if (end > i) {
		size_t after = end;

		skip_cfws(s, &after);
		if (s[after] == ';' || s[after] == '\0') {
			buf_append(&b, s + i, end - i);
			*ip = after;
			return buf_steal(&b);
		}
	}
	end = i;
	while (s[end] != '\0' && s[end] != ';')
		end++;
	*ip = end;
	while (end > i && (s[end - 1] == ' ' || s[end - 1] == '\t'))
		end--;
	buf_append(&b, s + i, end - i);
	return buf_steal(&b);
}

struct raw_param {
	char *name, *value;
	bool used;
};

/* "name*3*" -> base length, 3, extended; false if not a continuation */
static bool
split_continuation(const char *name, size_t *base_len_r, unsigned int *n_r,
    bool *ext_r)
{
	const char *star = strchr(name, '*'), *p;
	unsigned int n = 0;

	if (star == NULL || star[1] < '0' || star[1] > '9')
		return false;
	for (p = star + 1; *p >= '0' && *p <= '9'; p++) {
		n = n * 10 + (unsigned int)(*p - '0');
		if (n > 1000)
			return false;
	}
	*ext_r = false;
	if (*p == '*') {
		*ext_r = true;
		p++;
	}
	if (*p != '\0')
		return false;
	*base_len_r = (size_t)(star - name);
	*n_r = n;
	return true;
}

/* RFC 2231 §3: join name*0, name*1, ... into one parameter. */
static void
join_params(struct raw_param *raw, unsigned int nraw,
    struct mime_param **params_r, unsigned int *nparams_r)
{
	struct mime_param *out = xcalloc(nraw > 0 ? nraw : 1, sizeof(*out));
	unsigned int nout = 0;

	for (unsigned int i = 0; i < nraw; i++) {
		size_t blen, blen2;
		unsigned int n, n2;
		bool ext, ext2, first_ext = false;
		struct buf v;

		if (raw[i].used)
			continue;
		if (!split_continuation(raw[i].name, &blen, &n, &ext)) {
			out[nout].name = xstrdup(raw[i].name);
			out[nout].value = xstrdup(raw[i].value);
			raw[i].used = true;
			nout++;
			continue;
		}
		/* gather the segments of this base in order 0, 1, 2, ... */
		buf_init(&v, BUF_UNLIMITED);
		buf_append_str(&v, "");
		for (unsigned int want = 0; want < MAX_CONTINUATIONS; want++) {
			bool found = false;

			for (unsigned int j = i; j < nraw; j++) {
				if (raw[j].used ||
				    !split_continuation(raw[j].name, &blen2, &n2, &ext2) ||
				    blen2 != blen || n2 != want ||
				    strncasecmp(raw[j].name, raw[i].name, blen) != 0)
					continue;
				if (want == 0)
					first_ext = ext2;
				buf_append_str(&v, raw[j].value);
				raw[j].used = true;
				found = true;
				break;
			}
			if (!found)
				break;
		}
		if (v.len == 0 && !raw[i].used) {
			/* no segment 0: keep the piece as it came */
			out[nout].name = xstrdup(raw[i].name);
			out[nout].value = xstrdup(raw[i].value);
			raw[i].used = true;
			buf_free(&v);
			nout++;
			continue;
		}
		out[nout].name = xasprintf("%.*s%s", (int)blen, raw[i].name,
		    first_ext ? "*" : "");
		out[nout].value = buf_steal(&v);
		nout++;
		/* segments out of sequence are dropped with their base */
		for (unsigned int j = i; j < nraw; j++) {
			if (!raw[j].used &&
			    split_continuation(raw[j].name, &blen2, &n2, &ext2) &&
			    blen2 == blen &&
			    strncasecmp(raw[j].name, raw[i].name, blen) == 0)
				raw[j].used = true;
		}
	}
	*params_r = out;
	*nparams_r = nout;
}

int
mime_parse_content_type(const char *s, bool want_subtype,
    unsigned int max_params, char **type_r, char **subtype_r,
    struct mime_param **params_r, unsigned int *nparams_r)
{
	size_t i = 0;
	char *type, *subtype = NULL;
	struct raw_param *raw;
	unsigned int nraw = 0, max_raw = max_params * 2, cap;

	skip_cfws(s, &i);
	type = read_token(s, &i);
	if (type == NULL)
		return -1;
	if (want_subtype) {
		skip_cfws(s, &i);
		if (s[i] != '/') {
			free(type);
			return -1;
		}
		i++;
		skip_cfws(s, &i);
		subtype = read_token(s, &i);
		if (subtype == NULL) {
			free(type);
			return -1;
		}
	}
	/* most fields have a parameter or two: grown as needed, not sized
	   (and zeroed) for max_raw on every part of every FETCH */
	cap = max_raw < 4 ? (max_raw > 0 ? max_raw : 1) : 4;
	raw = xmalloc(cap * sizeof(*raw));
	for (;;) {
		char *name;

		skip_cfws(s, &i);
		if (s[i] == '\0')
			break;
		if (s[i] != ';') {
			skip_to_semicolon(s, &i);
			continue;
		}
		i++;
		skip_cfws(s, &i);
		name = read_token(s, &i);
		if (name == NULL) {
			skip_to_semicolon(s, &i);
			continue;
		}
		skip_cfws(s, &i);
		if (s[i] != '=') {
			free(name);
			skip_to_semicolon(s, &i);
			continue;
		}
		i++;
		skip_cfws(s, &i);
		if (nraw == max_raw) {
			free(name);
			break;
		}
		if (nraw == cap) {
			cap = cap * 2 < max_raw ? cap * 2 : max_raw;
			raw = xreallocarray(raw, cap, sizeof(*raw));
		}
		raw[nraw].name = name;
		raw[nraw].used = false;
		raw[nraw].value = read_value(s, &i);
		nraw++;
	}
	join_params(raw, nraw, params_r, nparams_r);
	if (*nparams_r > max_params) {
		for (unsigned int j = max_params; j < *nparams_r; j++) {
			free((*params_r)[j].name);
			free((*params_r)[j].value);
		}
		*nparams_r = max_params;
	}
	for (unsigned int j = 0; j < nraw; j++) {
		free(raw[j].name);
		free(raw[j].value);
	}
	free(raw);
	*type_r = type;
	if (subtype_r != NULL)
		*subtype_r = subtype;
	else
		free(subtype);
	return 0;
}

/* --- parts ------------------------------------------------------------ */

bool
mime_part_is(const struct mime_part *part, const char *type,
    const char *subtype)
{
	return strcasecmp(part->type, type) == 0 &&
	    (subtype == NULL || strcasecmp(part->subtype, subtype) == 0);
}

const char *
mime_part_param(const struct mime_part *part, const char *name)
{
	for (unsigned int i = 0; i < part->nparams; i++) {
		if (strcasecmp(part->params[i].name, name) == 0)
			return part->params[i].value;
	}
	return NULL;
}

static void
set_default_type(struct mime_part *part, bool digest_child)
{
	if (digest_child) {
		part->type = xstrdup("message");
		part->subtype = xstrdup("rfc822");
		return;
	}
	part->type = xstrdup("text");
	part->subtype = xstrdup("plain");
	part->params = xcalloc(1, sizeof(*part->params));
	part->params[0].name = xstrdup("charset");
	part->params[0].value = xstrdup("us-ascii");
	part->nparams = 1;
}

static bool
name_is(const struct mail_header_field *f, const char *name)
{
	size_t n = strlen(name);

	return f->name_len == n && strncasecmp(f->name, name, n) == 0;
}

static void
set_once(char **dst, const struct mail_header_field *f, size_t max)
{
	if (*dst == NULL)
		*dst = mail_header_unfold(f->value, f->value_len, max);
}

static void
parse_content_fields(struct mime_ctx *ctx, struct mime_part *part,
    bool digest_child)
{
	const char *data = ctx->msg->data;
	struct mail_header_iter it;
	struct mail_header_field f;
	char *ctype = NULL, *cdisp = NULL;
	size_t max = ctx->lim->max_value;

	mail_header_iter_init(&it, data, part->hdr_offset, part->body_offset);
	while (mail_header_next(&it, &f) > 0) {
		if (f.name_len < 8 || strncasecmp(f.name, "Content-", 8) != 0)
			continue;
		if (name_is(&f, "Content-Type"))
			set_once(&ctype, &f, max);
		else if (name_is(&f, "Content-Transfer-Encoding"))
			set_once(&part->encoding, &f, max);
		else if (name_is(&f, "Content-ID"))
			set_once(&part->id, &f, max);
		else if (name_is(&f, "Content-Description"))
			set_once(&part->description, &f, max);
		else if (name_is(&f, "Content-Disposition"))
			set_once(&cdisp, &f, max);
		else if (name_is(&f, "Content-Language"))
			set_once(&part->language, &f, max);
		else if (name_is(&f, "Content-Location"))
			set_once(&part->location, &f, max);
		else if (name_is(&f, "Content-MD5"))
			set_once(&part->md5, &f, max);
	}
	if (ctype == NULL ||
	    mime_parse_content_type(ctype, true, ctx->lim->max_params,
	    &part->type, &part->subtype, &part->params, &part->nparams) < 0)
		set_default_type(part, digest_child);
	if (cdisp != NULL &&
	    mime_parse_content_type(cdisp, false, ctx->lim->max_params,
	    &part->disposition, NULL, &part->disp_params,
	    &part->ndisp_params) < 0)
		part->disposition = NULL;
	/* the encoding is a token: drop comments and white space */
	if (part->encoding != NULL) {
		size_t i = 0;
		char *tok;

		skip_cfws(part->encoding, &i);
		tok = read_token(part->encoding, &i);
		free(part->encoding);
		part->encoding = tok;
	}
	free(ctype);
	free(cdisp);
}

static struct mime_part *
part_new(struct mime_ctx *ctx, struct mime_part *parent)
{
	struct mime_part *part = xcalloc(1, sizeof(*part));

	part->parent = parent;
	ctx->msg->nparts++;
	return part;
}

static void parse_part(struct mime_ctx *ctx, struct mime_part *part,
    size_t start, size_t end, unsigned int depth, bool digest_child);

static void
add_child(struct mime_ctx *ctx, struct mime_part *parent,
    struct mime_part **tail, size_t start, size_t end, unsigned int depth)
{
	struct mime_part *child;

	if (ctx->msg->nparts >= ctx->lim->max_parts) {
		parent->flags |= MIME_PART_TRUNCATED;
		return;
	}
	child = part_new(ctx, parent);
	if (*tail == NULL)
		parent->children = child;
	else
		(*tail)->next = child;
	*tail = child;
	parent->nchildren++;
	parse_part(ctx, child, start, end, depth + 1,
	    mime_part_is(parent, "multipart", "digest"));
}

/* Only white space (and the line end) from pos to the end of the line? */
static bool
rest_is_blank(const char *data, size_t pos, size_t end)
{
	for (; pos < end && data[pos] != '\n'; pos++) {
		if (data[pos] != ' ' && data[pos] != '\t' && data[pos] != '\r')
			return false;
	}
	return true;
}

static void
parse_multipart(struct mime_ctx *ctx, struct mime_part *part,
    unsigned int depth)
{
	const char *data = ctx->msg->data;
	const char *boundary = mime_part_param(part, "boundary");
	size_t blen = boundary != NULL ? strlen(boundary) : 0;
	size_t pos = part->body_offset;
	size_t end = part->body_offset + part->body_size;
	size_t child_start = 0;
	bool in_child = false, closed = false, seen = false;
	struct mime_part *tail = NULL;

	if (blen == 0 || blen > MAX_BOUNDARY) {
		part->flags |= MIME_PART_NO_BOUNDARY;
		goto empty;
	}
	while (pos < end) {
		const char *lf = memchr(data + pos, '\n', end - pos);
		size_t next = lf != NULL ? (size_t)(lf - data) + 1 : end;
		size_t q = pos + 2 + blen;

		if (next - pos >= 2 + blen && data[pos] == '-' &&
		    data[pos + 1] == '-' &&
		    memcmp(data + pos + 2, boundary, blen) == 0) {
			bool close = false;

			if (q + 1 < next && data[q] == '-' && data[q + 1] == '-') {
				close = true;
				q += 2;
			}
			if (rest_is_blank(data, q, next)) {
				seen = true;
				if (in_child) {
					/* the line end before a delimiter is
					   part of the delimiter */
					size_t cend = pos;

					if (cend > child_start && data[cend - 1] == '\n') {
						cend--;
						if (cend > child_start && data[cend - 1] == '\r')
							cend--;
					}
					add_child(ctx, part, &tail, child_start,
					    cend, depth);
				}
				if (close) {
					closed = true;
					in_child = false;
					break;
				}
				in_child = true;
				child_start = next;
			}
		}
		pos = next;
	}
	if (in_child) {
		add_child(ctx, part, &tail, child_start, end, depth);
		part->flags |= MIME_PART_NO_END;
	} else if (!closed) {
		part->flags |= MIME_PART_NO_END;
	}
	if (!seen)
		part->flags |= MIME_PART_NO_BOUNDARY;
empty:
	if (part->nchildren == 0 && ctx->msg->nparts < ctx->lim->max_parts) {
		/* IMAP needs at least one part: an empty text/plain one */
		struct mime_part *c = part_new(ctx, part);

		c->hdr_offset = c->body_offset = end;
		set_default_type(c, false);
		c->flags |= MIME_PART_TEXT;
		part->children = c;
		part->nchildren = 1;
	}
	if (part->nchildren > 0)
		part->flags |= MIME_PART_MULTIPART;
}

static bool
encoding_is_identity(const char *enc)
{
	return enc == NULL || strcasecmp(enc, "7bit") == 0 ||
	    strcasecmp(enc, "8bit") == 0 || strcasecmp(enc, "binary") == 0;
}

static void
parse_part(struct mime_ctx *ctx, struct mime_part *part, size_t start,
    size_t end, unsigned int depth, bool digest_child)
{
	const char *data = ctx->msg->data;
	size_t body = mail_header_block_end(data, start, end);

	part->hdr_offset = start;
	part->hdr_size = body - start;
	part->hdr_vsize = mime_vsize(data, start, body);
	part->hdr_lines = mime_count_lines(data, start, body);
	part->body_offset = body;
	part->body_size = end - body;
	part->body_vsize = mime_vsize(data, body, end);
	part->body_lines = mime_count_lines(data, body, end);
	parse_content_fields(ctx, part, digest_child);

	if (strcasecmp(part->type, "text") == 0)
		part->flags |= MIME_PART_TEXT;
	if (strcasecmp(part->type, "multipart") == 0) {
		if (depth + 1 >= ctx->lim->max_depth)
			part->flags |= MIME_PART_TRUNCATED;
		else
			parse_multipart(ctx, part, depth);
	} else if (strcasecmp(part->type, "message") == 0 &&
	    (strcasecmp(part->subtype, "rfc822") == 0 ||
	    strcasecmp(part->subtype, "global") == 0) &&
	    encoding_is_identity(part->encoding)) {
		if (depth + 1 >= ctx->lim->max_depth ||
		    ctx->msg->nparts >= ctx->lim->max_parts) {
			part->flags |= MIME_PART_TRUNCATED;
		} else {
			part->message = part_new(ctx, part);
			part->flags |= MIME_PART_MESSAGE;
			parse_part(ctx, part->message, body, end, depth + 1,
			    false);
		}
	}
}

struct mime_message *
mime_parse(const char *data, size_t size, const struct mime_limits *limits)
{
	struct mime_message *msg = xcalloc(1, sizeof(*msg));
	struct mime_ctx ctx = { .msg = msg, .lim = limits };

	msg->data = data;
	msg->size = size;
	msg->root = part_new(&ctx, NULL);
	parse_part(&ctx, msg->root, 0, size, 0, false);
	return msg;
}

struct mime_part *
mime_part_find(struct mime_message *msg, const char *section)
{
	struct mime_part *cur = msg->root;
	const char *s = section;
	bool first = true;

	if (*s == '\0')
		return cur;
	for (;;) {
		unsigned long n = 0;

		if (*s < '1' || *s > '9')
			return NULL;
		while (*s >= '0' && *s <= '9') {
			n = n * 10 + (unsigned long)(*s - '0');
			if (n > 1000000)
				return NULL;
			s++;
		}
		/* below the top, a message/rfc822 part's numbers are those of
		   the message it holds */
		if (!first && (cur->flags & MIME_PART_MESSAGE) != 0)
			cur = cur->message;
		first = false;
		if ((cur->flags & MIME_PART_MULTIPART) != 0) {
			struct mime_part *c = cur->children;

			while (c != NULL && --n > 0)
				c = c->next;
			if (c == NULL)
				return NULL;
			cur = c;
		} else if (n != 1) {
			return NULL;
		}
		if (*s == '\0')
			return cur;
		if (*s != '.')
			return NULL;
		s++;
	}
}
