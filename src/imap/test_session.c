/* A whole IMAP session over a bufferevent_pair, on a real Maildir. */
#include "imap/test_harness.h"
#include "lib/buf.h"
#include "lib/test.h"
#include "lib/xalloc.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

static const char msg_nested[] =
	"From: Alice <alice@example.com>\n"
	"To: Bob <bob@example.org>\n"
	"Subject: nested\n"
	"Content-Type: multipart/mixed; boundary=\"outer\"\n"
	"\n"
	"--outer\n"
	"Content-Type: text/plain\n"
	"\n"
	"part one\n"
	"--outer\n"
	"Content-Type: message/rfc822\n"
	"\n"
	"Subject: inner\n"
	"\n"
	"inner body\n"
	"--outer--\n";

static void
test_imap_session_basic(void)
{
	struct harness h;
	const char *root = test_tmpdir();
	char *out;

	test_begin("imap session: greeting, state rules, LOGIN with a literal");
	harness_start(&h, root, 100000);
	out = wait_for(&h, "* OK");
	test_assert(strstr(out, "* OK [CAPABILITY IMAP4rev1 ") != NULL);
	test_assert(strstr(out, "AUTH=PLAIN") != NULL);
	test_assert(strstr(out, "mx.test ready.") != NULL);
	free(out);
	EXPECT(&h, "a1 CAPABILITY\r\n", "a1 ", "* CAPABILITY IMAP4rev1", "a1 OK");
	EXPECT(&h, "a2 SELECT INBOX\r\n", "a2 ", "a2 BAD Log in first");
	EXPECT(&h, "a3 LOGIN joe@x.test wrong\r\n", "a3 ",
	    "a3 NO [AUTHENTICATIONFAILED]");
	EXPECT(&h, "a4 LOGIN \"joe@x.test\" {6}\r\n", "+ ", "+ OK");
	EXPECT(&h, "secret\r\n", "a4 ", "a4 OK [CAPABILITY IMAP4rev1");
	EXPECT(&h, "a5 LOGIN x y\r\n", "a5 ", "a5 BAD Already logged in");
	EXPECT(&h, "a6 FETCH 1 FLAGS\r\n", "a6 ", "a6 BAD No mailbox selected");
	EXPECT(&h, "a7 BOGUS\r\n", "a7 ", "a7 BAD Unknown command");
	EXPECT(&h, "a8 NOOP (\r\n", "a8 ", "a8 BAD [CLIENTBUG] Missing ')'");
	test_end();

	test_begin("imap session: LIST, LSUB, CREATE, RENAME, DELETE, STATUS");
	EXPECT(&h, "b1 LIST \"\" \"*\"\r\n", "b1 ",
	    "* LIST (\\HasNoChildren) \".\" \"INBOX\"",
	    "* LIST (\\HasNoChildren \\Sent \\Subscribed) \".\" \"Sent\"",
	    "* LIST (\\HasNoChildren \\Junk \\Subscribed) \".\" \"Junk\"", "b1 OK");
	EXPECT(&h, "b2 LIST \"\" \"\"\r\n", "b2 ", "* LIST (\\Noselect) \".\" \"\"");
	EXPECT(&h, "b3 CREATE Work.\r\n", "b3 ", "b3 OK");
	EXPECT(&h, "b4 CREATE Work.Old\r\n", "b4 ", "b4 OK");
	EXPECT(&h, "b5 LIST \"\" %\r\n", "b5 ",
	    "* LIST (\\HasChildren) \".\" \"Work\"", "b5 OK");
	EXPECT(&h, "b6 RENAME Work Job\r\n", "b6 ", "b6 OK");
	EXPECT(&h, "b7 LIST \"\" Job*\r\n", "b7 ", "\"Job.Old\"", "b7 OK");
	EXPECT(&h, "b7b LIST \"\" J%b\r\n", "b7b ", "\"Job\"", "b7b OK");
	EXPECT(&h, "b7c LIST \"\" %%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%.x\r\n",
	    "b7c ", "b7c OK List completed.");
	EXPECT(&h, "b7d LIST \"\" inbox\r\n", "b7d ", "\"INBOX\"", "b7d OK");
	EXPECT(&h, "b8 DELETE Job.Old\r\n", "b8 ", "b8 OK");
	EXPECT(&h, "b9 DELETE Nope\r\n", "b9 ", "b9 NO [NONEXISTENT]");
	EXPECT(&h, "b10 SUBSCRIBE Job\r\n", "b10 ", "b10 OK");
	EXPECT(&h, "b11 LSUB \"\" *\r\n", "b11 ", "* LSUB (\\HasNoChildren) \".\" \"Job\"", "b11 OK");
	EXPECT(&h, "b12 STATUS Trash (MESSAGES UIDNEXT UNSEEN)\r\n", "b12 ",
	    "* STATUS \"Trash\" (MESSAGES 0 UIDNEXT 1 UNSEEN 0)", "b12 OK");
	EXPECT(&h, "b13 NAMESPACE\r\n", "b13 ", "* NAMESPACE ((\"\" \".\")) NIL NIL");
	EXPECT(&h, "b14 ID (\"name\" \"test\")\r\n", "b14 ", "* ID (\"name\" \"tegami\")");
	test_end();

	test_begin("imap session: SELECT, FETCH with sections, STORE, SEARCH");
	deliver(root, "1700000001.M1P1Q1.host", "Subject: first\n\nhello\n");
	deliver(root, "1700000002.M1P1Q1.host", msg_nested);
	EXPECT(&h, "c1 SELECT INBOX\r\n", "c1 ", "* 2 EXISTS", "* 2 RECENT", "* OK [UIDVALIDITY ",
	    "* OK [UIDNEXT 3]", "* OK [UNSEEN 1]", "c1 OK [READ-WRITE] Select completed.");
	EXPECT(&h, "c2 FETCH 1:* (UID FLAGS RFC822.SIZE)\r\n", "c2 ",
	    "* 1 FETCH (UID 1 FLAGS (\\Recent) RFC822.SIZE 25)",
	    "* 2 FETCH (UID 2 FLAGS (\\Recent) RFC822.SIZE ", "c2 OK");
	EXPECT(&h, "c3 FETCH 2 BODYSTRUCTURE\r\n", "c3 ",
	    "* 2 FETCH (BODYSTRUCTURE ((\"text\" \"plain\" NIL NIL NIL \"7bit\" 8 1 NIL NIL NIL NIL)"
	    "(\"message\" \"rfc822\" NIL NIL NIL \"7bit\" 28 (NIL \"inner\" NIL NIL NIL NIL NIL NIL NIL NIL)"
	    " (\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 10 1 NIL NIL NIL NIL) 3"
	    " NIL NIL NIL NIL) \"mixed\" (\"boundary\" \"outer\") NIL NIL NIL))");
	/* twice: the second answer comes from the index cache */
	EXPECT(&h, "c3b FETCH 2 (ENVELOPE BODYSTRUCTURE)\r\n", "c3b ",
	    "ENVELOPE (NIL \"nested\" ((\"Alice\" NIL \"alice\" \"example.com\"))",
	    "BODYSTRUCTURE ((\"text\" \"plain\" NIL", "c3b OK");
	EXPECT(&h, "c3c FETCH 2 (ENVELOPE)\r\n", "c3c ",
	    "ENVELOPE (NIL \"nested\" ((\"Alice\"", "c3c OK");
	EXPECT(&h, "c4 FETCH 2 (BODY.PEEK[1] BODY.PEEK[2.HEADER] BODY.PEEK[2.1]"
	    " BODY.PEEK[HEADER.FIELDS (Subject)])\r\n", "c4 ",
	    "BODY[1] {8}\r\npart one", "BODY[2.HEADER] {18}\r\nSubject: inner\r\n\r\n",
	    "BODY[2.1] {10}\r\ninner body",
	    "BODY[HEADER.FIELDS (Subject)] {19}\r\nSubject: nested\r\n\r\n", "c4 OK");
	EXPECT(&h, "c5 FETCH 1 BODY[]<9.5>\r\n", "c5 ",
	    "* 1 FETCH (BODY[]<9> {5}\r\nfirst FLAGS (\\Recent \\Seen))", "c5 OK");
	EXPECT(&h, "c6 FETCH 1 BODY[9.MIME.X]\r\n", "c6 ", "c6 BAD");
	EXPECT(&h, "c7 FETCH 3 FLAGS\r\n", "c7 ", "c7 BAD");
	EXPECT(&h, "c8 UID FETCH 3:* FLAGS\r\n", "c8 ", "* 2 FETCH (UID 2 FLAGS (\\Recent))", "c8 OK");
	/* a new keyword is announced in FLAGS before the FETCH shows it */
	EXPECT(&h, "c9 STORE 2 +FLAGS (\\Flagged $Work)\r\n", "c9 ",
	    "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)\r\n"
	    "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work \\*)]",
	    "* 2 FETCH (FLAGS (\\Recent \\Flagged $Work))", "c9 OK");
	EXPECT(&h, "c9b STORE 1 +FLAGS ($Work NIL)\r\n", "c9b ",
	    "$Work NIL)\r\n", "* 1 FETCH (FLAGS (\\Recent \\Seen $Work NIL))", "c9b OK");
	EXPECT(&h, "c9c STORE 1 -FLAGS (NIL)\r\n", "c9c ", "c9c OK");
	EXPECT(&h, "c10 UID STORE 2 -FLAGS.SILENT ($Work)\r\n", "c10 ", "c10 OK");
	EXPECT(&h, "c11 SEARCH FLAGGED\r\n", "c11 ", "* SEARCH 2\r\n", "c11 OK");
	EXPECT(&h, "c12 UID SEARCH SUBJECT NESTED\r\n", "c12 ", "* SEARCH 2\r\n");
	EXPECT(&h, "c13 SEARCH OR SEEN KEYWORD $Work\r\n", "c13 ", "* SEARCH 1\r\n");
	EXPECT(&h, "c14 SEARCH NOT (1) BODY \"inner body\"\r\n", "c14 ", "* SEARCH 2\r\n");
	EXPECT(&h, "c15 SEARCH LARGER 100 SMALLER 10\r\n", "c15 ", "* SEARCH\r\n");
	EXPECT(&h, "c16 SEARCH FOO\r\n", "c16 ", "c16 BAD Unknown search key");
	EXPECT(&h, "c17 STORE 1 FLAGS (\\Bogus)\r\n", "c17 ", "c17 BAD Invalid flags");
	test_end();

	test_begin("imap session: CONDSTORE");
	out = cmd(&h, "cs1 ENABLE CONDSTORE\r\n", "cs1 ");
	test_assert(strstr(out, "* ENABLED CONDSTORE\r\n") != NULL);
	free(out);
	{
		unsigned long long m1 = 0, m2 = 0;
		char *p, q[160];

		out = cmd(&h, "cs2 FETCH 1:2 (MODSEQ)\r\n", "cs2 ");
		p = strstr(out, "* 1 FETCH (MODSEQ (");
		test_assert(p != NULL && sscanf(p, "* 1 FETCH (MODSEQ (%llu))", &m1) == 1);
		p = strstr(out, "* 2 FETCH (MODSEQ (");
		test_assert(p != NULL && sscanf(p, "* 2 FETCH (MODSEQ (%llu))", &m2) == 1);
		free(out);
		test_assert(m1 > 0 && m2 > m1);
		/* only what changed since m1: message 2 */
		snprintf(q, sizeof(q), "cs3 FETCH 1:* (FLAGS) (CHANGEDSINCE %llu)\r\n", m1);
		out = cmd(&h, q, "cs3 ");
		test_assert(strstr(out, "* 1 FETCH") == NULL);
		test_assert(strstr(out, "* 2 FETCH (FLAGS (\\Recent \\Flagged) MODSEQ (") != NULL);
		free(out);
		/* message 1 changed after m1 (\Seen): conditional store fails */
		snprintf(q, sizeof(q), "cs4 STORE 1:2 (UNCHANGEDSINCE %llu) +FLAGS (\\Answered)\r\n", m2);
		out = cmd(&h, q, "cs4 ");
		/* under CONDSTORE the FETCH a STORE causes names the UID */
		test_assert(strstr(out, "* 2 FETCH (UID 2 FLAGS (\\Recent \\Answered \\Flagged) MODSEQ (") != NULL);
		test_assert(strstr(out, "cs4 OK Store completed.") != NULL);
		free(out);
		snprintf(q, sizeof(q), "cs5 STORE 2 (UNCHANGEDSINCE %llu) +FLAGS (\\Draft)\r\n", m1);
		out = cmd(&h, q, "cs5 ");
		test_assert(strstr(out, "cs5 OK [MODIFIED 2]") != NULL);
		free(out);
		snprintf(q, sizeof(q), "cs6 SEARCH MODSEQ %llu\r\n", m2 + 1);
		out = cmd(&h, q, "cs6 ");
		test_assert(strstr(out, "* SEARCH 1 2 (MODSEQ ") != NULL);
		free(out);
		EXPECT(&h, "cs7 STORE 2 -FLAGS.SILENT (\\Answered)\r\n", "cs7 ",
		    "* 2 FETCH (UID 2 MODSEQ (", "cs7 OK");
		EXPECT(&h, "cs8 STATUS INBOX (HIGHESTMODSEQ)\r\n", "cs8 ",
		    "* STATUS \"INBOX\" (HIGHESTMODSEQ ");
		EXPECT(&h, "cs9 SELECT INBOX (CONDSTORE)\r\n", "cs9 ",
		    "* OK [HIGHESTMODSEQ ", "cs9 OK [READ-WRITE]");
	}
	test_end();

	test_begin("imap session: COPY, APPEND, EXPUNGE, MOVE (UIDPLUS)");
	EXPECT(&h, "d1 COPY 1:2 Trash\r\n", "d1 ", "d1 OK [COPYUID ", " 1:2 1:2] Copy completed.");
	EXPECT(&h, "d2 COPY 1 Nope\r\n", "d2 ", "d2 NO [TRYCREATE]");
	EXPECT(&h, "d3 APPEND Drafts (\\Draft) \"05-Mar-2024 10:00:00 +0100\" {13+}\r\n"
	    "Subject: x\r\n\r\n", "d3 ", "d3 OK [APPENDUID ", " 1] Append completed.");
	EXPECT(&h, "d4 APPEND Drafts {200000}\r\n", "d4 ", "d4 NO [TOOBIG]");
	EXPECT(&h, "d5 STATUS Drafts (MESSAGES)\r\n", "d5 ", "(MESSAGES 1)");
	EXPECT(&h, "d6 STORE 1 +FLAGS.SILENT (\\Deleted)\r\n", "d6 ", "d6 OK");
	EXPECT(&h, "d7 EXPUNGE\r\n", "d7 ", "* 1 EXPUNGE\r\n", "d7 OK");
	EXPECT(&h, "d8 FETCH 1 UID\r\n", "d8 ", "* 1 FETCH (UID 2)");
	EXPECT(&h, "d9 MOVE 1 Junk\r\n", "d9 ", "* OK [COPYUID ", " 2 1] Moved",
	    "* 1 EXPUNGE\r\n", "d9 OK");
	EXPECT(&h, "d10 STATUS Junk (MESSAGES UIDNEXT)\r\n", "d10 ",
	    "(MESSAGES 1 UIDNEXT 2)");
	test_end();

	test_begin("imap session: IDLE sees a delivery, DONE ends it");
	EXPECT(&h, "e1 IDLE\r\n", "+ ", "+ idling");
	deliver(root, "1700000003.M1P1Q1.host", "Subject: third\n\nnew\n");
	out = wait_for(&h, "* 1 EXISTS");
	for (int i = 0; i < 30 && strstr(out, "EXISTS") == NULL; i++) {
		free(out);
		spin(&h, 50);
		out = wait_for(&h, "* 1 EXISTS");
	}
	test_assert(strstr(out, "* 1 EXISTS") != NULL);
	free(out);
	EXPECT(&h, "DONE\r\n", "e1 ", "e1 OK Idle completed.");
	EXPECT(&h, "e2 UNSELECT\r\n", "e2 ", "e2 OK");
	EXPECT(&h, "e3 EXAMINE INBOX\r\n", "e3 ", "[READ-ONLY]");
	EXPECT(&h, "e4 STORE 1 +FLAGS (\\Seen)\r\n", "e4 ", "e4 NO [READ-ONLY]");
	EXPECT(&h, "e5 CLOSE\r\n", "e5 ", "e5 OK");
	test_end();

	test_begin("imap session: LOGOUT");
	EXPECT(&h, "z LOGOUT\r\n", "z ", "* BYE", "z OK");
	spin(&h, 20);
	test_assert(h.disconnected);
	harness_stop(&h);
	test_end();
}
TEST(test_imap_session_basic)

