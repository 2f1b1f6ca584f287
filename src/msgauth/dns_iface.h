/*
 * msgauth_dns: how SPF, DMARC and (later) DKIM verification reach DNS.
 *
 * msgauth/ does not include dns/. The caller hands the evaluators a table
 * of SYNCHRONOUS lookup functions plus a ctx pointer: in the server that
 * table sits on the libunbound resolver and the evaluators run on a pool
 * thread; in unit tests it is a static zone. Every function fills a
 * caller-owned result whose arrays are bounded (MSGAUTH_DNS_MAX_RR), so a
 * hostile zone cannot make us allocate without limit, and returns one of
 * the four outcomes below. A function may be called from several threads
 * at once with the same ctx, so implementations must be thread-safe.
 *
 * Names are passed without a trailing dot as label texts joined by '.',
 * every other byte literal (ASCII, A-labels; SPF macros can even put a
 * space in a label). An implementation over a presentation-format API
 * escapes what that API needs ('\\', ' ', ...). Names are compared
 * case-insensitively.
 */
#ifndef TEGAMI_MSGAUTH_DNS_IFACE_H
#define TEGAMI_MSGAUTH_DNS_IFACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum msgauth_dns_rc {
	MSGAUTH_DNS_FOUND = 0,	/* at least one record of the type */
	MSGAUTH_DNS_NXDOMAIN,	/* the name does not exist (RCODE 3) */
	MSGAUTH_DNS_NODATA,	/* the name exists, no record of the type */
	MSGAUTH_DNS_TEMPFAIL,	/* timeout, SERVFAIL, bogus DNSSEC, ... */
};

/* At most this many records of one answer are kept; the rest are dropped
 * and `truncated` is set (SPF needs to know: more than 10 MX is an error). */
#define MSGAUTH_DNS_MAX_RR 32
/* A TXT record (its character-strings concatenated) longer than this is
 * dropped by the implementation. */
#define MSGAUTH_DNS_TXT_MAX 8192
#define MSGAUTH_DNS_NAME_MAX 256	/* 253 characters + NUL, rounded */

/* An IP address: family 4 uses the first 4 bytes of addr. */
struct msgauth_ip {
	uint8_t family;	/* 4 or 6 */
	uint8_t addr[16];
};

struct msgauth_dns_txt {
	size_t count;
	bool truncated;
	/* malloc'd by the lookup, NUL-terminated; the character-strings of
	 * one record joined without separator (RFC 7208 §3.3). A record may
	 * hold NUL bytes: len[i] is its true length, and the parsers refuse
	 * such records (an SPF record with a NUL is a permerror). */
	char *txt[MSGAUTH_DNS_MAX_RR];
	size_t len[MSGAUTH_DNS_MAX_RR];
};

struct msgauth_dns_addrs {
	size_t count;
	bool truncated;
	struct msgauth_ip ip[MSGAUTH_DNS_MAX_RR];
};

struct msgauth_dns_names {
	size_t count;
	bool truncated;	/* more records than MSGAUTH_DNS_MAX_RR */
	uint16_t pref[MSGAUTH_DNS_MAX_RR];	/* MX preference; 0 for PTR */
	char name[MSGAUTH_DNS_MAX_RR][MSGAUTH_DNS_NAME_MAX];
};

struct msgauth_dns {
	void *ctx;
	/* Each function fills *r (zeroed by the caller before the call) and
	 * returns the outcome; with anything but FOUND, r->count is 0. */
	enum msgauth_dns_rc (*txt)(void *ctx, const char *name,
	    struct msgauth_dns_txt *r);
	enum msgauth_dns_rc (*a)(void *ctx, const char *name,
	    struct msgauth_dns_addrs *r);
	enum msgauth_dns_rc (*aaaa)(void *ctx, const char *name,
	    struct msgauth_dns_addrs *r);
	/* MX targets in r->name, preference in r->pref, any order. A "null
	 * MX" (RFC 7505: preference 0, target ".") is given as name "". */
	enum msgauth_dns_rc (*mx)(void *ctx, const char *name,
	    struct msgauth_dns_names *r);
	/* PTR for an address: the implementation builds the in-addr.arpa /
	 * ip6.arpa name. Names come without the trailing dot. */
	enum msgauth_dns_rc (*ptr)(void *ctx, const struct msgauth_ip *ip,
	    struct msgauth_dns_names *r);
};

/* Frees the strings of a TXT result and zeroes it. */
void msgauth_dns_txt_free(struct msgauth_dns_txt *r);

/* Parses an IPv4 (dotted quad, no leading zeros) or IPv6 address.
 * An IPv4-mapped IPv6 address (::ffff:a.b.c.d) becomes family 4, as
 * SPF wants it (RFC 7208 §5). -1 if s is not an address. */
int msgauth_ip_parse(const char *s, struct msgauth_ip *ip_r);
/* Formats as inet_ntop does into out (at least 46 bytes). */
void msgauth_ip_format(const struct msgauth_ip *ip, char *out, size_t outsize);
bool msgauth_ip_equal(const struct msgauth_ip *a, const struct msgauth_ip *b);
/* Do the first `bits` bits of a and b agree (same family required)? */
bool msgauth_ip_match_prefix(const struct msgauth_ip *a,
    const struct msgauth_ip *b, unsigned int bits);

#endif
