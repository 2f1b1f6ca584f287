#include "mail/header.h"
#include "mail/mime.h"
#include "lib/buf.h"
#include "lib/test.h"
#include "lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mail/test_corpus.h"

/* The corpus is written with LF; crlf() gives the CRLF form. */
static char *
crlf(const char *s)
{
	struct buf b;

	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "");
	for (; *s != '\0'; s++) {
		if (*s == '\n')
			buf_append_c(&b, '\r');
		buf_append_c(&b, *s);
	}
	return buf_steal(&b);
}

static void
body_is(const struct mime_message *msg, const struct mime_part *p,
    const char *want)
{
	test_assert(p != NULL);
	if (p == NULL)
		return;
	test_assert(p->body_size == strlen(want) &&
	    memcmp(msg->data + p->body_offset, want, p->body_size) == 0);
}

static void
test_mime_nested(void)
{
	char *data = crlf(msg_nested);
	struct mime_message *msg;
	struct mime_part *p;

	test_begin("mime: nested multipart with message/rfc822 (CRLF)");
	msg = mime_parse(data, strlen(data), &mime_default_limits);
	test_assert(msg->nparts == 7);
	p = msg->root;
	test_assert((p->flags & MIME_PART_MULTIPART) != 0);
	test_assert(p->nchildren == 3);
	test_assert(p->hdr_offset == 0 && p->hdr_size == 185);
	test_assert(p->body_offset == 185 && p->body_size == 721);
	test_assert(p->flags == MIME_PART_MULTIPART);
	test_assert_str(mime_part_param(p, "BOUNDARY"), "outer");

	p = mime_part_find(msg, "1");
	test_assert(p != NULL && mime_part_is(p, "multipart", "alternative"));
	test_assert(p->hdr_offset == 217);
	test_assert(p->body_offset + p->body_size == 459);
	body_is(msg, mime_part_find(msg, "1.1"), "Hello =C3=A9");
	p = mime_part_find(msg, "1.1");
	test_assert(p->body_lines == 1 && p->body_vsize == 12);
	test_assert_str(p->encoding, "quoted-printable");
	test_assert((p->flags & MIME_PART_TEXT) != 0);
	body_is(msg, mime_part_find(msg, "1.2"), "<p>Hello</p>");
	test_assert(mime_part_find(msg, "1.3") == NULL);

	p = mime_part_find(msg, "2");
	test_assert(p != NULL && (p->flags & MIME_PART_MESSAGE) != 0);
	test_assert(p->body_size == 107 && p->body_lines == 5);
	test_assert_str(p->disposition, "inline");
	test_assert(p->message->hdr_offset == p->body_offset);
	/* 2.1: the body of the single-part message inside */
	body_is(msg, mime_part_find(msg, "2.1"), "Forwarded body.");
	test_assert(mime_part_find(msg, "2.1") == p->message);
	test_assert(mime_part_find(msg, "2.2") == NULL);

	p = mime_part_find(msg, "3");
	test_assert(p != NULL && mime_part_is(p, "application", "pdf"));
	test_assert_str(mime_part_param(p, "name"), "longname.pdf");
	test_assert(p->ndisp_params == 1);
	test_assert_str(p->disp_params[0].name, "filename*");
	test_assert_str(p->disp_params[0].value, "utf-8''%E2%82%AC.pdf");
	test_assert_str(p->id, "<part4@example.com>");
	test_assert_str(p->language, "en, de");
	body_is(msg, p, "JVBERi0=");

	test_assert(mime_part_find(msg, "") == msg->root);
	test_assert(mime_part_find(msg, "4") == NULL);
	test_assert(mime_part_find(msg, "0") == NULL);
	test_assert(mime_part_find(msg, "1.") == NULL);
	test_assert(mime_part_find(msg, "1..1") == NULL);
	test_assert(mime_part_find(msg, "x") == NULL);
	mime_message_free(&msg);
	test_assert(msg == NULL);
	free(data);
	test_end();

	test_begin("mime: the same message with LF line ends");
	msg = mime_parse(msg_nested, strlen(msg_nested), &mime_default_limits);
	test_assert(msg->nparts == 7);
	/* vsize counts LF as CRLF: the same as the CRLF form */
	test_assert(msg->root->hdr_vsize == 185);
	test_assert(msg->root->body_vsize == 721);
	p = mime_part_find(msg, "2");
	test_assert(p->body_vsize == 107 && p->body_size == 107 - 4);
	body_is(msg, mime_part_find(msg, "1.2"), "<p>Hello</p>");
	mime_message_free(&msg);
	test_end();
}
TEST(test_mime_nested)

