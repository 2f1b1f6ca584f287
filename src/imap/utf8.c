/*
 * UTF8=ACCEPT (RFC 6855) for mailbox names: once enabled, the client
 * names mailboxes in UTF-8 and is answered in UTF-8; the store keeps
 * the modified UTF-7 names Dovecot uses on disk. Names in commands are
 * converted before the command runs (by position, per command); names
 * in LIST, LSUB and STATUS answers on the way out.
 */
#include "imap/mutf7.h"
#include "imap/bodystructure.h"
#include "imap/session-private.h"

#include "lib/str.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAILBOX_NAME_MAX 4096

/* Which arguments are mailbox names (bit n = argument n). */
static const struct {
	const char *cmd;
	unsigned int args;
	bool all;	/* LIST/LSUB: every string, in lists too */
} mailbox_args[] = {
	{ "SELECT", 1 << 0, false }, { "EXAMINE", 1 << 0, false },
	{ "CREATE", 1 << 0, false }, { "DELETE", 1 << 0, false },
	{ "RENAME", 1 << 0 | 1 << 1, false }, { "SUBSCRIBE", 1 << 0, false },
	{ "UNSUBSCRIBE", 1 << 0, false }, { "STATUS", 1 << 0, false },
	{ "APPEND", 1 << 0, false }, { "COPY", 1 << 1, false },
	{ "MOVE", 1 << 1, false }, { "LIST", 0, true }, { "LSUB", 0, true },
	{ "GETQUOTAROOT", 1 << 0, false },
};

static int
convert_arg(struct imap_arg *arg)
{
	struct buf b;

	if (arg->type != IMAP_ARG_ATOM && arg->type != IMAP_ARG_QUOTED &&
	    arg->type != IMAP_ARG_LITERAL)
		return 0;
	if (strlen(arg->str) != arg->len || !str_is_utf8(arg->str, arg->len))
		return -1;
	buf_init(&b, MAILBOX_NAME_MAX);
	buf_append_str(&b, "");
	if (imap_utf8_to_mutf7(arg->str, &b) < 0) {
		buf_free(&b);
		return -1;
	}
	free(arg->str);
	arg->len = b.len;
	arg->str = buf_steal(&b);
	return 0;
}

int
imap_utf8_mailbox_args(struct imap_session *s, const char *cmd,
    const struct imap_arg *args, unsigned int nargs)
{
	/* the parser's arguments: ours to rewrite until the next command */
	struct imap_arg *a = (struct imap_arg *)args;

	if (!s->utf8)
		return 0;
	for (size_t i = 0; i < sizeof(mailbox_args) / sizeof(mailbox_args[0]); i++) {
		if (strcasecmp(cmd, mailbox_args[i].cmd) != 0)
			continue;
		for (unsigned int k = 0; k < nargs; k++) {
			int r = 0;

			if (mailbox_args[i].all && a[k].type == IMAP_ARG_LIST) {
				for (unsigned int j = 0; j < a[k].count && r == 0; j++)
					r = convert_arg(&a[k].list[j]);
			} else if (mailbox_args[i].all ||
			    (k < 32 && (mailbox_args[i].args & (1u << k)) != 0)) {
				r = convert_arg(&a[k]);
			}
			if (r < 0) {
				imap_tagged(s, "BAD", "Mailbox name is not valid UTF-8");
				return -1;
			}
		}
	}
	return 0;
}

void
imap_append_mailbox(struct imap_session *s, struct buf *out, const char *name)
{
	struct buf b;

	if (!s->utf8) {
		imap_append_nstr(out, name, false);
		return;
	}
	buf_init(&b, MAILBOX_NAME_MAX * 4);
	buf_append_str(&b, "");
	/* a name that is not modified UTF-7 (made by hand) goes as it is */
	if (imap_mutf7_to_utf8(name, &b) < 0)
		imap_append_nstr(out, name, false);
	else
		imap_append_nstr(out, buf_cstr(&b), true);
	buf_free(&b);
}
