/* MX routing: RFC 5321 5.1 and RFC 7505. */
#include "dns/mxroute.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/log.h"
#include "lib/xalloc.h"

static unsigned int
default_random(unsigned int n)
{
	return (unsigned int)random() % n;
}

size_t
mx_route_hosts(const struct dns_result *mx, mx_random_fn *random_fn,
    const char **hosts_r, uint16_t *prefs_r, bool *null_mx_r)
{
	size_t n = 0, real = 0;

	if (random_fn == NULL)
		random_fn = default_random;
	*null_mx_r = false;
	for (size_t i = 0; i < mx->count; i++)
		if (mx->mx[i].host[0] != '\0')
			real++;
	/*
	 * RFC 7505 3: a domain that accepts no mail publishes exactly one
	 * MX, "0 .". A "." among real exchangers is a mistake: skip it.
	 */
	if (real == 0 && mx->count > 0) {
		*null_mx_r = true;
		return 0;
	}
	/* mx->mx is sorted by preference (stable): shuffle each run of ties. */
	for (size_t i = 0; i < mx->count && n < MX_ROUTE_MAX_HOSTS; ) {
		size_t j = i, start = n;

		while (j < mx->count && mx->mx[j].preference == mx->mx[i].preference) {
			if (mx->mx[j].host[0] != '\0' && n < MX_ROUTE_MAX_HOSTS) {
				hosts_r[n] = mx->mx[j].host;
				prefs_r[n] = mx->mx[j].preference;
				n++;
			}
			j++;
		}
		for (size_t k = n - start; k > 1; k--) {
			size_t r = start + random_fn((unsigned int)k);
			const char *h = hosts_r[start + k - 1];

			hosts_r[start + k - 1] = hosts_r[r];
			hosts_r[r] = h;
		}
		i = j;
	}
	return n;
}

static void
add_targets(struct mx_route *route, const char *host, uint16_t pref,
    const struct dns_result *res)
{
	if (res == NULL || res->status != DNS_FOUND)
		return;
	for (size_t i = 0; i < res->count && route->count < MX_ROUTE_MAX_TARGETS; i++) {
		struct mx_target *t = &route->targets[route->count++];

		t->host = xstrdup(host);
		t->preference = pref;
		t->addr = res->addrs[i];
	}
}

static struct mx_route *
route_new(const char *domain, enum mx_route_status status,
    const char *enhanced, const char *error)
{
	struct mx_route *route = xcalloc(1, sizeof(*route));

	route->domain = xstrdup(domain);
	route->status = status;
	route->enhanced = enhanced;
	route->error = error;
	route->targets = xcalloc(MX_ROUTE_MAX_TARGETS, sizeof(*route->targets));
	return route;
}

struct mx_route *
mx_route_build(const char *domain, const struct dns_result *mx,
    size_t host_count, const char *const *hosts, const uint16_t *prefs,
    struct dns_result *const *a, struct dns_result *const *aaaa)
{
	struct mx_route *route;
	bool any_temp = false;

	switch (mx->status) {
	case DNS_TEMPFAIL:
		return route_new(domain, MX_ROUTE_TEMPFAIL, "4.4.3",
		    mx->error != NULL ? mx->error : "MX lookup failed");
	case DNS_NXDOMAIN:
		return route_new(domain, MX_ROUTE_PERMFAIL, "5.1.2",
		    "domain does not exist");
	case DNS_FOUND:
	case DNS_NODATA:
		break;
	}
	if (mx->status == DNS_FOUND && host_count == 0)
		return route_new(domain, MX_ROUTE_PERMFAIL, "5.1.10",
		    "domain accepts no mail (null MX)");
	route = route_new(domain, MX_ROUTE_OK, NULL, NULL);
	route->implicit = mx->status == DNS_NODATA;
	route->secure = mx->secure;
	/* IPv6 first, then IPv4, host by host in preference order. */
	for (size_t i = 0; i < host_count; i++) {
		add_targets(route, hosts[i], prefs[i], aaaa[i]);
		add_targets(route, hosts[i], prefs[i], a[i]);
		if ((aaaa[i] != NULL && aaaa[i]->status == DNS_TEMPFAIL) ||
		    (a[i] != NULL && a[i]->status == DNS_TEMPFAIL))
			any_temp = true;
	}
	if (route->count > 0)
		return route;
	if (any_temp) {
		route->status = MX_ROUTE_TEMPFAIL;
		route->enhanced = "4.4.3";
		route->error = "address lookup of the mail exchanger failed";
	} else {
		route->status = MX_ROUTE_PERMFAIL;
		route->enhanced = "5.1.2";
		route->error = route->implicit ?
		    "domain has no MX and no address" :
		    "no mail exchanger of the domain has an address";
	}
	return route;
}