static void
test_imap_session_auth(void)
{
	struct harness h;
	const char *root = test_tmpdir();
	const char *login = "x LOGIN joe@x.test secret\r\ny NOOP\r\n";
	char *out;

	test_begin("imap session: AUTHENTICATE PLAIN with continuation and SASL-IR");
	harness_start(&h, root, 0);
	free(wait_for(&h, "* OK"));
	EXPECT(&h, "a AUTHENTICATE PLAIN\r\n", "+ ", "+ \r\n");
	/* base64("\0joe@x.test\0wrong") */
	EXPECT(&h, "AGpvZUB4LnRlc3QAd3Jvbmc=\r\n", "a ", "a NO [AUTHENTICATIONFAILED]");
	EXPECT(&h, "b AUTHENTICATE PLAIN\r\n", "+ ", "+ \r\n");
	EXPECT(&h, "*\r\n", "b ", "b BAD Authentication aborted");
	EXPECT(&h, "c AUTHENTICATE PLAIN !!!!\r\n", "c ", "c BAD");
	/* base64("\0joe@x.test\0secret") */
	EXPECT(&h, "d AUTHENTICATE PLAIN AGpvZUB4LnRlc3QAc2VjcmV0\r\n", "d ",
	    "d OK [CAPABILITY");
	harness_stop(&h);
	test_end();

	test_begin("imap session: a login fed one byte at a time, pipelined");
	harness_start(&h, root, 0);
	free(wait_for(&h, "* OK"));
	for (const char *p = login; *p != '\0'; p++) {
		bufferevent_write(h.client, p, 1);
		event_base_loop(h.base, EVLOOP_NONBLOCK);
	}
	out = wait_for(&h, "y ");
	test_assert(strstr(out, "x OK [CAPABILITY") != NULL);
	test_assert(strstr(out, "y OK NOOP completed.") != NULL);
	test_assert(h.auth_calls == 1);
	free(out);
	harness_stop(&h);
	test_end();

	test_begin("imap session: a line too long ends the session");
	harness_start(&h, root, 0);
	free(wait_for(&h, "* OK"));
	{
		char *big = xmalloc(70000);

		memset(big, 'x', 70000);
		memcpy(big, "a NOOP ", 7);
		bufferevent_write(h.client, big, 70000);
		free(big);
	}
	out = wait_for(&h, "* BYE");
	test_assert(strstr(out, "* BYE Command line too long") != NULL);
	free(out);
	spin(&h, 20);
	test_assert(h.disconnected);
	harness_stop(&h);
	test_end();
}
TEST(test_imap_session_auth)