static void
test_mime_broken(void)
{
	struct mime_message *msg;
	struct mime_part *p;

	test_begin("mime: missing close delimiter, multipart without boundary");
	msg = mime_parse(msg_broken, strlen(msg_broken), &mime_default_limits);
	p = msg->root;
	test_assert(p->nchildren == 3);
	test_assert((p->flags & MIME_PART_NO_END) != 0);
	body_is(msg, mime_part_find(msg, "1"), "first");
	p = mime_part_find(msg, "2");
	test_assert(p != NULL && (p->flags & MIME_PART_NO_BOUNDARY) != 0);
	test_assert(p->nchildren == 1);
	p = mime_part_find(msg, "2.1");
	test_assert(p != NULL && p->body_size == 0 && mime_part_is(p, "text", "plain"));
	p = mime_part_find(msg, "3");
	body_is(msg, p, "last part, no close\n");
	test_assert(p->body_lines == 1 && p->body_vsize == 21);
	mime_message_free(&msg);
	test_end();

	test_begin("mime: boundary never seen, no header end, empty input");
	{
		static const char m1[] = "Content-Type: multipart/mixed; boundary=zz\n\nbody\n";
		static const char m2[] = "Subject: no body\nFrom: x@y";

		msg = mime_parse(m1, strlen(m1), &mime_default_limits);
		test_assert((msg->root->flags & MIME_PART_NO_BOUNDARY) != 0);
		test_assert(msg->root->nchildren == 1);
		mime_message_free(&msg);
		msg = mime_parse(m2, strlen(m2), &mime_default_limits);
		test_assert(msg->root->hdr_size == strlen(m2));
		test_assert(msg->root->body_size == 0 && msg->root->body_lines == 0);
		test_assert(msg->root->hdr_lines == 2);
		mime_message_free(&msg);
		msg = mime_parse("", 0, &mime_default_limits);
		test_assert(msg->root->hdr_size == 0 && msg->root->body_size == 0);
		test_assert(mime_part_is(msg->root, "text", "plain"));
		test_assert(mime_part_find(msg, "1") == msg->root);
		mime_message_free(&msg);
	}
	test_end();
}
TEST(test_mime_broken)

