#include "mail/address.h"
#include "lib/test.h"
#include "lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N ADDRESS_ALLOW_NULL
#define U ADDRESS_ALLOW_UTF8
#define P ADDRESS_ALLOW_POSTMASTER

static const struct {
	const char *in;
	unsigned int flags;
	const char *local;	/* NULL = must fail */
	const char *domain;
	size_t consumed;	/* 0 = whole input */
} path_tests[] = {
	{ "<user@example.org>", 0, "user", "example.org", 0 },
	{ "<User.Name@Example.ORG>", 0, "User.Name", "example.org", 0 },
	{ "<user@example.org> SIZE=10", 0, "user", "example.org", 18 },
	{ "<>", N, "", "", 0 },
	{ "<>", 0, NULL, NULL, 0 },
	{ "<@a.example,@b.example:user@c.example>", 0, "user", "c.example", 0 },
	{ "<@a.example:user@c.example>", 0, "user", "c.example", 0 },
	{ "<@:user@c.example>", 0, NULL, NULL, 0 },
	{ "<@a.example user@c.example>", 0, NULL, NULL, 0 },
	{ "<\"john doe\"@example.org>", 0, "\"john doe\"", "example.org", 0 },
	{ "<\"john\"@example.org>", 0, "john", "example.org", 0 },
	{ "<\"a\\\"b\"@example.org>", 0, "\"a\\\"b\"", "example.org", 0 },
	{ "<\"unterminated@example.org>", 0, NULL, NULL, 0 },
	{ "<a+tag@example.org>", 0, "a+tag", "example.org", 0 },
	{ "<!#$%&'*+-/=?^_`{|}~@example.org>", 0, "!#$%&'*+-/=?^_`{|}~", "example.org", 0 },
	{ "<user@[192.0.2.1]>", 0, "user", "[192.0.2.1]", 0 },
	{ "<user@[IPv6:2001:db8::1]>", 0, "user", "[ipv6:2001:db8::1]", 0 },
	{ "<user@[192.0.2.300]>", 0, NULL, NULL, 0 },
	{ "<user@[IPv6:zz]>", 0, NULL, NULL, 0 },
	{ "<user@[]>", 0, NULL, NULL, 0 },
	{ "<user@[x:y]>", 0, NULL, NULL, 0 },
	{ "<Postmaster>", P, "Postmaster", "", 0 },
	{ "<Postmaster>", 0, NULL, NULL, 0 },
	{ "<postmaster@example.org>", P, "postmaster", "example.org", 0 },
	{ "user@example.org", 0, NULL, NULL, 0 },
	{ "<user@example.org", 0, NULL, NULL, 0 },
	{ "<user>", 0, NULL, NULL, 0 },
	{ "<@example.org>", 0, NULL, NULL, 0 },
	{ "<.user@example.org>", 0, NULL, NULL, 0 },
	{ "<user.@example.org>", 0, NULL, NULL, 0 },
	{ "<us..er@example.org>", 0, NULL, NULL, 0 },
	{ "<user@-example.org>", 0, NULL, NULL, 0 },
	{ "<user@example-.org>", 0, NULL, NULL, 0 },
	{ "<user@exa-mple.org>", 0, "user", "exa-mple.org", 0 },
	{ "<user@example..org>", 0, NULL, NULL, 0 },
	{ "<user@example.org.>", 0, NULL, NULL, 0 },
	{ "<user@.example.org>", 0, NULL, NULL, 0 },
	{ "<user@exa_mple.org>", 0, NULL, NULL, 0 },
	{ "<us er@example.org>", 0, NULL, NULL, 0 },
	{ "<user@example.org >", 0, NULL, NULL, 0 },
	{ "<user@localhost>", 0, "user", "localhost", 0 },
	{ "<\xc3\xa9t\xc3\xa9@exampl\xc3\xa9.org>", U, "\xc3\xa9t\xc3\xa9", "exampl\xc3\xa9.org", 0 },
	{ "<\xc3\xa9t\xc3\xa9@example.org>", 0, NULL, NULL, 0 },
	{ "<user@exampl\xc3\xa9.org>", 0, NULL, NULL, 0 },
	{ "<\xc3\x28@example.org>", U, NULL, NULL, 0 },
	{ "<\xff@example.org>", U, NULL, NULL, 0 },
	{ "<a\0b@example.org>", 0, NULL, NULL, 0 },
	{ "", 0, NULL, NULL, 0 },
	{ "<", 0, NULL, NULL, 0 },
};

static void
test_address_path_table(void)
{
	test_begin("address path table");
	for (size_t i = 0; i < sizeof(path_tests) / sizeof(path_tests[0]); i++) {
		struct address a;
		const char *error = NULL;
		size_t consumed = 0, len = strlen(path_tests[i].in);
		int r = address_parse_path(path_tests[i].in, len,
		    path_tests[i].flags, &a, &consumed, &error);

		if (path_tests[i].local == NULL) {
			if (r != -1)
				printf("     case %zu (%s) should fail\n", i, path_tests[i].in);
			test_assert(r == -1);
			test_assert(error != NULL);
			test_assert(a.local == NULL);
			continue;
		}
		if (r != 0)
			printf("     case %zu (%s) failed: %s\n", i, path_tests[i].in, error);
		test_assert(r == 0);
		if (r != 0)
			continue;
		test_assert_str(a.local, path_tests[i].local);
		test_assert_str(a.domain, path_tests[i].domain);
		test_assert_int(consumed, path_tests[i].consumed != 0 ?
		    path_tests[i].consumed : len);
		address_free(&a);
	}
	test_end();
}
TEST(test_address_path_table);

