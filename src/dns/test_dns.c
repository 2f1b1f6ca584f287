#include "dns/dns.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <event2/event.h>

#include "lib/test.h"
#include "lib/xalloc.h"

/* Rdata literals: C strings with embedded bytes; length given explicitly. */
#define RD(s) (s), (sizeof(s) - 1)

static void
test_dns_parse_name(void)
{
	static const struct {
		const char *wire;
		size_t len;
		const char *want;	/* NULL = must fail */
	} cases[] = {
		{ RD("\x02mx\x01" "b\x04test\x00"), "mx.b.test" },
		{ RD("\x00"), "" },
		{ RD("\x03" "a.b\x00"), "a\\.b" },
		{ RD("\x02" "a\x01\x00"), "a\\001" },
		{ RD("\x02" "a\\\x00"), "a\\\\" },
		{ RD("\x03" "A-z\x00"), "A-z" },
		/* compression pointer */
		{ RD("\x02mx\xc0\x0c"), NULL },
		/* label runs past the end */
		{ RD("\x05" "ab"), NULL },
		/* no terminating root label */
		{ RD("\x02mx"), NULL },
		/* trailing garbage */
		{ RD("\x02mx\x00x"), NULL },
		/* empty rdata */
		{ RD(""), NULL },
	};

	test_begin("dns parse name");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *name = NULL;
		int ret = dns_parse_name(cases[i].wire, cases[i].len, &name);

		if (cases[i].want == NULL) {
			test_assert_int(ret, -1);
		} else {
			test_assert_int(ret, 0);
			test_assert_str(name, cases[i].want);
		}
		free(name);
	}
	test_end();
}

static void
test_dns_parse_name_limits(void)
{
	unsigned char wire[300];
	size_t pos = 0;
	char *name = NULL;

	test_begin("dns parse name limits");
	/* A 64-byte label is not allowed. */
	wire[0] = 64;
	memset(wire + 1, 'a', 64);
	wire[65] = 0;
	test_assert_int(dns_parse_name(wire, 66, &name), -1);
	/* 4 labels of 63 = 4 * 64 + 1 = 257 > 255 bytes. */
	for (int l = 0; l < 4; l++) {
		wire[pos++] = 63;
		memset(wire + pos, 'a', 63);
		pos += 63;
	}
	wire[pos++] = 0;
	test_assert_int(dns_parse_name(wire, pos, &name), -1);
	/* 3 labels of 63 + one of 61: exactly 255. */
	wire[3 * 64] = 61;
	wire[3 * 64 + 1 + 61] = 0;
	test_assert_int(dns_parse_name(wire, 3 * 64 + 1 + 61 + 1, &name), 0);
	test_assert_int(strlen(name), 63 * 3 + 61 + 3);
	free(name);
	test_end();
}

static void
test_dns_parse_mx(void)
{
	struct dns_mx mx;

	test_begin("dns parse mx");
	test_assert_int(dns_parse_mx(RD("\x00\x0a\x02mx\x01" "b\x04test\x00"), &mx), 0);
	test_assert_int(mx.preference, 10);
	test_assert_str(mx.host, "mx.b.test");
	free(mx.host);
	/* Null MX (RFC 7505): preference 0, root. */
	test_assert_int(dns_parse_mx(RD("\x00\x00\x00"), &mx), 0);
	test_assert_int(mx.preference, 0);
	test_assert_str(mx.host, "");
	free(mx.host);
	test_assert_int(dns_parse_mx(RD("\x00"), &mx), -1);
	test_assert_int(dns_parse_mx(RD("\x00\x0a"), &mx), -1);
	test_assert_int(dns_parse_mx(RD("\x00\x0a\x02mx"), &mx), -1);
	test_end();
}

static void
test_dns_parse_txt(void)
{
	struct dns_txt txt;

	test_begin("dns parse txt");
	/* Strings of one record are joined with nothing in between. */
	test_assert_int(dns_parse_txt(RD("\x06v=spf1\x05 -all"), &txt), 0);
	test_assert_str(txt.data, "v=spf1 -all");
	test_assert_int(txt.len, 11);
	free(txt.data);
	test_assert_int(dns_parse_txt(RD("\x07v=DKIM1\x03; p\x01="), &txt), 0);
	test_assert_str(txt.data, "v=DKIM1; p=");
	free(txt.data);
	/* An empty character-string is allowed. */
	test_assert_int(dns_parse_txt(RD("\x00"), &txt), 0);
	test_assert_int(txt.len, 0);
	test_assert_str(txt.data, "");
	free(txt.data);
	/* NUL bytes are kept, counted by len. */
	test_assert_int(dns_parse_txt(RD("\x03" "a\x00" "b"), &txt), 0);
	test_assert_int(txt.len, 3);
	free(txt.data);
	test_assert_int(dns_parse_txt(RD("\x05" "abc"), &txt), -1);
	test_assert_int(dns_parse_txt(RD(""), &txt), -1);
	test_end();
}

