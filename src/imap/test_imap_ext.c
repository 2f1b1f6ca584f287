/*
 * The IMAP extensions of the mailbox side, driven through a whole session
 * (test_harness.h): LIST-EXTENDED, LIST-STATUS, STATUS=SIZE and the
 * RFC 9051 STATUS items, CREATE-SPECIAL-USE.
 */
#include "imap/test_harness.h"
#include "lib/test.h"
#include "lib/xalloc.h"
#include "net/deflate.h"

#include <event2/bufferevent.h>
#include <event2/event.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Logs joe in on a fresh harness. */
static void
login(struct harness *h, const char *root)
{
	harness_start(h, root, 100000);
	free(wait_for(h, "* OK"));
	EXPECT(h, "L LOGIN joe@x.test secret\r\n", "L ", "L OK");
}

/* out holds no line starting with line (whole line up to CRLF). */
static bool
no_line(const char *out, const char *line)
{
	size_t len = strlen(line);

	for (const char *p = out; (p = strstr(p, line)) != NULL; p++) {
		if ((p == out || p[-1] == '\n') && p[len] == '\r')
			return false;
	}
	return true;
}

static void
test_imap_list_extended(void)
{
	struct harness h;
	const char *root = test_tmpdir();
	char *out;

	test_begin("imap LIST-EXTENDED: selection and return options");
	login(&h, root);
	EXPECT(&h, "a CAPABILITY\r\n", "a ", " LIST-EXTENDED LIST-STATUS",
	    " STATUS=SIZE", " CREATE-SPECIAL-USE");
	free(cmd(&h, "b1 CREATE m.t1\r\nb0 CREATE m.t2\r\nb2 CREATE m.t2.t1\r\nb3 CREATE m.t3\r\n"
	    "b4 CREATE m.t6\r\nb5 SUBSCRIBE m.t1\r\nb6 SUBSCRIBE m.t2.t1\r\n"
	    "b7 SUBSCRIBE m.t6\r\nb8 DELETE m.t6\r\n", "b8 "));
	/* several patterns; no attributes unless asked for */
	out = cmd(&h, "c LIST \"\" (m.*2 m.t3)\r\n", "c ");
	test_assert(strstr(out, "* LIST () \".\" \"m.t2\"\r\n") != NULL);
	test_assert(strstr(out, "* LIST () \".\" \"m.t3\"\r\n") != NULL);
	test_assert(strstr(out, "\"m.t1\"") == NULL);
	test_assert(strstr(out, "c OK") != NULL);
	free(out);
	/* SUBSCRIBED: subscribed names, a deleted one \NonExistent */
	out = cmd(&h, "d LIST (SUBSCRIBED) \"\" m.*\r\n", "d ");
	test_assert(strstr(out, "* LIST (\\Subscribed) \".\" \"m.t1\"\r\n") != NULL);
	test_assert(strstr(out, "* LIST (\\Subscribed) \".\" \"m.t2.t1\"\r\n") != NULL);
	test_assert(strstr(out, "* LIST (\\NonExistent \\Subscribed) \".\" \"m.t6\"\r\n") != NULL);
	test_assert(strstr(out, "\"m.t3\"") == NULL);
	free(out);
	/* RECURSIVEMATCH: a parent with a subscribed child gets CHILDINFO */
	EXPECT(&h, "e LIST (SUBSCRIBED RECURSIVEMATCH) \"\" m.t2% RETURN (CHILDREN)\r\n",
	    "e ", "* LIST (\\HasChildren) \".\" \"m.t2\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n",
	    "e OK");
	/* ... but not when that child is listed by a pattern itself */
	out = cmd(&h, "f LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (m.t2 m.t2.t1)\r\n", "f ");
	test_assert(strstr(out, "\"m.t2\"") == NULL);
	test_assert(strstr(out, "* LIST (\\Subscribed) \".\" \"m.t2.t1\"\r\n") != NULL);
	free(out);
	/* RETURN (CHILDREN SUBSCRIBED) on a plain selection */
	out = cmd(&h, "g LIST \"\" m.% RETURN (CHILDREN SUBSCRIBED)\r\n", "g ");
	test_assert(strstr(out, "* LIST (\\HasNoChildren \\Subscribed) \".\" \"m.t1\"\r\n") != NULL);
	test_assert(strstr(out, "* LIST (\\HasChildren) \".\" \"m.t2\"\r\n") != NULL);
	test_assert(strstr(out, "* LIST (\\HasNoChildren) \".\" \"m.t3\"\r\n") != NULL);
	test_assert(no_line(out, "* LIST (\\NonExistent) \".\" \"m.t6\""));
	free(out);
	/* bad option combinations */
	EXPECT(&h, "h1 LIST (imaptest) \"\" \"\"\r\n", "h1 ", "h1 BAD");
	EXPECT(&h, "h2 LIST (RECURSIVEMATCH) \"\" \"\"\r\n", "h2 ", "h2 BAD");
	EXPECT(&h, "h3 LIST (RECURSIVEMATCH REMOTE) \"\" \"\"\r\n", "h3 ", "h3 BAD");
	EXPECT(&h, "h4 LIST \"\" \"\" RETURN (imaptest)\r\n", "h4 ", "h4 BAD");
	EXPECT(&h, "h5 LIST \"\" % RETURN (STATUS (BOGUS))\r\n", "h5 ", "h5 BAD");
	EXPECT(&h, "h6 LIST (REMOTE) \"\" %\r\n", "h6 ", "* LIST () \".\" \"INBOX\"", "h6 OK");
	EXPECT(&h, "h7 LIST () \"\" (\"\")\r\n", "h7 ", "* LIST (\\Noselect) \".\" \"\"", "h7 OK");
	/* SPECIAL-USE selection and return */
	out = cmd(&h, "i LIST (SPECIAL-USE) \"\" *\r\n", "i ");
	test_assert(strstr(out, "* LIST (\\Sent) \".\" \"Sent\"\r\n") != NULL);
	test_assert(strstr(out, "* LIST (\\Junk) \".\" \"Junk\"\r\n") != NULL);
	test_assert(strstr(out, "\"INBOX\"") == NULL && strstr(out, "\"m.t1\"") == NULL);
	free(out);
	EXPECT(&h, "j LIST \"\" Trash RETURN (SPECIAL-USE)\r\n", "j ",
	    "* LIST (\\Trash) \".\" \"Trash\"\r\n");
	/* a level with no folder of its own: listed for any pattern that
	   matches it, '*' too, as Dovecot does */
	EXPECT(&h, "j2 CREATE v.w\r\n", "j2 ", "j2 OK");
	EXPECT(&h, "j3 LIST \"\" %\r\n", "j3 ", "* LIST (\\Noselect \\HasChildren) \".\" \"v\"\r\n");
	EXPECT(&h, "j4 LIST \"\" % RETURN (CHILDREN)\r\n", "j4 ",
	    "* LIST (\\NonExistent \\HasChildren) \".\" \"v\"\r\n");
	out = cmd(&h, "j5 LIST \"\" v*\r\n", "j5 ");
	test_assert(strstr(out, "* LIST (\\Noselect \\HasChildren) \".\" \"v\"\r\n") != NULL &&
	    strstr(out, "\"v.w\"") != NULL);
	free(out);
	out = cmd(&h, "j6 LIST \"\" v.*\r\n", "j6 ");
	test_assert(strstr(out, "\"v\"\r\n") == NULL && strstr(out, "\"v.w\"") != NULL);
	free(out);
	test_end();

	test_begin("imap LIST-STATUS and STATUS SIZE, DELETED, APPENDLIMIT");
	EXPECT(&h, "k APPEND m.t1 (\\Deleted) {12+}\r\nSubject: x\r\n\r\n", "k ", "k OK");
	EXPECT(&h, "k2 APPEND m.t1 {14+}\r\nSubject: yy\r\n\r\n", "k2 ", "k2 OK");
	EXPECT(&h, "l STATUS m.t1 (MESSAGES SIZE DELETED DELETED-STORAGE APPENDLIMIT)\r\n",
	    "l ", "* STATUS \"m.t1\" (MESSAGES 2 SIZE 26 DELETED 1 DELETED-STORAGE 1"
	    " APPENDLIMIT 100000)\r\n", "l OK");
	out = cmd(&h, "m LIST \"\" m.% RETURN (STATUS (MESSAGES UNSEEN))\r\n", "m ");
	test_assert(strstr(out, "* LIST () \".\" \"m.t1\"\r\n"
	    "* STATUS \"m.t1\" (MESSAGES 2 UNSEEN 2)\r\n") != NULL);
	test_assert(strstr(out, "* STATUS \"m.t3\" (MESSAGES 0 UNSEEN 0)\r\n") != NULL);
	test_assert(strstr(out, "m OK") != NULL);
	free(out);
	EXPECT(&h, "n STATUS INBOX (BOGUS)\r\n", "n ", "n BAD");
	test_end();

	test_begin("imap CREATE-SPECIAL-USE");
	EXPECT(&h, "o CREATE Old (USE (\\Archive))\r\n", "o ", "o OK");
	EXPECT(&h, "o2 LIST \"\" Old RETURN (SPECIAL-USE)\r\n", "o2 ",
	    "* LIST (\\Archive) \".\" \"Old\"\r\n");
	/* the attribute travels with a RENAME */
	EXPECT(&h, "o3 RENAME Old Older\r\n", "o3 ", "o3 OK");
	EXPECT(&h, "o4 LIST \"\" Older\r\n", "o4 ",
	    "* LIST (\\HasNoChildren \\Archive) \".\" \"Older\"\r\n");
	EXPECT(&h, "p CREATE Everything (USE (\\All))\r\n", "p ", "p NO [USEATTR]");
	EXPECT(&h, "p2 CREATE Bogus (USE (\\Bogus))\r\n", "p2 ", "p2 NO [USEATTR]");
	EXPECT(&h, "p3 LIST \"\" Everything\r\n", "p3 ", "p3 OK List completed.");
	out = cmd(&h, "p4 LIST \"\" Everything\r\n", "p4 ");
	test_assert(strstr(out, "\"Everything\"") == NULL);
	free(out);
	EXPECT(&h, "p5 CREATE X (FOO (\\Archive))\r\n", "p5 ", "p5 BAD");
	harness_stop(&h);
	test_end();
}
TEST(test_imap_list_extended)

