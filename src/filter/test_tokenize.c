#include "filter/tokenize.h"
#include "lib/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
test_tokenize_text(void)
{
	static const char text[] = "Hello, WORLD! e-mail don't a an the $100 "
	    "caf\xc3\xa9 \xff\xfe bad-utf8 Visit https://User@Www.Shop.Example.COM/x?y "
	    "and www.cheap.example.";
	struct token_set s;
	char longw[100];

	test_begin("tokenize: words, joiners, case, UTF-8, long words, links");
	token_set_init(&s, 100);
	tokenize_text(&s, "", text, strlen(text));
	test_assert(token_set_contains(&s, "hello"));
	test_assert(token_set_contains(&s, "world"));
	test_assert(token_set_contains(&s, "e-mail"));
	test_assert(token_set_contains(&s, "don't"));
	test_assert(token_set_contains(&s, "the"));
	test_assert(!token_set_contains(&s, "an"));
	test_assert(token_set_contains(&s, "$100"));
	test_assert(token_set_contains(&s, "caf\xc3\xa9"));
	test_assert(token_set_contains(&s, "bad-utf8"));
	test_assert(token_set_contains(&s, "url:www.shop.example.com"));
	test_assert(token_set_contains(&s, "url:shop.example.com"));
	test_assert(token_set_contains(&s, "url:example.com"));
	test_assert(!token_set_contains(&s, "url:com"));
	test_assert(token_set_contains(&s, "url:www.cheap.example"));
	test_assert(!token_set_contains(&s, "user"));
	token_set_free(&s);

	/* CJK: bigrams, and a Latin word right after the run */
	token_set_init(&s, 100);
	{
		/* 無料で今すぐ (6 characters) then "free" */
		static const char cjk[] = "\xe7\x84\xa1\xe6\x96\x99\xe3\x81\xa7"
		    "\xe4\xbb\x8a\xe3\x81\x99\xe3\x81\x90" "free \xe5\x8f\xb7";

		tokenize_text(&s, "subject:", cjk, strlen(cjk));
		test_assert(token_set_contains(&s,
		    "subject:cjk:\xe7\x84\xa1\xe6\x96\x99"));
		test_assert(token_set_contains(&s,
		    "subject:cjk:\xe3\x81\x99\xe3\x81\x90"));
		test_assert(token_set_contains(&s, "subject:free"));
		test_assert(token_set_contains(&s, "subject:cjk:\xe5\x8f\xb7"));
		test_assert(s.count == 7);
	}
	token_set_free(&s);

	token_set_init(&s, 10);
	memset(longw, 'x', sizeof(longw) - 1);
	longw[sizeof(longw) - 1] = '\0';
	tokenize_text(&s, "subject:", longw, strlen(longw));
	test_assert(s.count == 1);
	test_assert_str(s.tokens[0], "subject:skip:x:90");
	/* the set is bounded and deduplicated */
	for (int i = 0; i < 50; i++) {
		char w[48];

		snprintf(w, sizeof(w), "word%d word%d", i, i);
		tokenize_text(&s, "", w, strlen(w));
	}
	test_assert(s.count == 10);
	test_assert(!token_set_add(&s, "another", 7));
	token_set_free(&s);
	test_end();
}
TEST(test_tokenize_text)

static void
test_tokenize_message(void)
{
	static const char msg[] =
	    "From: \"Cheap Pills\" <offers@pharma.example>\r\n"
	    "Subject: =?UTF-8?B?QnV5IFZJQUdSQSBub3c=?=\r\n"
	    "Message-ID: <123@mailer.pharma.example>\r\n"
	    "X-Mailer: BulkSender 3000\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/alternative;\r\n"
	    "\tboundary=\"b1\"\r\n"
	    "\r\n"
	    "preamble words ignored\r\n"
	    "--b1\r\n"
	    "Content-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: quoted-printable\r\n"
	    "\r\n"
	    "Lowest pri=\r\nces on medic=C3=A9ments\r\n"
	    "--b1\r\n"
	    "Content-Type: text/html\r\n"
	    "Content-Transfer-Encoding: base64\r\n"
	    "\r\n"
	    "PGh0bWw+PHN0eWxlPi5oaWRkZW57fTwvc3R5bGU+PGEgaHJlZj0iaHR0cDovL2NsaWNr\r\n"
	    "LnBoYXJtYS5leGFtcGxlL2J1eSI+T3JkZXImbmJzcDt0b2RheTwvYT48L2h0bWw+\r\n"
	    "--b1\r\n"
	    "Content-Type: application/zip; name=x.zip\r\n"
	    "\r\n"
	    "zipzipzip\r\n"
	    "--b1--\r\n"
	    "epilogue words ignored\r\n";
	struct token_set s;

	test_begin("tokenize: a MIME message, decoded, header tokens prefixed");
	token_set_init(&s, 1000);
	tokenize_message(&s, msg, strlen(msg));
	test_assert(token_set_contains(&s, "from:offers@pharma.example"));
	test_assert(token_set_contains(&s, "from:@pharma.example"));
	test_assert(token_set_contains(&s, "from:cheap"));
	test_assert(token_set_contains(&s, "subject:viagra"));
	test_assert(token_set_contains(&s, "subject:buy"));
	test_assert(token_set_contains(&s, "msgid:mailer.pharma.example"));
	test_assert(token_set_contains(&s, "x-mailer:bulksender"));
	test_assert(token_set_contains(&s, "ct:multipart/alternative"));
	test_assert(token_set_contains(&s, "ct:text/plain"));
	test_assert(token_set_contains(&s, "charset:utf-8"));
	test_assert(token_set_contains(&s, "ct:application/zip"));
	test_assert(token_set_contains(&s, "prices"));
	test_assert(token_set_contains(&s, "medic\xc3\xa9ments"));
	test_assert(token_set_contains(&s, "url:click.pharma.example"));
	test_assert(token_set_contains(&s, "url:pharma.example"));
	test_assert(token_set_contains(&s, "order"));
	test_assert(token_set_contains(&s, "today"));
	test_assert(!token_set_contains(&s, "hidden"));
	test_assert(!token_set_contains(&s, "preamble"));
	test_assert(!token_set_contains(&s, "epilogue"));
	test_assert(!token_set_contains(&s, "zipzipzip"));
	token_set_free(&s);

	/* one byte at a time: every prefix is tokenized without trouble */
	for (size_t n = 0; n <= strlen(msg); n++) {
		token_set_init(&s, 1000);
		tokenize_message(&s, msg, n);
		token_set_free(&s);
	}
	test_end();
}
TEST(test_tokenize_message)

static void
test_tokenize_deep(void)
{
	char *msg = malloc(64 * 1024), *p = msg;
	struct token_set s;

	test_begin("tokenize: nesting past the depth limit is not walked");
	for (int i = 0; i < 200; i++)
		p += sprintf(p, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i);
	p += sprintf(p, "\ndeepword\n");
	token_set_init(&s, 100);
	tokenize_message(&s, msg, (size_t)(p - msg));
	test_assert(!token_set_contains(&s, "deepword"));
	test_assert(token_set_contains(&s, "ct:multipart/mixed"));
	token_set_free(&s);
	free(msg);
	test_end();
}
TEST(test_tokenize_deep)
