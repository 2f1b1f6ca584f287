#include "lib/buf.h"
#include "lib/test.h"
#include "mail/decode.h"
#include "mail/downgrade.h"
#include "mail/mime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int
to_buf(void *ctx, const void *data, size_t len)
{
	return buf_append(ctx, data, len);
}

static void
test_encode_qp(void)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "", "" },
		{ "plain text\r\n", "plain text\r\n" },
		{ "caf\xc3\xa9\r\n", "caf=C3=A9\r\n" },
		{ "a = b\r\n", "a =3D b\r\n" },
		/* white space before a line end or at the end is encoded */
		{ "trailing \r\nx\t", "trailing=20\r\nx=09" },
		{ "two  \r\n", "two =20\r\n" },
		/* bare LF is a line break; bare CR and controls are encoded */
		{ "a\nb", "a\r\nb" },
		{ "a\rb\x01", "a=0Db=01" },
		{ "\r\n\r\n", "\r\n\r\n" },
		/* 76 characters fit on a line that ends there ... */
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n" },
		/* ... 77 do not: 75 and the soft break's "=" */
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=\r\naa\r\n" },
		/* an =XX is never split */
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xe9\r\n",
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=\r\n=E9\r\n" },
	};
	struct buf b;

	test_begin("mail/downgrade: quoted-printable encoder");
	buf_init(&b, BUF_UNLIMITED);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&b);
		test_assert(mail_encode_qp(cases[i].in, strlen(cases[i].in), to_buf,
		    &b) == 0);
		test_assert_str(b.data != NULL ? buf_cstr(&b) : "", cases[i].out);
	}
	/* Any bytes come back from the decoder as they were (CRLF kept), on
	 * lines of at most 76 characters and in 7 bits. */
	srand(7);
	for (int round = 0; round < 200; round++) {
		char in[600];
		size_t n = (size_t)(rand() % (int)sizeof(in));
		struct buf dec;
		const char *p, *line;

		for (size_t k = 0; k < n; k++) {
			int r = rand() % 10;

			in[k] = r == 0 ? ' ' : r == 1 ? '=' : r == 2 ? '\t' :
			    (char)(rand() % 256);
			/* line breaks as CRLF pairs only */
			if (in[k] == '\n' || in[k] == '\r')
				in[k] = 'x';
			if (r == 3 && k + 1 < n) {
				in[k] = '\r';
				in[++k] = '\n';
			}
		}
		buf_reset(&b);
		test_assert(mail_encode_qp(in, n, to_buf, &b) == 0);
		test_assert(!mail_has_8bit(b.data, b.len));
		for (line = p = b.data != NULL ? b.data : ""; *p != '\0'; p++)
			if (*p == '\n') {
				test_assert(p - line <= 77);
				line = p + 1;
			}
		test_assert(p - line <= 76);
		buf_init(&dec, BUF_UNLIMITED);
		decode_qp(b.data != NULL ? b.data : "", b.len, &dec);
		test_assert_int(dec.len, n);
		test_assert(n == 0 || memcmp(dec.data, in, n) == 0);
		buf_free(&dec);
	}
	buf_free(&b);
	test_end();
}
TEST(test_encode_qp)

static void
test_encode_base64(void)
{
	static const struct {
		const char *in, *out;
		bool eol;
		size_t len;	/* 0: strlen */
	} cases[] = {
		{ "", "", true, 0 },
		{ "a", "YQ==\r\n", true, 0 },
		{ "ab", "YWI=", false, 0 },
		{ "abc", "YWJj", false, 0 },
		{ "\xff\xfe\x00", "//4A", false, 3 },
		/* 57 bytes are one 76-character line */
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		  "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFh", false, 0 },
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
		  "YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFh\r\nYg==\r\n", true, 0 },
	};
	struct buf b;

	test_begin("mail/downgrade: base64 encoder");
	buf_init(&b, BUF_UNLIMITED);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = cases[i].len != 0 ? cases[i].len : strlen(cases[i].in);
		buf_reset(&b);
		test_assert(mail_encode_base64(cases[i].in, n, cases[i].eol,
		    to_buf, &b) == 0);
		test_assert_str(b.data != NULL ? buf_cstr(&b) : "", cases[i].out);
	}
	buf_free(&b);
	test_end();
}
TEST(test_encode_base64)

/* The leaves of a message as "type/subtype:decoded body" lines, for
 * comparing a message with its conversion. */
