/*
 * Fuzz the MIME parser and the IMAP renderers on top of it: every part's
 * ranges must lie inside the message and nest inside its parent's, and
 * BODYSTRUCTURE / ENVELOPE must render without reading out of bounds.
 * BINARY decoding of every part and the binary-to-base64 rewrite of the
 * whole message run too; a rewritten message must hold no NUL outside
 * what it copied unchanged, and must parse again.
 */
#include "imap/bodystructure.h"
#include "lib/buf.h"
#include "mail/binary.h"
#include "mail/mime.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_part(const struct mime_message *msg, const struct mime_part *p,
    size_t lo, size_t hi)
{
	const struct mime_part *c;

	if (p->hdr_offset < lo || p->hdr_offset + p->hdr_size != p->body_offset ||
	    p->body_offset + p->body_size > hi || hi > msg->size)
		__builtin_trap();
	if (p->hdr_vsize < p->hdr_size || p->body_vsize < p->body_size)
		__builtin_trap();
	for (c = p->children; c != NULL; c = c->next)
		check_part(msg, c, p->body_offset, p->body_offset + p->body_size);
	if (p->message != NULL)
		check_part(msg, p->message, p->body_offset,
		    p->body_offset + p->body_size);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct mime_limits lim = {
		.max_depth = 20, .max_parts = 500, .max_params = 16,
		.max_value = 1024,
	};
	/* a copy of exactly size bytes, so ASan sees any overread */
	char *copy = malloc(size > 0 ? size : 1);
	struct mime_message *msg;
	struct buf out;
	static const char *const sections[] = { "1", "2", "1.1", "1.2.1", "2.1.1", "3" };

	memcpy(copy, data, size);
	msg = mime_parse(copy, size, &lim);
	check_part(msg, msg->root, 0, size);
	buf_init(&out, BUF_UNLIMITED);
	imap_bodystructure_render(&out, msg, msg->root, true, size % 2 == 0);
	buf_reset(&out);
	imap_bodystructure_render(&out, msg, msg->root, false, false);
	buf_reset(&out);
	imap_envelope_render(&out, copy, 0, msg->root->hdr_size, size % 3 == 0);
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++) {
		struct mime_part *p = mime_part_find(msg, sections[i]);

		if (p != NULL) {
			buf_reset(&out);
			(void)mime_binary_section(msg, p, false, &out);
		}
	}
	buf_reset(&out);
	(void)mime_binary_section(msg, msg->root, true, &out);
	buf_reset(&out);
	if (mime_binary_encode(msg, &out) >= 0) {
		struct mime_message *again = mime_parse(out.data != NULL ?
		    out.data : "", out.len, &lim);

		check_part(again, again->root, 0, out.len);
		mime_message_free(&again);
	}
	buf_free(&out);
	mime_message_free(&msg);
	free(copy);
	return 0;
}
