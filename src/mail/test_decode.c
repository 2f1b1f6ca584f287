#include "lib/test.h"
#include "mail/decode.h"

#include <string.h>

static void
test_decode(void)
{
	struct buf b;

	test_begin("mail/decode: base64, quoted-printable, RFC 2047 words");
	buf_init(&b, 1024);
	test_assert(decode_base64("SGVs\r\nbG8g d29y!bGQ=", 20, &b) == 0);
	test_assert_str(buf_cstr(&b), "Hello world");
	buf_reset(&b);
	test_assert(decode_base64("YQ==", 4, &b) == 0);
	test_assert_str(buf_cstr(&b), "a");
	buf_reset(&b);
	test_assert(decode_qp("caf=C3=A9 =\r\nsoft=3D =zz end=", 29, &b) == 0);
	test_assert_str(buf_cstr(&b), "caf\xc3\xa9 soft= =zz end");
	buf_reset(&b);
	test_assert(decode_qp("a=  \nb", 6, &b) == 0);
	test_assert_str(buf_cstr(&b), "ab");
	buf_reset(&b);
	{
		const char *h = "Re: =?UTF-8?B?Q2Fmw6k=?= =?utf-8?q?_au_lait?= and =?x?Q?a_b?=!";

		test_assert(decode_rfc2047(h, strlen(h), &b) == 0);
		test_assert_str(buf_cstr(&b), "Re: Caf\xc3\xa9 au lait and a b!");
	}
	buf_reset(&b);
	{
		const char *h = "=?broken?X?abc?= =?utf-8?B?YQ==";

		test_assert(decode_rfc2047(h, strlen(h), &b) == 0);
		test_assert_str(buf_cstr(&b), h);
	}
	buf_free(&b);

	buf_init(&b, 3);
	test_assert(decode_base64("SGVsbG8=", 8, &b) == -1);
	test_assert_str(buf_cstr(&b), "Hel");
	buf_free(&b);
	test_end();
}
TEST(test_decode)
