/* DNSBL sites, query names and scoring. */
#include "filter/dnsbl.h"

#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "dns/dns.h"
#include "msgauth/dns_resolver.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char dnsbl_dms_sites[] =
	"zen.spamhaus.org=127.0.0.[2..11]*3, "
	"bl.mailspike.net=127.0.0.[2;14;13;12;11;10], "
	"b.barracudacentral.org*2, "
	"bl.spameatingmonkey.net=127.0.0.2, "
	"dnsbl.sorbs.net, "
	"psbl.surriel.com, "
	"list.dnswl.org=127.0.[0..255].0*-2, "
	"list.dnswl.org=127.0.[0..255].1*-3, "
	"list.dnswl.org=127.0.[0..255].[2..3]*-4";

static void
bit_set(uint8_t map[32], unsigned int v)
{
	map[v / 8] |= (uint8_t)(1u << (v % 8));
}

static bool
bit_get(const uint8_t map[32], unsigned int v)
{
	return (map[v / 8] & (1u << (v % 8))) != 0;
}

/* A decimal 0-255 at *pp; advances. */
static int
parse_octet(const char **pp, unsigned int *v_r)
{
	const char *p = *pp;
	unsigned int v = 0;
	int digits = 0;

	while (isdigit((unsigned char)*p)) {
		v = v * 10 + (unsigned int)(*p - '0');
		if (++digits > 3 || v > 255)
			return -1;
		p++;
	}
	if (digits == 0)
		return -1;
	*pp = p;
	*v_r = v;
	return 0;
}

/* One octet pattern: N or [a;b..c;...]. */
static int
parse_pattern(const char **pp, uint8_t map[32])
{
	const char *p = *pp;
	unsigned int a, b;

	if (*p != '[') {
		if (parse_octet(&p, &a) < 0)
			return -1;
		bit_set(map, a);
		*pp = p;
		return 0;
	}
	p++;
	for (;;) {
		if (parse_octet(&p, &a) < 0)
			return -1;
		b = a;
		if (p[0] == '.' && p[1] == '.') {
			p += 2;
			if (parse_octet(&p, &b) < 0 || b < a)
				return -1;
		}
		for (unsigned int v = a; v <= b; v++)
			bit_set(map, v);
		if (*p == ';') {
			p++;
			continue;
		}
		if (*p == ']')
			break;
		return -1;
	}
	*pp = p + 1;
	return 0;
}

static int
parse_site(const char *s, struct dnsbl_site *site)
{
	const char *p = s, *end;
	size_t zlen;

	memset(site, 0, sizeof(*site));
	site->weight = 1;
	for (end = p; *end != '\0' && *end != '=' && *end != '*'; end++)
		;
	zlen = (size_t)(end - p);
	if (zlen == 0 || zlen >= sizeof(site->zone) - 80)
		return -1;	/* room for the 72 bytes of an IPv6 prefix */
	memcpy(site->zone, p, zlen);
	site->zone[zlen] = '\0';
	for (size_t i = 0; i < zlen; i++) {
		unsigned char c = (unsigned char)site->zone[i];

		if (!isalnum(c) && c != '.' && c != '-' && c != '_')
			return -1;
		site->zone[i] = (char)tolower(c);
	}
	p = end;
	if (*p == '=') {
		p++;
		site->has_filter = true;
		for (int o = 0; o < 4; o++) {
			if (parse_pattern(&p, site->filter[o]) < 0)
				return -1;
			if (o < 3 && *p++ != '.')
				return -1;
		}
	}
	if (*p == '*') {
		long w;
		char *e;

		p++;
		w = strtol(p, &e, 10);
		if (e == p || w < -1000 || w > 1000)
			return -1;
		site->weight = (int)w;
		p = e;
	}
	return *p == '\0' ? 0 : -1;
}

int
dnsbl_list_parse(const char *spec, int threshold, int allow_threshold,
    struct dnsbl_list *list, char **error_r)
{
	char **items;
	size_t n;

