/*
 * 8-bit to 7-bit conversion of a MIME message; see downgrade.h. The MIME
 * tree (mail/mime.c) gives each part's byte ranges; the output is the
 * message walked part by part, every range copied as it is unless an
 * 8-bit byte inside it makes the part need a new encoding.
 */
#include "mail/downgrade.h"

#include "lib/buf.h"
#include "mail/decode.h"
#include "mail/header.h"
#include "mail/mime.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

/* Output is gathered in this much before it goes to the writer. */
#define OUT_CHUNK 8192
/* A quoted-printable line holds at most 76 characters, the soft break's
 * "=" included (RFC 2045 §6.7 rule 5). */
#define QP_LINE 76
#define B64_LINE 76

struct out {
	mail_write_fn *write;
	void *context;
	char buf[OUT_CHUNK];
	size_t len;
	bool failed;
};

static void
out_flush(struct out *o)
{
	if (o->len > 0 && !o->failed && o->write(o->context, o->buf, o->len) < 0)
		o->failed = true;
	o->len = 0;
}

static void
out_put(struct out *o, const void *data, size_t len)
{
	const char *p = data;

	if (o->failed)
		return;
	if (len >= sizeof(o->buf)) {
		out_flush(o);
		if (!o->failed && o->write(o->context, p, len) < 0)
			o->failed = true;
		return;
	}
	if (o->len + len > sizeof(o->buf))
		out_flush(o);
	memcpy(o->buf + o->len, p, len);
	o->len += len;
}

static void
out_str(struct out *o, const char *s)
{
	out_put(o, s, strlen(s));
}

bool
mail_has_8bit(const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i = 0;

	/* Eight bytes at a time: this runs over every outgoing message. */
	for (; i + 8 <= len; i += 8) {
		uint64_t w;

		memcpy(&w, p + i, 8);
		if (w & 0x8080808080808080ULL)
			return true;
	}
	for (; i < len; i++)
		if (p[i] & 0x80)
			return true;
	return false;
}

/* ---- encoders */

static const char hexdigits[] = "0123456789ABCDEF";

static void
qp_encode(struct out *o, const char *in, size_t len)
{
	size_t col = 0, i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)in[i];
		char tok[3];
		size_t tlen = 1;
		bool eol_next;

		/* CRLF or a bare LF: a hard line break. */
		if (c == '\n' || (c == '\r' && i + 1 < len && in[i + 1] == '\n')) {
			out_put(o, "\r\n", 2);
			col = 0;
			i += c == '\r' ? 2 : 1;
			continue;
		}
		eol_next = i + 1 == len || in[i + 1] == '\n' ||
		    (in[i + 1] == '\r' && i + 2 < len && in[i + 2] == '\n');
		if ((c >= 33 && c <= 126 && c != '=') ||
		    ((c == ' ' || c == '\t') && !eol_next)) {
			tok[0] = (char)c;
		} else {
			/* 8-bit, controls (a bare CR too), '=', and white
			 * space at the end of a line (rule 3). */
			tok[0] = '=';
			tok[1] = hexdigits[c >> 4];
			tok[2] = hexdigits[c & 15];
			tlen = 3;
		}
		/* Room for the token and, unless the line ends right after
		 * it, a soft break's "=". */
		if (col + tlen > (eol_next ? QP_LINE : QP_LINE - 1)) {
			out_put(o, "=\r\n", 3);
			col = 0;
			/* A line made by a soft break never starts with "-",
			 * so it cannot look like a MIME boundary. */
			if (c == '-') {
				tok[0] = '=';
				tok[1] = '2';
				tok[2] = 'D';
				tlen = 3;
			}
		}
		out_put(o, tok, tlen);
		col += tlen;
		i++;
	}
}

int
mail_encode_qp(const char *in, size_t len, mail_write_fn *write,
    void *context)
{
	struct out o = { .write = write, .context = context };

	qp_encode(&o, in, len);
	out_flush(&o);
	return o.failed ? -1 : 0;
}

static void
b64_encode(struct out *o, const char *in, size_t len, bool final_eol)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const unsigned char *p = (const unsigned char *)in;
	size_t col = 0;

	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		char q[4];

		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		q[0] = tab[(v >> 18) & 63];
		q[1] = tab[(v >> 12) & 63];
		q[2] = i + 1 < len ? tab[(v >> 6) & 63] : '=';
		q[3] = i + 2 < len ? tab[v & 63] : '=';
		if (col == B64_LINE) {
			out_put(o, "\r\n", 2);
			col = 0;
		}
		out_put(o, q, 4);
		col += 4;
	}
	if (final_eol && len > 0)
		out_put(o, "\r\n", 2);
}

