/*
 * mxroute: where to deliver mail for a domain (RFC 5321 5.1, RFC 7505).
 *
 * MX records in preference order (equal preferences in random order),
 * every address of each exchanger (IPv6 first, then IPv4); no MX but an
 * address: the domain itself (implicit MX); a null MX ("0 .") is a
 * permanent refusal; a name that does not exist, or exists with neither MX
 * nor address, is permanent; anything we could not find out is temporary.
 *
 * mx_route_lookup() runs the lookups asynchronously (MX, then A and AAAA
 * of every exchanger in parallel) on a dns_resolver; mx_route_build() is
 * the decision on given answers, apart so tests need no DNS.
 */
#ifndef TEGAMI_DNS_MXROUTE_H
#define TEGAMI_DNS_MXROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns/dns.h"

/* Exchangers we try (Postfix smtp_mx_address_limit is 5 addresses...). */
#define MX_ROUTE_MAX_HOSTS 10
#define MX_ROUTE_MAX_TARGETS 20

enum mx_route_status {
	MX_ROUTE_OK,
	MX_ROUTE_TEMPFAIL,
	MX_ROUTE_PERMFAIL,
};

struct mx_target {
	char *host;		/* exchanger name */
	uint16_t preference;
	struct dns_addr addr;
};

struct mx_route {
	char *domain;
	enum mx_route_status status;
	const char *error;	/* static text when not OK */
	const char *enhanced;	/* "5.1.2", "5.1.10", "4.4.3", ... */
	bool implicit;		/* no MX: the domain's own address */
	bool secure;		/* the MX answer was DNSSEC-validated */
	size_t count;
	struct mx_target *targets;
};

typedef void mx_route_cb(struct mx_route *route, void *context);

/*
 * Starts the lookups; callback(route, context) runs on the loop and owns
 * the route (mx_route_free). -1 with *error_r if nothing could be started.
 */
int mx_route_lookup(struct dns_resolver *resolver, const char *domain,
    mx_route_cb *callback, void *context, const char **error_r);

/* random_fn(n) -> [0, n); NULL = random(). */
typedef unsigned int mx_random_fn(unsigned int n);

/*
 * The decision: mx is the MX answer; hosts[i] the exchanger names (from
 * mx, or the domain when implicit), with a[i] and aaaa[i] their answers
 * (NULL = not asked). Caller keeps ownership of the inputs.
 */
struct mx_route *mx_route_build(const char *domain,
    const struct dns_result *mx, size_t host_count,
    const char *const *hosts, const uint16_t *prefs,
    struct dns_result *const *a, struct dns_result *const *aaaa);

/*
 * The exchangers to look up for an MX answer: sorted by preference with
 * ties shuffled, null MX entries dropped, at most MX_ROUTE_MAX_HOSTS.
 * Returns the count; *null_mx_r when the answer is a null MX.
 */
size_t mx_route_hosts(const struct dns_result *mx, mx_random_fn *random_fn,
    const char **hosts_r, uint16_t *prefs_r, bool *null_mx_r);

void mx_route_free(struct mx_route **route);

#endif