	memset(list, 0, sizeof(*list));
	list->threshold = threshold;
	list->allow_threshold = allow_threshold;
	items = str_split(spec, ", \t\r\n", &n);
	if (n > DNSBL_SITES_MAX) {
		*error_r = xasprintf("more than %d DNSBL sites", DNSBL_SITES_MAX);
		str_array_free(items);
		return -1;
	}
	list->sites = xcalloc(n + 1, sizeof(*list->sites));
	for (size_t i = 0; i < n; i++) {
		if (parse_site(items[i], &list->sites[i]) < 0) {
			*error_r = xasprintf("bad DNSBL site \"%.100s\" (want "
			    "zone[=127.0.0.[2..11]][*weight])", items[i]);
			str_array_free(items);
			dnsbl_list_free(list);
			return -1;
		}
	}
	list->count = n;
	str_array_free(items);
	return 0;
}

void
dnsbl_list_free(struct dnsbl_list *list)
{
	free(list->sites);
	list->sites = NULL;
	list->count = 0;
}

size_t
dnsbl_zones(const struct dnsbl_list *list, const char **zones, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < list->count; i++) {
		bool seen = false;

		for (size_t j = 0; j < i && !seen; j++)
			seen = strcmp(list->sites[j].zone, list->sites[i].zone) == 0;
		if (seen)
			continue;
		if (n < max)
			zones[n] = list->sites[i].zone;
		n++;
	}
	return n;
}

int
dnsbl_query_name(const char *zone, const struct msgauth_ip *ip, char *out,
    size_t outsize)
{
	int n;

	if (ip->family == 4) {
		n = snprintf(out, outsize, "%u.%u.%u.%u.%s", ip->addr[3], ip->addr[2],
		    ip->addr[1], ip->addr[0], zone);
	} else {
		char nib[65];
		size_t k = 0;

		for (int i = 15; i >= 0; i--) {
			nib[k++] = "0123456789abcdef"[ip->addr[i] & 15];
			nib[k++] = '.';
			nib[k++] = "0123456789abcdef"[ip->addr[i] >> 4];
			nib[k++] = '.';
		}
		nib[k - 1] = '\0';
		n = snprintf(out, outsize, "%s.%s", nib, zone);
	}
	return n < 0 || (size_t)n >= outsize || n > 253 ? -1 : 0;
}

void
dnsbl_zone_score(const struct dnsbl_list *list, const char *zone,
    const struct msgauth_dns_addrs *answer, struct dnsbl_zone_result *r)
{
	memset(r, 0, sizeof(*r));
	for (size_t a = 0; a < answer->count; a++) {
		const uint8_t *x = answer->ip[a].addr;

		if (answer->ip[a].family == 4 && x[0] == 127 && x[1] == 255 &&
		    x[2] == 255) {
			r->refused = true;
		}
	}
	if (r->refused)
		return;	/* nothing this zone said can be trusted */
	for (size_t i = 0; i < list->count; i++) {
		const struct dnsbl_site *s = &list->sites[i];
		bool match = false;

		if (strcmp(s->zone, zone) != 0)
			continue;
		for (size_t a = 0; a < answer->count && !match; a++) {
			const uint8_t *x = answer->ip[a].addr;

			if (answer->ip[a].family != 4 || x[0] != 127)
				continue;
			match = !s->has_filter || (bit_get(s->filter[0], x[0]) &&
			    bit_get(s->filter[1], x[1]) && bit_get(s->filter[2], x[2]) &&
			    bit_get(s->filter[3], x[3]));
		}
		if (match) {
			r->score += s->weight;
			r->listed = true;
		}
	}
}

void
dnsbl_check(const struct msgauth_dns *dns, const struct dnsbl_list *list,
    const struct msgauth_ip *ip, struct dnsbl_result *r)
{
	const char *zones[DNSBL_SITES_MAX];
	size_t nz = dnsbl_zones(list, zones, DNSBL_SITES_MAX);
	struct msgauth_dns_addrs *answer = xcalloc(1, sizeof(*answer));

	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < nz && i < DNSBL_SITES_MAX; i++) {
		char name[MSGAUTH_DNS_NAME_MAX];
		enum msgauth_dns_rc rc;
		struct dnsbl_zone_result zr;

		if (dnsbl_query_name(zones[i], ip, name, sizeof(name)) < 0)
			continue;
		memset(answer, 0, sizeof(*answer));
		rc = dns->a(dns->ctx, name, answer);
		if (rc == MSGAUTH_DNS_TEMPFAIL) {
			r->errors++;
			continue;
		}
		if (rc != MSGAUTH_DNS_FOUND)
			continue;
		dnsbl_zone_score(list, zones[i], answer, &zr);
		if (zr.refused) {
			r->refused++;
			log_warn("event=dnsbl_refused zone=%s detail=\"the list refuses "
			    "our resolver (127.255.255.x); not counted as a listing\"",
			    zones[i]);
			continue;
		}
		if (zr.listed && zr.score > 0 && r->first_listed[0] == '\0')
			str_copy(r->first_listed, sizeof(r->first_listed), zones[i]);
		r->score += zr.score;
	}
	free(answer);
	r->reject = r->score >= list->threshold;
	r->allowlisted = r->score <= list->allow_threshold;
}

