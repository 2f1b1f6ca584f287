#include "dns/cache.h"
#include "lib/test.h"
#include "lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct dns_result *
txt_result(const char *name, const char *text, size_t len, uint32_t ttl)
{
	struct dns_result *r = xcalloc(1, sizeof(*r));

	r->name = xstrdup(name);
	r->type = DNS_TYPE_TXT;
	r->status = DNS_FOUND;
	r->ttl = ttl;
	r->count = 1;
	r->txt = xcalloc(2, sizeof(*r->txt));
	r->txt[0].data = xmalloc(len + 1);
	memcpy(r->txt[0].data, text, len);
	r->txt[0].data[len] = '\0';
	r->txt[0].len = len;
	return r;
}

static struct dns_result *
status_result(const char *name, enum dns_type type, enum dns_status st,
    uint32_t ttl)
{
	struct dns_result *r = xcalloc(1, sizeof(*r));

	r->name = xstrdup(name);
	r->type = type;
	r->status = st;
	r->ttl = ttl;
	return r;
}

static void
test_dns_cache_ttl(void)
{
	struct dns_cache *c = dns_cache_create(0, 0);
	struct dns_result *r, *got;
	struct dns_cache_stats st;
	time_t t = 1700000000;

	test_begin("dns cache: answers for their TTL, then gone");
	r = txt_result("Example.ORG", "v=spf1 \0-all", 12, 300);
	dns_cache_put(c, r, t);
	got = dns_cache_get(c, "example.org", DNS_TYPE_TXT, t + 100);
	test_assert(got != NULL && got != r);
	test_assert(got != NULL && got->status == DNS_FOUND && got->count == 1 &&
	    got->txt[0].len == 12 && memcmp(got->txt[0].data, "v=spf1 \0-all",
	    12) == 0 && got->ttl == 200);
	dns_result_free(&got);
	/* another type of the same name is another answer */
	test_assert(dns_cache_get(c, "example.org", DNS_TYPE_A, t + 100) == NULL);
	test_assert(dns_cache_get(c, "example.org", DNS_TYPE_TXT, t + 300) == NULL);
	dns_cache_stats(c, &st);
	test_assert(st.hits == 1 && st.misses == 2 && st.entries == 0);
	dns_result_free(&r);
	test_end();

	test_begin("dns cache: negatives by their SOA TTL; no TTL, no TEMPFAIL");
	r = status_result("gone.example", DNS_TYPE_TXT, DNS_NXDOMAIN, 60);
	dns_cache_put(c, r, t);
	dns_result_free(&r);
	got = dns_cache_get(c, "GONE.example", DNS_TYPE_TXT, t + 59);
	test_assert(got != NULL && got->status == DNS_NXDOMAIN && got->count == 0);
	dns_result_free(&got);
	r = status_result("nosoa.example", DNS_TYPE_TXT, DNS_NODATA, 0);
	dns_cache_put(c, r, t);
	dns_result_free(&r);
	test_assert(dns_cache_get(c, "nosoa.example", DNS_TYPE_TXT, t) == NULL);
	r = status_result("broken.example", DNS_TYPE_TXT, DNS_TEMPFAIL, 300);
	dns_cache_put(c, r, t);
	dns_result_free(&r);
	test_assert(dns_cache_get(c, "broken.example", DNS_TYPE_TXT, t) == NULL);
	test_end();

	test_begin("dns cache: a long TTL is cut to max_ttl; a newer answer wins");
	dns_cache_destroy(&c);
	c = dns_cache_create(0, 600);
	r = txt_result("long.example", "one", 3, 86400);
	dns_cache_put(c, r, t);
	dns_result_free(&r);
	got = dns_cache_get(c, "long.example", DNS_TYPE_TXT, t + 599);
	test_assert(got != NULL && got->ttl == 1);
	dns_result_free(&got);
	test_assert(dns_cache_get(c, "long.example", DNS_TYPE_TXT, t + 600) == NULL);
	r = txt_result("two.example", "old", 3, 300);
	dns_cache_put(c, r, t);
	dns_result_free(&r);
	r = txt_result("two.example", "new", 3, 300);
	dns_cache_put(c, r, t + 1);
	dns_result_free(&r);
	got = dns_cache_get(c, "two.example", DNS_TYPE_TXT, t + 2);
	test_assert(got != NULL && strcmp(got->txt[0].data, "new") == 0);
	dns_result_free(&got);
	dns_cache_stats(c, &st);
	test_assert(st.entries == 1);
	dns_cache_destroy(&c);
	test_end();
}
TEST(test_dns_cache_ttl)

static void
test_dns_cache_bounded(void)
{
	struct dns_cache *c = dns_cache_create(64 * 1024, 0);
	struct dns_cache_stats st;
	time_t t = 1700000000;
	char name[64], *big;
	struct dns_result *r, *got;

	test_begin("dns cache: bounded by bytes, least recently used go first");
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof(name), "h%d.example", i);
		r = txt_result(name, "v=spf1 ip4:192.0.2.1 -all", 25, 300);
		dns_cache_put(c, r, t);
		dns_result_free(&r);
		/* keep h0 in use */
		got = dns_cache_get(c, "h0.example", DNS_TYPE_TXT, t);
		test_assert(got != NULL);
		dns_result_free(&got);
		dns_cache_stats(c, &st);
		test_assert(st.bytes <= 64 * 1024);
	}
	test_assert(st.entries > 100 && st.entries < 1000);
	test_assert(dns_cache_get(c, "h1.example", DNS_TYPE_TXT, t) == NULL);
	got = dns_cache_get(c, "h999.example", DNS_TYPE_TXT, t);
	test_assert(got != NULL);
	dns_result_free(&got);
	/* one answer too big for the cache is not kept, and evicts nothing */
	big = xcalloc(1, 40000);
	memset(big, 'a', 39999);
	r = txt_result("big.example", big, 39999, 300);
	dns_cache_put(c, r, t);
	dns_result_free(&r);
	free(big);
	test_assert(dns_cache_get(c, "big.example", DNS_TYPE_TXT, t) == NULL);
	got = dns_cache_get(c, "h999.example", DNS_TYPE_TXT, t);
	test_assert(got != NULL);
	dns_result_free(&got);
	dns_cache_destroy(&c);
	test_end();
}
TEST(test_dns_cache_bounded)

static void
test_dns_result_dup(void)
{
	struct dns_result r, *d;
	struct dns_mx mx[2] = { { 10, "mx1.example" }, { 20, "mx2.example" } };
	char *names[1] = { "ptr.example" };

	test_begin("dns result dup: every array copied");
	memset(&r, 0, sizeof(r));
	r.name = "example";
	r.type = DNS_TYPE_MX;
	r.status = DNS_FOUND;
	r.count = 2;
	r.mx = mx;
	d = dns_result_dup(&r);
	test_assert(d->mx != mx && d->mx[1].preference == 20 &&
	    strcmp(d->mx[1].host, "mx2.example") == 0 && d->mx[1].host != mx[1].host);
	dns_result_free(&d);
	memset(&r, 0, sizeof(r));
	r.name = "1.2.0.192.in-addr.arpa";
	r.type = DNS_TYPE_PTR;
	r.status = DNS_FOUND;
	r.count = 1;
	r.names = names;
	d = dns_result_dup(&r);
	test_assert(strcmp(d->names[0], "ptr.example") == 0 && d->names[0] != names[0]);
	dns_result_free(&d);
	test_end();
}
TEST(test_dns_result_dup)