static void
leaves(const char *data, const struct mime_part *p, struct buf *out)
{
	struct buf dec;
	const char *body = data + p->body_offset;

	if (p->flags & MIME_PART_MULTIPART) {
		for (const struct mime_part *c = p->children; c != NULL;
		    c = c->next)
			leaves(data, c, out);
		return;
	}
	if ((p->flags & MIME_PART_MESSAGE) && p->message != NULL) {
		leaves(data, p->message, out);
		return;
	}
	buf_init(&dec, BUF_UNLIMITED);
	if (p->encoding != NULL && strcasecmp(p->encoding, "base64") == 0)
		decode_base64(body, p->body_size, &dec);
	else if (p->encoding != NULL &&
	    strcasecmp(p->encoding, "quoted-printable") == 0)
		decode_qp(body, p->body_size, &dec);
	else
		buf_append(&dec, body, p->body_size);
	buf_printf(out, "%s/%s:", p->type, p->subtype);
	buf_append(out, dec.data != NULL ? dec.data : "", dec.len);
	buf_append_str(out, "\n--\n");
	buf_free(&dec);
}

static char *
leaves_of(const char *data, size_t len)
{
	struct mime_message *m = mime_parse(data, len, &mime_default_limits);
	struct buf out;

	buf_init(&out, BUF_UNLIMITED);
	buf_append_str(&out, "");
	leaves(data, m->root, &out);
	mime_message_free(&m);
	return buf_steal(&out);
}

#define CRLF "\r\n"

static const char msg_simple[] =
    "From: a@example.test" CRLF
    "Subject: =?UTF-8?B?Q2Fmw6k=?=" CRLF
    "MIME-Version: 1.0" CRLF
    "Content-Type: text/plain; charset=utf-8" CRLF
    "Content-Transfer-Encoding: 8bit" CRLF
    CRLF
    "Un caf\xc3\xa9, s'il vous pla\xc3\xaet." CRLF
    "=> fin" CRLF;

static const char msg_no_mime[] =
    "From: a@example.test" CRLF
    "Subject: old" CRLF
    CRLF
    "Gr\xc3\xbc\xc3\x9f" "e" CRLF;

static const char msg_tree[] =
    "From: a@example.test" CRLF
    "MIME-Version: 1.0" CRLF
    "Content-Type: multipart/mixed; boundary=\"outer\"" CRLF
    "Content-Transfer-Encoding: 8bit" CRLF
    CRLF
    "Pr\xc3\xa9" "ambule with 8 bits, never shown" CRLF
    "plain preamble line" CRLF
    "--outer" CRLF
    "Content-Type: multipart/alternative; boundary=inner" CRLF
    CRLF
    "--inner" CRLF
    "Content-Type: text/plain; charset=utf-8" CRLF
    "Content-Transfer-Encoding: 8bit" CRLF
    CRLF
    "na\xc3\xafve" CRLF
    "--inner" CRLF
    "Content-Type: text/html; charset=utf-8" CRLF
    CRLF
    "<p>na\xc3\xafve</p>" CRLF
    "--inner--" CRLF
    "--outer" CRLF
    "Content-Type: image/png" CRLF
    "Content-Transfer-Encoding: base64" CRLF
    CRLF
    "iVBORw0KGgo=" CRLF
    "--outer" CRLF
    "Content-Type: application/octet-stream" CRLF
    "Content-Transfer-Encoding: 8bit" CRLF
    CRLF
    "\x00\x01\xff\xfe binary" CRLF
    "--outer" CRLF
    "Content-Type: message/rfc822" CRLF
    "Content-Transfer-Encoding: 8bit" CRLF
    CRLF
    "From: b@example.test" CRLF
    "Subject: inner" CRLF
    "Content-Type: text/plain; charset=iso-8859-1" CRLF
    CRLF
    "\xe9t\xe9" CRLF
    "--outer" CRLF
    "Content-Type: text/plain" CRLF
    "Content-Transfer-Encoding: quoted-printable" CRLF
    CRLF
    "raw \xc3\xa9 in qp =C3=A9" CRLF
    "--outer--" CRLF
    "epilogue \xff" CRLF;