/* A message whose parts use every content transfer encoding. */
static const char msg_encoded[] =
	"From: a@b.test\n"
	"Subject: enc\n"
	"Content-Type: multipart/mixed; boundary=\"b\"\n"
	"\n"
	"--b\n"
	"Content-Type: text/plain\n"
	"Content-Transfer-Encoding: base64\n"
	"\n"
	"aGVsbG8gd29ybGQ=\n"
	"--b\n"
	"Content-Type: application/octet-stream\n"
	"Content-Transfer-Encoding: base64\n"
	"\n"
	"AAECAw==\n"
	"--b\n"
	"Content-Type: text/plain\n"
	"Content-Transfer-Encoding: quoted-printable\n"
	"\n"
	"caf=C3=A9  \n"
	"--b\n"
	"Content-Type: text/plain\n"
	"Content-Transfer-Encoding: x-uuencode\n"
	"\n"
	"begin 644 x\n"
	"--b--\n";

static void
test_imap_binary(void)
{
	struct harness h;
	const char *root = test_tmpdir();
	char *out;

	test_begin("imap BINARY: FETCH BINARY[], BINARY.SIZE, partial, literal8, UNKNOWN-CTE");
	login(&h, root);
	deliver(root, "1700000001.M1P1Q1.host", msg_encoded);
	EXPECT(&h, "a SELECT INBOX\r\n", "a ", "* 1 EXISTS");
	EXPECT(&h, "b FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])\r\n", "b ",
	    "BINARY.SIZE[1] 11", "BINARY[1] {11}\r\nhello world", "b OK");
	/* decoded bytes with NULs go as a literal8 */
	{
		size_t len;

		bufferevent_write(h.client, "c FETCH 1 (BINARY.PEEK[2])\r\n", 28);
		out = harness_wait_for_raw(&h, "c ", &len);
		test_assert(memmem(out, len, "BINARY[2] ~{4}\r\n\0\1\2\3)", 21) != NULL);
		test_assert(memmem(out, len, "c OK", 4) != NULL);
		free(out);
	}
	EXPECT(&h, "d FETCH 1 (BINARY.PEEK[3] BINARY.PEEK[1]<6.100>)\r\n", "d ",
	    "BINARY[3] {5}\r\ncaf\xc3\xa9", "BINARY[1]<6> {5}\r\nworld", "d OK");
	/* not yet \Seen; BINARY (no PEEK) sets it */
	EXPECT(&h, "e FETCH 1 (BINARY[1])\r\n", "e ", "FLAGS (\\Recent \\Seen)", "e OK");
	EXPECT(&h, "f FETCH 1 (BINARY.PEEK[4])\r\n", "f ", "f NO [UNKNOWN-CTE]");
	EXPECT(&h, "g FETCH 1 (BINARY.PEEK[1.MIME])\r\n", "g ", "g BAD");
	EXPECT(&h, "g2 FETCH 1 (BINARY.SIZE[1]<0.1>)\r\n", "g2 ", "g2 BAD");
	/* a part that does not exist is empty */
	EXPECT(&h, "g3 FETCH 1 (BINARY.PEEK[9])\r\n", "g3 ", "BINARY[9] {0}", "g3 OK");
	test_end();

	test_begin("imap BINARY: APPEND with literal8 keeps the bytes, BODY[] has no NUL");
	{
		static const char m[] = "h APPEND INBOX ~{84}\r\n"
		    "Content-Type: application/octet-stream\r\n"
		    "Content-Transfer-Encoding: binary\r\n"
		    "\r\n"
		    "\0-\xe4\n\r\n\n\r\n";

		bufferevent_write(h.client, m, sizeof(m) - 1);
		out = wait_for(&h, "h ");
		test_assert(strstr(out, "* 2 EXISTS") != NULL);
		test_assert(strstr(out, "h OK [APPENDUID ") != NULL);
		free(out);
	}
	out = cmd(&h, "j FETCH 2 (BODY.PEEK[1] BINARY.SIZE[1])\r\n", "j ");
	test_assert(strstr(out, "BODY[1] {14}\r\nAC3kCg0KCg==\r\n BINARY.SIZE[1] 7)") != NULL);
	free(out);
	{
		size_t len;

		bufferevent_write(h.client, "k FETCH 2 (BINARY.PEEK[1])\r\n", 28);
		out = harness_wait_for_raw(&h, "k ", &len);
		test_assert(memmem(out, len, "BINARY[1] ~{7}\r\n\0-\xe4\n\r\n\n)", 24) != NULL);
		test_assert(memmem(out, len, "k OK", 4) != NULL);
		free(out);
	}
	/* a NUL in the header cannot be stored */
	{
		static const char m[] = "l APPEND INBOX ~{14}\r\nX: a\0b\r\n\r\nbody\r\n";

		bufferevent_write(h.client, m, sizeof(m) - 1);
		out = wait_for(&h, "l ");
		test_assert(strstr(out, "l NO ") != NULL);
		free(out);
	}
	harness_stop(&h);
	test_end();
}
TEST(test_imap_binary)

