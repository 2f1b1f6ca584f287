#include "queue/dsn.h"
#include "lib/test.h"

#include <stdlib.h>
#include <string.h>

static const char original[] =
	"Received: by mail.a.test (tegami) with ESMTPSA id 1\r\n"
	"From: alice@a.test\r\nTo: nobody@b.test\r\nSubject: hi\r\n"
	"Message-ID: <1@a.test>\r\n\r\nsecret body text\r\n";

static void
test_dsn_bounce(void)
{
	struct dsn_rcpt r[3] = {
		{ "nobody@b.test", NULL, "5.1.1", "mx.b.test",
		  "550 5.1.1 <nobody@b.test>: User unknown", 1700000100 },
		{ "evil@b.test", "rfc822;Evil@b.test", "5.0.0", NULL,
		  "550 bad\r\nInjected: header", 0 },
		{ "x@nomail.test", NULL, "5.1.10", NULL,
		  "5.1.10 domain accepts no mail (null MX)", 0 },
	};
	struct dsn_params p = { "mail.a.test", "abc123", "alice@a.test",
	    1700000000, 1700000200, false, r, 3, original, sizeof(original) - 1,
	    1700432000 };
	size_t len;
	char *m = dsn_format(&p, &len);

	test_begin("dsn: a bounce has the three parts and no bare LF");
	test_assert(strlen(m) == len);
	test_assert(strncmp(m, "From: Mail Delivery System "
	    "<MAILER-DAEMON@mail.a.test>\r\nTo: <alice@a.test>\r\n", 76) == 0);
	test_assert(strstr(m, "Content-Type: multipart/report; "
	    "report-type=delivery-status;") != NULL);
	test_assert(strstr(m, "Auto-Submitted: auto-replied\r\n") != NULL);
	test_assert(strstr(m, "Reporting-MTA: dns; mail.a.test\r\n") != NULL);
	test_assert(strstr(m, "Final-Recipient: rfc822; nobody@b.test\r\n"
	    "Action: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.b.test\r\n"
	    "Diagnostic-Code: smtp; 550 5.1.1 <nobody@b.test>: User unknown\r\n"
	    "Last-Attempt-Date: ") != NULL);
	test_assert(strstr(m, "Original-Recipient: rfc822;Evil@b.test\r\n") != NULL);
	/* our own reason is not an SMTP reply */
	test_assert(strstr(m, "Status: 5.1.10\r\nDiagnostic-Code: X-Tegami; 5.1.10 "
	    "domain accepts no mail (null MX)\r\n") != NULL);
	test_assert(strstr(m, "Will-Retry-Until") == NULL);
	/* the part for people comes first */
	test_assert(strstr(m, "Content-Type: text/plain") <
	    strstr(m, "Content-Type: message/delivery-status"));
	/* the hostile reply stays on its line */
	test_assert(strstr(m, "\r\nInjected:") == NULL);
	test_assert(strstr(m, "Content-Type: text/rfc822-headers\r\n\r\n"
	    "Received: by mail.a.test") != NULL);
	test_assert(strstr(m, "Subject: hi\r\n") != NULL);
	test_assert(strstr(m, "secret body text") == NULL);
	for (size_t i = 0; i < len; i++)
		if (m[i] == '\n' && (i == 0 || m[i - 1] != '\r'))
			test_assert(!"bare LF");
	test_assert(strstr(m, "--\r\n") != NULL);
	free(m);
	test_end();

	test_begin("dsn: a delay warning");
	p.delayed = true;
	p.rcpt_count = 1;
	m = dsn_format(&p, &len);
	test_assert(strstr(m, "Subject: Delayed Mail") != NULL);
	test_assert(strstr(m, "Action: delayed\r\n") != NULL);
	test_assert(strstr(m, "Will-Retry-Until: Sun, 19 Nov 2023 22:13:20 +0000\r\n")
	    != NULL);
	free(m);
	test_end();
}
TEST(test_dsn_bounce)

static void
test_dsn_status(void)
{
	static const struct { const char *reply, *want; } t[] = {
		{ "550 5.1.1 user unknown", "5.1.1" },
		{ "550-5.7.1 policy", "5.7.1" },
		{ "451 4.3.0 try later", "4.3.0" },
		{ "450 try later", "4.0.0" },
		{ "550 4.1.1 class mismatch", "5.0.0" },
		{ "554 5.7.1000 too long", "5.0.0" },
		{ "garbage", "5.0.0" },
		{ NULL, "5.0.0" },
	};
	char out[16];

	test_begin("dsn: status from a reply");
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		dsn_status_from_reply(t[i].reply, out);
		test_assert_str(out, t[i].want);
	}
	test_assert(!dsn_wanted(""));
	test_assert(dsn_wanted("a@b.test"));
	test_assert_int(dsn_header_length("A: b\n\nbody", 10), 6);
	test_assert_int(dsn_header_length("A: b\r\n\r\nbody", 12), 8);
	test_end();
}
TEST(test_dsn_status)