static void
test_mime_limits(void)
{
	struct buf b;
	struct mime_message *msg;
	struct mime_limits lim = mime_default_limits;
	unsigned int depth = 0;
	struct mime_part *p;

	test_begin("mime: nesting past the depth limit is kept as a leaf");
	buf_init(&b, BUF_UNLIMITED);
	for (int i = 0; i < 100; i++)
		buf_printf(&b, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i);
	buf_append_str(&b, "\nleaf\n");
	lim.max_depth = 10;
	msg = mime_parse(b.data, b.len, &lim);
	for (p = msg->root; (p->flags & MIME_PART_MULTIPART) != 0; p = p->children)
		depth++;
	test_assert(depth == 9);
	test_assert((p->flags & MIME_PART_TRUNCATED) != 0);
	test_assert(msg->nparts == 10);
	mime_message_free(&msg);
	test_end();

	test_begin("mime: part count limit");
	buf_reset(&b);
	buf_append_str(&b, "Content-Type: multipart/mixed; boundary=x\n\n");
	for (int i = 0; i < 100; i++)
		buf_append_str(&b, "--x\n\npart\n");
	lim = mime_default_limits;
	lim.max_parts = 20;
	msg = mime_parse(b.data, b.len, &lim);
	test_assert(msg->nparts == 20 && msg->root->nchildren == 19);
	test_assert((msg->root->flags & MIME_PART_TRUNCATED) != 0);
	mime_message_free(&msg);
	test_end();

	test_begin("mime: huge header with thousands of fields");
	buf_reset(&b);
	buf_append_str(&b, "Subject: start");
	for (int i = 0; i < 20000; i++)
		buf_append_str(&b, "\n  folded continuation line of the subject");
	buf_append_c(&b, '\n');
	for (int i = 0; i < 5000; i++)
		buf_printf(&b, "X-Filler-%d: \xff\xfe 8-bit junk\n", i);
	buf_append_str(&b, "Content-Type: text/html; charset=\"iso-8859-1\"\n\n<b>body</b>\n");
	msg = mime_parse(b.data, b.len, &mime_default_limits);
	test_assert(mime_part_is(msg->root, "text", "html"));
	test_assert_str(mime_part_param(msg->root, "charset"), "iso-8859-1");
	test_assert(msg->root->body_size == 12);
	test_assert(msg->root->hdr_lines == 1 + 20000 + 5000 + 1 + 1);
	{
		char *subj = mail_header_get(b.data, 0, msg->root->body_offset,
		    "subject", 1000);

		test_assert(subj != NULL && strlen(subj) == 1000);
		test_assert(strncmp(subj, "start  folded", 13) == 0);
		free(subj);
	}
	mime_message_free(&msg);
	buf_free(&b);
	test_end();
}
TEST(test_mime_limits)

static void
test_mime_digest_and_header(void)
{
	static const char digest[] =
		"Content-Type: multipart/digest; boundary=\"d\"\n\n"
		"--d\n\nSubject: one\n\nbody one\n"
		"--d\nContent-Type: text/plain\n\nnot a message\n"
		"--d--\n";
	static const char hdr[] =
		"From x@y Thu Jan  1 00:00:00 2004\n"
		"Subject : spaced\n"
		"X-Folded: a\n\tb\n c\n"
		"garbage line\n"
		"To: <x@y>\n"
		"\n"
		"body: not a field\n";
	struct mime_message *msg;
	struct mail_header_iter it;
	struct mail_header_field f;
	const char *names[8];
	unsigned int n = 0;
	char *v;

	test_begin("mime: multipart/digest parts default to message/rfc822");
	msg = mime_parse(digest, strlen(digest), &mime_default_limits);
	test_assert(mime_part_is(mime_part_find(msg, "1"), "message", "rfc822"));
	test_assert(mime_part_find(msg, "1")->message != NULL);
	body_is(msg, mime_part_find(msg, "1.1"), "body one");
	test_assert(mime_part_is(mime_part_find(msg, "2"), "text", "plain"));
	mime_message_free(&msg);
	test_end();

	test_begin("mail header: iteration, unfolding, junk lines");
	mail_header_iter_init(&it, hdr, 0, mail_header_block_end(hdr, 0, strlen(hdr)));
	while (mail_header_next(&it, &f) > 0 && n < 8)
		names[n++] = f.name;
	test_assert(n == 3);
	test_assert(strncmp(names[0], "Subject :", 9) == 0);
	test_assert(strncmp(names[1], "X-Folded", 8) == 0);
	test_assert(strncmp(names[2], "To", 2) == 0);
	v = mail_header_get(hdr, 0, strlen(hdr), "x-folded", 100);
	test_assert_str(v, "a\tb c");
	free(v);
	v = mail_header_get(hdr, 0, strlen(hdr), "subject", 100);
	test_assert_str(v, "spaced");
	free(v);
	test_assert(mail_header_get(hdr, 0, strlen(hdr), "body", 100) == NULL);
	test_end();
}
TEST(test_mime_digest_and_header)

