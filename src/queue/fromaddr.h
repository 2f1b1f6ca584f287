/*
 * fromaddr: the address in a message's From: header field, to choose the
 * DKIM key that signs it. Not a full RFC 5322 parser: the first From
 * field (with its folded lines), the first <...> in it, else its first
 * word; comments and display names are not interpreted further. The
 * message is hostile input: the scan stops at the end of the header or at
 * len, and the result is bounded.
 */
#ifndef TEGAMI_QUEUE_FROMADDR_H
#define TEGAMI_QUEUE_FROMADDR_H

#include <stddef.h>

/* Longest address returned (RFC 5321 path limit, with room). */
#define FROMADDR_MAX 512

/*
 * The From address of msg (header block, CRLF or LF), malloc'd, or NULL
 * when there is no From field or its value holds no "local@domain".
 */
char *queue_header_from(const char *msg, size_t len);

#endif
