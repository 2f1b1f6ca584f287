#include "smtp/parser.h"
#include "lib/test.h"
#include "lib/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Feeds in with the given step size, collecting results as text. */
static void
lines_collect(const char *in, size_t len, size_t step, size_t max,
    struct buf *out)
{
	struct smtp_line_reader lr;
	size_t pos = 0;

	smtp_line_reader_init(&lr, max);
	while (pos < len) {
		size_t n = len - pos < step ? len - pos : step, used;
		enum smtp_line_result r = smtp_line_reader_feed(&lr,
		    (const unsigned char *)in + pos, n, &used);

		test_assert(used <= n);
		pos += used;
		switch (r) {
		case SMTP_LINE_MORE:
			test_assert(used == n);
			continue;
		case SMTP_LINE_OK:
			buf_printf(out, "[%s]", buf_cstr(&lr.line));
			break;
		case SMTP_LINE_TOO_LONG:
			buf_append_str(out, "<long>");
			break;
		case SMTP_LINE_BARE_LF:
			buf_append_str(out, "<lf>");
			break;
		}
		smtp_line_reader_next(&lr);
	}
	smtp_line_reader_free(&lr);
}

static const struct {
	const char *in;
	size_t max;
	const char *want;
} line_tests[] = {
	{ "EHLO x\r\nMAIL FROM:<>\r\n", 20, "[EHLO x][MAIL FROM:<>]" },
	{ "\r\n", 20, "[]" },
	{ "NOOP\n", 20, "<lf>" },
	{ "NOOP\nQUIT\r\n", 20, "<lf>[QUIT]" },
	{ "A\rB\r\n", 20, "[A\rB]" },
	{ "0123456789\r\n", 10, "[0123456789]" },
	{ "01234567890\r\n", 10, "<long>" },
	{ "01234567890123456789012345\r\nNOOP\r\n", 10, "<long>[NOOP]" },
	{ "0123456789012345678901234\nNOOP\r\n", 10, "<long>[NOOP]" },
	{ "partial", 20, "" },
	{ "\n", 20, "<lf>" },
	{ "\r\r\n", 20, "[\r]" },
};

static void
test_smtp_line_reader(void)
{
	test_begin("smtp line reader, whole and one byte at a time");
	for (size_t i = 0; i < sizeof(line_tests) / sizeof(line_tests[0]); i++) {
		size_t steps[] = { 1, 2, 3, 1000 };

		for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
			struct buf out;

			buf_init(&out, BUF_UNLIMITED);
			lines_collect(line_tests[i].in, strlen(line_tests[i].in),
			    steps[k], line_tests[i].max, &out);
			if (strcmp(buf_cstr(&out), line_tests[i].want) != 0)
				printf("     line case %zu step %zu\n", i, steps[k]);
			test_assert_str(buf_cstr(&out), line_tests[i].want);
			buf_free(&out);
		}
	}
	test_end();
}
TEST(test_smtp_line_reader);

/* Runs the data reader with a given step; returns the bytes left after it. */
static size_t
data_run(const char *in, size_t len, size_t step, struct buf *body,
    struct smtp_data_reader *dr)
{
	unsigned char out[64];
	size_t pos = 0;

	smtp_data_reader_init(dr, 20);
	while (pos < len && !dr->done) {
		size_t n = len - pos < step ? len - pos : step;
		size_t out_len, used;

		if (n > sizeof(out) - 1)
			n = sizeof(out) - 1;
		used = smtp_data_reader_feed(dr, (const unsigned char *)in + pos,
		    n, out, &out_len);
		test_assert(out_len <= n + 1);
		test_assert(used == n || dr->done);
		buf_append(body, out, out_len);
		pos += used;
	}
	return len - pos;
}

