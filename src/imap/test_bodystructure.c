#include "imap/bodystructure.h"
#include "lib/buf.h"
#include "lib/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mail/test_corpus.h"

static const char msg_simple[] =
	"From: \"Joe Q. Public\" <john.q.public@example.com>\n"
	"To: Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>\n"
	"Cc: <boss@nil.test>, \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>\n"
	"Reply-To:\n"
	"Subject: =?UTF-8?B?w6lsw6h2ZQ==?=\n"
	" test\n"
	"Date: Tue, 1 Jul 2003 10:52:37 +0200\n"
	"Message-ID: <5678.21-Nov-1997@example.com>\n"
	"In-Reply-To: <a@b>\n"
	"\n"
	"Hi.\n"
	"Line 2.\n";

static const char msg_8bit[] =
	"Subject: Gr\xc3\xbc\xc3\x9f" "e\n"
	"From: J\xc3\xbcrgen <j@x.test>\n"
	"To: \xe9t\xe9 <e@x.test>\n"
	"\n"
	"body\n";

#define ALICE "((\"Alice\" NIL \"alice\" \"example.com\"))"
#define CAROL "((\"Carol\" NIL \"carol\" \"example.net\"))"
#define INNER_ENV "(NIL \"inner message\" " CAROL " " CAROL " " CAROL \
	" NIL NIL NIL NIL \"<inner@example.net>\")"

static char *
render(const char *data, bool bodystructure, bool extended, bool utf8)
{
	struct mime_message *msg = mime_parse(data, strlen(data),
	    &mime_default_limits);
	struct buf out;

	buf_init(&out, BUF_UNLIMITED);
	buf_append_str(&out, "");
	if (bodystructure)
		imap_bodystructure_render(&out, msg, msg->root, extended, utf8);
	else
		imap_envelope_render(&out, data, msg->root->hdr_offset,
		    msg->root->hdr_offset + msg->root->hdr_size, utf8);
	mime_message_free(&msg);
	return buf_steal(&out);
}

static void
check(char *got, const char *want)
{
	test_assert_str(got, want);
	free(got);
}

static void
test_imap_envelope(void)
{
	test_begin("imap ENVELOPE: addresses, defaults, RFC 2047 left as sent");
	check(render(msg_simple, false, false, false),
	    "(\"Tue, 1 Jul 2003 10:52:37 +0200\" \"=?UTF-8?B?w6lsw6h2ZQ==?= test\" "
	    "((\"Joe Q. Public\" NIL \"john.q.public\" \"example.com\")) "
	    "((\"Joe Q. Public\" NIL \"john.q.public\" \"example.com\")) "
	    "((\"Joe Q. Public\" NIL \"john.q.public\" \"example.com\")) "
	    "((\"Mary Smith\" NIL \"mary\" \"x.test\")(NIL NIL \"jdoe\" \"example.org\")"
	    "(\"Who?\" NIL \"one\" \"y.test\")) "
	    "((NIL NIL \"boss\" \"nil.test\")(\"Giant; \\\"Big\\\" Box\" NIL "
	    "\"sysservices\" \"example.net\")) "
	    "NIL \"<a@b>\" \"<5678.21-Nov-1997@example.com>\")");
	check(render(msg_nested, false, false, false),
	    "(\"Wed, 2 Jul 2003 10:00:00 +0000\" \"nested\" " ALICE " " ALICE " "
	    ALICE " ((\"Bob\" NIL \"bob\" \"example.org\")) NIL NIL NIL NIL)");
	check(render("\n", false, false, false),
	    "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
	test_end();

	test_begin("imap ENVELOPE: groups, routes, missing parts, comments");
	check(render("To: A Group: a@b.c, \"x y\" <d@e.f>;, z@y.x\n"
	    "Cc: undisclosed-recipients:;\n"
	    "Bcc: <@route1,@route2:user@host>, root, joe@x.test (Joe)\n\n",
	    false, false, false),
	    "(NIL NIL NIL NIL NIL "
	    "((NIL NIL \"A Group\" NIL)(NIL NIL \"a\" \"b.c\")(\"x y\" NIL \"d\" \"e.f\")"
	    "(NIL NIL NIL NIL)(NIL NIL \"z\" \"y.x\")) "
	    "((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) "
	    "((NIL \"@route1,@route2\" \"user\" \"host\")(NIL NIL \"root\" \"MISSING_DOMAIN\")"
	    "(\"Joe\" NIL \"joe\" \"x.test\")) NIL NIL)");
	/* a comment after a bare addr-spec is its display name (imaptest
	   fetch-envelope); comments inside <> are not */
	check(render("From: user@domain (Real (x) Name)\n"
	    "To: <u (c)@ (c) d.org>, a@b (A), c@d\n\n", false, false, false),
	    "(NIL NIL ((\"Real (x) Name\" NIL \"user\" \"domain\")) "
	    "((\"Real (x) Name\" NIL \"user\" \"domain\")) "
	    "((\"Real (x) Name\" NIL \"user\" \"domain\")) "
	    "((NIL NIL \"u\" \"d.org\")(\"A\" NIL \"a\" \"b\")(NIL NIL \"c\" \"d\")) "
	    "NIL NIL NIL NIL)");
	/* a stray ')' once stalled the tokenizer (found by fuzz_mime) */
	check(render("To: x <e)x.test>\n\n", false, false, false),
	    "(NIL NIL NIL NIL NIL ((\"x\" NIL \"e)x.test\" \"MISSING_DOMAIN\")) "
	    "NIL NIL NIL NIL)");
	test_end();

	test_begin("imap ENVELOPE: 8-bit header text as literal unless UTF8=ACCEPT");
	check(render(msg_8bit, false, false, false),
	    "(NIL {7}\r\nGr\xc3\xbc\xc3\x9f" "e "
	    "(({7}\r\nJ\xc3\xbcrgen NIL \"j\" \"x.test\")) "
	    "(({7}\r\nJ\xc3\xbcrgen NIL \"j\" \"x.test\")) "
	    "(({7}\r\nJ\xc3\xbcrgen NIL \"j\" \"x.test\")) "
	    "(({3}\r\n\xe9t\xe9 NIL \"e\" \"x.test\")) NIL NIL NIL NIL)");
	check(render(msg_8bit, false, false, true),
	    "(NIL \"Gr\xc3\xbc\xc3\x9f" "e\" "
	    "((\"J\xc3\xbcrgen\" NIL \"j\" \"x.test\")) "
	    "((\"J\xc3\xbcrgen\" NIL \"j\" \"x.test\")) "
	    "((\"J\xc3\xbcrgen\" NIL \"j\" \"x.test\")) "
	    "(({3}\r\n\xe9t\xe9 NIL \"e\" \"x.test\")) NIL NIL NIL NIL)");
	test_end();
}
TEST(test_imap_envelope)

static void
test_imap_address_text(void)
{
	static const struct { const char *in, *want; } t[] = {
		{ "user-from@domain.org", "<user-from@domain.org>, " },
		{ "<user-from (comment)@ (comment) domain.org>",
		  "<user-from@domain.org>, " },
		{ "RealFrom <user-from@domain.org>",
		  "RealFrom <user-from@domain.org>, " },
		{ "user@domain.org (Real)", "Real <user@domain.org>, " },
		{ "g: a@b, \"x y\" <c@d>;", "<a@b>, x y <c@d>, " },
		{ "", "" },
	};

	/* what SEARCH FROM/TO/CC/BCC match (imaptest search-addresses) */
	test_begin("imap address list as search text");
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *got = imap_address_list_text(t[i].in);

		test_assert_str(got, t[i].want);
		free(got);
	}
	test_end();
}
TEST(test_imap_address_text)

