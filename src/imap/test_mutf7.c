#include "imap/mutf7.h"
#include "lib/test.h"

static void
test_mutf7(void)
{
	static const struct {
		const char *utf8, *mutf7;
	} both[] = {
		{ "INBOX", "INBOX" },
		{ "A&B", "A&-B" },
		{ "Entw\xc3\xbcrfe", "Entw&APw-rfe" },
		{ "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "&ZeVnLIqe-" },
		{ "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
		    "~peter/mail/&U,BTFw-/&ZeVnLIqe-" },
		{ "\xf0\x9f\x93\xab mail", "&2D3c6w- mail" },
		{ "", "" },
	};
	static const char *const bad_mutf7[] = {
		"&", "&Jjo", "&Jjo!-", "&AGE-", "&2D0-", "&3Ovc6w-", "caf\xc3\xa9",
		"&-&AAA-",
	};
	static const char *const bad_utf8[] = { "\xff", "caf\xc3", "\xed\xa0\x80" };
	struct buf b;

	test_begin("imap/mutf7: mailbox names both ways");
	buf_init(&b, 4096);
	for (size_t i = 0; i < sizeof(both) / sizeof(both[0]); i++) {
		buf_reset(&b);
		buf_append_str(&b, "");
		test_assert(imap_utf8_to_mutf7(both[i].utf8, &b) == 0);
		test_assert_str(buf_cstr(&b), both[i].mutf7);
		buf_reset(&b);
		buf_append_str(&b, "");
		test_assert(imap_mutf7_to_utf8(both[i].mutf7, &b) == 0);
		test_assert_str(buf_cstr(&b), both[i].utf8);
	}
	for (size_t i = 0; i < sizeof(bad_mutf7) / sizeof(bad_mutf7[0]); i++) {
		buf_reset(&b);
		test_assert(imap_mutf7_to_utf8(bad_mutf7[i], &b) < 0);
	}
	for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
		buf_reset(&b);
		test_assert(imap_utf8_to_mutf7(bad_utf8[i], &b) < 0);
	}
	buf_free(&b);
	test_end();
}
TEST(test_mutf7);