static void
test_imap_multiappend_catenate(void)
{
	struct harness h;
	const char *root = test_tmpdir();
	char *out;

	test_begin("imap MULTIAPPEND: several messages, one APPENDUID set");
	login(&h, root);
	EXPECT(&h, "a APPEND INBOX (\\Seen) {16+}\r\nSubject: one\r\n\r\n"
	    " \"05-Mar-2024 10:00:00 +0100\" {16+}\r\nSubject: two\r\n\r\n"
	    " {18+}\r\nSubject: three\r\n\r\n\r\n", "a ",
	    "a OK [APPENDUID ", " 1:3] Append completed.");
	EXPECT(&h, "b SELECT INBOX\r\n", "b ", "* 3 EXISTS");
	EXPECT(&h, "c FETCH 1:3 (FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n",
	    "c ", "* 1 FETCH (FLAGS (\\Recent \\Seen)", "Subject: one",
	    "* 2 FETCH (FLAGS (\\Recent) INTERNALDATE \"05-Mar-2024 09:00:00 +0000\"",
	    "Subject: three", "c OK");
	test_end();

	test_begin("imap CATENATE: text and URL parts; a bad URL stores nothing");
	EXPECT(&h, "d APPEND Drafts CATENATE (URL \"/INBOX/;UID=1/;SECTION=HEADER\""
	    " TEXT {6+}\r\nbody1\n)\r\n", "d ", "d OK [APPENDUID ");
	EXPECT(&h, "e EXAMINE Drafts\r\n", "e ", "* 1 EXISTS");
	EXPECT(&h, "f FETCH 1 BODY.PEEK[]\r\n", "f ",
	    "BODY[] {23}\r\nSubject: one\r\n\r\nbody1\r\n", "f OK");
	/* MULTIAPPEND with CATENATE: the second URL is wrong -> none stored */
	EXPECT(&h, "g APPEND Drafts {16+}\r\nSubject: new\r\n\r\n"
	    " CATENATE (URL \"/INBOX;UIDVALIDITY=1/;UID=1\")\r\n", "g ",
	    "g NO [BADURL /INBOX;UIDVALIDITY=1/;UID=1]");
	EXPECT(&h, "h STATUS Drafts (MESSAGES)\r\n", "h ", "(MESSAGES 1)");
	EXPECT(&h, "i APPEND Drafts CATENATE (URL \"/INBOX/;UID=99\")\r\n", "i ",
	    "i NO [BADURL");
	EXPECT(&h, "j APPEND Nope CATENATE (URL \"/INBOX;UIDVALIDITY=1/;UID=1\")\r\n",
	    "j ", "j NO [TRYCREATE]");
	EXPECT(&h, "k APPEND Drafts CATENATE (URL \"/INBOX/;UID=2/;PARTIAL=0.9\""
	    " URL \"/INBOX/;UID=3\")\r\n", "k ", "* 2 EXISTS", "k OK");
	EXPECT(&h, "l FETCH 2 BODY.PEEK[]\r\n", "l ",
	    "BODY[] {27}\r\nSubject: Subject: three\r\n\r\n)");
	out = cmd(&h, "m APPEND Drafts CATENATE (BOGUS {1+}\r\nx)\r\n", "m ");
	test_assert(strstr(out, "m BAD") != NULL);
	free(out);
	EXPECT(&h, "n APPEND Drafts CATENATE (URL \"imap://other@x.test/INBOX/;UID=1\")\r\n",
	    "n ", "n NO [BADURL");
	harness_stop(&h);
	test_end();
}
TEST(test_imap_multiappend_catenate)

