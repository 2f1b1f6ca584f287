/*
 * imap/hdrcache: the header blocks of recently fetched messages, shared by
 * every session of the process.
 *
 * FETCH BODY.PEEK[HEADER.FIELDS (...)], RFC822.HEADER and BODY[HEADER] of
 * a message whose ENVELOPE is not enough read the file's header from
 * disk; clients ask for the same headers again and again (every list
 * view), and the open and read cost more than the reply. A Maildir file's
 * content never changes (flags live in its name), so a header is keyed by
 * the file's base name and size and is never stale; a hard-linked copy in
 * another folder has the same base and the same bytes.
 *
 * Bounded: at most HDRCACHE_BYTES in all (least recently used dropped
 * first), no header over HDRCACHE_ENTRY_MAX, and what nobody used for
 * HDRCACHE_IDLE_SECS is dropped by imap_hdrcache_expire(). Event-loop
 * thread only.
 */
#ifndef TEGAMI_IMAP_HDRCACHE_H
#define TEGAMI_IMAP_HDRCACHE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define HDRCACHE_BYTES (4u * 1024 * 1024)
#define HDRCACHE_ENTRY_MAX (32u * 1024)
#define HDRCACHE_IDLE_SECS 60

/* A malloc'd, NUL-terminated copy of the cached header into *data_r: 0;
   not cached: -1. */
int imap_hdrcache_get(const char *base, uint64_t size, char **data_r,
    size_t *len_r);
/* Remembers a header (copied); one too large is not kept. */
void imap_hdrcache_put(const char *base, uint64_t size, const char *data,
    size_t len);
/* Drops what was not used since now - HDRCACHE_IDLE_SECS (CLOCK_MONOTONIC
   seconds; 0 = the current time). Returns how many were dropped. */
unsigned int imap_hdrcache_expire(time_t now);
/* Drops everything. */
void imap_hdrcache_clear(void);
/* Bytes held (headers and names). */
size_t imap_hdrcache_bytes(void);

#endif