static void
test_dns_parse_addr(void)
{
	struct dns_addr a;
	char text[INET6_ADDRSTRLEN];

	test_begin("dns parse a/aaaa");
	test_assert_int(dns_parse_a(RD("\x0a\x4d\x00\x0c"), &a), 0);
	test_assert_int(a.family, AF_INET);
	inet_ntop(AF_INET, &a.u.v4, text, sizeof(text));
	test_assert_str(text, "10.77.0.12");
	test_assert_int(dns_parse_a(RD("\x0a\x4d\x00"), &a), -1);
	test_assert_int(dns_parse_a(RD("\x0a\x4d\x00\x0c\x00"), &a), -1);
	test_assert_int(dns_parse_aaaa(RD("\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01"), &a), 0);
	test_assert_int(a.family, AF_INET6);
	inet_ntop(AF_INET6, &a.u.v6, text, sizeof(text));
	test_assert_str(text, "2001:db8::1");
	test_assert_int(dns_parse_aaaa(RD("\x0a\x4d\x00\x0c"), &a), -1);
	test_end();
}

static void
test_dns_result_fill(void)
{
	char *rdata[] = {
		(char *)"\x00\x14\x03mx2\x01" "b\x04test\x00",
		(char *)"\x00\x0a\x03mx1\x01" "b\x04test\x00",
		(char *)"\x00\x14\x03mx3\x01" "b\x04test\x00",
		NULL,
	};
	int lens[] = { 14, 14, 14 };
	struct dns_result *res = xcalloc(1, sizeof(*res));

	test_begin("dns result fill: mx sorted, stable; malformed = tempfail");
	res->type = DNS_TYPE_MX;
	res->status = DNS_FOUND;
	test_assert_int(dns_result_fill(res, rdata, lens, 3), 0);
	test_assert_int(res->count, 3);
	test_assert_str(res->mx[0].host, "mx1.b.test");
	test_assert_str(res->mx[1].host, "mx2.b.test");
	test_assert_str(res->mx[2].host, "mx3.b.test");
	/* One bad record spoils the answer: we cannot trust the rest. */
	lens[2] = 5;
	test_assert_int(dns_result_fill(res, rdata, lens, 3), -1);
	test_assert_int(res->status, DNS_TEMPFAIL);
	test_assert_int(res->count, 0);
	test_assert(res->error != NULL);
	dns_result_free(&res);
	test_assert(res == NULL);
	test_end();
}

