#include "imap/url.h"
#include "lib/test.h"

#include <stdio.h>
#include <string.h>

static void
test_imap_url(void)
{
	static const struct {
		const char *url;
		const char *user, *host, *mailbox, *section, *access;
		uint32_t uidvalidity, uid;
		uint64_t poff, plen;
		size_t rump_len;
	} good[] = {
		{ "/INBOX/;uid=3", NULL, NULL, "INBOX", NULL, NULL, 0, 3, 0, 0, 0 },
		{ "/Sent;UIDVALIDITY=77/;UID=20/;SECTION=1.2", NULL, NULL, "Sent",
		  "1.2", NULL, 77, 20, 0, 0, 0 },
		{ "/a%20b/;uid=1/;section=header", NULL, NULL, "a b", "header",
		  NULL, 0, 1, 0, 0, 0 },
		{ "/x/;uid=2/;partial=100000.1", NULL, NULL, "x", NULL, NULL, 0, 2,
		  100000, 1, 0 },
		{ "imap://fred@example.test/INBOX/;uid=20;urlauth=user+fred",
		  "fred", "example.test", "INBOX", NULL, "user+fred", 0, 20, 0, 0, 56 },
		{ "imap://joe%40x.test;AUTH=*@mx.test:143/Drafts/;UID=5/;section=1;"
		  "EXPIRE=2030-01-01T00:00:00Z;URLAUTH=authuser:INTERNAL:0123abcd",
		  "joe@x.test", "mx.test", "Drafts", "1", "authuser", 0, 5, 0, 0, 108 },
	};
	static const char *const bad[] = {
		"", "INBOX/;uid=1", "/", "/INBOX", "/INBOX/;uid=0", "/INBOX/;uid=01",
		"/INBOX/;uid=4294967296", "/INBOX/;uid=1/;section=%0041",
		"/INBOX/;uid=1/;section=%4", "/INBOX?SUBJECT%20x", "/INBOX/;uid=1/;bogus=2",
		"/INBOX;uidvalidity=x/;uid=1", "imap://host", "imap:///INBOX/;uid=1",
		"imap://h:99999/INBOX/;uid=1", "/INBOX/;uid=1;urlauth=",
		"/INBOX/;uid=1;urlauth=anonymous:internal", "/INBOX/;uid=1;urlauth=anonymous:internal:xyz",
		"/INBOX/;uid=1;expire=2030-13-01T00:00:00Z;urlauth=anonymous",
		"/INBOX/;uid=1;expire=2030-01-01T00:00:00Z",
		"/INBOX/;section=1", "/INBOX/;uid=1/;uid=2", "/INBOX/;uid=1/;partial=1.0",
	};

	test_begin("imap url: RFC 5092 message URLs, CATENATE and URLAUTH forms");
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct imap_url u;
		const char *err = NULL;

		if (imap_url_parse(good[i].url, &u, &err) < 0) {
			printf("     %s: %s\n", good[i].url, err);
			test_assert(false);
			continue;
		}
#define SAME(a, b) test_assert((a) == NULL ? (b) == NULL : (b) != NULL && strcmp(a, b) == 0)
		SAME(good[i].user, u.user);
		SAME(good[i].host, u.host);
		SAME(good[i].mailbox, u.mailbox);
		SAME(good[i].section, u.section);
		SAME(good[i].access, u.access);
#undef SAME
		test_assert_int(u.uidvalidity, good[i].uidvalidity);
		test_assert_int(u.uid, good[i].uid);
		test_assert_int(u.partial_offset, good[i].poff);
		test_assert_int(u.partial_length, good[i].plen);
		test_assert_int(u.rump_len, good[i].rump_len);
		imap_url_free(&u);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct imap_url u;
		const char *err = NULL;

		if (imap_url_parse(bad[i], &u, &err) == 0) {
			printf("     accepted: %s\n", bad[i]);
			imap_url_free(&u);
			test_assert(false);
		}
	}
	{
		struct imap_url u;
		const char *err;

		test_assert(imap_url_parse("/INBOX/;uid=1;expire=2030-01-01T01:00:00+01:00;"
		    "urlauth=anonymous:INTERNAL:00ff", &u, &err) == 0);
		test_assert(u.expire_set && u.expire == 1893456000);
		test_assert_str(u.mechanism, "INTERNAL");
		test_assert_str(u.token, "00ff");
		imap_url_free(&u);
	}
	test_end();
}
TEST(test_imap_url)
