/* Content transfer decoding for IMAP BINARY, and binary-to-base64 (binary.h). */
#include "mail/binary.h"

#include "lib/xalloc.h"
#include "mail/decode.h"
#include "mail/header.h"

#include <openssl/evp.h>

#include <ctype.h>
#include <string.h>
#include <strings.h>

enum mode {
	MODE_DECODE,	/* BINARY: undo encodings, CRLF line ends */
	MODE_ENCODE,	/* APPEND: base64 the binary parts, bytes kept */
};

struct walk {
	const struct mime_message *msg;
	enum mode mode;
	struct buf *out;
	bool changed;
	bool failed;
};

enum mime_cte
mime_part_cte(const struct mime_part *part)
{
	const char *e = part->encoding;
	size_t len;

	if (e == NULL)
		return MIME_CTE_IDENTITY;
	while (*e == ' ' || *e == '\t')
		e++;
	len = strlen(e);
	while (len > 0 && (e[len - 1] == ' ' || e[len - 1] == '\t'))
		len--;
	if ((len == 4 && strncasecmp(e, "7bit", 4) == 0) ||
	    (len == 4 && strncasecmp(e, "8bit", 4) == 0) ||
	    (len == 6 && strncasecmp(e, "binary", 6) == 0) || len == 0)
		return MIME_CTE_IDENTITY;
	if (len == 6 && strncasecmp(e, "base64", 6) == 0)
		return MIME_CTE_BASE64;
	if (len == 16 && strncasecmp(e, "quoted-printable", 16) == 0)
		return MIME_CTE_QP;
	return MIME_CTE_UNKNOWN;
}

static bool
says_binary(const struct mime_part *part)
{
	const char *e = part->encoding;

	if (e == NULL)
		return false;
	while (*e == ' ' || *e == '\t')
		e++;
	return strncasecmp(e, "binary", 6) == 0;
}

/* data[start..end) as it goes out: CRLF line ends when decoding. */
static void
copy(struct walk *w, size_t start, size_t end)
{
	const char *d = w->msg->data;
	size_t run = start;

	if (end <= start)
		return;
	if (w->mode == MODE_ENCODE) {
		buf_append(w->out, d + start, end - start);
		return;
	}
	for (size_t i = start; i < end; i++) {
		if (d[i] == '\n' && (i == 0 || d[i - 1] != '\r')) {
			buf_append(w->out, d + run, i - run);
			buf_append_str(w->out, "\r\n");
			run = i + 1;
		}
	}
	buf_append(w->out, d + run, end - run);
}

int
mime_decode_qp_text(const char *in, size_t len, struct buf *out)
{
	size_t i = 0;

	while (i < len) {
		size_t eol = i, next, end;
		bool soft = false;

		while (eol < len && in[eol] != '\n')
			eol++;
		next = eol < len ? eol + 1 : eol;
		end = eol;
		if (end > i && in[end - 1] == '\r')
			end--;
		/* white space at the end of a line is not data */
		while (end > i && (in[end - 1] == ' ' || in[end - 1] == '\t'))
			end--;
		if (end > i && in[end - 1] == '=') {
			soft = true;
			end--;
		}
		if (decode_qp(in + i, end - i, out) < 0)
			return -1;
		if (!soft && eol < len && buf_append_str(out, "\r\n") < 0)
			return -1;
		i = next;
	}
	return 0;
}

/* The body of a leaf, decoded (or base64-encoded when encoding). */
static void
leaf_body(struct walk *w, const struct mime_part *p)
{
	const char *d = w->msg->data + p->body_offset;
	size_t len = p->body_size;

	if (w->mode == MODE_ENCODE) {
		unsigned char line[80];

		/* 57 bytes make one 76-character line; in a multipart the
		   line end before the next boundary is the boundary's */
		for (size_t i = 0; i < len; i += 57) {
			size_t n = len - i < 57 ? len - i : 57;
			int l = EVP_EncodeBlock(line, (const unsigned char *)d + i,
			    (int)n);

			if (i > 0)
				buf_append_str(w->out, "\r\n");
			buf_append(w->out, line, (size_t)l);
		}
		if (p->parent == NULL)
			buf_append_str(w->out, "\r\n");
		return;
	}
	switch (mime_part_cte(p)) {
	case MIME_CTE_BASE64:
		(void)decode_base64(d, len, w->out);
		break;
	case MIME_CTE_QP:
		(void)mime_decode_qp_text(d, len, w->out);
		break;
	case MIME_CTE_IDENTITY:
		copy(w, p->body_offset, p->body_offset + p->body_size);
		break;
	case MIME_CTE_UNKNOWN:
		w->failed = true;
		break;
	}
}