/* The URL in "* GENURLAUTH "<url>"" (malloc'd). */
static char *
genurl(const char *out)
{
	const char *p = strstr(out, "* GENURLAUTH \""), *e;

	if (p == NULL)
		return xstrdup("none");
	p += 14;
	e = strchr(p, '"');
	return e != NULL ? xstrndup(p, (size_t)(e - p)) : xstrdup("none");
}

static void
test_imap_urlauth(void)
{
	struct harness h, h2;
	const char *root = test_tmpdir(), *root2 = test_tmpdir();
	char *out, *url, *url_user, q[600];

	test_begin("imap URLAUTH: GENURLAUTH, URLFETCH (also by another account), RESETKEY");
	login(&h, root);
	deliver(root, "1700000001.M1P1Q1.host", msg_encoded);
	EXPECT(&h, "a SELECT INBOX\r\n", "a ", "* 1 EXISTS");
	out = cmd(&h, "b GENURLAUTH \"imap://joe@x.test/INBOX/;uid=1/;section=1;"
	    "urlauth=authuser\" INTERNAL\r\n", "b ");
	test_assert(strstr(out, "b OK") != NULL);
	url = genurl(out);
	free(out);
	test_assert(strstr(url, ";urlauth=authuser:internal:") != NULL);
	out = cmd(&h, "c GENURLAUTH \"imap://joe@x.test/INBOX/;uid=1;urlauth="
	    "user+joe@x.test\" INTERNAL\r\n", "c ");
	url_user = genurl(out);
	free(out);
	snprintf(q, sizeof(q), "d URLFETCH \"%s\" (\"%s\" BINARY BODYPARTSTRUCTURE)\r\n",
	    url, url);
	out = cmd(&h, q, "d ");
	test_assert(strstr(out, "\" {16}\r\naGVsbG8gd29ybGQ=") != NULL);
	test_assert(strstr(out, "(BODYPARTSTRUCTURE (\"text\" \"plain\"") != NULL);
	test_assert(strstr(out, " BINARY {11}\r\nhello world)") != NULL);
	free(out);
	/* someone else's mailbox and forged tokens are NIL */
	EXPECT(&h, "e GENURLAUTH \"imap://ann@x.test/INBOX/;uid=1;urlauth=authuser\" "
	    "INTERNAL\r\n", "e ", "e NO [NOPERM]");
	{
		char *forged = xstrdup(url);

		forged[strlen(forged) - 1] = forged[strlen(forged) - 1] == '0' ? '1' : '0';
		snprintf(q, sizeof(q), "f URLFETCH \"%s\"\r\n", forged);
		EXPECT(&h, q, "f ", " NIL\r\n", "f OK");
		free(forged);
	}
	EXPECT(&h, "g GENURLAUTH \"/INBOX/;uid=1;urlauth=authuser\" INTERNAL\r\n",
	    "g ", "g BAD");
	EXPECT(&h, "g2 GENURLAUTH \"imap://joe@x.test/INBOX/;uid=1;urlauth=bogus\" INTERNAL\r\n",
	    "g2 ", "g2 NO");

	/* ann, another account, may fetch the authuser URL but not user+joe */
	harness_hooks = &harness_default_hooks;
	memset(&h2, 0, sizeof(h2));
	harness_start(&h2, root, 100000);
	h2.other_root = root2;
	free(wait_for(&h2, "* OK"));
	EXPECT(&h2, "a LOGIN ann@x.test secret\r\n", "a ", "a OK");
	snprintf(q, sizeof(q), "b URLFETCH \"%s\" \"%s\"\r\n", url, url_user);
	out = cmd(&h2, q, "b ");
	test_assert(strstr(out, "\" {16}\r\naGVsbG8gd29ybGQ= \"") != NULL);
	test_assert(strstr(out, " NIL\r\nb OK") != NULL);
	free(out);

	/* RESETKEY voids them */
	EXPECT(&h, "h RESETKEY INBOX\r\n", "h ", "h OK");
	snprintf(q, sizeof(q), "c URLFETCH \"%s\"\r\n", url);
	EXPECT(&h2, q, "c ", " NIL\r\n", "c OK");
	EXPECT(&h, "i RESETKEY Nope\r\n", "i ", "i NO");
	EXPECT(&h, "j RESETKEY\r\n", "j ", "j OK");
	/* an expired URL */
	out = cmd(&h, "k GENURLAUTH \"imap://joe@x.test/INBOX/;uid=1;"
	    "expire=2001-01-01T00:00:00Z;urlauth=authuser\" INTERNAL\r\n", "k ");
	free(url);
	url = genurl(out);
	free(out);
	snprintf(q, sizeof(q), "l URLFETCH \"%s\"\r\n", url);
	EXPECT(&h, q, "l ", " NIL\r\n", "l OK");
	harness_stop(&h2);
	harness_stop(&h);
	free(url);
	free(url_user);
	test_end();
}
TEST(test_imap_urlauth)

