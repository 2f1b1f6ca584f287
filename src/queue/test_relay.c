#include "queue/relay.h"
#include "lib/file.h"
#include "lib/test.h"
#include "lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
test_relay_parse_host(void)
{
	static const struct {
		const char *in;
		int r;
		const char *host;
		unsigned int port;
	} cases[] = {
		{ "[smtp.x.com]:587", 0, "smtp.x.com", 587 },
		{ "[SMTP.X.com]", 0, "smtp.x.com", 25 },
		{ "relay.example:2525", 0, "relay.example", 2525 },
		{ "relay.example", 0, "relay.example", 25 },
		{ "[smtp.x.com]587", -1, NULL, 0 },
		{ "[smtp.x.com", -1, NULL, 0 },
		{ "[]:25", -1, NULL, 0 },
		{ "host:0", -1, NULL, 0 },
		{ "host:70000", -1, NULL, 0 },
		{ "host:x", -1, NULL, 0 },
		{ "bad host", -1, NULL, 0 },
	};
	char host[64];
	unsigned int port;

	test_begin("relay: host forms");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = relay_parse_host(cases[i].in, 25, host, sizeof(host),
		    &port);

		test_assert_int(r, cases[i].r);
		if (r == 0) {
			test_assert_str(host, cases[i].host);
			test_assert_int(port, cases[i].port);
		}
	}
	test_end();
}

static void
put(const char *dir, const char *name, const char *text)
{
	char *p = xasprintf("%s/%s", dir, name);

	test_assert(file_write_atomic(p, text, strlen(text), 0600) == 0);
	free(p);
}

static void
test_relay_choice(void)
{
	const char *dir = test_tmpdir();
	struct relay_settings set = { .config_dir = dir };
	struct relay_config *rc;
	struct relay_target t;
	char *err = NULL;

	test_begin("relay: no settings, direct");
	rc = relay_config_load(&set, &err);
	test_assert(rc != NULL);
	test_assert_int(relay_for_sender(rc, "a@x.test", &t), 0);
	test_assert_int(relay_for_sender(rc, "", &t), 0);
	relay_config_free(&rc);
	test_end();

	test_begin("relay: DEFAULT_RELAY_HOST, RELAY_HOST, maps, credentials");
	put(dir, "postfix-relaymap.cf", "# comment\n@own.test\n"
	    "@special.test [special.relay]:2525\n");
	put(dir, "postfix-sasl-password.cf", "@special.test sp:pw:with:colons\n"
	    "[smtp.x.com]:587 hostuser:hostpw\n");
	set.default_relay_host = "[smtp.x.com]:587";
	rc = relay_config_load(&set, &err);
	test_assert(rc != NULL);
	test_assert_int(relay_for_sender(rc, "a@x.test", &t), 1);
	test_assert_str(t.host, "smtp.x.com");
	test_assert_int(t.port, 587);
	test_assert_str(t.user, "hostuser");
	test_assert_str(t.password, "hostpw");
	test_assert_int(relay_for_sender(rc, "", &t), 1);
	test_assert_int(relay_for_sender(rc, "a@own.test", &t), 0);
	test_assert_int(relay_for_sender(rc, "a@SPECIAL.test", &t), 1);
	test_assert_str(t.host, "special.relay");
	test_assert_int(t.port, 2525);
	test_assert_str(t.user, "sp");
	test_assert_str(t.password, "pw:with:colons");
	test_assert(!relay_config_changed(rc));
	relay_config_free(&rc);

	set.default_relay_host = NULL;
	set.relay_host = "legacy.relay";
	set.relay_port = 465;
	set.relay_user = "u";
	set.relay_password = "p";
	rc = relay_config_load(&set, &err);
	test_assert_int(relay_for_sender(rc, "a@x.test", &t), 1);
	test_assert_str(t.host, "legacy.relay");
	test_assert_int(t.port, 465);
	test_assert_str(t.user, "u");
	test_assert_str(t.password, "p");
	/* the null sender has no domain: only DEFAULT_RELAY_HOST applies */
	test_assert_int(relay_for_sender(rc, "", &t), 0);
	put(dir, "postfix-relaymap.cf", "@x.test\n");
	test_assert(relay_config_changed(rc));
	relay_config_free(&rc);
	test_end();
}

TEST(test_relay_parse_host);
TEST(test_relay_choice);