static void
test_downgrade_converts(void)
{
	static const struct {
		const char *name;
		const char *msg;
		size_t len;
		const char *const want[8];	/* substrings of the output */
		const char *const gone[4];	/* must not be there */
	} cases[] = {
		{ "text/plain 8bit", msg_simple, sizeof(msg_simple) - 1,
		  { "From: a@example.test" CRLF "Subject: =?UTF-8?B?Q2Fmw6k=?=" CRLF
		    "MIME-Version: 1.0" CRLF "Content-Type: text/plain; charset=utf-8"
		    CRLF "Content-Transfer-Encoding: quoted-printable" CRLF CRLF
		    "Un caf=C3=A9, s'il vous pla=C3=AEt." CRLF "=3D> fin" CRLF },
		  { "8bit" } },
		{ "no MIME-Version", msg_no_mime, sizeof(msg_no_mime) - 1,
		  { "Subject: old" CRLF "MIME-Version: 1.0" CRLF
		    "Content-Transfer-Encoding: quoted-printable" CRLF CRLF
		    "Gr=C3=BC=C3=9Fe" CRLF }, { NULL } },
		{ "a tree", msg_tree, sizeof(msg_tree) - 1,
		  { "Content-Type: multipart/mixed; boundary=\"outer\"" CRLF
		    "Content-Transfer-Encoding: 7bit" CRLF CRLF
		    "plain preamble line" CRLF "--outer" CRLF
		    "Content-Type: multipart/alternative; boundary=inner" CRLF CRLF
		    "--inner" CRLF,
		    "Content-Type: text/plain; charset=utf-8" CRLF
		    "Content-Transfer-Encoding: quoted-printable" CRLF CRLF
		    "na=C3=AFve" CRLF "--inner" CRLF,
		    "Content-Type: text/html; charset=utf-8" CRLF
		    "Content-Transfer-Encoding: quoted-printable" CRLF CRLF
		    "<p>na=C3=AFve</p>" CRLF "--inner--" CRLF "--outer" CRLF,
		    /* untouched: no 8-bit byte in it */
		    "Content-Type: image/png" CRLF "Content-Transfer-Encoding: base64"
		    CRLF CRLF "iVBORw0KGgo=" CRLF "--outer" CRLF,
		    "Content-Type: application/octet-stream" CRLF
		    "Content-Transfer-Encoding: base64" CRLF CRLF "AAH//iBiaW5hcnk="
		    CRLF "--outer" CRLF,
		    "Content-Type: message/rfc822" CRLF
		    "Content-Transfer-Encoding: 7bit" CRLF CRLF
		    "From: b@example.test" CRLF "Subject: inner" CRLF
		    "Content-Type: text/plain; charset=iso-8859-1" CRLF
		    "MIME-Version: 1.0" CRLF
		    "Content-Transfer-Encoding: quoted-printable" CRLF CRLF
		    "=E9t=E9" CRLF "--outer" CRLF,
		    "Content-Transfer-Encoding: quoted-printable" CRLF CRLF
		    "raw =C3=A9 in qp =C3=A9" CRLF "--outer--" CRLF },
		  { "ambule", "epilogue", "8bit" } },
	};
	struct buf out;

	test_begin("mail/downgrade: 8-bit parts re-encoded, the tree kept");
	buf_init(&out, BUF_UNLIMITED);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *reason = NULL;
		char *before, *after;

		buf_reset(&out);
		test_assert_int(mail_downgrade(cases[i].msg, cases[i].len,
		    &mime_default_limits, to_buf, &out, &reason), 1);
		test_assert(!mail_has_8bit(out.data, out.len));
		for (size_t k = 0; k < 8 && cases[i].want[k] != NULL; k++) {
			bool found = strstr(buf_cstr(&out), cases[i].want[k]) != NULL;

			test_assert(found);
			if (!found)
				test_note_str(buf_cstr(&out), cases[i].want[k]);
		}
		for (size_t k = 0; k < 4 && cases[i].gone[k] != NULL; k++)
			test_assert(strstr(buf_cstr(&out), cases[i].gone[k]) == NULL);
		/* Decoded, every leaf says what it said before. */
		before = leaves_of(cases[i].msg, cases[i].len);
		after = leaves_of(out.data, out.len);
		test_assert_str(after, before);
		free(before);
		free(after);
	}
	/* Nothing to do: 0, nothing written. */
	buf_reset(&out);
	{
		static const char seven[] = "Subject: x" CRLF CRLF "ascii" CRLF;
		const char *reason = NULL;

		test_assert_int(mail_downgrade(seven, sizeof(seven) - 1,
		    &mime_default_limits, to_buf, &out, &reason), 0);
		test_assert_int(out.len, 0);
	}
	buf_free(&out);
	test_end();
}
TEST(test_downgrade_converts)

static int
fail_writer(void *ctx, const void *data, size_t len)
{
	(void)ctx;
	(void)data;
	(void)len;
	return -1;
}