static void
test_imap_urlauth_off(void)
{
	struct harness h;
	const char *root = test_tmpdir();
	char *out;

	test_begin("imap URLAUTH off (the default): not offered, its commands unknown");
	{
		struct imap_settings set = { .secure = true };

		harness_start_set(&h, root, &set);
	}
	free(wait_for(&h, "* OK"));
	out = cmd(&h, "a LOGIN joe@x.test secret\r\n", "a ");
	test_assert(strstr(out, "a OK [CAPABILITY ") != NULL);
	test_assert(strstr(out, "URLAUTH") == NULL);
	test_assert(strstr(out, " CATENATE URL-PARTIAL") != NULL);
	free(out);
	deliver(root, "1700000001.M1P1Q1.host", msg_encoded);
	EXPECT(&h, "b SELECT INBOX\r\n", "b ", "* 1 EXISTS");
	EXPECT(&h, "c GENURLAUTH \"imap://joe@x.test/INBOX/;uid=1;"
	    "urlauth=authuser\" INTERNAL\r\n", "c ", "c BAD Unknown command");
	EXPECT(&h, "d URLFETCH \"imap://joe@x.test/INBOX/;uid=1\"\r\n", "d ",
	    "d BAD Unknown command");
	EXPECT(&h, "e RESETKEY\r\n", "e ", "e BAD Unknown command");
	/* CATENATE's own URLs stay */
	EXPECT(&h, "f APPEND INBOX CATENATE (URL \"/INBOX/;UID=1\")\r\n", "f ",
	    "f OK [APPENDUID ");
	EXPECT(&h, "g LOGOUT\r\n", "g ", "* BYE", "g OK");
	harness_stop(&h);
	test_end();
}
TEST(test_imap_urlauth_off)

/* A message file renamed by another program between two syncs: FETCH
   finds it under its new name (it was "NO [EXPUNGEISSUED]"). */
