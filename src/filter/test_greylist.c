#include "filter/greylist.h"
#include "lib/file.h"
#include "lib/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct greylist *
open_gl(const struct greylist_settings *set, const char *dir)
{
	struct greylist *gl;
	char *err = NULL;

	if (greylist_open(dir, set, &gl, &err) < 0) {
		printf("     %s\n", err);
		free(err);
		return NULL;
	}
	return gl;
}

static enum greylist_verdict
check(struct greylist *gl, const char *ip, const char *sender, const char *rcpt,
    time_t now, unsigned int *wait_r)
{
	struct greylist_request req = { ip, NULL, sender, rcpt, now, NULL };
	enum greylist_verdict v = GREYLIST_PASS;
	char *err = NULL;

	if (greylist_check(gl, &req, &v, wait_r, &err) < 0) {
		printf("     %s\n", err);
		free(err);
		return (enum greylist_verdict)-1;
	}
	return v;
}

static void
test_greylist_keys(void)
{
	char k[128];

	test_begin("greylist: network and sender keys");
	test_assert(greylist_net_key("192.0.2.77", k, sizeof(k)) == 0);
	test_assert_str(k, "192.0.2.0/24");
	test_assert(greylist_net_key("::ffff:192.0.2.77", k, sizeof(k)) == 0);
	test_assert_str(k, "192.0.2.0/24");
	test_assert(greylist_net_key("2001:db8:1:2:3:4:5:6", k, sizeof(k)) == 0);
	test_assert_str(k, "2001:db8:1:2::/64");
	test_assert(greylist_net_key("nonsense", k, sizeof(k)) == -1);
	greylist_sender_key("Joe+List@Example.COM", k, sizeof(k));
	test_assert_str(k, "joe@example.com");
	greylist_sender_key("bounce-12345-678@lists.example.org", k, sizeof(k));
	test_assert_str(k, "bounce-#-#@lists.example.org");
	greylist_sender_key("user2000@example.org", k, sizeof(k));
	test_assert_str(k, "user2000@example.org");
	greylist_sender_key("", k, sizeof(k));
	test_assert_str(k, "<>");
	test_end();
}
TEST(test_greylist_keys)

static void
test_greylist_triplets(void)
{
	struct greylist_settings set = greylist_default_settings;
	struct greylist *gl;
	unsigned int wait;
	time_t t = 1700000000;
	char *err = NULL;

	test_begin("greylist: defer, retry too early, pass, expire");
	set.awl_clients = 0;
	gl = open_gl(&set, test_tmpdir());
	test_assert(gl != NULL);
	if (gl == NULL) {
		test_end();
		return;
	}
	test_assert(check(gl, "192.0.2.10", "a@x.example", "u@ours.example", t,
	    &wait) == GREYLIST_DEFER);
	test_assert(wait == 300);
	test_assert(check(gl, "192.0.2.10", "a@x.example", "u@ours.example", t + 100,
	    &wait) == GREYLIST_DEFER);
	test_assert(wait == 200);
	/* another host of the same /24 retries: same triplet */
	test_assert(check(gl, "192.0.2.11", "a+x@x.example", "U@ours.example",
	    t + 301, &wait) == GREYLIST_PASS);
	test_assert(wait == 0);
	test_assert(check(gl, "192.0.2.10", "a@x.example", "u@ours.example",
	    t + 86400, NULL) == GREYLIST_PASS);
	/* other network, other recipient: new triplets */
	test_assert(check(gl, "198.51.100.1", "a@x.example", "u@ours.example",
	    t + 86400, NULL) == GREYLIST_DEFER);
	test_assert(check(gl, "192.0.2.10", "a@x.example", "v@ours.example",
	    t + 86400, NULL) == GREYLIST_DEFER);
	test_assert(greylist_count(gl) == 3);
	/* unseen for longer than max_age: greylisted again */
	test_assert(check(gl, "192.0.2.10", "a@x.example", "u@ours.example",
	    t + 86400 + 36 * 86400, NULL) == GREYLIST_DEFER);
	test_assert(greylist_expire(gl, t + 86400 + 36 * 86400, &err) == 0);
	test_assert(greylist_count(gl) == 1);
	greylist_close(&gl);
	test_end();
}
TEST(test_greylist_triplets)