static void
test_imap_bodystructure(void)
{
	test_begin("imap BODYSTRUCTURE: single text part");
	check(render(msg_simple, true, true, false),
	    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 14 2 "
	    "NIL NIL NIL NIL)");
	check(render(msg_simple, true, false, false),
	    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 14 2)");
	test_end();

	test_begin("imap BODYSTRUCTURE: nested multipart with message/rfc822");
	check(render(msg_nested, true, true, false),
	    "("
	    "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 12 1 NIL NIL NIL NIL)"
	    "(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 12 1 NIL NIL NIL NIL)"
	    " \"alternative\" (\"boundary\" \"inner\") NIL NIL NIL)"
	    "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 107 " INNER_ENV
	    " (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 15 1 NIL NIL NIL NIL)"
	    " 5 NIL (\"inline\" NIL) NIL NIL)"
	    "(\"application\" \"pdf\" (\"name\" \"longname.pdf\") \"<part4@example.com>\" NIL"
	    " \"base64\" 8 NIL (\"attachment\" (\"filename*\" \"utf-8''%E2%82%AC.pdf\"))"
	    " (\"en\" \"de\") NIL)"
	    " \"mixed\" (\"boundary\" \"outer\") NIL NIL NIL)");
	check(render(msg_nested, true, false, false),
	    "("
	    "((\"text\" \"plain\" (\"charset\" \"utf-8\") NIL NIL \"quoted-printable\" 12 1)"
	    "(\"text\" \"html\" (\"charset\" \"utf-8\") NIL NIL \"7bit\" 12 1)"
	    " \"alternative\")"
	    "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 107 " INNER_ENV
	    " (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 15 1)"
	    " 5)"
	    "(\"application\" \"pdf\" (\"name\" \"longname.pdf\") \"<part4@example.com>\" NIL"
	    " \"base64\" 8)"
	    " \"mixed\")");
	test_end();

	test_begin("imap BODYSTRUCTURE: broken boundaries");
	check(render(msg_broken, true, true, false),
	    "((\"text\" \"plain\" NIL NIL NIL \"7bit\" 5 1 NIL NIL NIL NIL)"
	    "((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)"
	    " \"related\" NIL NIL NIL NIL)"
	    "(\"text\" \"plain\" NIL NIL NIL \"7bit\" 21 1 NIL NIL NIL NIL)"
	    " \"mixed\" (\"boundary\" \"b1\") NIL NIL NIL)");
	test_end();
}
TEST(test_imap_bodystructure)

static void
test_imap_strings(void)
{
	struct buf b;

	test_begin("imap strings: quoted, escaped, literal, NIL");
	buf_init(&b, BUF_UNLIMITED);
	imap_append_nstr(&b, "a \"b\" \\c", false);
	buf_append_c(&b, ' ');
	imap_append_nstr(&b, NULL, false);
	buf_append_c(&b, ' ');
	imap_append_nstr(&b, "two\r\nlines", false);
	buf_append_c(&b, ' ');
	imap_append_nstring(&b, "nul\0x", 5, true);
	buf_append_c(&b, ' ');
	imap_append_nstr(&b, "", false);
	{
		static const char want[] =
		    "\"a \\\"b\\\" \\\\c\" NIL {10}\r\ntwo\r\nlines {5}\r\nnul\0x \"\"";

		test_assert(b.len == sizeof(want) - 1);
		test_assert(memcmp(b.data, want, sizeof(want) - 1) == 0);
	}
	buf_free(&b);
	test_end();
}
TEST(test_imap_strings)
