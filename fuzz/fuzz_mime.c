/*
 * Fuzz the MIME parser and the IMAP renderers on top of it: every part's
 * ranges must lie inside the message and nest inside its parent's, and
 * BODYSTRUCTURE / ENVELOPE must render without reading out of bounds.
 */
#include "imap/bodystructure.h"
#include "lib/buf.h"
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
	for (size_t i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
		(void)mime_part_find(msg, sections[i]);
	buf_free(&out);
	mime_message_free(&msg);
	free(copy);
	return 0;
}