static void
test_imap_fetch_renamed_file(void)
{
	struct harness h;
	const char *root = test_tmpdir();
	char from[512], to[512];

	test_begin("imap FETCH of a message whose file another program just renamed");
	login(&h, root);
	deliver(root, "1700000001.M1P1Q1.host", "Subject: moved\r\n\r\nstill here\r\n");
	EXPECT(&h, "a SELECT INBOX\r\n", "a ", "* 1 EXISTS");
	snprintf(from, sizeof(from), "%s/cur/1700000001.M1P1Q1.host:2,", root);
	snprintf(to, sizeof(to), "%s/cur/1700000001.M1P1Q1.host:2,S", root);
	test_assert(rename(from, to) == 0);
	EXPECT(&h, "b FETCH 1 (BODY.PEEK[TEXT])\r\n", "b ",
	    "BODY[TEXT] {12}\r\nstill here\r\n", "b OK Fetch completed.");
	EXPECT(&h, "c FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n", "c ",
	    "Subject: moved", "c OK Fetch completed.");
	/* gone for good: the RFC's answer */
	test_assert(unlink(to) == 0);
	EXPECT(&h, "d FETCH 1 (BODY.PEEK[TEXT])\r\n", "d ", "d NO [EXPUNGEISSUED]");
	EXPECT(&h, "e LOGOUT\r\n", "e ", "* BYE", "e OK");
	harness_stop(&h);
	test_end();
}
TEST(test_imap_fetch_renamed_file)

static void
test_imap_quota(void)
{
	struct harness h;
	const char *root = test_tmpdir();
	char body[2048], big[3001];
	char *out;

	test_begin("imap QUOTA: GETQUOTAROOT, GETQUOTA, SETQUOTA refused");
	{
		struct imap_settings set = { .secure = true, .quota = true,
		    .max_literal = 1000000 };

		harness_start_set(&h, root, &set);
	}
	h.quota = 10 * 1024;
	free(wait_for(&h, "* OK"));
	EXPECT(&h, "L LOGIN joe@x.test secret\r\n", "L ", " QUOTA QUOTA=RES-STORAGE");
	memset(body, 'x', sizeof(body));
	memcpy(body, "Subject: q\n\n", 12);
	body[sizeof(body) - 1] = '\0';
	deliver(root, "1700000001.M1P1Q1.host", body);	/* 2047 + 1 CR */
	EXPECT(&h, "a GETQUOTAROOT INBOX\r\n", "a ",
	    "* QUOTAROOT \"INBOX\" \"User quota\"\r\n",
	    "* QUOTA \"User quota\" (STORAGE 3 10)\r\n", "a OK");
	EXPECT(&h, "b GETQUOTA \"User quota\"\r\n", "b ", "(STORAGE 3 10)", "b OK");
	EXPECT(&h, "c GETQUOTA \"\"\r\n", "c ", "c NO");
	EXPECT(&h, "d SETQUOTA \"User quota\" (STORAGE 1)\r\n", "d ", "d NO");
	EXPECT(&h, "d2 GETQUOTAROOT Nope\r\n", "d2 ", "d2 NO");
	test_end();

	test_begin("imap QUOTA: APPEND and COPY refused with OVERQUOTA, MOVE and Trash allowed");
	/* 2049 bytes used of 10240: a 9000-byte literal is refused before it is sent */
	EXPECT(&h, "e APPEND INBOX {9000}\r\n", "e ", "e NO [OVERQUOTA]");
	EXPECT(&h, "f SELECT INBOX\r\n", "f ", "* 1 EXISTS");
	EXPECT(&h, "g COPY 1 Sent\r\n", "g ", "g OK");
	EXPECT(&h, "g2 COPY 1 Sent\r\n", "g2 ", "g2 OK");
	EXPECT(&h, "g3 COPY 1 Sent\r\n", "g3 ", "g3 OK");
	/* 8196 bytes now: one more copy would pass 10240 */
	EXPECT(&h, "h COPY 1 Sent\r\n", "h ", "h NO [OVERQUOTA]");
	EXPECT(&h, "h2 STATUS Sent (MESSAGES)\r\n", "h2 ", "(MESSAGES 3)");
	/* Trash may go 50 MiB over */
	EXPECT(&h, "i COPY 1 Trash\r\n", "i ", "i OK");
	EXPECT(&h, "j MOVE 1 Junk\r\n", "j ", "j OK");
	/* a LITERAL+ literal comes anyway: refused once it is read */
	out = cmd(&h, "k APPEND INBOX {3000+}\r\n", "nothing");
	free(out);
	memset(big, 'y', 3000);
	big[3000] = '\0';
	bufferevent_write(h.client, big, 3000);
	EXPECT(&h, "\r\nl NOOP\r\n", "l ", "k NO [OVERQUOTA]", "l OK");
	harness_stop(&h);
	test_end();
}
TEST(test_imap_quota)

