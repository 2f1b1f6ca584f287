/*
 * test_corpus: real-world-shaped messages shared by the MIME parser's and
 * the IMAP renderers' unit tests (include from test files only).
 */
#ifndef TEGAMI_TEST_CORPUS_H
#define TEGAMI_TEST_CORPUS_H

/* multipart/mixed { multipart/alternative { text/plain, text/html },
   message/rfc822 { text/plain }, application/pdf } */
static const char msg_nested[] =
	"From: Alice <alice@example.com>\n"
	"To: Bob <bob@example.org>\n"
	"Subject: nested\n"
	"Date: Wed, 2 Jul 2003 10:00:00 +0000\n"
	"MIME-Version: 1.0\n"
	"Content-Type: multipart/mixed; boundary=\"outer\"\n"
	"\n"
	"This is the preamble.\n"
	"--outer\n"
	"Content-Type: multipart/alternative; boundary=inner\n"
	"\n"
	"--inner\n"
	"Content-Type: text/plain; charset=utf-8\n"
	"Content-Transfer-Encoding: quoted-printable\n"
	"\n"
	"Hello =C3=A9\n"
	"--inner\n"
	"Content-Type: text/html; charset=\"utf-8\"\n"
	"\n"
	"<p>Hello</p>\n"
	"--inner--\n"
	"--outer\n"
	"Content-Type: message/rfc822\n"
	"Content-Disposition: inline\n"
	"\n"
	"From: Carol <carol@example.net>\n"
	"Subject: inner message\n"
	"Message-ID: <inner@example.net>\n"
	"\n"
	"Forwarded body.\n"
	"--outer\n"
	"Content-Type: application/pdf; name*0=\"long\"; name*1=\"name.pdf\"\n"
	"Content-Disposition: attachment; filename*=utf-8''%E2%82%AC.pdf\n"
	"Content-Transfer-Encoding: base64\n"
	"Content-ID: <part4@example.com>\n"
	"Content-Language: en, de\n"
	"\n"
	"JVBERi0=\n"
	"--outer--\n"
	"epilogue\n";

/*
 * Broken in the ways real mail is: a boundary line with trailing white
 * space, a multipart without a boundary parameter, a line that only starts
 * like the boundary, and no closing boundary at all.
 */
static const char msg_broken[] =
	"Content-Type: multipart/mixed; boundary=b1\n"
	"\n"
	"--b1\n"
	"Content-Type: text/plain\n"
	"\n"
	"first\n"
	"--b1 \t\n"
	"Content-Type: multipart/related\n"
	"\n"
	"no boundary here\n"
	"--b1x\n"
	"--b1\n"
	"Content-Type: text/plain\n"
	"\n"
	"last part, no close\n";

#endif
