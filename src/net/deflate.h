/*
 * net/deflate: a bufferevent filter that compresses what is written and
 * decompresses what is read with raw DEFLATE (RFC 1951), as IMAP
 * COMPRESS=DEFLATE (RFC 4978) wants it: one stream each way for the rest
 * of the connection, no zlib header, output flushed (Z_SYNC_FLUSH) each
 * time the filter has taken all the plain data written so far, so every
 * reply reaches the client without waiting for the next.
 *
 * Memory, per connection. zlib's defaults (window 32 KiB, memLevel 8)
 * cost ~268 KiB for the compressor alone, most of it idle; here the
 * compressor uses DEFLATE_WINDOW_BITS / DEFLATE_MEM_LEVEL below (~38 KiB:
 * 2^(12+2) + 2^(5+9) bytes plus state), which still finds the repeats
 * inside an IMAP reply (FETCH lines, header names) while a 4 KiB window
 * misses only repeats between replies that are far apart. The
 * decompressor must accept whatever window the client chose, so it keeps
 * the full 32 KiB (+ ~7 KiB state), allocated by zlib only once data
 * arrives. Inflation is bounded: the filter's read high-water mark
 * (DEFLATE_READ_HIGH) stops it until the reader has taken the output, so
 * a small compressed "bomb" never becomes a large buffer.
 *
 * Corrupt compressed input is an error event on the filter (the
 * connection's owner closes it); nothing is ever passed on from it.
 */
#ifndef TEGAMI_NET_DEFLATE_H
#define TEGAMI_NET_DEFLATE_H

#include <stddef.h>

struct bufferevent;

#define DEFLATE_WINDOW_BITS 12
#define DEFLATE_MEM_LEVEL 5
#define DEFLATE_READ_HIGH (256 * 1024)
/* Compressed bytes queued below before the filter holds plain data back. */
#define DEFLATE_UNDER_HIGH (64 * 1024)

/*
 * A compressing filter over underlying (which it owns and frees with
 * itself, BEV_OPT_CLOSE_ON_FREE). Sets a write high-water mark on
 * underlying so that queued output stays plain, and measurable, in the
 * filter. NULL on failure (underlying is then left alone).
 */
struct bufferevent *deflate_filter_new(struct bufferevent *underlying,
    int options);

#endif
