#include "dns/mxroute.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <event2/event.h>

#include "lib/test.h"
#include "lib/xalloc.h"

static struct dns_result *
mk_mx(enum dns_status status, size_t n, const uint16_t *prefs,
    const char *const *hosts)
{
	struct dns_result *r = xcalloc(1, sizeof(*r));

	r->type = DNS_TYPE_MX;
	r->status = status;
	r->count = n;
	r->mx = xcalloc(n + 1, sizeof(*r->mx));
	for (size_t i = 0; i < n; i++) {
		r->mx[i].preference = prefs[i];
		r->mx[i].host = xstrdup(hosts[i]);
	}
	return r;
}

static struct dns_result *
mk_addr(enum dns_type type, enum dns_status status, const char *addr)
{
	struct dns_result *r = xcalloc(1, sizeof(*r));

	r->type = type;
	r->status = status;
	if (addr != NULL) {
		r->count = 1;
		r->addrs = xcalloc(2, sizeof(*r->addrs));
		r->addrs[0].family = type == DNS_TYPE_A ? AF_INET : AF_INET6;
		inet_pton(r->addrs[0].family, addr, &r->addrs[0].u);
	}
	return r;
}

static unsigned int
rand_last(unsigned int n)
{
	return n - 1;	/* no swap: keep order */
}

static unsigned int
rand_first(unsigned int n)
{
	return 0;	/* swap the last with the first */
}

static void
test_mx_route_hosts(void)
{
	static const uint16_t prefs[] = { 5, 10, 10, 10, 20 };
	static const char *const hosts[] = { "a", "b", "c", "d", "e" };
	static const uint16_t nprefs[] = { 0 };
	static const char *const nhosts[] = { "" };
	static const uint16_t mprefs[] = { 0, 10 };
	static const char *const mhosts[] = { "", "real" };
	struct dns_result *mx = mk_mx(DNS_FOUND, 5, prefs, hosts);
	const char *out[MX_ROUTE_MAX_HOSTS];
	uint16_t outp[MX_ROUTE_MAX_HOSTS];
	bool null_mx;

	test_begin("mx route: exchanger order, ties shuffled, null MX");
	test_assert_int(mx_route_hosts(mx, rand_last, out, outp, &null_mx), 5);
	test_assert(!null_mx);
	test_assert_str(out[0], "a");
	test_assert_str(out[1], "b");
	test_assert_str(out[3], "d");
	test_assert_str(out[4], "e");
	test_assert_int(outp[4], 20);
	mx_route_hosts(mx, rand_first, out, outp, &null_mx);
	/* Only the ties (b, c, d) move; a stays first, e last. */
	test_assert_str(out[0], "a");
	test_assert_str(out[4], "e");
	test_assert(strcmp(out[1], "b") != 0 || strcmp(out[2], "c") != 0 ||
	    strcmp(out[3], "d") != 0);
	dns_result_free(&mx);

	mx = mk_mx(DNS_FOUND, 1, nprefs, nhosts);
	test_assert_int(mx_route_hosts(mx, NULL, out, outp, &null_mx), 0);
	test_assert(null_mx);
	dns_result_free(&mx);
	mx = mk_mx(DNS_FOUND, 2, mprefs, mhosts);
	test_assert_int(mx_route_hosts(mx, NULL, out, outp, &null_mx), 1);
	test_assert(!null_mx);
	test_assert_str(out[0], "real");
	dns_result_free(&mx);
	test_end();
}