void
mx_route_free(struct mx_route **routep)
{
	struct mx_route *route = *routep;

	if (route == NULL)
		return;
	for (size_t i = 0; i < route->count; i++)
		free(route->targets[i].host);
	free(route->targets);
	free(route->domain);
	free(route);
	*routep = NULL;
}

/* ---- asynchronous lookups ---- */

struct mx_lookup {
	struct dns_resolver *resolver;
	char *domain;
	mx_route_cb *callback;
	void *context;
	struct dns_result *mx;
	size_t host_count;
	const char *hosts[MX_ROUTE_MAX_HOSTS];
	uint16_t prefs[MX_ROUTE_MAX_HOSTS];
	struct dns_result *a[MX_ROUTE_MAX_HOSTS];
	struct dns_result *aaaa[MX_ROUTE_MAX_HOSTS];
	unsigned int outstanding;
};

struct addr_query {
	struct mx_lookup *lookup;
	size_t host;
	bool v6;
};

static void
lookup_finish(struct mx_lookup *l)
{
	struct mx_route *route;

	route = mx_route_build(l->domain, l->mx, l->host_count, l->hosts,
	    l->prefs, l->a, l->aaaa);
	log_debug("event=mx_route domain=%s status=%d targets=%zu implicit=%d",
	    l->domain, (int)route->status, route->count, route->implicit);
	for (size_t i = 0; i < l->host_count; i++) {
		dns_result_free(&l->a[i]);
		dns_result_free(&l->aaaa[i]);
	}
	dns_result_free(&l->mx);
	free(l->domain);
	l->callback(route, l->context);
	free(l);
}

static void
addr_cb(struct dns_result *res, void *context)
{
	struct addr_query *q = context;
	struct mx_lookup *l = q->lookup;

	if (q->v6)
		l->aaaa[q->host] = res;
	else
		l->a[q->host] = res;
	free(q);
	if (--l->outstanding == 0)
		lookup_finish(l);
}

static void
start_addr(struct mx_lookup *l, size_t host, bool v6)
{
	struct addr_query *q = xcalloc(1, sizeof(*q));
	const char *error;

	q->lookup = l;
	q->host = host;
	q->v6 = v6;
	l->outstanding++;
	if (dns_lookup(l->resolver, l->hosts[host],
	    v6 ? DNS_TYPE_AAAA : DNS_TYPE_A, addr_cb, q, &error) < 0) {
		/* Counts as a temporary failure of that lookup. */
		struct dns_result *res = xcalloc(1, sizeof(*res));

		res->name = xstrdup(l->hosts[host]);
		res->type = v6 ? DNS_TYPE_AAAA : DNS_TYPE_A;
		res->status = DNS_TEMPFAIL;
		res->error = error;
		l->outstanding--;
		if (v6)
			l->aaaa[host] = res;
		else
			l->a[host] = res;
		free(q);
	}
}

static void
mx_cb(struct dns_result *res, void *context)
{
	struct mx_lookup *l = context;
	bool null_mx = false;

	l->mx = res;
	if (res->status == DNS_FOUND) {
		l->host_count = mx_route_hosts(res, NULL, l->hosts, l->prefs,
		    &null_mx);
	} else if (res->status == DNS_NODATA) {
		/* RFC 5321 5.1: no MX, so the domain itself, preference 0. */
		l->hosts[0] = l->domain;
		l->prefs[0] = 0;
		l->host_count = 1;
	}
	/* Hold one count so a lookup failing at once cannot finish us early. */
	l->outstanding = 1;
	for (size_t i = 0; i < l->host_count; i++) {
		start_addr(l, i, true);
		start_addr(l, i, false);
	}
	if (--l->outstanding == 0)
		lookup_finish(l);
}

int
mx_route_lookup(struct dns_resolver *resolver, const char *domain,
    mx_route_cb *callback, void *context, const char **error_r)
{
	struct mx_lookup *l = xcalloc(1, sizeof(*l));

	l->resolver = resolver;
	l->domain = xstrdup(domain);
	l->callback = callback;
	l->context = context;
	if (dns_lookup(resolver, domain, DNS_TYPE_MX, mx_cb, l, error_r) < 0) {
		free(l->domain);
		free(l);
		return -1;
	}
	return 0;
}
