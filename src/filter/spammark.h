/*
 * filter/spammark: what a verdict of "spam" does to a message at
 * delivery, with docker-mailserver's switches: an "X-Spam: Yes" header
 * field (the one DMS's global Sieve script looks for), the subject
 * prefixed with SPAM_SUBJECT, and where it goes (MOVE_SPAM_TO_JUNK → the
 * Junk folder, MARK_SPAM_AS_READ → \Seen), which the store applies.
 *
 * Any X-Spam, X-Spam-Flag, X-Spam-Score or X-Spam-Status field that
 * came with the message is removed first: only ours may be believed.
 */
#ifndef TEGAMI_FILTER_SPAMMARK_H
#define TEGAMI_FILTER_SPAMMARK_H

#include "lib/buf.h"

#include <stdbool.h>
#include <stddef.h>

struct spammark_settings {
	bool move_to_junk;		/* MOVE_SPAM_TO_JUNK (1) */
	bool mark_read;			/* MARK_SPAM_AS_READ (0) */
	const char *subject_prefix;	/* SPAM_SUBJECT ("" = none) */
};

struct spammark_verdict {
	bool spam;
	double score;		/* shown in X-Spam-Score when >= 0 */
	const char *reason;	/* "bayes", "rspamd", ... or NULL */
	/* spam only: the whole new Subject (rspamd's "rewrite subject"),
	 * used instead of the SPAM_SUBJECT prefix; NULL = none */
	const char *subject;
};

/* Where the store puts it and with which flag. */
struct spammark_delivery {
	const char *folder;	/* "Junk", or NULL for the usual folder */
	bool seen;
};

void spammark_delivery(const struct spammark_settings *set,
    const struct spammark_verdict *v, struct spammark_delivery *d_r);

/*
 * Copies the message (header block and body, CRLF or LF lines; the new
 * fields use the line end the message uses) to out with the X-Spam
 * fields replaced and, for spam with a prefix set, the Subject prefixed
 * (a Subject is added if there was none), or for spam with v->subject,
 * the Subject replaced by it (control bytes in it become spaces). -1 if
 * out's limit was hit.
 */
int spammark_rewrite(const char *msg, size_t len,
    const struct spammark_settings *set, const struct spammark_verdict *v,
    struct buf *out);

#endif
