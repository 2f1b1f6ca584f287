#include "queue/fromaddr.h"
#include "lib/test.h"

#include <stdlib.h>
#include <string.h>

static void
test_fromaddr_cases(void)
{
	static const struct {
		const char *msg;
		const char *want;	/* NULL = none */
	} cases[] = {
		{ "From: alice@a.test\r\n\r\nbody", "alice@a.test" },
		{ "Subject: x\r\nFrom: Alice <alice@a.test>\r\n\r\n", "alice@a.test" },
		{ "from:\"A, B\" <a@b.test>\n\n", "a@b.test" },
		{ "From: Alice\r\n <alice@folded.test>\r\nTo: x\r\n\r\n", "alice@folded.test" },
		{ "From: alice@a.test (Alice)\r\n\r\n", "alice@a.test" },
		{ "FROM:   <  bob@b.test >\r\n\r\n", "bob@b.test" },
		{ "To: x@y\r\n\r\nFrom: late@a.test\r\n", NULL },
		{ "From: no address\r\n\r\n", NULL },
		{ "From: <>\r\n\r\n", NULL },
		{ "From: <@a.test>\r\n\r\n", NULL },
		{ "From: <a@>\r\n\r\n", NULL },
		{ "From: <a b@c>\r\n\r\n", NULL },
		{ "Subject: no from\r\n\r\n", NULL },
		{ "From: alice@a.test", "alice@a.test" },	/* no end of header */
		{ "", NULL },
	};

	test_begin("fromaddr: From field forms");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *a = queue_header_from(cases[i].msg, strlen(cases[i].msg));

		if (cases[i].want == NULL)
			test_assert(a == NULL);
		else
			test_assert_str(a != NULL ? a : "(null)", cases[i].want);
		free(a);
	}
	test_end();
}

static void
test_fromaddr_bounds(void)
{
	char big[2000];
	char *a;

	test_begin("fromaddr: bounded, never reads past len");
	memset(big, 'x', sizeof(big));
	memcpy(big, "From: <", 7);
	big[600] = '@';
	big[sizeof(big) - 1] = '>';
	a = queue_header_from(big, sizeof(big));
	test_assert(a == NULL);		/* longer than FROMADDR_MAX */
	/* a prefix cut inside the field: no match, no over-read (ASan) */
	static const char m[] = "From: Al <al@a.test>\r\n\r\n";

	for (size_t n = 0; n < sizeof(m); n++) {
		char *cut = malloc(n + 1);

		memcpy(cut, m, n);
		a = queue_header_from(cut, n);
		test_assert(n < 20 ? a == NULL : a != NULL);
		free(a);
		free(cut);
	}
	test_end();
}

TEST(test_fromaddr_cases);
TEST(test_fromaddr_bounds);