static void
test_greylist_awl(void)
{
	struct greylist *gl;
	time_t t = 1700000000;
	char rcpt[64];

	test_begin("greylist: a client is auto-whitelisted after 5 deliveries");
	gl = open_gl(NULL, test_tmpdir());
	test_assert(gl != NULL);
	if (gl == NULL) {
		test_end();
		return;
	}
	for (int i = 0; i < 5; i++) {
		time_t at = t + i * 7200;

		snprintf(rcpt, sizeof(rcpt), "user%d@ours.example", i);
		test_assert(check(gl, "203.0.113.5", "s@x.example", rcpt, at, NULL) ==
		    GREYLIST_DEFER);
		test_assert(check(gl, "203.0.113.5", "s@x.example", rcpt, at + 400,
		    NULL) == GREYLIST_PASS);
	}
	test_assert(check(gl, "203.0.113.9", "new@y.example", "other@ours.example",
	    t + 20 * 3600, NULL) == GREYLIST_WHITELISTED);
	/* passes within one hour count once */
	test_assert(check(gl, "198.51.100.5", "s@x.example", "a@ours.example", t,
	    NULL) == GREYLIST_DEFER);
	for (int i = 0; i < 10; i++)
		test_assert(check(gl, "198.51.100.5", "s@x.example", "a@ours.example",
		    t + 400 + i, NULL) == GREYLIST_PASS);
	test_assert(check(gl, "198.51.100.5", "s@x.example", "b@ours.example",
	    t + 500, NULL) == GREYLIST_DEFER);
	greylist_close(&gl);
	test_end();
}
TEST(test_greylist_awl)

