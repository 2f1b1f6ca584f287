/*
 * mail/binary: the content of MIME parts with the content transfer
 * encoding undone, as IMAP BINARY (RFC 3516) returns it, and the reverse
 * for a message that arrives with raw binary content (APPEND with a
 * literal8), which a Maildir file and a BODY[] fetch cannot carry as is.
 *
 * Decoding (mime_binary_section):
 *  - a leaf part with base64 gives exactly the decoded bytes; with
 *    quoted-printable the decoded text with trailing white space dropped
 *    from each line (RFC 2045 6.7) and CRLF line ends; with 7bit, 8bit,
 *    binary or no Content-Transfer-Encoding the body as BODY[] has it
 *    (bare LF sent as CRLF, the way the Maildir file is read);
 *  - a multipart or message/rfc822 part, or the whole message, keeps its
 *    structure: every leaf below is decoded in place and its
 *    Content-Transfer-Encoding field becomes "binary", everything else is
 *    copied (so a client gets one usable message, as Dovecot does);
 *  - any other encoding (x-uuencode, garbage) fails: IMAP answers
 *    NO [UNKNOWN-CTE]. Broken base64 or quoted-printable is decoded as far
 *    as it makes sense, never refused.
 *
 * Encoding (mime_binary_encode): every leaf part whose body holds a NUL,
 * or which says "binary", gets its body base64-encoded (76-character
 * lines, CRLF) and its Content-Transfer-Encoding set to base64; all other
 * bytes stay exactly as they were. A NUL in a header cannot be mended and
 * fails the whole message.
 */
#ifndef TEGAMI_MAIL_BINARY_H
#define TEGAMI_MAIL_BINARY_H

#include "lib/buf.h"
#include "mail/mime.h"

#include <stdbool.h>

enum mime_cte {
	MIME_CTE_IDENTITY,	/* 7bit, 8bit, binary, none */
	MIME_CTE_BASE64,
	MIME_CTE_QP,
	MIME_CTE_UNKNOWN,
};

/* The part's Content-Transfer-Encoding. */
enum mime_cte mime_part_cte(const struct mime_part *part);

/*
 * Appends BINARY[section] of part to out: the message itself (part =
 * msg->root and whole = true) is header and body; any other part its body
 * (a message/rfc822 part: the message inside, header and body). 0, or -1
 * when an encoding below is unknown (out then holds part of it).
 */
int mime_binary_section(const struct mime_message *msg,
    const struct mime_part *part, bool whole, struct buf *out);

/*
 * Sets the sizes and line counts of part and every part below it to those
 * of their BINARY form (line count = LF count), for a BODYPARTSTRUCTURE
 * sent with BINARY content (URLFETCH, RFC 5524), as Dovecot reports it:
 * the structure then describes the bytes that come with it. Offsets are
 * left alone, so the tree still renders as before.
 */
void mime_binary_fix_sizes(const struct mime_message *msg,
    struct mime_part *part);

/*
 * Appends msg with its binary parts base64-encoded (see above) to out.
 * Returns 1 when something was encoded, 0 when nothing had to be (out
 * then holds the message unchanged), -1 for a NUL in a header.
 */
int mime_binary_encode(const struct mime_message *msg, struct buf *out);

/*
 * Quoted-printable as RFC 2045 6.7 decodes it: soft line breaks removed,
 * white space at the end of each line dropped, hard line breaks written
 * as CRLF (whatever line end the input has).
 */
int mime_decode_qp_text(const char *in, size_t len, struct buf *out);

#endif
