#include "lib/test.h"
#include "mail/mime.h"
#include "mail/preview.h"

#include <stdlib.h>
#include <string.h>

static char *
preview_of(const char *msg, size_t max)
{
	struct mime_message *m = mime_parse(msg, strlen(msg), &mime_default_limits);
	char *r = mail_preview(m, max);

	mime_message_free(&m);
	return r;
}

static void
test_preview(void)
{
	static const struct {
		const char *msg;
		size_t max;
		const char *want;
	} cases[] = {
		/* plain text, white space runs made one space */
		{ "Subject: x\n\nHello   there,\n\n  how are\tyou?\n", 200,
		  "Hello there, how are you?" },
		/* no body at all */
		{ "Subject: x\n\n", 200, "" },
		/* quoted text, its attribution line and the signature go */
		{ "Subject: x\n\nSure, see you then.\n\nOn Mon, Ann wrote:\n"
		  "> shall we meet?\n> at noon\nBob\n-- \nBob's signature\n", 200,
		  "Sure, see you then. Bob" },
		/* a line ending in ':' that does not introduce a quote stays */
		{ "Subject: x\n\nThe list:\n- milk\n", 200, "The list: - milk" },
		/* quoted-printable in Latin-1 */
		{ "Content-Type: text/plain; charset=iso-8859-1\n"
		  "Content-Transfer-Encoding: quoted-printable\n\n"
		  "Caf=E9 cr=E8me, s=\n"
		  "oft break\n", 200, "Caf\xc3\xa9 cr\xc3\xa8me, soft break" },
		/* base64 UTF-8 */
		{ "Content-Type: text/plain; charset=utf-8\n"
		  "Content-Transfer-Encoding: base64\n\n"
		  "5pel5pys6Kqe44Gu44OG44Kt44K544OI\n", 200,
		  "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae"
		  "\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88" },
		/* characters, not bytes, are counted; no split sequence */
		{ "Content-Type: text/plain; charset=utf-8\n\n"
		  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\n", 3, "\xc3\xa9\xc3\xa9\xc3\xa9" },
		{ "Subject: x\n\nabcdef\n", 4, "abcd" },
		/* never a space at the end when the limit falls on one */
		{ "Subject: x\n\nabc def\n", 4, "abc" },
		/* the plain alternative is preferred */
		{ "Content-Type: multipart/alternative; boundary=b\n\n--b\n"
		  "Content-Type: text/html\n\n<p>html one</p>\n--b\n"
		  "Content-Type: text/plain\n\nplain one\n--b--\n", 200, "plain one" },
		/* HTML only: tags, style, script, comments out; references in */
		{ "Content-Type: text/html; charset=utf-8\n\n"
		  "<html><head><title>T</title><style>p{color:red}</style></head>"
		  "<body><!-- hidden --><p>Fish&nbsp;&amp;&#32;chips</p>"
		  "<script>alert(1)</script><div>caf&#xe9; &lt;3</div></body>"
		  "</html>\n", 200, "Fish & chips caf\xc3\xa9 <3" },
		/* an attachment and an attached message are skipped */
		{ "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
		  "Content-Type: text/plain\nContent-Disposition: attachment\n\n"
		  "notes.txt body\n--b\n"
		  "Content-Type: message/rfc822\n\nSubject: inner\n\ninner text\n"
		  "--b\nContent-Type: text/plain\n\nthe real text\n--b--\n", 200,
		  "the real text" },
		/* only an image: no text */
		{ "Content-Type: image/png\nContent-Transfer-Encoding: base64\n\n"
		  "iVBORw0KGgo=\n", 200, "" },
		/* control characters and invalid UTF-8 dropped */
		{ "Content-Type: text/plain; charset=utf-8\n\n"
		  "a\x01" "b\xff" "c\x1b[0m\n", 200, "abc[0m" },
		/* an unterminated tag and a broken reference do not run off */
		{ "Content-Type: text/html\n\nok &#xZZ; &bogus; <a href=\"", 200,
		  "ok &#xZZ; &bogus;" },
	};

	test_begin("mail/preview: RFC 8970 preview text");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = preview_of(cases[i].msg, cases[i].max);

		if (strcmp(got, cases[i].want) != 0)
			test_note_str(cases[i].msg, cases[i].want);
		test_assert_str(got, cases[i].want);
		free(got);
	}
	test_end();
}
TEST(test_preview);

static void
test_preview_bounded(void)
{
	/* a long message: only its start is read, and the preview is short */
	size_t n = 4 * 1024 * 1024;
	char *msg = malloc(n + 1);
	char *got;

	test_begin("mail/preview: long messages and the size limit");
	memcpy(msg, "Subject: x\n\n", 12);
	for (size_t i = 12; i < n; i++)
		msg[i] = (i % 61 == 0) ? '\n' : 'x';
	msg[n] = '\0';
	got = preview_of(msg, PREVIEW_CHARS);
	test_assert_int(strlen(got), PREVIEW_CHARS);
	free(got);
	free(msg);
	test_end();
}
TEST(test_preview_bounded);
