#include "filter/ban.h"
#include "lib/file.h"
#include "lib/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
test_ban_failures(void)
{
	struct ban *b;
	char *err = NULL;
	time_t t = 1700000000, until;

	test_begin("ban: maxretry failures within findtime ban for bantime");
	test_assert(ban_open(NULL, NULL, t, &b, &err) == 0);
	for (int i = 0; i < 5; i++)
		test_assert(ban_record_failure(b, "192.0.2.1", t + i * 60) == 0);
	test_assert(!ban_is_banned(b, "192.0.2.1", t + 300, NULL));
	test_assert(ban_record_failure(b, "192.0.2.1", t + 360) == 1);
	test_assert(ban_is_banned(b, "192.0.2.1", t + 361, &until));
	test_assert(until == t + 360 + 604800);
	/* further failures while banned change nothing */
	test_assert(ban_record_failure(b, "192.0.2.1", t + 400) == 0);
	/* a neighbour is not touched; the ban ends */
	test_assert(!ban_is_banned(b, "192.0.2.2", t + 400, NULL));
	test_assert(!ban_is_banned(b, "192.0.2.1", until, NULL));
	/* failures spread wider than findtime never ban */
	for (int i = 0; i < 20; i++)
		test_assert(ban_record_failure(b, "198.51.100.7",
		    t + (time_t)i * 200000) == 0);
	/* IPv6: counted per /64 */
	for (int i = 0; i < 5; i++) {
		char ip[64];

		snprintf(ip, sizeof(ip), "2001:db8:1:2::%x", i + 1);
		test_assert(ban_record_failure(b, ip, t + i) == 0);
	}
	test_assert(ban_record_failure(b, "2001:db8:1:2:ffff::9", t + 10) == 1);
	test_assert(ban_is_banned(b, "2001:db8:1:2:abcd::1", t + 11, NULL));
	test_assert(!ban_is_banned(b, "2001:db8:1:3::1", t + 11, NULL));
	test_assert(ban_record_failure(b, "not-an-ip", t) == -1);
	ban_close(&b);
	test_end();
}
TEST(test_ban_failures)

static void
test_ban_manual_and_persist(void)
{
	struct ban_settings set = ban_default_settings;
	struct ban *b;
	char path[512], *err = NULL, *data;
	size_t len;
	time_t t = 1700000000;
	struct ban_entry list[4];
	const char *saved = "203.0.113.9 1800000000\n"
	    "2001:db8::/64 1800000000\n203.0.113.10 1700000060\ngarbage\n";

	test_begin("ban: ban/unban by hand, list, kept across a restart");
	snprintf(path, sizeof(path), "%s/bans", test_tmpdir());
	set.maxretry = 2;
	test_assert(ban_open(path, &set, t, &b, &err) == 0);
	test_assert(ban_add(b, "203.0.113.9", t, 0, &err) == 0);
	test_assert(ban_add(b, "203.0.113.10", t, 60, &err) == 0);
	test_assert(ban_add(b, "2001:db8::5", t, 0, &err) == 0);
	test_assert(ban_add(b, "bogus", t, 0, &err) == -1);
	free(err);
	err = NULL;
	test_assert(ban_record_failure(b, "192.0.2.50", t) == 0);
	test_assert(ban_record_failure(b, "192.0.2.50", t + 1) == 1);
	test_assert(ban_list(b, t + 2, list, 4) == 4);
	test_assert(ban_list(b, t + 61, list, 4) == 3);
	test_assert(ban_remove(b, "192.0.2.50", t + 2, &err) == 1);
	test_assert(ban_remove(b, "192.0.2.50", t + 2, &err) == 0);
	test_assert(file_read_all(path, 1 << 20, &data, &len) == 0);
	test_assert(strstr(data, "203.0.113.9 ") != NULL);
	test_assert(strstr(data, "2001:db8::/64 ") != NULL);
	test_assert(strstr(data, "192.0.2.50") == NULL);
	free(data);
	ban_close(&b);

	/* restart after the short ban ended: the long ones are back */
	test_assert(file_write_atomic(path, saved, strlen(saved), 0600) == 0);
	test_assert(ban_open(path, &set, t + 100, &b, &err) == 0);
	test_assert(ban_is_banned(b, "203.0.113.9", t + 100, NULL));
	test_assert(ban_is_banned(b, "2001:db8::77", t + 100, NULL));
	test_assert(!ban_is_banned(b, "203.0.113.10", t + 100, NULL));
	test_assert(ban_list(b, t + 100, list, 4) == 2);
	ban_close(&b);
	test_end();
}
TEST(test_ban_manual_and_persist)

static void
test_ban_bounded(void)
{
	struct ban_settings set = ban_default_settings;
	struct ban *b;
	char *err = NULL, ip[32];
	time_t t = 1700000000;

	test_begin("ban: the table of clients stays bounded, bans are kept");
	set.max_tracked = 100;
	set.maxretry = 3;
	test_assert(ban_open(NULL, &set, t, &b, &err) == 0);
	for (int i = 0; i < 3; i++)
		ban_record_failure(b, "192.0.2.99", t + i);
	test_assert(ban_is_banned(b, "192.0.2.99", t + 3, NULL));
	for (int i = 0; i < 5000; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16 & 255, i >> 8 & 255,
		    i & 255);
		ban_record_failure(b, ip, t + 10 + i);
		test_assert(ban_tracked(b) <= 100);
	}
	test_assert(ban_is_banned(b, "192.0.2.99", t + 6000, NULL));
	ban_close(&b);
	test_end();
}
TEST(test_ban_bounded)