static void
test_dns_ptr_name(void)
{
	struct dns_addr a = { .family = AF_INET };
	char name[80];

	test_begin("dns ptr name");
	inet_pton(AF_INET, "10.77.0.12", &a.u.v4);
	dns_ptr_name(&a, name, sizeof(name));
	test_assert_str(name, "12.0.77.10.in-addr.arpa");
	a.family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::567:89ab", &a.u.v6);
	dns_ptr_name(&a, name, sizeof(name));
	test_assert_str(name,
	    "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
	test_end();
}

static void
test_dns_bad_config(void)
{
	const char *servers[] = { "not-an-address" };
	struct dns_config config = { .servers = servers, .server_count = 1 };
	char *error = NULL;
	struct dns_resolver *r;

	test_begin("dns resolver: bad address is an error at creation");
	r = dns_resolver_create(NULL, &config, &error);
	test_assert(r == NULL);
	test_assert(error != NULL && strstr(error, "not-an-address") != NULL);
	free(error);
	test_end();

	test_begin("dns resolver: a trust anchor file that is not there is an error");
	{
		const char *ok[] = { "127.0.0.1" };
		struct dns_config c2 = { .servers = ok, .server_count = 1,
		    .trust_anchor_file = "/nonexistent/root.key" };

		error = NULL;
		r = dns_resolver_create(NULL, &c2, &error);
		test_assert(r == NULL);
		test_assert(error != NULL &&
		    strstr(error, "/nonexistent/root.key") != NULL);
		free(error);
	}
	test_end();
}

/*
 * Against a real DNS server: only when TEGAMI_TEST_DNS_SERVER is set (the
 * e2e bed runs this test inside a network namespace with nsd). The other
 * variables say what that server holds.
 */
struct live_state {
	struct event_base *base;
	struct dns_result *results[4];
	unsigned int done;
};

static void
live_cb(struct dns_result *res, void *context)
{
	struct live_state *st = context;

	st->results[st->done++] = res;
	if (st->done == 4)
		event_base_loopbreak(st->base);
}

static void
check_mx(struct dns_result *res, const char *host)
{
	test_assert_int(res->status, DNS_FOUND);
	test_assert(res->count >= 1);
	if (res->count >= 1)
		test_assert_str(res->mx[0].host, host);
}

static void
test_dns_live(void)
{
	const char *server = getenv("TEGAMI_TEST_DNS_SERVER");
	const char *domain = getenv("TEGAMI_TEST_DNS_MX_DOMAIN");
	const char *host = getenv("TEGAMI_TEST_DNS_MX_HOST");
	const char *addr = getenv("TEGAMI_TEST_DNS_MX_ADDR");
	const char *txt_name = getenv("TEGAMI_TEST_DNS_TXT_NAME");
	const char *txt_value = getenv("TEGAMI_TEST_DNS_TXT_VALUE");
	struct dns_config config = { 0 };
	struct live_state st = { 0 };
	struct dns_resolver *r;
	struct dns_result *res;
	char *error = NULL, *missing;
	const char *err;
	char text[INET6_ADDRSTRLEN];

	if (server == NULL || domain == NULL || host == NULL || addr == NULL ||
	    txt_name == NULL || txt_value == NULL) {
		printf("skip dns live (TEGAMI_TEST_DNS_* not set)\n");
		return;
	}
	/* "resolv.conf" = use the system configuration (netns bind mount). */
	if (strcmp(server, "resolv.conf") != 0) {
		config.servers = &server;
		config.server_count = 1;
	}
	test_begin("dns live: sync MX, A, TXT, NXDOMAIN, NODATA, PTR");
	r = dns_resolver_create(NULL, &config, &error);
	test_assert(r != NULL);
	if (r == NULL) {
		printf("     %s\n", error);
		free(error);
		test_end();
		return;
	}
	res = dns_lookup_sync(r, domain, DNS_TYPE_MX);
	check_mx(res, host);
	dns_result_free(&res);
	res = dns_lookup_sync(r, host, DNS_TYPE_A);
	test_assert_int(res->status, DNS_FOUND);
	if (res->count > 0) {
		inet_ntop(AF_INET, &res->addrs[0].u.v4, text, sizeof(text));
		test_assert_str(text, addr);
	}
	dns_result_free(&res);
	res = dns_lookup_sync(r, txt_name, DNS_TYPE_TXT);
	test_assert_int(res->status, DNS_FOUND);
	test_assert(res->count == 1 && strcmp(res->txt[0].data, txt_value) == 0);
	dns_result_free(&res);
	missing = xasprintf("no-such-name.%s", domain);
	res = dns_lookup_sync(r, missing, DNS_TYPE_A);
	test_assert_int(res->status, DNS_NXDOMAIN);
	dns_result_free(&res);
	res = dns_lookup_sync(r, host, DNS_TYPE_MX);
	test_assert_int(res->status, DNS_NODATA);
	dns_result_free(&res);
	{
		struct dns_addr a = { .family = AF_INET };
		char ptr[80];

		inet_pton(AF_INET, addr, &a.u.v4);
		dns_ptr_name(&a, ptr, sizeof(ptr));
		res = dns_lookup_sync(r, ptr, DNS_TYPE_PTR);
		test_assert_int(res->status, DNS_FOUND);
		test_assert(res->count == 1 && strcmp(res->names[0], host) == 0);
		dns_result_free(&res);
	}
	dns_resolver_destroy(&r);
	test_end();

	test_begin("dns live: async on a libevent loop");
	st.base = event_base_new();
	r = dns_resolver_create(st.base, &config, &error);
	test_assert(r != NULL);
	if (r != NULL) {
		test_assert(dns_lookup(r, domain, DNS_TYPE_MX, live_cb, &st, &err) > 0);
		test_assert(dns_lookup(r, missing, DNS_TYPE_MX, live_cb, &st, &err) > 0);
		test_assert(dns_lookup(r, host, DNS_TYPE_AAAA, live_cb, &st, &err) > 0);
		test_assert(dns_lookup(r, txt_name, DNS_TYPE_TXT, live_cb, &st, &err) > 0);
		/* A cancelled lookup never calls back. */
		int id = dns_lookup(r, host, DNS_TYPE_A, live_cb, &st, &err);
		dns_lookup_cancel(r, id);
		test_assert_int(dns_pending(r), 4);
		struct timeval limit = { 20, 0 };

		event_base_loopexit(st.base, &limit);
		event_base_dispatch(st.base);
		test_assert_int(st.done, 4);
		test_assert_int(dns_pending(r), 0);
		for (unsigned int i = 0; i < st.done; i++) {
			res = st.results[i];
			if (strcmp(res->name, domain) == 0)
				check_mx(res, host);
			else if (strcmp(res->name, missing) == 0)
				test_assert_int(res->status, DNS_NXDOMAIN);
			else if (res->type == DNS_TYPE_AAAA)
				test_assert_int(res->status, DNS_NODATA);
			else
				test_assert(res->status == DNS_FOUND && res->count == 1 &&
				    strcmp(res->txt[0].data, txt_value) == 0);
			dns_result_free(&st.results[i]);
		}
		dns_resolver_destroy(&r);
	} else {
		free(error);
	}
	event_base_free(st.base);
	free(missing);
	test_end();
}

TEST(test_dns_parse_name);
TEST(test_dns_parse_name_limits);
TEST(test_dns_parse_mx);
TEST(test_dns_parse_txt);
TEST(test_dns_parse_addr);
TEST(test_dns_result_fill);
TEST(test_dns_ptr_name);
TEST(test_dns_bad_config);
TEST(test_dns_live);