static const struct {
	const char *in;
	const char *body;	/* NULL: not done */
	size_t left;
	bool bare;
	bool long_line;
} data_tests[] = {
	{ "Hello\r\n.\r\n", "Hello\r\n", 0, false, false },
	{ ".\r\n", "", 0, false, false },
	{ ".\r\nQUIT\r\n", "", 6, false, false },
	{ "a\r\n..b\r\n.\r\n", "a\r\n.b\r\n", 0, false, false },
	{ "..\r\n.\r\n", ".\r\n", 0, false, false },
	{ ".x\r\n.\r\n", "x\r\n", 0, false, false },
	{ "a\r\n.\r", NULL, 0, false, false },
	/* smuggling: none of these end the data */
	{ "a\n.\nb\r\n.\r\n", "a\n.\nb\r\n", 0, true, false },
	{ "a\n.\r\nb\r\n.\r\n", "a\n.\r\nb\r\n", 0, true, false },
	{ "a\r.\rb\r\n.\r\n", "a\r.\rb\r\n", 0, true, false },
	{ "a\r\n.\nX\r\n.\r\n", "a\r\n\nX\r\n", 0, true, false },
	{ "a\r\n.\rX\r\n.\r\n", "a\r\n\rX\r\n", 0, true, false },
	{ "a\r\n.\r.\r\n.\r\n", "a\r\n\r.\r\n", 0, true, false },
	{ "bare\nlf\r\n.\r\n", "bare\nlf\r\n", 0, true, false },
	{ "a\r\r\n.\r\n", "a\r\r\n", 0, true, false },
	{ "0123456789012345678901\r\n.\r\n", "0123456789012345678901\r\n", 0, false, true },
	{ "01234567890123456789\r\n.\r\n", "01234567890123456789\r\n", 0, false, false },
};

static void
test_smtp_data_reader(void)
{
	test_begin("smtp data reader, whole and one byte at a time");
	for (size_t i = 0; i < sizeof(data_tests) / sizeof(data_tests[0]); i++) {
		size_t steps[] = { 1, 2, 5, 64 };

		for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
			struct smtp_data_reader dr;
			struct buf body;
			size_t left;

			buf_init(&body, BUF_UNLIMITED);
			left = data_run(data_tests[i].in, strlen(data_tests[i].in),
			    steps[k], &body, &dr);
			if (data_tests[i].body == NULL) {
				test_assert(!dr.done);
			} else {
				if (!dr.done || strcmp(buf_cstr(&body), data_tests[i].body) != 0)
					printf("     data case %zu step %zu\n", i, steps[k]);
				test_assert(dr.done);
				test_assert_str(buf_cstr(&body), data_tests[i].body);
				test_assert_int(left, data_tests[i].left);
				test_assert_int(dr.bytes_out, body.len);
			}
			test_assert(dr.bare_cr_lf == data_tests[i].bare);
			test_assert(dr.long_line == data_tests[i].long_line);
			buf_free(&body);
		}
	}
	test_end();
}
TEST(test_smtp_data_reader);

static void
test_smtp_binary_scan(void)
{
	struct smtp_data_reader dr;

	test_begin("smtp BDAT line-end scan across chunks");
	smtp_data_reader_init(&dr, 1000);
	smtp_data_reader_scan_binary(&dr, (const unsigned char *)"a\r", 2);
	smtp_data_reader_scan_binary(&dr, (const unsigned char *)"\nb\r\n", 4);
	smtp_data_reader_finish_binary(&dr);
	test_assert(!dr.bare_cr_lf);
	test_assert_int(dr.bytes_out, 6);

	smtp_data_reader_init(&dr, 1000);
	smtp_data_reader_scan_binary(&dr, (const unsigned char *)"a\r", 2);
	smtp_data_reader_finish_binary(&dr);
	test_assert(dr.bare_cr_lf);

	smtp_data_reader_init(&dr, 1000);
	smtp_data_reader_scan_binary(&dr, (const unsigned char *)"a\nb", 3);
	test_assert(dr.bare_cr_lf);
	test_end();
}
TEST(test_smtp_binary_scan);

