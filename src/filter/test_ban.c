#include "filter/ban.h"
#include "lib/file.h"
#include "lib/test.h"

#include <pthread.h>
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
	/* IPv6: counted per /64; IPv4-mapped counts as IPv4 */
	for (int i = 0; i < 5; i++) {
		char ip[64];

		snprintf(ip, sizeof(ip), "2001:db8:1:2::%x", i + 1);
		test_assert(ban_record_failure(b, ip, t + i) == 0);
	}
	test_assert(ban_record_failure(b, "2001:db8:1:2:ffff::9", t + 10) == 1);
	test_assert(ban_is_banned(b, "2001:db8:1:2:abcd::1", t + 11, NULL));
	test_assert(!ban_is_banned(b, "2001:db8:1:3::1", t + 11, NULL));
	for (int i = 0; i < 6; i++)
		ban_record_failure(b, "::ffff:203.0.113.5", t + i);
	test_assert(ban_is_banned(b, "203.0.113.5", t + 7, NULL));
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
	char path[512], *err = NULL;
	time_t t = 1700000000;
	struct ban_entry list[4];

	test_begin("ban: ban/unban by hand, list, kept across a restart");
	snprintf(path, sizeof(path), "%s/bans.db", test_tmpdir());
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
	test_assert(!ban_is_banned(b, "192.0.2.50", t + 3, NULL));
	ban_close(&b);

	/* restart after the short ban ended: the long ones are back */
	test_assert(ban_open(path, &set, t + 100, &b, &err) == 0);
	test_assert(ban_is_banned(b, "203.0.113.9", t + 100, NULL));
	test_assert(ban_is_banned(b, "2001:db8::77", t + 100, NULL));
	test_assert(!ban_is_banned(b, "203.0.113.10", t + 100, NULL));
	test_assert(!ban_is_banned(b, "192.0.2.50", t + 100, NULL));
	test_assert(ban_list(b, t + 100, list, 4) == 2);
	test_assert(strcmp(list[0].ip, "2001:db8::/64") == 0 ||
	    strcmp(list[1].ip, "2001:db8::/64") == 0);
	ban_close(&b);
	test_end();
}
TEST(test_ban_manual_and_persist)

/* Two processes (two connections to one file) share one budget. */
static void
test_ban_shared_between_processes(void)
{
	struct ban *smtp, *imap;
	char path[512], *err = NULL;
	time_t t = 1700000000;

	test_begin("ban: failures from two processes add up; refresh sees bans");
	snprintf(path, sizeof(path), "%s/shared.db", test_tmpdir());
	test_assert(ban_open(path, NULL, t, &smtp, &err) == 0);
	test_assert(ban_open(path, NULL, t, &imap, &err) == 0);
	test_assert(ban_refresh(imap, t, &err) == 0);	/* nothing changed */
	for (int i = 0; i < 3; i++) {
		test_assert(ban_record_failure(smtp, "192.0.2.77", t + i) == 0);
		test_assert(i == 2 || ban_record_failure(imap, "192.0.2.77",
		    t + i) == 0);
	}
	/* 5 so far: the sixth, from the imap side, bans */
	test_assert(ban_record_failure(imap, "192.0.2.77", t + 5) == 1);
	test_assert(ban_is_banned(imap, "192.0.2.77", t + 6, NULL));
	test_assert(!ban_is_banned(smtp, "192.0.2.77", t + 6, NULL));
	test_assert(ban_refresh(smtp, t + 6, &err) == 1);
	test_assert(ban_is_banned(smtp, "192.0.2.77", t + 6, NULL));
	/* a failure counted on the other side of an existing ban: no new ban */
	test_assert(ban_record_failure(smtp, "192.0.2.77", t + 7) == 0);
	/* an unban by a third (the CLI) reaches both */
	{
		struct ban *cli;

		test_assert(ban_open(path, NULL, t + 8, &cli, &err) == 0);
		test_assert(ban_remove(cli, "192.0.2.77", t + 8, &err) == 1);
		test_assert(ban_add(cli, "198.51.100.1", t + 8, 0, &err) == 0);
		ban_close(&cli);
	}
	test_assert(ban_refresh(smtp, t + 9, &err) == 1);
	test_assert(ban_refresh(imap, t + 9, &err) == 1);
	test_assert(!ban_is_banned(smtp, "192.0.2.77", t + 9, NULL));
	test_assert(!ban_is_banned(imap, "192.0.2.77", t + 9, NULL));
	test_assert(ban_is_banned(imap, "198.51.100.1", t + 9, NULL));
	/* the unban forgot the failures: one more does not ban again */
	test_assert(ban_record_failure(imap, "192.0.2.77", t + 10) == 0);
	ban_close(&smtp);
	ban_close(&imap);
	test_end();
}
TEST(test_ban_shared_between_processes)

struct hammer {
	const char *path;
	int bans;
	int errors;
};

static void *
hammer_run(void *arg)
{
	struct hammer *h = arg;
	struct ban *b;
	char *err = NULL;
	time_t t = 1700000000;

	if (ban_open(h->path, NULL, t, &b, &err) < 0) {
		h->errors++;
		fprintf(stderr, "     ban_open: %s\n", err);
		free(err);
		return NULL;
	}
	for (int i = 0; i < 30; i++) {
		int r = ban_record_failure(b, "192.0.2.200", t + i);

		if (r == 1)
			h->bans++;
		else if (r < 0)
			h->errors++;
	}
	ban_close(&b);
	return NULL;
}

static void
test_ban_concurrent_writers(void)
{
	char path[512];
	struct hammer h[4];
	pthread_t th[4];
	int bans = 0, errors = 0;

	test_begin("ban: concurrent writers on one file ban exactly once");
	snprintf(path, sizeof(path), "%s/race.db", test_tmpdir());
	for (int i = 0; i < 4; i++) {
		h[i].path = path;
		h[i].bans = h[i].errors = 0;
		pthread_create(&th[i], NULL, hammer_run, &h[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		bans += h[i].bans;
		errors += h[i].errors;
	}
	test_assert_int(errors, 0);
	test_assert_int(bans, 1);
	test_end();
}
TEST(test_ban_concurrent_writers)

static void
test_ban_bounded(void)
{
	struct ban_settings set = ban_default_settings;
	struct ban *b;
	char *err = NULL, ip[32];
	time_t t = 1700000000;

	test_begin("ban: the clients on file stay bounded, bans are kept");
	set.max_tracked = 100;
	set.maxretry = 3;
	test_assert(ban_open(NULL, &set, t, &b, &err) == 0);
	for (int i = 0; i < 3; i++)
		ban_record_failure(b, "192.0.2.99", t + i);
	test_assert(ban_is_banned(b, "192.0.2.99", t + 3, NULL));
	for (int i = 0; i < 2000; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.%d", i >> 16 & 255, i >> 8 & 255,
		    i & 255);
		ban_record_failure(b, ip, t + 10 + i);
		/* 100 clients with failures, and the one ban */
		test_assert(ban_tracked(b, t + 10 + i) <= 101);
	}
	test_assert(ban_is_banned(b, "192.0.2.99", t + 3000, NULL));
	/* the newest are still counted: two more failures ban */
	test_assert(ban_record_failure(b, "10.0.7.207", t + 3001) == 0);
	test_assert(ban_record_failure(b, "10.0.7.207", t + 3002) == 1);
	ban_close(&b);
	test_end();
}
TEST(test_ban_bounded)
