/*
 * Fuzz the 8-bit to 7-bit conversion: whatever it converts must come out
 * with no byte >= 0x80, and with every MIME leaf saying, once decoded,
 * what it said before (the tree is kept).
 */
#include "lib/buf.h"
#include "mail/decode.h"
#include "mail/downgrade.h"
#include "mail/mime.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct mime_limits lim = {
	.max_depth = 20, .max_parts = 500, .max_params = 16, .max_value = 1024,
};

static int
to_buf(void *ctx, const void *p, size_t n)
{
	return buf_append(ctx, p, n);
}

static void leaves_of(const char *data, size_t len, struct buf *out);

static void
leaves(const char *data, const struct mime_part *p, struct buf *out)
{
	struct buf dec;

	if (p->flags & MIME_PART_MULTIPART) {
		for (const struct mime_part *c = p->children; c != NULL; c = c->next)
			leaves(data, c, out);
		return;
	}
	if ((p->flags & MIME_PART_MESSAGE) && p->message != NULL) {
		leaves(data, p->message, out);
		return;
	}
	buf_init(&dec, BUF_UNLIMITED);
	/* message/global may be converted to base64 or quoted-printable
	 * (RFC 6532 3.5): compare what it holds once decoded */
	if (p->encoding != NULL && strcasecmp(p->type, "message") == 0 &&
	    strcasecmp(p->subtype, "global") == 0 &&
	    (strcasecmp(p->encoding, "base64") == 0 ||
	    strcasecmp(p->encoding, "quoted-printable") == 0)) {
		if (strcasecmp(p->encoding, "base64") == 0)
			decode_base64(data + p->body_offset, p->body_size, &dec);
		else
			decode_qp(data + p->body_offset, p->body_size, &dec);
		leaves_of(dec.data != NULL ? dec.data : "", dec.len, out);
		buf_free(&dec);
		return;
	}
	if (p->encoding != NULL && strcasecmp(p->encoding, "base64") == 0)
		decode_base64(data + p->body_offset, p->body_size, &dec);
	else if (p->encoding != NULL &&
	    strcasecmp(p->encoding, "quoted-printable") == 0)
		decode_qp(data + p->body_offset, p->body_size, &dec);
	else
		buf_append(&dec, data + p->body_offset, p->body_size);
	buf_printf(out, "%s/%s:%zu:", p->type, p->subtype, dec.len);
	buf_append(out, dec.data != NULL ? dec.data : "", dec.len);
	buf_free(&dec);
}

static void
leaves_of(const char *data, size_t len, struct buf *out)
{
	struct mime_message *m = mime_parse(data, len, &lim);

	leaves(data, m->root, out);
	mime_message_free(&m);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy;
	struct buf out, a, b;
	const char *reason = NULL;
	int r;

	/* The spool's form: CRLF line ends only (the SMTP server refuses
	 * bare LF), which is what the conversion is given. */
	for (size_t i = 0; i < size; i++)
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			return 0;
	copy = malloc(size > 0 ? size : 1);
	memcpy(copy, data, size);
	buf_init(&out, BUF_UNLIMITED);
	r = mail_downgrade(copy, size, &lim, to_buf, &out, &reason);
	if (r == 0 && (out.len != 0 || mail_has_8bit(copy, size)))
		__builtin_trap();
	if (r < 0 && reason == NULL)
		__builtin_trap();
	if (r == 1) {
		if (mail_has_8bit(out.data, out.len))
			__builtin_trap();
		buf_init(&a, BUF_UNLIMITED);
		buf_init(&b, BUF_UNLIMITED);
		leaves_of(copy, size, &a);
		leaves_of(out.data != NULL ? out.data : "", out.len, &b);
		if (a.len != b.len || (a.len > 0 && memcmp(a.data, b.data, a.len) != 0))
			__builtin_trap();
		buf_free(&a);
		buf_free(&b);
	}
	(void)mail_8bit_where(copy, size, &lim);
	buf_free(&out);
	free(copy);
	return 0;
}