static void
test_smtp_command_split(void)
{
	const char *args;
	char verb[16];

	test_begin("smtp command split and character check");
	test_assert(smtp_command_split("MAIL FROM:<a@b>", verb, &args) == 0);
	test_assert_str(verb, "MAIL");
	test_assert_str(args, "FROM:<a@b>");
	test_assert(smtp_command_split("quit", verb, &args) == 0);
	test_assert_str(verb, "quit");
	test_assert_str(args, "");
	test_assert(smtp_command_split("EHLO   x", verb, &args) == 0);
	test_assert_str(args, "x");
	test_assert(smtp_command_split("", verb, &args) == -1);
	test_assert(smtp_command_split(" NOOP", verb, &args) == -1);
	test_assert(smtp_command_split("NO0P", verb, &args) == -1);
	test_assert(smtp_command_split("ABCDEFGHIJKLMNOPQ", verb, &args) == -1);
	test_assert(smtp_command_split("ABCDEFGHIJKLMNO", verb, &args) == 0);

	test_assert(smtp_command_chars_ok("MAIL FROM:<a@b>", 15));
	test_assert(smtp_command_chars_ok("a\tb", 3));
	test_assert(!smtp_command_chars_ok("a\0b", 3));
	test_assert(!smtp_command_chars_ok("a\rb", 3));
	test_assert(!smtp_command_chars_ok("a\x7f", 2));
	test_assert(smtp_command_chars_ok("\xc3\xa9", 2));
	test_assert(!smtp_command_chars_ok("\xc3", 1));
	test_assert(!smtp_command_chars_ok("\xff\xfe", 2));
	test_end();
}
TEST(test_smtp_command_split);

static void
test_smtp_base64(void)
{
	unsigned char out[64];
	char enc[64];
	long n;

	test_begin("smtp base64");
	n = smtp_base64_decode("AHVzZXIAcGFzcw==", 16, out, sizeof(out));
	test_assert_int(n, 10);
	test_assert(memcmp(out, "\0user\0pass", 10) == 0);
	test_assert_int(smtp_base64_decode("", 0, out, sizeof(out)), 0);
	test_assert_int(smtp_base64_decode("YQ==", 4, out, sizeof(out)), 1);
	test_assert_int(smtp_base64_decode("YWI=", 4, out, sizeof(out)), 2);
	test_assert_int(smtp_base64_decode("YWJj", 4, out, sizeof(out)), 3);
	test_assert_int(smtp_base64_decode("YWJ", 3, out, sizeof(out)), -1);
	test_assert_int(smtp_base64_decode("Y===", 4, out, sizeof(out)), -1);
	test_assert_int(smtp_base64_decode("YQ==YWJj", 8, out, sizeof(out)), -1);
	test_assert_int(smtp_base64_decode("YW=j", 4, out, sizeof(out)), -1);
	test_assert_int(smtp_base64_decode("YW J", 4, out, sizeof(out)), -1);
	test_assert_int(smtp_base64_decode("YWJj", 4, out, 2), -1);
	test_assert_int(smtp_base64_decode("YWI=", 4, out, 2), 2);
	smtp_base64_encode((const unsigned char *)"\0user\0pass", 10, enc, sizeof(enc));
	test_assert_str(enc, "AHVzZXIAcGFzcw==");
	smtp_base64_encode((const unsigned char *)"ab", 2, enc, sizeof(enc));
	test_assert_str(enc, "YWI=");
	smtp_base64_encode((const unsigned char *)"", 0, enc, sizeof(enc));
	test_assert_str(enc, "");
	test_end();
}
TEST(test_smtp_base64);

static void
test_smtp_sasl_plain(void)
{
	const char *z, *l;
	char *p;
	unsigned char b[32];

	test_begin("smtp SASL PLAIN split");
	memcpy(b, "\0user\0pass", 10);
	test_assert(smtp_sasl_plain_split(b, 10, &z, &l, &p) == 0);
	test_assert_str(z, "");
	test_assert_str(l, "user");
	test_assert_str(p, "pass");
	memcpy(b, "admin\0user\0", 11);
	test_assert(smtp_sasl_plain_split(b, 11, &z, &l, &p) == 0);
	test_assert_str(z, "admin");
	test_assert_str(p, "");
	memcpy(b, "\0\0pass", 6);
	test_assert(smtp_sasl_plain_split(b, 6, &z, &l, &p) == -1);
	memcpy(b, "\0user", 5);
	test_assert(smtp_sasl_plain_split(b, 5, &z, &l, &p) == -1);
	memcpy(b, "\0u\0p\0x", 7);
	test_assert(smtp_sasl_plain_split(b, 7, &z, &l, &p) == -1);
	test_assert(smtp_sasl_plain_split(b, 0, &z, &l, &p) == -1);
	test_end();
}
TEST(test_smtp_sasl_plain);
