#include "lib/test.h"
#include "lib/xalloc.h"
#include "mail/binary.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* BINARY[section] of data as a string ("ERR" for an unknown encoding). */
static char *
binary_of(const char *data, size_t len, const char *section, size_t *len_r)
{
	struct mime_message *msg = mime_parse(data, len, &mime_default_limits);
	struct mime_part *part = mime_part_find(msg, section);
	struct buf b;
	char *r;

	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "");
	if (part == NULL)
		buf_append_str(&b, "NOPART");
	else if (mime_binary_section(msg, part, *section == '\0', &b) < 0) {
		buf_reset(&b);
		buf_append_str(&b, "ERR");
	}
	*len_r = b.len;
	r = buf_steal(&b);
	mime_message_free(&msg);
	return r;
}

static const char mixed[] =
	"From: a@b.test\n"
	"Content-Type: multipart/mixed; boundary=\"b1\"\n"
	"\n"
	"preamble\n"
	"--b1\n"
	"Content-Type: text/plain\n"
	"Content-Transfer-Encoding: base64\n"
	"\n"
	"aGVs\n"
	"bG8gd29y\n"
	"bGQ=\n"
	"\n"
	"--b1\n"
	"Content-Type: text/plain\n"
	"Content-Transfer-Encoding: quoted-printable\n"
	"\n"
	"hello  \n"
	"bar=\n"
	"\n"
	"foo\t=\n"
	"bar\n"
	"foo =\t\n"
	"=62\n"
	"\n"
	"--b1\n"
	"Content-Type: application/octet-stream\n"
	"Content-Transfer-Encoding: base64\n"
	"\n"
	"YWJjZGVmZw1oaWprbA0KbW5vCnBxcnN0dXZxeHl6\n"
	"--b1\n"
	"Content-Type: message/rfc822\n"
	"\n"
	"Subject: inner\n"
	"Content-Transfer-Encoding: base64\n"
	"\n"
	"aW5uZXI=\n"
	"--b1\n"
	"Content-Type: text/plain\n"
	"Content-Transfer-Encoding: x-uuencode\n"
	"\n"
	"begin 644 x\n"
	"--b1--\n"
	"epilogue\n";

static void
test_binary_decode(void)
{
	static const struct {
		const char *section;
		const char *want;
		size_t want_len;
	} cases[] = {
		{ "1", "hello world", 11 },
		/* trailing white space dropped, soft breaks joined, CRLF */
		{ "2", "hello\r\nbar\r\nfoo\tbar\r\nfoo b\r\n", 28 },
		/* exact bytes: a bare CR and a bare LF survive */
		{ "3", "abcdefg\rhijkl\r\nmno\npqrstuvqxyz", 30 },
		/* message/rfc822: the message inside, decoded in place */
		{ "4", "Subject: inner\r\nContent-Transfer-Encoding: binary\r\n\r\ninner", 58 },
		{ "4.1", "inner", 5 },
		{ "5", "ERR", 3 },
		{ "9", "NOPART", 6 },
	};

	test_begin("mail/binary: BINARY[section] of base64, qp, identity, nested");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len;
		char *got = binary_of(mixed, sizeof(mixed) - 1, cases[i].section, &len);

		if (len != cases[i].want_len ||
		    memcmp(got, cases[i].want, len) != 0) {
			printf("     section %s: got %zu bytes \"%s\"\n",
			    cases[i].section, len, got);
			test_assert(false);
		}
		free(got);
	}
	test_end();

	test_begin("mail/binary: BINARY[] of a message keeps its structure");
	{
		static const char plain[] = "Subject: s\n\nline 1\nline 2\n";
		static const char enc[] =
			"Subject: s\n"
			"Content-Transfer-Encoding: base64\n"
			"\n"
			"aGk=\n";
		size_t len;
		char *got = binary_of(plain, sizeof(plain) - 1, "", &len);

		/* nothing to decode: BODY[] with CRLF */
		test_assert_str(got, "Subject: s\r\n\r\nline 1\r\nline 2\r\n");
		free(got);
		got = binary_of(enc, sizeof(enc) - 1, "", &len);
		test_assert_str(got, "Subject: s\r\nContent-Transfer-Encoding: binary\r\n\r\nhi");
		free(got);
		got = binary_of(enc, sizeof(enc) - 1, "1", &len);
		test_assert_str(got, "hi");
		free(got);
		/* the whole multipart: the unknown encoding fails it */
		got = binary_of(mixed, sizeof(mixed) - 1, "", &len);
		test_assert_str(got, "ERR");
		free(got);
	}
	test_end();

	test_begin("mail/binary: quoted-printable text decoding");
	{
		static const struct { const char *in, *want; } qp[] = {
			{ "a  \r\nb", "a\r\nb" },
			{ "a=\r\nb", "ab" },
			{ "a= \t\nb", "ab" },
			{ "=41=42 x", "AB x" },
			{ "end=", "end" },
			{ "tab\t", "tab" },
			{ "", "" },
		};
		struct buf b;

		buf_init(&b, BUF_UNLIMITED);
		for (size_t i = 0; i < sizeof(qp) / sizeof(qp[0]); i++) {
			buf_reset(&b);
			buf_append_str(&b, "");
			test_assert(mime_decode_qp_text(qp[i].in, strlen(qp[i].in), &b) == 0);
			test_assert_str(buf_cstr(&b), qp[i].want);
		}
		buf_free(&b);
	}
	test_end();
}
TEST(test_binary_decode)

