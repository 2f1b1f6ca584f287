#include "daemon/antispam.h"
#include "lib/test.h"

static void
test_antispam_duration(void)
{
	static const struct { const char *in; int ret; unsigned int secs; } t[] = {
		{ "600", 0, 600 }, { "10m", 0, 600 }, { "1h", 0, 3600 },
		{ "2d", 0, 172800 }, { "1w", 0, 604800 }, { "5s", 0, 5 },
		{ "", -1, 0 }, { "w", -1, 0 }, { "1x", -1, 0 }, { "1ww", -1, 0 },
		{ "0", -1, 0 }, { "-1", -1, 0 }, { "99999w", -1, 0 },
	};

	test_begin("antispam duration");
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		unsigned int s = 0;

		test_assert_int(antispam_parse_duration(t[i].in, &s), t[i].ret);
		if (t[i].ret == 0)
			test_assert_int(s, t[i].secs);
	}
	test_end();
}
TEST(test_antispam_duration)