static void
test_greylist_whitelists(void)
{
	const char *dir = test_tmpdir();
	char cpath[512], rpath[512], *err = NULL;
	struct greylist *gl;
	struct greylist_request req = { "192.0.2.1", NULL, "s@x.example",
	    "u@ours.example", 1700000000, NULL };
	enum greylist_verdict v;
	static const char clients[] =
	    "# Postgrey style\n"
	    "192.0.2.5\n"
	    "198.51.100.0/24\n"
	    "10.1.\n"
	    "2001:db8:aa::/48\n"
	    "mail.example.net\n"
	    "cafe.de\n"
	    "/^smtp[0-9]+\\.bigmail\\.example$/\n";
	static const char recipients[] =
	    "postmaster@\n"
	    "abuse@ours.example\n"
	    "open.example   # a whole domain\n"
	    "/^list-.*@ours\\.example$/\n";
	static const struct { const char *ip, *name, *rcpt; bool wl; } cases[] = {
		{ "192.0.2.5", NULL, "u@ours.example", true },
		{ "192.0.2.6", NULL, "u@ours.example", false },
		{ "198.51.100.200", NULL, "u@ours.example", true },
		{ "10.1.200.3", NULL, "u@ours.example", true },
		{ "10.2.0.1", NULL, "u@ours.example", false },
		{ "2001:db8:aa:1::1", NULL, "u@ours.example", true },
		{ "2001:db8:ab::1", NULL, "u@ours.example", false },
		{ "192.0.2.7", "mx1.mail.example.net", "u@ours.example", true },
		{ "192.0.2.7", "mail.example.net", "u@ours.example", true },
		{ "192.0.2.7", "evilmail.example.net", "u@ours.example", false },
		{ "192.0.2.7", "smtp12.bigmail.example", "u@ours.example", true },
		{ "192.0.2.7", "smtp.bigmail.example", "u@ours.example", false },
		{ "192.0.2.7", "www.cafe.de", "u@ours.example", true },
		{ "192.0.2.8", NULL, "postmaster@anything.example", true },
		{ "192.0.2.8", NULL, "Abuse@Ours.Example", true },
		{ "192.0.2.8", NULL, "abuse@other.example", false },
		{ "192.0.2.8", NULL, "x@sub.open.example", true },
		{ "192.0.2.8", NULL, "list-dev@ours.example", true },
		{ "192.0.2.8", NULL, "dev@ours.example", false },
	};

	test_begin("greylist: Postgrey whitelist files");
	snprintf(cpath, sizeof(cpath), "%s/whitelist_clients.local", dir);
	snprintf(rpath, sizeof(rpath), "%s/whitelist_recipients", dir);
	test_assert(file_write_atomic(cpath, clients, strlen(clients), 0644) == 0);
	test_assert(file_write_atomic(rpath, recipients, strlen(recipients), 0644) == 0);
	gl = open_gl(NULL, dir);
	test_assert(gl != NULL);
	if (gl == NULL) {
		test_end();
		return;
	}
	test_assert(greylist_load_whitelists(gl, cpath, rpath, &err) == 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		req.client_ip = cases[i].ip;
		req.client_name = cases[i].name;
		req.recipient = cases[i].rcpt;
		test_assert(greylist_check(gl, &req, &v, NULL, &err) == 0);
		if ((v == GREYLIST_WHITELISTED) != cases[i].wl)
			printf("     case %zu %s %s %s: %s\n", i, cases[i].ip,
			    cases[i].name ? cases[i].name : "-", cases[i].rcpt,
			    greylist_verdict_name(v));
		test_assert((v == GREYLIST_WHITELISTED) == cases[i].wl);
	}
	/* a bad regex is refused and the old lists stay */
	test_assert(file_write_atomic(cpath, "/(unclosed/\n", 12, 0644) == 0);
	test_assert(greylist_load_whitelists(gl, cpath, rpath, &err) == -1);
	test_assert(strstr(err, "whitelist_clients.local") != NULL);
	free(err);
	req.client_ip = "192.0.2.5";
	req.client_name = NULL;
	req.recipient = "u@ours.example";
	test_assert(greylist_check(gl, &req, &v, NULL, &err) == 0);
	test_assert(v == GREYLIST_WHITELISTED);
	/* missing files: empty lists */
	test_assert(greylist_load_whitelists(gl, "/nonexistent/a", NULL, &err) == 0);
	test_assert(greylist_check(gl, &req, &v, NULL, &err) == 0);
	test_assert(v == GREYLIST_DEFER);
	greylist_close(&gl);
	test_end();
}
TEST(test_greylist_whitelists)

static void
test_greylist_verified(void)
{
	struct greylist *gl;
	struct greylist_request req = { "192.0.2.1", NULL, "a@bank.example",
	    "u@ours.example", 1700000000, "Bank.Example" };
	enum greylist_verdict v;
	char *err = NULL;

	test_begin("greylist: a verified domain seen before is not delayed");
	gl = open_gl(NULL, test_tmpdir());
	test_assert(gl != NULL);
	if (gl == NULL) {
		test_end();
		return;
	}
	/* verified but never seen: greylisted like anyone */
	test_assert(greylist_check(gl, &req, &v, NULL, &err) == 0);
	test_assert(v == GREYLIST_DEFER);
	test_assert(greylist_note_verified(gl, "bank.example", req.now, &err) == 0);
	req.client_ip = "198.51.100.9";	/* another of its servers */
	req.recipient = "w@ours.example";
	test_assert(greylist_check(gl, &req, &v, NULL, &err) == 0);
	test_assert(v == GREYLIST_WHITELISTED);
	/* the same domain unverified (forged): delayed */
	req.verified_domain = NULL;
	test_assert(greylist_check(gl, &req, &v, NULL, &err) == 0);
	test_assert(v == GREYLIST_DEFER);
	/* forgotten after max_age */
	req.verified_domain = "bank.example";
	req.now += 36 * 86400;
	req.recipient = "z@ours.example";
	test_assert(greylist_check(gl, &req, &v, NULL, &err) == 0);
	test_assert(v == GREYLIST_DEFER);
	test_assert(greylist_expire(gl, req.now, &err) == 0);
	greylist_close(&gl);
	test_end();
}
TEST(test_greylist_verified)