int
mail_encode_base64(const char *in, size_t len, bool final_eol,
    mail_write_fn *write, void *context)
{
	struct out o = { .write = write, .context = context };

	b64_encode(&o, in, len, final_eol);
	out_flush(&o);
	return o.failed ? -1 : 0;
}

/* ---- the walk */

struct dg {
	const char *data;
	struct out out;
	const char *reason;
};

static bool
part_is(const struct mime_part *p, const char *type)
{
	return strcasecmp(p->type, type) == 0;
}

static bool
enc_is(const struct mime_part *p, const char *enc)
{
	return p->encoding != NULL && strcasecmp(p->encoding, enc) == 0;
}

static bool
enc_is_identity(const struct mime_part *p)
{
	return p->encoding == NULL || enc_is(p, "7bit") || enc_is(p, "8bit") ||
	    enc_is(p, "binary");
}

static size_t
body_end(const struct mime_part *p)
{
	return p->body_offset + p->body_size;
}

static bool
field_is(const struct mail_header_field *f, const char *name)
{
	size_t n = strlen(name);

	return f->name_len == n && strncasecmp(f->name, name, n) == 0;
}

/*
 * The part's header with its Content-Transfer-Encoding fields replaced by
 * "Content-Transfer-Encoding: cte" (cte NULL: kept), and MIME-Version
 * added when asked and missing, then the empty line.
 */
static void
write_header(struct dg *g, const struct mime_part *p, const char *cte,
    bool mime_version)
{
	struct mail_header_iter it;
	struct mail_header_field f;
	bool has_version = false;

	mail_header_iter_init(&it, g->data, p->hdr_offset, p->body_offset);
	while (mail_header_next(&it, &f) > 0) {
		if (field_is(&f, "MIME-Version"))
			has_version = true;
		if (cte != NULL && field_is(&f, "Content-Transfer-Encoding"))
			continue;
		out_put(&g->out, g->data + f.offset, f.size);
		/* A last field without a line end (no body follows). */
		if (f.size > 0 && g->data[f.offset + f.size - 1] != '\n')
			out_put(&g->out, "\r\n", 2);
	}
	if (mime_version && !has_version)
		out_str(&g->out, "MIME-Version: 1.0\r\n");
	if (cte != NULL) {
		out_str(&g->out, "Content-Transfer-Encoding: ");
		out_str(&g->out, cte);
		out_put(&g->out, "\r\n", 2);
	}
	out_put(&g->out, "\r\n", 2);
}

/* Bytes between parts (delimiters, preamble, epilogue): a line with an
 * 8-bit byte is preamble or epilogue text, never shown; it goes. */
static void
write_gap(struct dg *g, size_t from, size_t to)
{
	while (from < to) {
		const char *lf = memchr(g->data + from, '\n', to - from);
		size_t next = lf != NULL ? (size_t)(lf - g->data) + 1 : to;

		if (!mail_has_8bit(g->data + from, next - from))
			out_put(&g->out, g->data + from, next - from);
		from = next;
	}
}

/* top: the header of a message (not of a body part), where MIME-Version
 * belongs. */
static int emit_part(struct dg *g, const struct mime_part *p, bool top);

/* A leaf with 8-bit bytes in its body: decoded, then encoded again. */
static int
emit_leaf(struct dg *g, const struct mime_part *p, bool top)
{
	const char *body = g->data + p->body_offset;
	size_t len = p->body_size;
	bool text = part_is(p, "text");
	struct buf dec;
	bool final_eol = len > 0 && body[len - 1] == '\n';

	if (part_is(p, "message") && strcasecmp(p->subtype, "global") != 0) {
		/* RFC 2046 §5.2: no encoding but 7bit/8bit/binary; an
		 * rfc822 one holding 8-bit data was walked into instead. */
		g->reason = "8-bit data in a message/* part that may not be "
		    "encoded";
		return -1;
	}
	if (part_is(p, "multipart")) {
		g->reason = "8-bit data in a multipart that is not well formed";
		return -1;
	}
	buf_init(&dec, BUF_UNLIMITED);
	if (enc_is(p, "quoted-printable")) {
		decode_qp(body, len, &dec);
		body = dec.data != NULL ? dec.data : "";
		len = dec.len;
	} else if (enc_is(p, "base64")) {
		decode_base64(body, len, &dec);
		body = dec.data != NULL ? dec.data : "";
		len = dec.len;
		text = false;
	} else if (!enc_is_identity(p)) {
		buf_free(&dec);
		g->reason = "8-bit data under an unknown "
		    "Content-Transfer-Encoding";
		return -1;
	}
	write_header(g, p, text ? "quoted-printable" : "base64", top);
	if (text)
		qp_encode(&g->out, body, len);
	else
		b64_encode(&g->out, body, len, final_eol);
	buf_free(&dec);
	return 0;
}