/* ------------------------------------------------------------------ */
/* Asynchronous, all zones at once.                                    */

struct dnsbl_slot {
	struct dnsbl_query *q;
	const char *zone;
	int id;			/* dns_lookup id, 0 once answered */
};

struct dnsbl_query {
	struct dns_resolver *resolver;
	const struct dnsbl_list *list;
	dnsbl_callback *callback;
	void *ctx;
	size_t nslots;
	unsigned int pending;
	struct dnsbl_result result;
	struct dnsbl_slot slots[DNSBL_SITES_MAX];
};

static void
add_answer(struct dnsbl_query *q, const char *zone,
    const struct msgauth_dns_addrs *answer, enum msgauth_dns_rc rc)
{
	struct dnsbl_zone_result zr;

	if (rc == MSGAUTH_DNS_TEMPFAIL) {
		q->result.errors++;
		return;
	}
	if (rc != MSGAUTH_DNS_FOUND)
		return;
	dnsbl_zone_score(q->list, zone, answer, &zr);
	if (zr.refused) {
		q->result.refused++;
		log_warn("event=dnsbl_refused zone=%s detail=\"the list refuses "
		    "our resolver (127.255.255.x); not counted as a listing\"", zone);
		return;
	}
	if (zr.listed && zr.score > 0 && q->result.first_listed[0] == '\0')
		str_copy(q->result.first_listed, sizeof(q->result.first_listed), zone);
	q->result.score += zr.score;
}

static void
on_answer(struct dns_result *res, void *context)
{
	struct dnsbl_slot *slot = context;
	struct dnsbl_query *q = slot->q;
	struct msgauth_dns_addrs *answer = xcalloc(1, sizeof(*answer));
	enum msgauth_dns_rc rc = msgauth_dns_convert_addrs(res, answer);

	add_answer(q, slot->zone, answer, rc);
	free(answer);
	dns_result_free(&res);
	slot->id = 0;
	if (--q->pending > 0)
		return;
	q->result.reject = q->result.score >= q->list->threshold;
	q->result.allowlisted = q->result.score <= q->list->allow_threshold;
	q->callback(&q->result, q->ctx);
	free(q);
}

struct dnsbl_query *
dnsbl_check_async(struct dns_resolver *resolver, const struct dnsbl_list *list,
    const struct msgauth_ip *ip, dnsbl_callback *callback, void *ctx)
{
	const char *zones[DNSBL_SITES_MAX];
	size_t nz = dnsbl_zones(list, zones, DNSBL_SITES_MAX);
	struct dnsbl_query *q = xcalloc(1, sizeof(*q));

	q->resolver = resolver;
	q->list = list;
	q->callback = callback;
	q->ctx = ctx;
	for (size_t i = 0; i < nz && i < DNSBL_SITES_MAX; i++) {
		char name[MSGAUTH_DNS_NAME_MAX];
		struct dnsbl_slot *slot = &q->slots[q->nslots];
		const char *err;

		if (dnsbl_query_name(zones[i], ip, name, sizeof(name)) < 0)
			continue;
		slot->q = q;
		slot->zone = zones[i];
		slot->id = dns_lookup(resolver, name, DNS_TYPE_A, on_answer, slot,
		    &err);
		if (slot->id < 0) {
			log_warn("event=dnsbl_lookup_failed zone=%s error=\"%s\"",
			    zones[i], err);
			slot->id = 0;
			continue;
		}
		q->nslots++;
		q->pending++;
	}
	if (q->pending == 0) {
		free(q);
		return NULL;
	}
	return q;
}

void
dnsbl_query_cancel(struct dnsbl_query **qp)
{
	struct dnsbl_query *q = *qp;

	if (q == NULL)
		return;
	for (size_t i = 0; i < q->nslots; i++) {
		if (q->slots[i].id > 0)
			dns_lookup_cancel(q->resolver, q->slots[i].id);
	}
	free(q);
	*qp = NULL;
}
