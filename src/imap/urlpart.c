/* The content behind an IMAP URL (urlpart.h). */
#include "imap/urlpart.h"

#include "imap/bodystructure.h"
#include "imap/session-private.h"
#include "lib/file.h"
#include "lib/xalloc.h"
#include "mail/binary.h"
#include "mail/mime.h"

#include <stdlib.h>
#include <string.h>

#define MESSAGE_MAX (1024u * 1024 * 1024)

void
imap_urlpart_free(struct imap_urlpart *r)
{
	buf_free(&r->body);
	buf_free(&r->binary);
	free(r->bodystructure);
	memset(r, 0, sizeof(*r));
}

/* buf cut to [offset, offset + length) (length 0: to the end). */
static void
cut(struct buf *b, const struct imap_url *u)
{
	size_t off, len;

	if (!u->partial)
		return;
	off = u->partial_offset < b->len ? (size_t)u->partial_offset : b->len;
	len = b->len - off;
	if (u->partial_length > 0 && u->partial_length < len)
		len = (size_t)u->partial_length;
	buf_consume(b, off);
	buf_truncate(b, len);
}

/* The part a numeric section ("1.2", "1.2.MIME") starts with, or root. */
static struct mime_part *
section_part(struct mime_message *msg, const char *section, bool *numeric_only_r)
{
	size_t n = 0;
	char *num;
	struct mime_part *part;

	while ((section[n] >= '0' && section[n] <= '9') ||
	    (section[n] == '.' && section[n + 1] >= '0' && section[n + 1] <= '9'))
		n++;
	*numeric_only_r = section[n] == '\0';
	num = xstrndup(section, n);
	part = mime_part_find(msg, num);
	free(num);
	return part;
}

int
imap_urlpart_get(struct store_account *acct, const struct imap_url *u,
    bool want_binary, bool want_structure, struct imap_urlpart *r,
    const char **error_r)
{
	struct store_mailbox *box;
	const struct store_msg *msgs;
	char *err = NULL, *path, *data = NULL;
	size_t len = 0;
	unsigned int count;
	int idx;
	struct mime_message *msg;
	struct mime_part *part;
	const char *section = u->section != NULL ? u->section : "";
	bool numeric = true;

	memset(r, 0, sizeof(*r));
	buf_init(&r->body, BUF_UNLIMITED);
	buf_init(&r->binary, BUF_UNLIMITED);
	if (store_mailbox_open(acct, u->mailbox, true, &box, &err) < 0) {
		free(err);
		*error_r = "No such mailbox";
		return -1;
	}
	if (u->uidvalidity != 0 && u->uidvalidity != store_mailbox_uidvalidity(box)) {
		store_mailbox_close(&box);
		*error_r = "UIDVALIDITY does not match";
		return -1;
	}
	msgs = store_mailbox_msgs(box, &count);
	idx = store_mailbox_find_uid(box, u->uid);
	if (idx < 0) {
		store_mailbox_close(&box);
		*error_r = "No such message";
		return -1;
	}
	path = store_msg_full_path(box, &msgs[idx]);
	store_mailbox_close(&box);
	if (file_read_all(path, MESSAGE_MAX, &data, &len) < 0) {
		free(path);
		*error_r = "The message is gone";
		return -1;
	}
	free(path);
	msg = mime_parse(data, len, &mime_default_limits);
	part = section_part(msg, section, &numeric);
	if (part == NULL || imap_section_data(msg, section, &r->body) < 0) {
		mime_message_free(&msg);
		free(data);
		*error_r = "No such section";
		return -1;
	}
	if (want_binary) {
		/* BINARY names parts only; anything else gives NIL */
		r->binary_ok = numeric && mime_binary_section(msg, part,
		    *section == '\0', &r->binary) == 0;
		cut(&r->binary, u);
	}
	if (want_structure && numeric) {
		struct buf bs;

		buf_init(&bs, BUF_UNLIMITED);
		/* with BINARY the structure describes the decoded bytes */
		if (want_binary && r->binary_ok)
			mime_binary_fix_sizes(msg, part);
		imap_bodystructure_render(&bs, msg, part, true, false);
		r->bodystructure = buf_steal(&bs);
	}
	cut(&r->body, u);
	mime_message_free(&msg);
	free(data);
	return 0;
}