static EVP_PKEY *tls_key;
static X509 *tls_cert;

/* A throwaway self-signed certificate for the STARTTLS test. */
static SSL_CTX *
test_server_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	X509_NAME *name;

	if (tls_cert == NULL) {
		tls_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		tls_cert = X509_new();
		X509_set_version(tls_cert, 2);
		ASN1_INTEGER_set(X509_get_serialNumber(tls_cert), 7);
		X509_gmtime_adj(X509_getm_notBefore(tls_cert), -60);
		X509_gmtime_adj(X509_getm_notAfter(tls_cert), 600);
		X509_set_pubkey(tls_cert, tls_key);
		name = X509_get_subject_name(tls_cert);
		X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
		    (const unsigned char *)"mx.test", -1, -1, 0);
		X509_set_issuer_name(tls_cert, name);
		X509_sign(tls_cert, tls_key, EVP_sha256());
	}
	SSL_CTX_use_certificate(ctx, tls_cert);
	SSL_CTX_use_PrivateKey(ctx, tls_key);
	return ctx;
}

static void
client_tls_event(struct bufferevent *bev, short what, void *arg)
{
	struct harness *h = arg;

	if (what & BEV_EVENT_CONNECTED)
		h->tls_up = true;
}

static void
test_imap_session_starttls(void)
{
	SSL_CTX *sctx = test_server_ctx();
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	struct harness h;
	char *out;

	test_begin("imap session: STARTTLS, then login; pipelined plaintext dropped");
	SSL_CTX_set_verify(cctx, SSL_VERIFY_NONE, NULL);
	harness_start_tls(&h, test_tmpdir(), 0, sctx);
	out = wait_for(&h, "* OK");
	test_assert(strstr(out, " STARTTLS LOGINDISABLED]") != NULL);
	free(out);
	EXPECT(&h, "a LOGIN joe@x.test secret\r\n", "a ", "a NO [PRIVACYREQUIRED]");
	/* "b NOOP" is sent before the client saw the OK: it must vanish */
	EXPECT(&h, "t STARTTLS\r\nb NOOP\r\n", "t ", "t OK Begin TLS negotiation now.");
	h.client_raw = h.client;
	h.client = bufferevent_openssl_filter_new(h.base, h.client_raw,
	    SSL_new(cctx), BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	bufferevent_setcb(h.client, harness_client_read, NULL, client_tls_event, &h);
	bufferevent_enable(h.client, EV_READ | EV_WRITE);
	for (int i = 0; i < 100 && !h.tls_up; i++)
		spin(&h, 10);
	test_assert(h.tls_up);
	out = wait_for(&h, "c ");
	test_assert(strstr(out, "b ") == NULL);
	free(out);
	EXPECT(&h, "c CAPABILITY\r\n", "c ", " AUTH=PLAIN AUTH=LOGIN\r\n", "c OK");
	EXPECT(&h, "d STARTTLS\r\n", "d ", "d BAD TLS is already active");
	EXPECT(&h, "e LOGIN joe@x.test secret\r\n", "e ", "e OK [CAPABILITY");
	EXPECT(&h, "f SELECT INBOX\r\n", "f ", "f OK [READ-WRITE]");
	harness_stop(&h);
	SSL_CTX_free(sctx);
	SSL_CTX_free(cctx);
	test_end();
}
TEST(test_imap_session_starttls)

/* on_auth that answers later, from a timer, as a glue on a pool would */
struct later {
	struct imap_session *s;
	struct harness *h;
	struct event *ev;
};

static struct later later_auth;

static void
later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct later *l = arg;

	imap_session_auth_reply(l->s, true, l->h->root);
}