static void
test_imap_compress(void)
{
	struct harness h;
	const char *root = test_tmpdir();
	char *out, *body = xmalloc(200001);
	unsigned int count = 0;

	test_begin("imap COMPRESS=DEFLATE: commands and replies compressed, big FETCH in order");
	{
		struct imap_settings set = { .secure = true, .compress = true,
		    .max_literal = 1000000 };

		harness_start_set(&h, root, &set);
	}
	out = wait_for(&h, "* OK");
	test_assert(strstr(out, "COMPRESS=DEFLATE") == NULL);	/* after login only */
	free(out);
	EXPECT(&h, "a COMPRESS DEFLATE\r\n", "a ", "a BAD Log in first");
	EXPECT(&h, "b LOGIN joe@x.test secret\r\n", "b ", " COMPRESS=DEFLATE");
	EXPECT(&h, "c COMPRESS LZ4\r\n", "c ", "c NO");
	EXPECT(&h, "d COMPRESS DEFLATE\r\n", "d ", "d OK DEFLATE active");
	/* from here on the client talks DEFLATE too */
	h.client = deflate_filter_new(h.client, 0);
	bufferevent_setcb(h.client, harness_client_read, NULL, NULL, &h);
	bufferevent_enable(h.client, EV_READ | EV_WRITE);
	EXPECT(&h, "e NOOP\r\n", "e ", "e OK NOOP completed.");
	EXPECT(&h, "f COMPRESS DEFLATE\r\n", "f ", "f NO [COMPRESSIONACTIVE]");
	memset(body, 'z', 200000);
	for (int i = 0; i < 200000; i += 100)
		body[i] = '\n';
	body[200000] = '\0';
	for (int i = 0; i < 20; i++) {
		char name[64];

		snprintf(name, sizeof(name), "17000000%02d.M1P1Q1.host", i);
		deliver(root, name, body);
	}
	EXPECT(&h, "g SELECT INBOX\r\n", "g ", "* 20 EXISTS");
	bufferevent_write(h.client, "h FETCH 1:* BODY.PEEK[]\r\ni NOOP\r\n", 33);
	out = wait_for(&h, "i ");
	for (char *p = out; (p = strstr(p, " FETCH (BODY[] {202000}\r\n")) != NULL; p++)
		count++;
	test_assert_int(count, 20);
	test_assert(strstr(out, "h OK Fetch completed.") != NULL);
	test_assert(strstr(out, "h OK") < strstr(out, "i OK"));
	free(out);
	EXPECT(&h, "j LOGOUT\r\n", "j ", "* BYE", "j OK");
	harness_stop(&h);
	free(body);
	test_end();
}
TEST(test_imap_compress)

static void
test_imap_rev2(void)
{
	struct harness h;
	const char *root = test_tmpdir();
	char *out;

	test_begin("imap IMAP4rev2: ENABLE, no \\Recent, LIST in SELECT, CLOSED, ESEARCH");
	login(&h, root);
	deliver(root, "1700000001.M1P1Q1.host", "Subject: a\n\nx\n");
	deliver(root, "1700000002.M1P1Q1.host", "Subject: b\n\ny\n");
	deliver(root, "1700000003.M1P1Q1.host", "Subject: c\n\nz\n");
	EXPECT(&h, "a CAPABILITY\r\n", "a ", "* CAPABILITY IMAP4rev1 IMAP4rev2 ");
	EXPECT(&h, "b ENABLE IMAP4rev2\r\n", "b ", "* ENABLED IMAP4rev2\r\n", "b OK");
	EXPECT(&h, "b2 ENABLE IMAP4rev2\r\n", "b2 ", "* ENABLED\r\n", "b2 OK");
	out = cmd(&h, "c SELECT INBOX\r\n", "c ");
	test_assert(strstr(out, "* 3 EXISTS\r\n* LIST () \".\" \"INBOX\"\r\n") != NULL);
	test_assert(strstr(out, "RECENT") == NULL && strstr(out, "UNSEEN") == NULL);
	free(out);
	out = cmd(&h, "d FETCH 1:* FLAGS\r\n", "d ");
	test_assert(strstr(out, "\\Recent") == NULL);
	test_assert(strstr(out, "* 1 FETCH (FLAGS ())") != NULL);
	free(out);
	EXPECT(&h, "e SEARCH ALL\r\n", "e ", "* ESEARCH (TAG \"e\") ALL 1:3\r\n", "e OK");
	EXPECT(&h, "f UID SEARCH RETURN (MIN MAX COUNT) SUBJECT b\r\n", "f ",
	    "* ESEARCH (TAG \"f\") UID MIN 2 MAX 2 COUNT 1\r\n", "f OK");
	EXPECT(&h, "g SEARCH RETURN () SUBJECT nothing\r\n", "g ",
	    "* ESEARCH (TAG \"g\")\r\n", "g OK");
	/* SEARCHRES is part of rev2: $ holds the saved result */
	EXPECT(&h, "g2 SEARCH RETURN (SAVE) SUBJECT b\r\n", "g2 ", "g2 OK");
	EXPECT(&h, "g3 FETCH $ (UID)\r\n", "g3 ", "* 2 FETCH (UID 2)", "g3 OK");
	out = cmd(&h, "h STORE 1 +FLAGS (\\Seen)\r\n", "h ");
	test_assert(strstr(out, "* 1 FETCH (FLAGS (\\Seen))") != NULL);
	free(out);
	deliver(root, "1700000004.M1P1Q1.host", "Subject: d\n\nw\n");
	out = cmd(&h, "i NOOP\r\n", "i ");
	test_assert(strstr(out, "* 4 EXISTS") != NULL && strstr(out, "RECENT") == NULL);
	free(out);
	EXPECT(&h, "j STATUS INBOX (RECENT MESSAGES)\r\n", "j ", "(RECENT 0 MESSAGES 4)");
	EXPECT(&h, "k EXAMINE Sent\r\n", "k ", "* OK [CLOSED]", "k OK [READ-ONLY]");
	harness_stop(&h);
	test_end();

	test_begin("imap rev1 keeps SEARCH and \\Recent");
	login(&h, root);
	deliver(root, "1700000005.M1P1Q1.host", "Subject: e\n\nv\n");
	EXPECT(&h, "a SELECT INBOX\r\n", "a ", "* 1 RECENT");
	out = cmd(&h, "b SEARCH ALL\r\n", "b ");
	test_assert(strstr(out, "* SEARCH 1 2 3 4 5\r\n") != NULL && strstr(out, "[CLOSED]") == NULL);
	free(out);
	/* a rev1 client asking for RETURN gets ESEARCH (RFC 4731) */
	EXPECT(&h, "c SEARCH RETURN (ALL) ALL\r\n", "c ",
	    "* ESEARCH (TAG \"c\") ALL 1:5\r\n", "c OK");
	harness_stop(&h);
	test_end();
}
TEST(test_imap_rev2)

