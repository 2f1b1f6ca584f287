/*
 * mail/decode: content transfer decodings (RFC 2045 base64 and
 * quoted-printable) and RFC 2047 encoded-words, as a reader needs them:
 * lenient with broken input (it is decoded as far as it makes sense,
 * never rejected), bounded by the output buffer's limit.
 */
#ifndef TEGAMI_MAIL_DECODE_H
#define TEGAMI_MAIL_DECODE_H

#include "lib/buf.h"

#include <stddef.h>

/* Appends the decoded bytes of base64 text to out, skipping white space
 * and stray characters and stopping at '='. -1 if out's limit was hit
 * (what fitted stays). */
int decode_base64(const char *in, size_t len, struct buf *out);
/* Appends decoded quoted-printable: "=XX", soft line breaks ("=" at the
 * end of a line) removed; a malformed "=" is kept as it is. */
int decode_qp(const char *in, size_t len, struct buf *out);
/*
 * Appends a header value with its RFC 2047 encoded-words
 * (=?charset?B|Q?text?=) decoded to their bytes (the charset is not
 * converted) and the white space between two adjacent words dropped.
 */
int decode_rfc2047(const char *in, size_t len, struct buf *out);
/*
 * The same, with each word's decoded bytes handed to fn with the word's
 * charset name (charset[0..charset_len), not NUL-terminated, possibly
 * with an RFC 2231 "*lang" suffix) to append to out; fn returns 0 or -1.
 */
typedef int decode_word_fn(const char *charset, size_t charset_len,
    const char *bytes, size_t len, struct buf *out);
int decode_rfc2047_with(const char *in, size_t len, struct buf *out,
    decode_word_fn *fn);

#endif