static void
on_auth_later(struct imap_session *s, const char *user, const char *pass,
    void *ctx)
{
	struct timeval tv = { 0, 50000 };

	later_auth.s = s;
	later_auth.h = ctx;
	event_add(later_auth.ev, &tv);
}

static const struct imap_hooks hooks_later = {
	.on_auth = on_auth_later,
	.on_disconnect = harness_on_disconnect,
};

static void
test_imap_session_async_auth(void)
{
	struct harness h;
	char *out;

	test_begin("imap session: asynchronous auth answer, pipelined commands wait");
	harness_hooks = &hooks_later;
	harness_start(&h, test_tmpdir(), 0);
	harness_hooks = &harness_default_hooks;
	later_auth.ev = evtimer_new(h.base, later_cb, &later_auth);
	free(wait_for(&h, "* OK"));
	bufferevent_write(h.client, "a LOGIN u p\r\nb NOOP\r\n", 21);
	spin(&h, 10);
	out = wait_for(&h, "b ");
	test_assert(strstr(out, "a OK") != NULL);
	test_assert(strstr(out, "b OK") != NULL);
	test_assert(strstr(out, "a OK") < strstr(out, "b OK"));
	free(out);
	harness_stop(&h);
	event_free(later_auth.ev);
	test_end();

	test_begin("imap session: client gone while auth is asked: answer, then end");
	{
		/* a socketpair: closing our end gives the server a real EOF */
		struct imap_settings set = { .secure = true };
		int fds[2];

		memset(&h, 0, sizeof(h));
		memset(&later_auth, 0, sizeof(later_auth));
		h.root = test_tmpdir();
		buf_init(&h.in, BUF_UNLIMITED);
		h.base = event_base_new();
		test_assert(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
		evutil_make_socket_nonblocking(fds[0]);
		later_auth.ev = evtimer_new(h.base, later_cb, &later_auth);
		h.s = imap_session_new(h.base, bufferevent_socket_new(h.base, fds[0],
		    BEV_OPT_CLOSE_ON_FREE), &set, &hooks_later, &h);
		test_assert(write(fds[1], "a LOGIN u p\r\n", 13) == 13);
		for (int i = 0; i < 20 && later_auth.s != h.s; i++)
			spin(&h, 5);
		test_assert(later_auth.s == h.s);
		close(fds[1]);
		spin(&h, 20);
		test_assert(!h.disconnected);	/* waits for the answer */
		spin(&h, 100);
		test_assert(h.disconnected);
		event_base_loop(h.base, EVLOOP_NONBLOCK);
		event_free(later_auth.ev);
		event_base_free(h.base);
		buf_free(&h.in);
	}
	test_end();
}
TEST(test_imap_session_async_auth)

static void
test_imap_session_big_fetch(void)
{
	struct harness h;
	const char *root = test_tmpdir();
	char *body = xmalloc(100001), *out, *p;
	unsigned int count = 0;

	test_begin("imap session: a big FETCH goes out in steps, in order");
	memset(body, 'x', 100000);
	for (int i = 0; i < 100000; i += 100)
		body[i] = '\n';
	body[100000] = '\0';
	harness_start(&h, root, 0);
	free(wait_for(&h, "* OK"));
	EXPECT(&h, "a LOGIN joe@x.test secret\r\n", "a ", "a OK");
	for (int i = 0; i < 40; i++) {
		char name[64];

		snprintf(name, sizeof(name), "17000000%02d.M1P1Q1.host", i);
		deliver(root, name, body);
	}
	EXPECT(&h, "b SELECT INBOX\r\n", "b ", "* 40 EXISTS");
	/* the client reads slowly: 64 KiB at a time */
	bufferevent_setwatermark(h.client, EV_READ, 0, 65536);
	bufferevent_write(h.client, "c FETCH 1:* BODY.PEEK[]\r\nd NOOP\r\n", 33);
	out = wait_for(&h, "d ");
	for (p = out; (p = strstr(p, " FETCH (BODY[] {101000}\r\n")) != NULL; p++)
		count++;
	test_assert(count == 40);
	test_assert(strstr(out, "c OK Fetch completed.") != NULL);
	test_assert(strstr(out, "c OK") < strstr(out, "d OK"));
	test_assert(strstr(out, "* 40 FETCH") < strstr(out, "c OK"));
	free(out);
	harness_stop(&h);
	free(body);
	test_end();
}
TEST(test_imap_session_big_fetch)
