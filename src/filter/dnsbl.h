/*
 * filter/dnsbl: DNS block and allow lists, scored as Postfix postscreen
 * does (postscreen_dnsbl_sites syntax, weights, a threshold), with
 * docker-mailserver's list as the default.
 *
 * A site is "zone[=filter][*weight]": the client is listed on it when
 * the A lookup of its reversed address under zone answers an address
 * that the filter accepts (any 127.0.0.0/8 address without a filter).
 * A filter is four octet patterns: a number, or "[...]" of numbers and
 * "a..b" ranges separated by ';' (127.0.0.[2..11], 127.0.[0..255].1).
 * Weights add up; score >= threshold rejects, score <= allow_threshold
 * marks the client as allow-listed (negative weights come from
 * allow-lists such as list.dnswl.org).
 *
 * An answer in 127.255.255.0/24 is a list telling us our resolver is
 * refused (public resolver, over quota), never a listing: it counts as
 * no answer and is reported (docker-mailserver issue #2889). Answers
 * outside 127.0.0.0/8 are ignored too.
 *
 * dnsbl_check() runs the lookups one after another through the
 * synchronous msgauth_dns table (for a pool thread); a caller with an
 * asynchronous resolver queries dnsbl_zone_query_name() for every zone of
 * dnsbl_zones() in parallel and feeds each answer to dnsbl_zone_score().
 */
#ifndef TEGAMI_FILTER_DNSBL_H
#define TEGAMI_FILTER_DNSBL_H

#include "msgauth/dns_iface.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNSBL_SITES_MAX 64

/* docker-mailserver's postscreen_dnsbl_sites (reference §1.5). */
extern const char dnsbl_dms_sites[];
#define DNSBL_DMS_THRESHOLD 3
#define DNSBL_DMS_ALLOW_THRESHOLD (-1)

struct dnsbl_site {
	char zone[MSGAUTH_DNS_NAME_MAX];
	bool has_filter;
	uint8_t filter[4][32];	/* accepted values of each octet (bitmaps) */
	int weight;
};

struct dnsbl_list {
	struct dnsbl_site *sites;
	size_t count;
	int threshold;
	int allow_threshold;
};

/* Parses sites separated by commas and/or white space. -1 with a
 * malloc'd *error_r naming the bad site. */
int dnsbl_list_parse(const char *spec, int threshold, int allow_threshold,
    struct dnsbl_list *list_r, char **error_r);
void dnsbl_list_free(struct dnsbl_list *list);

/* The distinct zones to query, in order of first appearance; returns
 * their number (at most max are stored). */
size_t dnsbl_zones(const struct dnsbl_list *list, const char **zones,
    size_t max);
/* "4.3.2.1.zone" or the 32 nibbles of an IPv6 address; -1 if too long. */
int dnsbl_query_name(const char *zone, const struct msgauth_ip *ip, char *out,
    size_t outsize);

struct dnsbl_zone_result {
	int score;		/* sum of the weights of matching sites */
	bool listed;		/* some site of the zone matched */
	bool refused;		/* the zone said 127.255.255.x */
};
/* Scores the A answer of one zone. */
void dnsbl_zone_score(const struct dnsbl_list *list, const char *zone,
    const struct msgauth_dns_addrs *answer, struct dnsbl_zone_result *r);

struct dnsbl_result {
	int score;
	bool reject;		/* score >= threshold */
	bool allowlisted;	/* score <= allow_threshold */
	unsigned int refused;	/* zones that refused our resolver */
	unsigned int errors;	/* zones that failed to answer */
	char first_listed[MSGAUTH_DNS_NAME_MAX];	/* for the log and reply */
};
/* All zones, one after another, through dns. */
void dnsbl_check(const struct msgauth_dns *dns, const struct dnsbl_list *list,
    const struct msgauth_ip *ip, struct dnsbl_result *r);

/*
 * The same at connect time without a thread: every zone is asked at once
 * on the resolver's event loop (dns_lookup), and callback(result, ctx)
 * runs once on the loop when the last answer (or timeout) is in. list
 * must stay alive until then. Returns NULL when no lookup could be
 * started (the callback is then never called: treat it as "not listed").
 */
struct dns_resolver;
struct dnsbl_query;
typedef void dnsbl_callback(const struct dnsbl_result *result, void *ctx);
struct dnsbl_query *dnsbl_check_async(struct dns_resolver *resolver,
    const struct dnsbl_list *list, const struct msgauth_ip *ip,
    dnsbl_callback *callback, void *ctx);
/* The session ended first: cancels what is pending, no callback. Not
 * after the callback has run: the query is freed by then. */
void dnsbl_query_cancel(struct dnsbl_query **query);

#endif
