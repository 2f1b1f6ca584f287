/*
 * dns: MX, A, AAAA, TXT and PTR lookups on libunbound.
 *
 * Two ways to ask, one answer type:
 *   - dns_lookup(): asynchronous, on the libevent loop given at creation
 *     (libunbound's fd is watched by an event; ub_process() runs on
 *     readiness and calls the callback on the loop's thread);
 *   - dns_lookup_sync(): blocking, for pool threads; safe to call from
 *     several threads at once.
 *
 * A result says what the callers must tell apart: the name has records
 * (DNS_FOUND), the name does not exist (DNS_NXDOMAIN, permanent), it
 * exists without records of that type (DNS_NODATA, permanent), or we could
 * not find out (DNS_TEMPFAIL: SERVFAIL, timeout, DNSSEC bogus, malformed
 * answer). `secure` is libunbound's DNSSEC verdict (needs a trust anchor).
 * A resolver that does not answer gives DNS_TEMPFAIL after 12-20 seconds
 * (libunbound's own retry schedule; measured with 1.17), then at once for
 * a while (its infrastructure cache) while it keeps probing.
 *
 * Resolver: the system's /etc/resolv.conf, or the given list of addresses
 * ("192.0.2.1", "2001:db8::1", "192.0.2.1@5353"). Names under "test."
 * (RFC 6761) always go to that resolver: libunbound would otherwise answer
 * NXDOMAIN for them itself.
 *
 * The rdata parsers (dns_parse_*) take libunbound's wire-format rdata and
 * are bounded: they never read past the given length, and a malformed
 * record is an error, not a crash.
 */
#ifndef TEGAMI_DNS_H
#define TEGAMI_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

struct event_base;
struct dns_resolver;

/* Longest name in presentation form; escapes (\DDD) make it longer than 255. */
#define DNS_NAME_TEXT_MAX 1024
/* Longest joined TXT record we keep (a 4096-bit RSA DKIM key is ~800). */
#define DNS_TXT_MAX 65535
/* At most this many records of one answer are kept. */
#define DNS_MAX_RECORDS 64

enum dns_type {
	DNS_TYPE_A = 1,
	DNS_TYPE_PTR = 12,
	DNS_TYPE_MX = 15,
	DNS_TYPE_TXT = 16,
	DNS_TYPE_AAAA = 28,
};

enum dns_status {
	DNS_FOUND,
	DNS_NXDOMAIN,
	DNS_NODATA,
	DNS_TEMPFAIL,
};

struct dns_mx {
	uint16_t preference;
	/* Presentation form without the final dot; "" is the root (null MX). */
	char *host;
};

struct dns_addr {
	int family;	/* AF_INET or AF_INET6 */
	union {
		struct in_addr v4;
		struct in6_addr v6;
	} u;
};

struct dns_txt {
	char *data;	/* the record's strings joined, NUL-terminated */
	size_t len;	/* may contain NULs: compare with len, not strlen */
};

struct dns_result {
	char *name;		/* the name asked for */
	enum dns_type type;
	enum dns_status status;
	bool secure;		/* DNSSEC-validated answer */
	int rcode;		/* DNS rcode as received (0, 2, 3, ...) */
	uint32_t ttl;
	/* Static text for DNS_TEMPFAIL (and parse errors), else NULL. */
	const char *error;

	/* One of these arrays is filled, by type, with `count` entries. */
	size_t count;
	struct dns_mx *mx;	/* MX: sorted by preference, stable */
	struct dns_addr *addrs;	/* A, AAAA */
	struct dns_txt *txt;	/* TXT */
	char **names;		/* PTR: presentation form, no final dot */
};

struct dns_config {
	/* NULL or empty: /etc/resolv.conf. Else resolver addresses. */
	const char *const *servers;
	size_t server_count;
	/* Optional DNSSEC trust anchor file (zone-file format DS/DNSKEY). */
	const char *trust_anchor_file;
	/* Answers of dns_lookup_sync() are kept in a cache (dns/cache.h) of
	   at most cache_bytes (0 = DNS_CACHE_DEFAULT_BYTES, 1 MiB) for their
	   TTL, at most cache_max_ttl seconds (0 = 3600); no_cache: none. */
	size_t cache_bytes;
	unsigned int cache_max_ttl;
	bool no_cache;
};

typedef void dns_callback(struct dns_result *result, void *context);

/*
 * Creates a resolver. base may be NULL for a resolver that only does
 * dns_lookup_sync(). Returns NULL with a malloc'd *error_r on a bad
 * configuration (unreadable resolv.conf or trust anchor, bad address).
 */
struct dns_resolver *dns_resolver_create(struct event_base *base,
    const struct dns_config *config, char **error_r);
/* Cancels pending lookups (their callbacks are not called) and frees. */
void dns_resolver_destroy(struct dns_resolver **resolver);

/*
 * Starts an asynchronous lookup; callback(result, context) runs later on
 * the loop's thread (never from inside this call) and owns the result
 * (dns_result_free it). Returns an id > 0 for dns_lookup_cancel(), or -1
 * (with *error_r) when the lookup could not be started; then the callback
 * is never called.
 */
int dns_lookup(struct dns_resolver *resolver, const char *name,
    enum dns_type type, dns_callback *callback, void *context,
    const char **error_r);
/* Cancels a pending lookup: its callback will not be called. */
void dns_lookup_cancel(struct dns_resolver *resolver, int id);
/* Lookups started and not yet called back or cancelled. */
unsigned int dns_pending(const struct dns_resolver *resolver);

/*
 * Blocking lookup; always returns a result (free with dns_result_free).
 * Answered from the cache when it has the answer (see dns_config).
 */
struct dns_result *dns_lookup_sync(struct dns_resolver *resolver,
    const char *name, enum dns_type type);
/* The sync cache's counters; false when there is no cache. */
struct dns_cache_stats;
bool dns_resolver_cache_stats(struct dns_resolver *resolver,
    struct dns_cache_stats *st_r);

void dns_result_free(struct dns_result **result);

/* "1.2.0.192.in-addr.arpa" / nibble ip6.arpa name of addr into out. */
void dns_ptr_name(const struct dns_addr *addr, char *out, size_t outsize);

const char *dns_status_name(enum dns_status status);

/*
 * Wire-format rdata parsers (RFC 1035 3.3, RFC 3596). Names must be
 * uncompressed (libunbound hands them so); a compression pointer, a label
 * over 63 bytes, a name over 255 bytes or trailing bytes are errors (-1).
 * Outputs are malloc'd.
 */
int dns_parse_name(const void *rdata, size_t len, char **name_r);
int dns_parse_mx(const void *rdata, size_t len, struct dns_mx *mx_r);
int dns_parse_txt(const void *rdata, size_t len, struct dns_txt *txt_r);
int dns_parse_a(const void *rdata, size_t len, struct dns_addr *addr_r);
int dns_parse_aaaa(const void *rdata, size_t len, struct dns_addr *addr_r);

/*
 * Fills result's arrays from the rdata list (rdata[i], lens[i], count n)
 * by result->type; MX sorted by preference. On a malformed record the
 * result becomes DNS_TEMPFAIL with error set and no records (-1).
 */
int dns_result_fill(struct dns_result *result, char *const *rdata,
    const int *lens, size_t n);

#endif