static int
emit_part(struct dg *g, const struct mime_part *p, bool top)
{
	size_t end = body_end(p);
	const char *cte = NULL;

	if (mail_has_8bit(g->data + p->hdr_offset, p->hdr_size)) {
		g->reason = "8-bit bytes in a header (that needs SMTPUTF8, and "
		    "there is no 7-bit form of it)";
		return -1;
	}
	if (!mail_has_8bit(g->data + p->body_offset, p->body_size)) {
		out_put(&g->out, g->data + p->hdr_offset, end - p->hdr_offset);
		return 0;
	}
	if (p->flags & (MIME_PART_TRUNCATED | MIME_PART_NO_BOUNDARY)) {
		g->reason = (p->flags & MIME_PART_TRUNCATED) ?
		    "8-bit data nested deeper than the MIME limits" :
		    "8-bit data in a multipart without its boundary";
		return -1;
	}
	/* A composite part stays unencoded; "8bit" on it is now false. */
	if (enc_is(p, "8bit") || enc_is(p, "binary"))
		cte = "7bit";
	if (p->flags & MIME_PART_MULTIPART) {
		size_t pos = p->body_offset;

		write_header(g, p, cte, top);
		for (const struct mime_part *c = p->children; c != NULL;
		    c = c->next) {
			write_gap(g, pos, c->hdr_offset);
			if (emit_part(g, c, false) < 0)
				return -1;
			pos = body_end(c);
		}
		write_gap(g, pos, end);
		return 0;
	}
	if ((p->flags & MIME_PART_MESSAGE) && p->message != NULL &&
	    strcasecmp(p->subtype, "rfc822") == 0) {
		write_header(g, p, cte, top);
		/* An embedded message with a new encoding claims MIME too
		 * (RFC 2045 §4). */
		return emit_part(g, p->message, true);
	}
	return emit_leaf(g, p, top);
}

int
mail_downgrade(const char *data, size_t size, const struct mime_limits *limits,
    mail_write_fn *write, void *context, const char **reason_r)
{
	struct mime_message *msg;
	struct dg g;
	int r;

	if (!mail_has_8bit(data, size))
		return 0;
	memset(&g, 0, sizeof(g));
	g.data = data;
	g.out.write = write;
	g.out.context = context;
	msg = mime_parse(data, size, limits);
	r = emit_part(&g, msg->root, true);
	mime_message_free(&msg);
	out_flush(&g.out);
	if (r == 0 && g.out.failed) {
		g.reason = "writing the converted message failed";
		r = -1;
	}
	if (r < 0) {
		*reason_r = g.reason;
		return -1;
	}
	return 1;
}

static unsigned int
where(const char *data, const struct mime_part *p)
{
	unsigned int bits = 0;

	if (mail_has_8bit(data + p->hdr_offset, p->hdr_size))
		bits |= MAIL_8BIT_HEADER;
	if (!mail_has_8bit(data + p->body_offset, p->body_size))
		return bits;
	if (p->flags & MIME_PART_MULTIPART) {
		unsigned int inner = 0;

		for (const struct mime_part *c = p->children; c != NULL;
		    c = c->next)
			inner |= where(data, c);
		/* 8-bit bytes only between the parts count as body. */
		return bits | (inner != 0 ? inner : MAIL_8BIT_BODY);
	}
	if ((p->flags & MIME_PART_MESSAGE) && p->message != NULL)
		return bits | where(data, p->message);
	return bits | MAIL_8BIT_BODY;
}

unsigned int
mail_8bit_where(const char *data, size_t size, const struct mime_limits *limits)
{
	struct mime_message *msg;
	unsigned int bits;

	if (!mail_has_8bit(data, size))
		return 0;
	msg = mime_parse(data, size, limits);
	bits = where(data, msg->root);
	mime_message_free(&msg);
	return bits;
}
