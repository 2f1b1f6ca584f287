/*
 * imap/mutf7: mailbox names in modified UTF-7 (RFC 3501 §5.1.3), the
 * form they have on disk and for clients that did not ENABLE
 * UTF8=ACCEPT, and UTF-8, the form for those that did (RFC 6855 §3).
 */
#ifndef TEGAMI_IMAP_MUTF7_H
#define TEGAMI_IMAP_MUTF7_H

#include "lib/buf.h"

/* UTF-8 -> modified UTF-7 ("&" becomes "&-"). -1: not valid UTF-8. */
int imap_utf8_to_mutf7(const char *in, struct buf *out);
/* Modified UTF-7 -> UTF-8. -1: not valid modified UTF-7. */
int imap_mutf7_to_utf8(const char *in, struct buf *out);

#endif