static void
test_address_limits(void)
{
	char path[600], local[80];
	struct address a;
	const char *error;
	size_t consumed;

	test_begin("address length limits");
	memset(local, 'a', 64);
	local[64] = '\0';
	snprintf(path, sizeof(path), "<%s@example.org>", local);
	test_assert(address_parse_path(path, strlen(path), 0, &a, &consumed, &error) == 0);
	address_free(&a);
	memset(local, 'a', 65);
	local[65] = '\0';
	snprintf(path, sizeof(path), "<%s@example.org>", local);
	test_assert(address_parse_path(path, strlen(path), 0, &a, &consumed, &error) == -1);

	/* label of 63 is fine, 64 is not */
	snprintf(path, sizeof(path), "<a@%063d.org>", 0);
	test_assert(address_parse_path(path, strlen(path), 0, &a, &consumed, &error) == 0);
	address_free(&a);
	snprintf(path, sizeof(path), "<a@%064d.org>", 0);
	test_assert(address_parse_path(path, strlen(path), 0, &a, &consumed, &error) == -1);

	/* a 251-octet domain fits in a 255-octet path; 255 makes the path 259 > 256 */
	snprintf(path, sizeof(path), "<a@%063d.%063d.%063d.%059d>", 0, 0, 0, 0);
	test_assert(address_parse_path(path, strlen(path), 0, &a, &consumed, &error) == 0);
	address_free(&a);
	snprintf(path, sizeof(path), "<a@%063d.%063d.%063d.%063d>", 0, 0, 0, 0);
	test_assert(address_parse_path(path, strlen(path), 0, &a, &consumed, &error) == -1);
	test_end();
}
TEST(test_address_limits);

static void
test_address_bytewise(void)
{
	const char *full = "<@r.example:\"x y\"@Example.org>";
	struct address a;
	const char *error;
	size_t consumed;

	/* every proper prefix must fail cleanly, the full path must parse */
	test_begin("address prefixes one byte at a time");
	for (size_t n = 0; n < strlen(full); n++) {
		char *p = xstrndup(full, n);	/* exact-size heap copy for ASan */

		test_assert(address_parse_path(p, n, 0, &a, &consumed, &error) == -1);
		free(p);
	}
	test_assert(address_parse_path(full, strlen(full), 0, &a, &consumed, &error) == 0);
	test_assert_str(a.local, "\"x y\"");
	test_assert_str(a.domain, "example.org");
	address_free(&a);
	test_end();
}
TEST(test_address_bytewise);

static void
test_address_helpers(void)
{
	struct address a, b;
	const char *error;
	char *base, *detail, *s;

	test_begin("address helpers");
	test_assert(address_parse("John.Doe+Lists@Example.ORG", 0, &a, &error) == 0);
	s = address_to_string(&a);
	test_assert_str(s, "John.Doe+Lists@example.org");
	free(s);
	address_copy(&b, &a);
	address_lower(&b);
	s = address_to_string(&b);
	test_assert_str(s, "john.doe+lists@example.org");
	free(s);
	test_assert(address_split_detail(b.local, '+', &base, &detail) == 1);
	test_assert_str(base, "john.doe");
	test_assert_str(detail, "lists");
	free(base);
	free(detail);
	test_assert(address_split_detail("+x", '+', &base, &detail) == 0);
	test_assert_str(base, "+x");
	test_assert(detail == NULL);
	free(base);
	test_assert(address_split_detail("plain", '+', &base, NULL) == 0);
	test_assert_str(base, "plain");
	free(base);
	address_free(&a);
	address_free(&b);
	test_assert(address_parse("a@b c", 0, &a, &error) == -1);
	test_end();
}
TEST(test_address_helpers);

static void
test_esmtp_params(void)
{
	struct esmtp_params p;
	const char *error;
	const char *s;

	test_begin("esmtp params");
	s = " SIZE=1000  BODY=8BITMIME SMTPUTF8";
	test_assert(esmtp_params_parse(s, strlen(s), 0, &p, &error) == 0);
	test_assert_int(p.count, 3);
	test_assert_str(esmtp_params_find(&p, "size")->value, "1000");
	test_assert_str(esmtp_params_find(&p, "Body")->value, "8BITMIME");
	test_assert(esmtp_params_find(&p, "SMTPUTF8")->value == NULL);
	test_assert(esmtp_params_find(&p, "AUTH") == NULL);
	esmtp_params_free(&p);
	test_assert(esmtp_params_parse("", 0, 0, &p, &error) == 0);
	test_assert_int(p.count, 0);
	s = "SIZE=";
	test_assert(esmtp_params_parse(s, strlen(s), 0, &p, &error) == -1);
	esmtp_params_free(&p);
	s = "-X=1";
	test_assert(esmtp_params_parse(s, strlen(s), 0, &p, &error) == -1);
	esmtp_params_free(&p);
	s = "A=1=2";
	test_assert(esmtp_params_parse(s, strlen(s), 0, &p, &error) == -1);
	esmtp_params_free(&p);
	s = "A=\x01";
	test_assert(esmtp_params_parse(s, strlen(s), 0, &p, &error) == -1);
	esmtp_params_free(&p);
	s = "A B C D E F G H I J K L M N O P Q";
	test_assert(esmtp_params_parse(s, strlen(s), 0, &p, &error) == -1);
	esmtp_params_free(&p);
	s = "AUTH=<>";
	test_assert(esmtp_params_parse(s, strlen(s), 0, &p, &error) == 0);
	test_assert_str(p.list[0].value, "<>");
	esmtp_params_free(&p);
	test_end();
}
TEST(test_esmtp_params);
