#include "lib/test.h"
#include "mail/date.h"

#include <string.h>

static void
test_mail_date(void)
{
	static const struct {
		const char *in;
		long long want;	/* -1: not a date */
	} cases[] = {
		{ "Thu, 1 Jan 1970 00:00:00 +0000", 0 },
		{ "Sat, 24 Mar 2007 23:00:00 +0200", 1174770000 },
		{ "24 Mar 2007 23:00 +0200", 1174770000 },
		{ "Sat, 24 Mar 07 21:00:00 GMT", 1174770000 },
		{ "Sat,24 Mar 2007 16:00:00 EST", 1174770000 },
		{ "Sat, 24 Mar 2007 23:00:00 +0200 (CEST)", 1174770000 },
		{ "  (comment) Sat (x), 24 (y) mar 2007 21:00:00", 1174770000 },
		{ "Mon, 29 Feb 2016 12:00:00 -0130", 1456752600 },
		{ "1 Jan 99 00:00:00 +0000", 915148800 },
		{ "1 Jan 101 00:00:00 +0000", 978307200 },
		{ "Sat, 24 Foo 2007 23:00:00 +0200", -1 },
		{ "yesterday", -1 },
		{ "", -1 },
		{ "32 Jan 2007 10:00:00 +0000", -1 },
		{ "1 Jan 2007 25:00:00 +0000", -1 },
		{ "1 Jan 2007", -1 },
	};

	test_begin("mail/date: RFC 5322 date-time to UTC");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		time_t t = 12345;
		int r = mail_date_parse(cases[i].in, strlen(cases[i].in), &t);

		if (cases[i].want == -1) {
			test_assert_int(r, -1);
		} else {
			test_assert_int(r, 0);
			test_assert_int(t, cases[i].want);
		}
	}
	test_end();
}
TEST(test_mail_date);