/* The header of p with its Content-Transfer-Encoding set to value. */
static void
header_with_cte(struct walk *w, const struct mime_part *p, const char *value)
{
	const char *d = w->msg->data;
	size_t hs = p->hdr_offset, he = p->hdr_offset + p->hdr_size, pos = hs;
	struct mail_header_iter it;
	struct mail_header_field f;
	bool found = false;

	mail_header_iter_init(&it, d, hs, he);
	while (mail_header_next(&it, &f) > 0) {
		if (f.name_len != 25 ||
		    strncasecmp(f.name, "Content-Transfer-Encoding", 25) != 0)
			continue;
		copy(w, pos, f.offset);
		if (!found)
			buf_printf(w->out, "Content-Transfer-Encoding: %s\r\n",
			    value);
		found = true;
		pos = f.offset + f.size;
	}
	if (!found) {
		/* before the empty line that ends the header */
		size_t blank = he;

		if (blank > pos && d[blank - 1] == '\n') {
			blank--;
			if (blank > pos && d[blank - 1] == '\r')
				blank--;
		}
		copy(w, pos, blank);
		buf_printf(w->out, "Content-Transfer-Encoding: %s\r\n", value);
		pos = blank;
	}
	copy(w, pos, he);
}

static bool
leaf_changes(const struct walk *w, const struct mime_part *p)
{
	if (w->mode == MODE_ENCODE)
		return says_binary(p) || memchr(w->msg->data + p->body_offset, '\0',
		    p->body_size) != NULL;
	return mime_part_cte(p) != MIME_CTE_IDENTITY;
}

static bool
is_leaf(const struct mime_part *p)
{
	/* a message/rfc822 with an encoding of its own is opaque content */
	if ((p->flags & MIME_PART_MESSAGE) != 0)
		return mime_part_cte(p) != MIME_CTE_IDENTITY;
	return (p->flags & MIME_PART_MULTIPART) == 0;
}

static void part_whole(struct walk *w, const struct mime_part *p);

/*
 * The body of a container p: its bytes with every child (or the message
 * inside) replaced by its own rendering.
 */
static void
container_body(struct walk *w, const struct mime_part *p)
{
	size_t pos = p->body_offset, end = p->body_offset + p->body_size;

	if ((p->flags & MIME_PART_MESSAGE) != 0 && p->message != NULL) {
		part_whole(w, p->message);
		return;
	}
	for (const struct mime_part *c = p->children; c != NULL; c = c->next) {
		copy(w, pos, c->hdr_offset);
		part_whole(w, c);
		pos = c->body_offset + c->body_size;
	}
	copy(w, pos, end);
}

/* Header and body of p. */
static void
part_whole(struct walk *w, const struct mime_part *p)
{
	if (is_leaf(p)) {
		if (!leaf_changes(w, p)) {
			copy(w, p->hdr_offset, p->body_offset + p->body_size);
			return;
		}
		w->changed = true;
		if (w->mode == MODE_DECODE && mime_part_cte(p) == MIME_CTE_UNKNOWN) {
			w->failed = true;
			return;
		}
		header_with_cte(w, p, w->mode == MODE_ENCODE ? "base64" : "binary");
		leaf_body(w, p);
		return;
	}
	copy(w, p->hdr_offset, p->body_offset);
	container_body(w, p);
}

int
mime_binary_section(const struct mime_message *msg,
    const struct mime_part *part, bool whole, struct buf *out)
{
	struct walk w = { .msg = msg, .mode = MODE_DECODE, .out = out };

	if (whole)
		part_whole(&w, part);
	else if (is_leaf(part))
		leaf_body(&w, part);
	else
		container_body(&w, part);
	return w.failed ? -1 : 0;
}

int
mime_binary_encode(const struct mime_message *msg, struct buf *out)
{
	struct walk w = { .msg = msg, .mode = MODE_ENCODE, .out = out };
	const struct mime_part *stack[64];
	unsigned int depth = 0;

	/* a NUL in any header cannot be carried: refuse */
	stack[depth++] = msg->root;
	while (depth > 0) {
		const struct mime_part *p = stack[--depth];

		if (memchr(msg->data + p->hdr_offset, '\0', p->hdr_size) != NULL)
			return -1;
		if (p->message != NULL && depth < 64)
			stack[depth++] = p->message;
		for (const struct mime_part *c = p->children; c != NULL &&
		    depth < 64; c = c->next)
			stack[depth++] = c;
	}
	part_whole(&w, msg->root);
	return w.changed ? 1 : 0;
}

static void
fix_sizes(const struct mime_message *msg, struct mime_part *p, unsigned int depth)
{
	struct buf b;
	unsigned int lines = 0;

	if (depth > 64)
		return;
	for (struct mime_part *c = p->children; c != NULL; c = c->next)
		fix_sizes(msg, c, depth + 1);
	if (p->message != NULL)
		fix_sizes(msg, p->message, depth + 1);
	buf_init(&b, BUF_UNLIMITED);
	if (mime_binary_section(msg, p, false, &b) == 0) {
		for (size_t i = 0; i < b.len; i++)
			lines += b.data[i] == '\n';
		p->body_vsize = b.len;
		p->body_lines = lines;
	}
	buf_free(&b);
}

void
mime_binary_fix_sizes(const struct mime_message *msg, struct mime_part *part)
{
	fix_sizes(msg, part, 0);
}