static void
test_downgrade_refuses(void)
{
	static const struct {
		const char *msg, *reason;
	} cases[] = {
		{ "Subject: caf\xc3\xa9" CRLF CRLF "caf\xc3\xa9" CRLF, "header" },
		{ "Subject: ascii" CRLF "Content-Type: multipart/mixed; boundary=b" CRLF
		  CRLF "--b" CRLF "Content-Type: application/pdf; name=\"r\xc3\xa9sum\xc3\xa9.pdf\""
		  CRLF CRLF "x" CRLF "--b--" CRLF, "header" },
		{ "Content-Type: multipart/report; boundary=b" CRLF CRLF "--b" CRLF
		  "Content-Type: message/delivery-status" CRLF CRLF
		  "Final-Recipient: rfc822; caf\xc3\xa9@example.test" CRLF "--b--" CRLF,
		  "message/*" },
		{ "Content-Type: text/plain" CRLF "Content-Transfer-Encoding: x-uuencode"
		  CRLF CRLF "\xff" CRLF, "unknown" },
		{ "Content-Type: multipart/mixed" CRLF CRLF "no boundary \xff" CRLF,
		  "boundary" },
	};
	struct buf out;

	test_begin("mail/downgrade: what has no 7-bit form");
	buf_init(&out, BUF_UNLIMITED);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *reason = NULL;

		buf_reset(&out);
		test_assert_int(mail_downgrade(cases[i].msg, strlen(cases[i].msg),
		    &mime_default_limits, to_buf, &out, &reason), -1);
		test_assert(reason != NULL && strstr(reason, cases[i].reason) != NULL);
	}
	/* Nesting past the parser's limits. */
	{
		static const struct mime_limits lim = {
			.max_depth = 3, .max_parts = 100, .max_params = 8,
			.max_value = 1024,
		};
		static const char deep[] =
		    "Content-Type: multipart/mixed; boundary=a" CRLF CRLF "--a" CRLF
		    "Content-Type: multipart/mixed; boundary=b" CRLF CRLF "--b" CRLF
		    "Content-Type: multipart/mixed; boundary=c" CRLF CRLF "--c" CRLF
		    CRLF "\xe9" CRLF "--c--" CRLF "--b--" CRLF "--a--" CRLF;
		const char *reason = NULL;

		test_assert_int(mail_downgrade(deep, sizeof(deep) - 1, &lim,
		    to_buf, &out, &reason), -1);
		test_assert(reason != NULL && strstr(reason, "limits") != NULL);
	}
	/* A writer that fails. */
	{
		const char *reason = NULL;

		test_assert_int(mail_downgrade(msg_simple, sizeof(msg_simple) - 1,
		    &mime_default_limits, fail_writer, NULL, &reason), -1);
		test_assert(reason != NULL && strstr(reason, "writing") != NULL);
	}
	buf_free(&out);
	test_end();
}
TEST(test_downgrade_refuses)

static void
test_8bit_where(void)
{
	static const struct {
		const char *msg;
		unsigned int want;
	} cases[] = {
		{ "Subject: x" CRLF CRLF "ascii" CRLF, 0 },
		{ "Subject: x" CRLF CRLF "\xe9" CRLF, MAIL_8BIT_BODY },
		{ "Subject: \xe9" CRLF CRLF "x" CRLF, MAIL_8BIT_HEADER },
		{ "Subject: \xe9" CRLF CRLF "\xe9" CRLF,
		  MAIL_8BIT_HEADER | MAIL_8BIT_BODY },
		{ "Content-Type: multipart/mixed; boundary=b" CRLF CRLF "--b" CRLF
		  "Content-Disposition: attachment; filename=\"\xc3\xa9.txt\"" CRLF CRLF
		  "x" CRLF "--b--" CRLF, MAIL_8BIT_HEADER },
		{ "Content-Type: multipart/mixed; boundary=b" CRLF CRLF "\xe9" CRLF
		  "--b" CRLF CRLF "x" CRLF "--b--" CRLF, MAIL_8BIT_BODY },
	};

	test_begin("mail/downgrade: where the 8-bit bytes are");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		test_assert_int(mail_8bit_where(cases[i].msg, strlen(cases[i].msg),
		    &mime_default_limits), cases[i].want);
	test_assert(!mail_has_8bit("", 0));
	test_assert(mail_has_8bit("0123456789abcdef\x80", 17));
	test_assert(!mail_has_8bit("0123456789abcdef\x80", 16));
	test_end();
}
TEST(test_8bit_where)
