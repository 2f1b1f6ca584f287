/*
 * mail/downgrade: a message with 8-bit content made 7-bit, for a next hop
 * that does not offer 8BITMIME (RFC 6152 §3: the sender must convert or
 * not deliver).
 *
 * Every MIME leaf whose body has a byte >= 0x80 is re-encoded: text parts
 * as quoted-printable, anything else as base64 (a body that was
 * quoted-printable or base64 already, but with raw 8-bit bytes in it, is
 * decoded first and encoded again). Its Content-Transfer-Encoding field is
 * replaced; the other header fields are kept byte for byte. Multiparts and
 * message/rfc822 parts cannot be encoded (RFC 2045 §6.4): they are walked
 * into, their boundaries and delimiter lines kept as they are, and a
 * Content-Transfer-Encoding of 8bit or binary on them becomes 7bit.
 * Lines of a preamble or epilogue that hold 8-bit bytes are dropped (they
 * are never shown). Parts without 8-bit bytes are copied unchanged. A
 * top-level header without MIME-Version gets "MIME-Version: 1.0".
 *
 * What cannot be converted (the caller bounces with 5.6.3 rather than send
 * 8-bit data to a 7-bit server):
 *   - an 8-bit byte in a header (the message's or a part's): only SMTPUTF8
 *     (RFC 6531/6532) may carry that, and there is no downgrade of it;
 *   - 8-bit data in a message part other than message/rfc822 and
 *     message/global (delivery-status, partial, external-body must stay
 *     7bit);
 *   - 8-bit data where the MIME parser stopped (nesting or part limits) or
 *     inside a multipart whose boundary was never found;
 *   - 8-bit data under a Content-Transfer-Encoding we do not know.
 *
 * Output lines end in CRLF (the spool's form). Memory: the output goes
 * through the caller's writer; only one decoded leaf body is held at a
 * time.
 */
#ifndef TEGAMI_MAIL_DOWNGRADE_H
#define TEGAMI_MAIL_DOWNGRADE_H

#include <stdbool.h>
#include <stddef.h>

struct mime_limits;

/* Any byte >= 0x80 in data[0..len)? */
bool mail_has_8bit(const void *data, size_t len);

/* Bits of mail_8bit_where(). */
enum mail_8bit {
	MAIL_8BIT_BODY = 1 << 0,	/* in some part's body */
	MAIL_8BIT_HEADER = 1 << 1,	/* in the message's or a part's header */
};

/* Where the message's 8-bit bytes are (0 = none), by its MIME tree. */
unsigned int mail_8bit_where(const char *data, size_t size,
    const struct mime_limits *limits);

/* Takes len bytes of output; 0 = ok, -1 = failed (the conversion stops). */
typedef int mail_write_fn(void *context, const void *data, size_t len);

/*
 * Writes the 7-bit form of data[0..size) through write.
 * 1 = written, and it has no byte >= 0x80;
 * 0 = the message has no byte >= 0x80 at all: nothing written, send it as
 *     it is;
 * -1 = it cannot be converted, or write failed: *reason_r (static text,
 *     for a DSN) says which. Whatever was written is to be thrown away.
 */
int mail_downgrade(const char *data, size_t size,
    const struct mime_limits *limits, mail_write_fn *write, void *context,
    const char **reason_r);

/*
 * The encoders, for the tests and anyone else: quoted-printable (RFC 2045
 * §6.7; CRLF and bare LF are line breaks written as CRLF, lines at most
 * 76 characters, trailing white space encoded) and base64 (76-character
 * lines with CRLF between them, and after the last one when final_eol).
 */
int mail_encode_qp(const char *in, size_t len, mail_write_fn *write,
    void *context);
int mail_encode_base64(const char *in, size_t len, bool final_eol,
    mail_write_fn *write, void *context);

#endif
