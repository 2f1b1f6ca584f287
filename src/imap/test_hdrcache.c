#include "imap/hdrcache.h"
#include "lib/test.h"
#include "lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
test_hdrcache_hits(void)
{
	static const struct {
		const char *base;
		uint64_t size;
		const char *hdr;
	} put[] = {
		{ "1.M1P1.host", 100, "Subject: one\r\n\r\n" },
		{ "2.M2P1.host", 200, "Subject: two\r\n\r\n" },
		{ "3.M3P1.host", 300, "" },
	};
	static const struct {
		const char *base;
		uint64_t size;
		const char *want;	/* NULL: a miss */
	} get[] = {
		{ "1.M1P1.host", 100, "Subject: one\r\n\r\n" },
		{ "2.M2P1.host", 200, "Subject: two\r\n\r\n" },
		{ "3.M3P1.host", 300, "" },
		/* the size is part of the key */
		{ "1.M1P1.host", 101, NULL },
		{ "4.M4P1.host", 100, NULL },
		{ "1.M1P1.hos", 100, NULL },
	};
	char *data;
	size_t len;

	test_begin("imap/hdrcache: hits, misses, replacement");
	imap_hdrcache_clear();
	test_assert_int(imap_hdrcache_bytes(), 0);
	for (size_t i = 0; i < sizeof(put) / sizeof(put[0]); i++)
		imap_hdrcache_put(put[i].base, put[i].size, put[i].hdr,
		    strlen(put[i].hdr));
	for (size_t i = 0; i < sizeof(get) / sizeof(get[0]); i++) {
		int r = imap_hdrcache_get(get[i].base, get[i].size, &data, &len);

		if (get[i].want == NULL) {
			test_assert_int(r, -1);
			continue;
		}
		test_assert_int(r, 0);
		if (r == 0) {
			test_assert_int(len, strlen(get[i].want));
			test_assert_str(data, get[i].want);
			free(data);
		}
	}
	/* putting the same key again replaces, it does not add */
	size_t before = imap_hdrcache_bytes();
	imap_hdrcache_put("2.M2P1.host", 200, "Subject: 2\r\n\r\n", 15);
	test_assert(imap_hdrcache_bytes() < before);
	test_assert_int(imap_hdrcache_get("2.M2P1.host", 200, &data, &len), 0);
	test_assert_str(data, "Subject: 2\r\n\r\n");
	free(data);
	/* too large to keep */
	char *big = xcalloc(1, HDRCACHE_ENTRY_MAX + 2);
	memset(big, 'x', HDRCACHE_ENTRY_MAX + 1);
	imap_hdrcache_put("big.host", 1, big, HDRCACHE_ENTRY_MAX + 1);
	test_assert_int(imap_hdrcache_get("big.host", 1, &data, &len), -1);
	free(big);
	imap_hdrcache_clear();
	test_assert_int(imap_hdrcache_bytes(), 0);
	test_assert_int(imap_hdrcache_get("1.M1P1.host", 100, &data, &len), -1);
	test_end();
}
TEST(test_hdrcache_hits);

static void
test_hdrcache_bounds(void)
{
	char base[64], *hdr, *data;
	size_t len, n = 0;

	test_begin("imap/hdrcache: the byte bound drops the least recently used");
	imap_hdrcache_clear();
	hdr = xcalloc(1, 8192 + 1);
	memset(hdr, 'h', 8192);
	/* twice what fits; "0" is used again all along, so it stays */
	for (unsigned int i = 0; i < 2 * HDRCACHE_BYTES / 8192; i++) {
		snprintf(base, sizeof(base), "%u.host", i);
		imap_hdrcache_put(base, i, hdr, 8192);
		test_assert(imap_hdrcache_bytes() <= HDRCACHE_BYTES);
		if (imap_hdrcache_get("0.host", 0, &data, &len) == 0) {
			free(data);
			n++;
		}
	}
	test_assert_int(n, 2 * HDRCACHE_BYTES / 8192);
	/* the first ones after it were dropped, the last ones are there */
	test_assert_int(imap_hdrcache_get("1.host", 1, &data, &len), -1);
	snprintf(base, sizeof(base), "%u.host", 2 * HDRCACHE_BYTES / 8192 - 1);
	test_assert_int(imap_hdrcache_get(base, 2 * HDRCACHE_BYTES / 8192 - 1,
	    &data, &len), 0);
	test_assert_int(len, 8192);
	free(data);
	/* nothing used for HDRCACHE_IDLE_SECS goes; "now" is far ahead */
	test_assert(imap_hdrcache_expire(0) == 0);
	test_assert(imap_hdrcache_expire((time_t)1 << 40) > 0);
	test_assert_int(imap_hdrcache_bytes(), 0);
	free(hdr);
	test_end();
}
TEST(test_hdrcache_bounds);