static void
test_mx_route_build(void)
{
	static const uint16_t prefs[] = { 10, 20 };
	static const char *const hosts[] = { "mx1.b.test", "mx2.b.test" };
	struct dns_result *mx, *a[2], *aaaa[2];
	struct mx_route *route;
	char text[64];

	test_begin("mx route: targets and outcomes");
	mx = mk_mx(DNS_FOUND, 2, prefs, hosts);
	a[0] = mk_addr(DNS_TYPE_A, DNS_FOUND, "10.77.0.12");
	aaaa[0] = mk_addr(DNS_TYPE_AAAA, DNS_FOUND, "2001:db8::12");
	a[1] = mk_addr(DNS_TYPE_A, DNS_TEMPFAIL, NULL);
	aaaa[1] = mk_addr(DNS_TYPE_AAAA, DNS_NODATA, NULL);
	route = mx_route_build("b.test", mx, 2, hosts, prefs, a, aaaa);
	test_assert_int(route->status, MX_ROUTE_OK);
	test_assert_int(route->count, 2);
	test_assert(!route->implicit);
	/* IPv6 first */
	test_assert_int(route->targets[0].addr.family, AF_INET6);
	inet_ntop(AF_INET, &route->targets[1].addr.u.v4, text, sizeof(text));
	test_assert_str(text, "10.77.0.12");
	test_assert_str(route->targets[1].host, "mx1.b.test");
	mx_route_free(&route);

	/* No address anywhere, one lookup temporary: temporary. */
	dns_result_free(&a[0]);
	dns_result_free(&aaaa[0]);
	a[0] = mk_addr(DNS_TYPE_A, DNS_NXDOMAIN, NULL);
	aaaa[0] = mk_addr(DNS_TYPE_AAAA, DNS_NXDOMAIN, NULL);
	route = mx_route_build("b.test", mx, 2, hosts, prefs, a, aaaa);
	test_assert_int(route->status, MX_ROUTE_TEMPFAIL);
	mx_route_free(&route);
	/* ... and none temporary: permanent. */
	a[1]->status = DNS_NXDOMAIN;
	route = mx_route_build("b.test", mx, 2, hosts, prefs, a, aaaa);
	test_assert_int(route->status, MX_ROUTE_PERMFAIL);
	test_assert_str(route->enhanced, "5.1.2");
	mx_route_free(&route);

	/* MX lookup itself: temporary / NXDOMAIN / null MX. */
	mx->status = DNS_TEMPFAIL;
	route = mx_route_build("b.test", mx, 0, hosts, prefs, a, aaaa);
	test_assert_int(route->status, MX_ROUTE_TEMPFAIL);
	mx_route_free(&route);
	mx->status = DNS_NXDOMAIN;
	route = mx_route_build("b.test", mx, 0, hosts, prefs, a, aaaa);
	test_assert_int(route->status, MX_ROUTE_PERMFAIL);
	mx_route_free(&route);
	mx->status = DNS_FOUND;
	route = mx_route_build("b.test", mx, 0, hosts, prefs, a, aaaa);
	test_assert_int(route->status, MX_ROUTE_PERMFAIL);
	test_assert_str(route->enhanced, "5.1.10");
	mx_route_free(&route);

	/* Implicit MX: no MX records, the domain's address. */
	mx->status = DNS_NODATA;
	dns_result_free(&a[0]);
	a[0] = mk_addr(DNS_TYPE_A, DNS_FOUND, "10.77.0.12");
	{
		const char *self[] = { "b.test" };
		uint16_t zero[] = { 0 };

		route = mx_route_build("b.test", mx, 1, self, zero, a, aaaa);
		test_assert_int(route->status, MX_ROUTE_OK);
		test_assert(route->implicit);
		test_assert_int(route->count, 1);
		mx_route_free(&route);
	}
	for (int i = 0; i < 2; i++) {
		dns_result_free(&a[i]);
		dns_result_free(&aaaa[i]);
	}
	dns_result_free(&mx);
	test_end();
}

/* Live, in the e2e bed (see test_dns_live). */
struct live {
	struct event_base *base;
	struct mx_route *routes[3];
	unsigned int done;
};

static void
live_cb(struct mx_route *route, void *context)
{
	struct live *l = context;

	for (int i = 0; i < 3; i++) {
		if (l->routes[i] == NULL) {
			l->routes[i] = route;
			break;
		}
	}
	if (++l->done == 3)
		event_base_loopbreak(l->base);
}

static void
test_mx_route_live(void)
{
	const char *server = getenv("TEGAMI_TEST_DNS_SERVER");
	const char *domain = getenv("TEGAMI_TEST_DNS_MX_DOMAIN");
	const char *host = getenv("TEGAMI_TEST_DNS_MX_HOST");
	const char *addr = getenv("TEGAMI_TEST_DNS_MX_ADDR");
	struct dns_config config = { 0 };
	struct live l = { 0 };
	struct dns_resolver *r;
	char *error = NULL, *missing;
	const char *err;
	struct timeval limit = { 20, 0 };

	if (server == NULL || domain == NULL || host == NULL || addr == NULL) {
		printf("skip mx route live (TEGAMI_TEST_DNS_* not set)\n");
		return;
	}
	if (strcmp(server, "resolv.conf") != 0) {
		config.servers = &server;
		config.server_count = 1;
	}
	test_begin("mx route live: MX, implicit MX, NXDOMAIN");
	l.base = event_base_new();
	r = dns_resolver_create(l.base, &config, &error);
	test_assert(r != NULL);
	missing = xasprintf("no-such-domain.%s", domain);
	if (r != NULL) {
		test_assert_int(mx_route_lookup(r, domain, live_cb, &l, &err), 0);
		test_assert_int(mx_route_lookup(r, host, live_cb, &l, &err), 0);
		test_assert_int(mx_route_lookup(r, missing, live_cb, &l, &err), 0);
		event_base_loopexit(l.base, &limit);
		event_base_dispatch(l.base);
		test_assert_int(l.done, 3);
		for (unsigned int i = 0; i < l.done; i++) {
			struct mx_route *route = l.routes[i];
			char text[64] = "";

			if (route->count > 0)
				inet_ntop(AF_INET, &route->targets[0].addr.u.v4,
				    text, sizeof(text));
			if (strcmp(route->domain, domain) == 0) {
				test_assert_int(route->status, MX_ROUTE_OK);
				test_assert(!route->implicit);
				test_assert_str(text, addr);
				test_assert_str(route->targets[0].host, host);
			} else if (strcmp(route->domain, host) == 0) {
				test_assert_int(route->status, MX_ROUTE_OK);
				test_assert(route->implicit);
				test_assert_str(text, addr);
			} else {
				test_assert_int(route->status, MX_ROUTE_PERMFAIL);
				test_assert_str(route->enhanced, "5.1.2");
			}
			mx_route_free(&l.routes[i]);
		}
		dns_resolver_destroy(&r);
	} else {
		free(error);
	}
	free(missing);
	event_base_free(l.base);
	test_end();
}

TEST(test_mx_route_hosts);
TEST(test_mx_route_build);
TEST(test_mx_route_live);
