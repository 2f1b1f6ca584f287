/*
 * dns/cache: a small, bounded, TTL-respecting cache of answers for the
 * blocking lookups (dns_lookup_sync), which the SPF, DKIM and DMARC
 * checks make several of per message.
 *
 * Why our own: libunbound's ub_resolve() sets up a fresh worker (event
 * base, outgoing sockets, buffers) for every call, even when the answer
 * comes from libunbound's cache: about half a millisecond of CPU per
 * lookup, measured, and a worker's worth of memory per pool thread at
 * once. An answer found here costs a hash lookup and a copy.
 *
 * What is kept: records (DNS_FOUND) and the permanent negatives
 * (NXDOMAIN, NODATA), each for its TTL (the SOA minimum for negatives,
 * as libunbound reports it), at most max_ttl seconds; an answer with TTL
 * 0 is not kept (RFC 2308: no SOA, no negative caching), nor a TEMPFAIL.
 * Names are compared case-insensitively. Bounded by bytes (names and
 * record data, with a fixed cost per entry); the least recently used
 * entries go first. Thread-safe (one lock).
 */
#ifndef TEGAMI_DNS_CACHE_H
#define TEGAMI_DNS_CACHE_H

#include "dns/dns.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define DNS_CACHE_DEFAULT_BYTES (1024 * 1024)
#define DNS_CACHE_DEFAULT_MAX_TTL 3600
/* A bigger answer than this is never kept (one would push out hundreds). */
#define DNS_CACHE_ENTRY_MAX (64 * 1024)

struct dns_cache;

struct dns_cache *dns_cache_create(size_t max_bytes, unsigned int max_ttl);
void dns_cache_destroy(struct dns_cache **cache);

/*
 * A copy of the cached answer for (name, type) at now, its TTL lowered by
 * the time it has waited (free with dns_result_free), or NULL.
 */
struct dns_result *dns_cache_get(struct dns_cache *cache, const char *name,
    enum dns_type type, time_t now);
/* Keeps a copy of res (when it is worth keeping, see above). */
void dns_cache_put(struct dns_cache *cache, const struct dns_result *res,
    time_t now);

struct dns_cache_stats {
	uint64_t hits, misses;
	size_t entries, bytes;
};
void dns_cache_stats(struct dns_cache *cache, struct dns_cache_stats *st_r);

/* A deep copy of a result. */
struct dns_result *dns_result_dup(const struct dns_result *res);

#endif