struct ct_case {
	const char *in;
	const char *want;	/* "type/subtype;n=v;..." or NULL for invalid */
};

static const struct ct_case ct_cases[] = {
	{ "text/plain", "text/plain" },
	{ " TEXT / Plain ; Charset = \"UTF-8\" ", "TEXT/Plain;Charset=UTF-8" },
	{ "text/plain (comment); charset=us-ascii (more)", "text/plain;charset=us-ascii" },
	{ "multipart/mixed; boundary=\"a \\\"q\\\" b\"", "multipart/mixed;boundary=a \"q\" b" },
	{ "application/x; name=my file.pdf", "application/x;name=my file.pdf" },
	{ "a/b;;; x=1;junk; y=\"2\"", "a/b;x=1;y=2" },
	{ "a/b; t*0=\"one \"; t*1=two; t*2=\" three\"", "a/b;t=one two three" },
	{ "a/b; t*1=two; t*0=one", "a/b;t=onetwo" },
	{ "a/b; t*0*=us-ascii'en'a%20; t*1*=b; u=1", "a/b;t*=us-ascii'en'a%20b;u=1" },
	{ "a/b; t*=utf-8''%E2%82%AC", "a/b;t*=utf-8''%E2%82%AC" },
	{ "a/b; t*1=orphan", "a/b;t*1=orphan" },
	/* more parameters than the first array holds; 8 kept (the test's
	   max_params), 16 read (twice that) */
	{ "a/b; p=1; q=2; r=3; s=4; t=5; u=6", "a/b;p=1;q=2;r=3;s=4;t=5;u=6" },
	{ "a/b; a=1; b=2; c=3; d=4; e=5; f=6; g=7; h=8; i=9; j=10",
	    "a/b;a=1;b=2;c=3;d=4;e=5;f=6;g=7;h=8" },
	{ "a/b; t*0=a; t*1=b; t*2=c; t*3=d; t*4=e; t*5=f; u=1",
	    "a/b;t=abcdef;u=1" },
	{ "a/b; a=1; b=2; c=3; d=4; e=5; f=6; g=7; h=8; i=9; j=10; k=11; l=12;"
	    " m=13; n=14; o=15; p=16; q=17; t*1=late; t*0=lost",
	    "a/b;a=1;b=2;c=3;d=4;e=5;f=6;g=7;h=8" },
	{ "text", NULL },
	{ "text/", NULL },
	{ "/plain", NULL },
	{ "", NULL },
};

static void
test_mime_content_type(void)
{
	test_begin("mime: Content-Type parameters, RFC 2231 continuations");
	for (size_t i = 0; i < sizeof(ct_cases) / sizeof(ct_cases[0]); i++) {
		char *type, *sub;
		struct mime_param *params;
		unsigned int n;
		struct buf b;

		if (mime_parse_content_type(ct_cases[i].in, true, 8, &type, &sub,
		    &params, &n) < 0) {
			test_assert(ct_cases[i].want == NULL);
			continue;
		}
		buf_init(&b, BUF_UNLIMITED);
		buf_printf(&b, "%s/%s", type, sub);
		for (unsigned int j = 0; j < n; j++)
			buf_printf(&b, ";%s=%s", params[j].name, params[j].value);
		if (ct_cases[i].want == NULL ||
		    strcmp(ct_cases[i].want, buf_cstr(&b)) != 0)
			printf("     case %zu: %s\n", i, buf_cstr(&b));
		test_assert(ct_cases[i].want != NULL &&
		    strcmp(ct_cases[i].want, buf_cstr(&b)) == 0);
		buf_free(&b);
		free(type);
		free(sub);
		mime_params_free(params, n);
	}
	test_end();
}
TEST(test_mime_content_type)
