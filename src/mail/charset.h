/*
 * mail/charset: text in a declared charset turned into UTF-8, and a
 * simple Unicode case folding, for searching and sorting mail text
 * (IMAP SEARCH CHARSET, RFC 2047 words, text parts in their charset).
 *
 * UTF-8, US-ASCII and ISO-8859-1 are converted here; every other charset
 * goes through iconv(3) from the C library (glibc's gconv modules know
 * the ISO-8859-x, Windows-125x, KOI8, ISO-2022-JP, GB18030... families).
 * Bytes that are not valid in their charset are passed through as they
 * are, never dropped: a search for them still finds them.
 *
 * Case folding is RFC 5051's "i;unicode-casemap": each code point is
 * replaced by its simple titlecase mapping, then by its decomposition
 * mapping (canonical or compatibility, the tag ignored), again for each
 * code point that gives, from the Unicode Character Database
 * (casemap-table.h, made by tools/gen-casemap.pl): "é" becomes "E" and a
 * combining acute accent, "ﬁ" becomes "FI", fullwidth "ａ" becomes "A".
 * Hangul syllables have no such mapping and are kept, as RFC 5051 has it.
 * Invalid UTF-8 bytes are kept as they are.
 */
#ifndef TEGAMI_MAIL_CHARSET_H
#define TEGAMI_MAIL_CHARSET_H

#include "lib/buf.h"

#include <stdbool.h>
#include <stddef.h>

/* The charsets named in NO [BADCHARSET (...)], space-separated. */
#define CHARSET_ADVERTISED "UTF-8 US-ASCII ISO-8859-1 ISO-8859-2 ISO-8859-15" \
	" WINDOWS-1250 WINDOWS-1251 WINDOWS-1252 KOI8-R ISO-2022-JP"

/* Can text in this charset (name as in MIME, any case) be converted? */
bool charset_known(const char *charset);
/* Is it one that needs no conversion (UTF-8, US-ASCII or unnamed)? */
bool charset_is_utf8(const char *charset);

/*
 * Appends in[0..len) converted from charset to UTF-8. An unknown charset
 * appends the bytes unchanged and returns 0 too (mail readers show them);
 * -1 only when out's limit was hit (what fitted stays).
 */
int charset_to_utf8(const char *charset, const char *in, size_t len,
    struct buf *out);

/*
 * Appends a header value with RFC 2047 encoded-words decoded and each
 * converted from its charset to UTF-8 (the white space between adjacent
 * words dropped, RFC 2047 §6.2). Text outside the words is kept as sent.
 * -1 when out's limit was hit.
 */
int charset_decode_header(const char *in, size_t len, struct buf *out);

/* The code point of the UTF-8 sequence at in[0]; its length, 0 if invalid. */
size_t charset_utf8_next(const unsigned char *in, size_t len,
    unsigned int *cp_r);
/* Appends cp in UTF-8. -1 at out's limit. */
int charset_put_cp(struct buf *out, unsigned int cp);

/* Appends in[0..len) case-folded (see above). -1 at out's limit. */
int charset_utf8_fold(const char *in, size_t len, struct buf *out);

#endif
