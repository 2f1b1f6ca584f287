/*
 * imap/bodystructure: ENVELOPE, BODY and BODYSTRUCTURE as RFC 9051 §7.5.2
 * (and RFC 3501 §7.4.2) spell them, from a mail/mime part tree.
 *
 * Strings are written quoted when they can be, else as a literal
 * ({n}CRLF + bytes): a CR, LF or NUL always needs a literal, and so do
 * 8-bit bytes unless the client enabled UTF8=ACCEPT and the string is
 * valid UTF-8. Header text (RFC 2047 words included) is sent as it is in
 * the message, unfolded.
 */
#ifndef TEGAMI_IMAP_BODYSTRUCTURE_H
#define TEGAMI_IMAP_BODYSTRUCTURE_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"
#include "mail/mime.h"

/* s (len bytes) as an IMAP string; NULL writes NIL. */
void imap_append_nstring(struct buf *out, const char *s, size_t len,
    bool utf8);
/* Same for a NUL-terminated string. */
void imap_append_nstr(struct buf *out, const char *s, bool utf8);

/*
 * The ENVELOPE of the message whose header block is data[start..end)
 * (a message's root part, or the ->message of a message/rfc822 part).
 */
/*
 * An address header's value (NUL-terminated, unfolded or not) as
 * "name <mailbox@host>, ..." with comments, quoting and source routes
 * gone: what SEARCH FROM/TO/CC/BCC match against (malloc'd).
 */
char *imap_address_list_text(const char *value);
/*
 * The first address of an address header value: display name (NULL if
 * none; quotes gone, RFC 2047 words as sent), mailbox and host (NULL for
 * the start of a group, whose name is then the mailbox), malloc'd. -1
 * when there is none.
 */
int imap_address_first(const char *value, char **name_r, char **mailbox_r,
    char **host_r);
void imap_envelope_render(struct buf *out, const char *data, size_t start,
    size_t end, bool utf8);

/*
 * BODYSTRUCTURE (extended = true) or BODY (false) of a part: the message
 * itself is msg->root.
 */
void imap_bodystructure_render(struct buf *out, const struct mime_message *msg,
    const struct mime_part *part, bool extended, bool utf8);

#endif
