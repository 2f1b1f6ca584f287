#include "lib/test.h"
#include "mail/charset.h"

#include <stdio.h>
#include <string.h>

static void
test_charset_convert(void)
{
	static const struct {
		const char *charset, *in, *want;
	} cases[] = {
		{ "utf-8", "caf\xc3\xa9", "caf\xc3\xa9" },
		{ "US-ASCII", "plain", "plain" },
		{ NULL, "no charset", "no charset" },
		{ "iso-8859-1", "caf\xe9", "caf\xc3\xa9" },
		{ "ISO-8859-15", "\xa4", "\xe2\x82\xac" },		/* euro */
		{ "windows-1252", "\x80 \x93x\x94", "\xe2\x82\xac \xe2\x80\x9cx\xe2\x80\x9d" },
		{ "koi8-r", "\xf0\xd2\xc9", "\xd0\x9f\xd1\x80\xd0\xb8" },	/* Пpи */
		{ "iso-2022-jp", "\x1b$B$3$s\x1b(B", "\xe3\x81\x93\xe3\x82\x93" },
		/* unknown: bytes as they are */
		{ "x-no-such", "caf\xe9", "caf\xe9" },
		/* invalid in UTF-8 is passed through */
		{ "utf-8", "a\xff" "b", "a\xff" "b" },
		/* invalid in the charset: the byte is kept, the rest goes on */
		{ "iso-2022-jp", "a\xff" "b", "a\xff" "b" },
	};
	struct buf b;

	test_begin("mail/charset: to UTF-8 from the declared charset");
	buf_init(&b, 4096);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&b);
		buf_append_str(&b, "");
		test_assert(charset_to_utf8(cases[i].charset, cases[i].in,
		    strlen(cases[i].in), &b) == 0);
		test_assert_str(buf_cstr(&b), cases[i].want);
	}
	test_assert(charset_known("UTF-8"));
	test_assert(charset_known("iso-8859-2"));
	test_assert(charset_known("Windows-1251"));
	test_assert(!charset_known("x-no-such"));
	test_assert(!charset_known("UTF-8//TRANSLIT"));
	test_assert(!charset_known(""));
	buf_free(&b);
	test_end();
}
TEST(test_charset_convert);

static void
test_charset_header(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "=?iso-8859-1?q?caf=E9?=", "caf\xc3\xa9" },
		{ "=?UTF-8?B?w6TDtsO8?= =?utf-8?q?_x?=", "\xc3\xa4\xc3\xb6\xc3\xbc x" },
		{ "Re: =?koi8-r?b?8NLJ?= ok", "Re: \xd0\x9f\xd1\x80\xd0\xb8 ok" },
		{ "=?utf-8*en?q?lang?=", "lang" },
		{ "not =?encoded", "not =?encoded" },
		{ "8-bit \xc3\xa9 as is", "8-bit \xc3\xa9 as is" },
	};
	struct buf b;

	test_begin("mail/charset: RFC 2047 words to UTF-8");
	buf_init(&b, 4096);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&b);
		buf_append_str(&b, "");
		test_assert(charset_decode_header(cases[i].in, strlen(cases[i].in),
		    &b) == 0);
		test_assert_str(buf_cstr(&b), cases[i].want);
	}
	buf_free(&b);
	test_end();
}
TEST(test_charset_header);

static void
test_charset_fold(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
		{ "Hello, World", "HELLO, WORLD" },
		/* é and Ä: titlecase, then base letter + combining mark */
		{ "caf\xc3\xa9 \xc3\x84pfel", "CAFE\xcc\x81 A\xcc\x88PFEL" },
		{ "CAF\xc3\x89", "CAFE\xcc\x81" },
		{ "\xc3\xbf", "Y\xcc\x88" },			/* ÿ */
		/* łódź: Ł has no decomposition */
		{ "\xc5\x82\xc3\xb3" "d\xc5\xba", "\xc5\x81O\xcc\x81""DZ\xcc\x81" },
		{ "\xce\xb1\xcf\x82\xcf\x83", "\xce\x91\xce\xa3\xce\xa3" },	/* αςσ */
		/* привё */
		{ "\xd0\xbf\xd1\x80\xd0\xb8\xd1\x91", "\xd0\x9f\xd0\xa0\xd0\x98\xd0\x95\xcc\x88" },
		{ "\xe1\xba\xa1", "A\xcc\xa3" },		/* ạ */
		{ "\xef\xbd\x81", "A" },			/* fullwidth a */
		{ "\xef\xac\x81", "FI" },			/* the fi ligature */
		{ "\xc7\x86", "DZ\xcc\x8c" },		/* dž: titlecase Dž */
		{ "\xe2\x84\xa6", "\xce\xa9" },		/* ohm sign: Ω */
		{ "\xf0\x9d\x90\x80", "A" },		/* mathematical bold A */
		{ "\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac" },	/* no case */
		{ "\xed\x95\x9c", "\xed\x95\x9c" },	/* Hangul kept */
		{ "bad \xff\xc3 end", "BAD \xff\xc3 END" },
	};
	struct buf b;

	test_begin("mail/charset: i;unicode-casemap folding (RFC 5051)");
	buf_init(&b, 4096);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&b);
		buf_append_str(&b, "");
		test_assert(charset_utf8_fold(cases[i].in, strlen(cases[i].in), &b) == 0);
		test_assert_str(buf_cstr(&b), cases[i].want);
	}
	/* every code point of Latin Extended-A folds like its partner */
	for (unsigned int cp = 0x0100; cp < 0x0180; cp += 2) {
		char up[8], low[8];
		struct buf b2;

		if (cp == 0x0130 || (cp >= 0x0138 && cp <= 0x0149) || cp >= 0x0178)
			continue;	/* dotted I, kra and the odd-paired runs */
		snprintf(up, sizeof(up), "%c%c", 0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
		snprintf(low, sizeof(low), "%c%c", 0xc0 | ((cp + 1) >> 6),
		    0x80 | ((cp + 1) & 0x3f));
		buf_reset(&b);
		buf_append_str(&b, "");
		buf_init(&b2, 64);
		buf_append_str(&b2, "");
		test_assert(charset_utf8_fold(up, 2, &b) == 0);
		test_assert(charset_utf8_fold(low, 2, &b2) == 0);
		test_assert_str(buf_cstr(&b), buf_cstr(&b2));
		buf_free(&b2);
	}
	/* limits: a full buffer is reported */
	buf_free(&b);
	buf_init(&b, 3);
	test_assert(charset_utf8_fold("abcd", 4, &b) < 0);
	buf_free(&b);
	test_end();
}
TEST(test_charset_fold);