static void
test_imap_auth_login(void)
{
	struct harness h;
	const char *root = test_tmpdir();

	test_begin("imap AUTHENTICATE LOGIN and SASL-IR");
	harness_start(&h, root, 0);
	EXPECT(&h, "", "* OK", " SASL-IR AUTH=PLAIN AUTH=LOGIN");
	/* base64 "joe@x.test", "secret" */
	EXPECT(&h, "a AUTHENTICATE LOGIN\r\n", "+ ", "+ VXNlcm5hbWU6\r\n");
	EXPECT(&h, "am9lQHgudGVzdA==\r\n", "+ ", "+ UGFzc3dvcmQ6\r\n");
	EXPECT(&h, "d3Jvbmc=\r\n", "a ", "a NO [AUTHENTICATIONFAILED]");
	EXPECT(&h, "b AUTHENTICATE LOGIN\r\n", "+ ", "+ VXNlcm5hbWU6");
	EXPECT(&h, "*\r\n", "b ", "b BAD Authentication aborted");
	EXPECT(&h, "c AUTHENTICATE LOGIN !!!\r\n", "c ", "c BAD Invalid base64");
	EXPECT(&h, "d AUTHENTICATE CRAM-MD5\r\n", "d ", "d NO");
	EXPECT(&h, "e AUTHENTICATE LOGIN am9lQHgudGVzdA==\r\n", "+ ", "+ UGFzc3dvcmQ6");
	EXPECT(&h, "c2VjcmV0\r\n", "e ", "e OK [CAPABILITY");
	harness_stop(&h);
	test_end();
}
TEST(test_imap_auth_login)

static void
on_auth_refuse(struct imap_session *s, const char *user, const char *pass,
    void *ctx)
{
	imap_session_auth_refuse(s, "[LIMIT] Too many connections for this account");
}

static const struct imap_hooks hooks_refuse = {
	.on_auth = on_auth_refuse,
	.on_disconnect = harness_on_disconnect,
};

static void
test_imap_timeouts(void)
{
	struct harness h;
	const char *root = test_tmpdir();
	char *out;

	test_begin("imap limits: inactivity BYE, IDLE outlives the timeout, refusal with a code");
	{
		struct imap_settings set = { .secure = true, .idle_timeout_ms = 300,
		    .idle_poll_ms = 100 };

		harness_start_set(&h, root, &set);
	}
	free(wait_for(&h, "* OK"));
	EXPECT(&h, "a LOGIN joe@x.test secret\r\n", "a ", "a OK");
	EXPECT(&h, "b SELECT INBOX\r\n", "b ", "b OK");
	EXPECT(&h, "c IDLE\r\n", "+ ", "+ idling");
	spin(&h, 1000);		/* more than three timeouts */
	test_assert(!h.disconnected);
	EXPECT(&h, "DONE\r\n", "c ", "c OK Idle completed.");
	/* out of IDLE the timeout is back */
	out = wait_for(&h, "* BYE");
	for (int i = 0; i < 10 && strstr(out, "* BYE") == NULL; i++) {
		free(out);
		spin(&h, 100);
		out = wait_for(&h, "* BYE");
	}
	test_assert(strstr(out, "* BYE Disconnected for inactivity.") != NULL);
	free(out);
	spin(&h, 50);
	test_assert(h.disconnected);
	harness_stop(&h);

	harness_hooks = &hooks_refuse;
	harness_start(&h, root, 0);
	harness_hooks = &harness_default_hooks;
	free(wait_for(&h, "* OK"));
	EXPECT(&h, "a LOGIN joe@x.test secret\r\n", "a ",
	    "a NO [LIMIT] Too many connections for this account");
	EXPECT(&h, "b SELECT INBOX\r\n", "b ", "b BAD Log in first");
	harness_stop(&h);
	test_end();
}
TEST(test_imap_timeouts)