static void
test_binary_encode(void)
{
	static const char bin[] =
		"From: a@b.test\r\n"
		"Content-Type: application/octet-stream\r\n"
		"Content-Transfer-Encoding: binary\r\n"
		"\r\n"
		"\0-\xe4\n\r\n\n";
	static const char nocte[] =
		"Subject: x\r\n"
		"Content-Type: multipart/mixed; boundary=q\r\n"
		"\r\n"
		"--q\r\n"
		"Content-Type: text/plain\r\n"
		"\r\n"
		"plain\r\n"
		"--q\r\n"
		"Content-Type: application/x-raw\r\n"
		"\r\n"
		"a\0b\r\n"
		"--q--\r\n";
	struct mime_message *msg, *again;
	struct buf b, back;
	struct mime_part *part;

	test_begin("mail/binary: binary content base64-encoded for the store, and back");
	buf_init(&b, BUF_UNLIMITED);
	msg = mime_parse(bin, sizeof(bin) - 1, &mime_default_limits);
	test_assert(mime_binary_encode(msg, &b) == 1);
	test_assert(memchr(b.data, '\0', b.len) == NULL);
	test_assert(strstr(buf_cstr(&b), "Content-Transfer-Encoding: base64\r\n\r\nAC3kCg0KCg==\r\n") != NULL);
	/* decoding gives the 7 bytes back exactly */
	again = mime_parse(b.data, b.len, &mime_default_limits);
	part = mime_part_find(again, "1");
	buf_init(&back, BUF_UNLIMITED);
	test_assert(part != NULL && mime_binary_section(again, part, false, &back) == 0);
	test_assert(back.len == 7 && memcmp(back.data, "\0-\xe4\n\r\n\n", 7) == 0);
	buf_free(&back);
	mime_message_free(&again);
	mime_message_free(&msg);

	/* a part without Content-Transfer-Encoding gets one; the rest stays */
	buf_reset(&b);
	msg = mime_parse(nocte, sizeof(nocte) - 1, &mime_default_limits);
	test_assert(mime_binary_encode(msg, &b) == 1);
	test_assert(strstr(buf_cstr(&b), "Content-Type: text/plain\r\n\r\nplain\r\n--q\r\n") != NULL);
	test_assert(strstr(buf_cstr(&b), "Content-Type: application/x-raw\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\nYQBi\r\n--q--\r\n") != NULL);
	mime_message_free(&msg);

	/* nothing binary: unchanged */
	buf_reset(&b);
	msg = mime_parse("Subject: a\r\n\r\nb\r\n", 17, &mime_default_limits);
	test_assert(mime_binary_encode(msg, &b) == 0);
	test_assert(b.len == 17 && memcmp(b.data, "Subject: a\r\n\r\nb\r\n", 17) == 0);
	mime_message_free(&msg);

	/* a NUL in a header cannot be mended */
	buf_reset(&b);
	msg = mime_parse("Subject: a\0b\r\n\r\nc\r\n", 19, &mime_default_limits);
	test_assert(mime_binary_encode(msg, &b) == -1);
	mime_message_free(&msg);
	buf_free(&b);
	test_end();
}
TEST(test_binary_encode)
