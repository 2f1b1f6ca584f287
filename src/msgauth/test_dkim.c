#include "msgauth/dkim_canon.h"
#include "msgauth/dkim_keys.h"
#include "msgauth/dkim_sign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/file.h"
#include "lib/test.h"
#include "lib/xalloc.h"

/* RFC 8463 Appendix A: keys, message and signatures. */
#define RFC8463_ED25519_PEM \
	"-----BEGIN PRIVATE KEY-----\n" \
	"MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n" \
	"-----END PRIVATE KEY-----\n"
#define RFC8463_ED25519_DNS \
	"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
#define RFC8463_RSA_PEM \
	"-----BEGIN RSA PRIVATE KEY-----\n" \
	"MIICXQIBAAKBgQDkHlOQoBTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQi\n" \
	"Y/J16JYi0Qvx/byYzCNb3W91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqM\n" \
	"KrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB\n" \
	"AoGAH0cxOhFZDgzXWhDhnAJDw5s4roOXN4OhjiXa8W7Y3rhX3FJqmJSPuC8N9vQm\n" \
	"6SVbaLAE4SG5mLMueHlh4KXffEpuLEiNp9Ss3O4YfLiQpbRqE7Tm5SxKjvvQoZZe\n" \
	"zHorimOaChRL2it47iuWxzxSiRMv4c+j70GiWdxXnxe4UoECQQDzJB/0U58W7RZy\n" \
	"6enGVj2kWF732CoWFZWzi1FicudrBFoy63QwcowpoCazKtvZGMNlPWnC7x/6o8Gc\n" \
	"uSe0ga2xAkEA8C7PipPm1/1fTRQvj1o/dDmZp243044ZNyxjg+/OPN0oWCbXIGxy\n" \
	"WvmZbXriOWoSALJTjExEgraHEgnXssuk7QJBALl5ICsYMu6hMxO73gnfNayNgPxd\n" \
	"WFV6Z7ULnKyV7HSVYF0hgYOHjeYe9gaMtiJYoo0zGN+L3AAtNP9huqkWlzECQE1a\n" \
	"licIeVlo1e+qJ6Mgqr0Q7Aa7falZ448ccbSFYEPD6oFxiOl9Y9se9iYHZKKfIcst\n" \
	"o7DUw1/hz2Ck4N5JrgUCQQCyKveNvjzkkd8HjYs0SwM0fPjK16//5qDZ2UiDGnOe\n" \
	"uEzxBDAr518Z8VFbR41in3W4Y3yCDgQlLlcETrS+zYcL\n" \
	"-----END RSA PRIVATE KEY-----\n"
#define RFC8463_RSA_DNS \
	"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR" \
	"iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC" \
	"DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3" \
	"Ip3G+2kryOTIKT+l/K4w3QIDAQAB"
#define RFC8463_MESSAGE \
	"From: Joe SixPack <joe@football.example.com>\r\n" \
	"To: Suzie Q <suzie@shopping.example.net>\r\n" \
	"Subject: Is dinner ready?\r\n" \
	"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n" \
	"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n" \
	"\r\n" \
	"Hi.\r\n" \
	"\r\n" \
	"We lost the game.  Are you hungry yet?\r\n" \
	"\r\n" \
	"Joe.\r\n"
#define RFC8463_BH "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8="
/* The signature fields of A.3 with their b= value removed. */
#define RFC8463_ED25519_FIELD \
	"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n" \
	" d=football.example.com; i=@football.example.com;\r\n" \
	" q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n" \
	" subject : date : message-id : from : subject : date;\r\n" \
	" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n" \
	" b="
#define RFC8463_ED25519_B \
	"/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus" \
	"Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw=="
#define RFC8463_RSA_FIELD \
	"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n" \
	" d=football.example.com; i=@football.example.com;\r\n" \
	" q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n" \
	" date : message-id : from : subject : date;\r\n" \
	" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n" \
	" b="
#define RFC8463_RSA_B \
	"F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3" \
	"DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz" \
	"dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8="

static void
test_dkim_canon_header(void)
{
	static const struct {
		enum dkim_canon canon;
		const char *in, *out;
	} cases[] = {
		/* RFC 6376 3.4.5 */
		{ DKIM_CANON_RELAXED, "A: X\r\n", "a:X\r\n" },
		{ DKIM_CANON_RELAXED, "B : Y\t\r\n\tZ  \r\n", "b:Y Z\r\n" },
		{ DKIM_CANON_SIMPLE, "B : Y\t\r\n\tZ  \r\n", "B : Y\t\r\n\tZ  \r\n" },
		{ DKIM_CANON_RELAXED, "SUBJect:  Is   dinner\r\n ready?  ",
		    "subject:Is dinner ready?\r\n" },
		{ DKIM_CANON_RELAXED, "X-Empty:", "x-empty:\r\n" },
		{ DKIM_CANON_RELAXED, "X-Empty:  \r\n \r\n", "x-empty:\r\n" },
		{ DKIM_CANON_RELAXED, "To:a@b,\n c@d", "to:a@b, c@d\r\n" },
	};
	struct buf out;

	test_begin("dkim canon header");
	buf_init(&out, BUF_UNLIMITED);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		buf_reset(&out);
		test_assert_int(dkim_canon_header(cases[i].canon, cases[i].in,
		    strlen(cases[i].in), true, &out), 0);
		test_assert_str(buf_cstr(&out), cases[i].out);
	}
	buf_reset(&out);
	dkim_canon_header(DKIM_CANON_RELAXED, "DKIM-Signature: a=1;\r\n b=",
	    25, false, &out);
	test_assert_str(buf_cstr(&out), "dkim-signature:a=1; b=");
	buf_free(&out);
	test_end();
}

static void
collect_sink(void *context, const void *data, size_t len)
{
	buf_append(context, data, len);
}

static void
test_dkim_canon_body(void)
{
	static const struct {
		enum dkim_canon canon;
		const char *in, *out;
	} cases[] = {
		/* RFC 6376 3.4.5 */
		{ DKIM_CANON_RELAXED, " C \r\nD \t E\r\n\r\n\r\n", " C\r\nD E\r\n" },
		{ DKIM_CANON_SIMPLE, " C \r\nD \t E\r\n\r\n\r\n", " C \r\nD \t E\r\n" },
		/* empty body: CRLF in simple, nothing in relaxed */
		{ DKIM_CANON_SIMPLE, "", "\r\n" },
		{ DKIM_CANON_RELAXED, "", "" },
		{ DKIM_CANON_SIMPLE, "\r\n\r\n", "\r\n" },
		{ DKIM_CANON_RELAXED, "\r\n \t\r\n", "" },
		/* no final CRLF: one is added */
		{ DKIM_CANON_SIMPLE, "a\r\nb", "a\r\nb\r\n" },
		{ DKIM_CANON_RELAXED, "a\r\nb  ", "a\r\nb\r\n" },
		/* empty lines inside the body stay */
		{ DKIM_CANON_RELAXED, "a\r\n\r\n  \r\nb\r\n\r\n", "a\r\n\r\n\r\nb\r\n" },
		{ DKIM_CANON_SIMPLE, "a\r\n\r\n  \r\nb\r\n\r\n", "a\r\n\r\n  \r\nb\r\n" },
		/* bare LF is a line end; a lone CR is data */
		{ DKIM_CANON_RELAXED, "a\nb\n\n", "a\r\nb\r\n" },
		{ DKIM_CANON_SIMPLE, "a\rb\r\n", "a\rb\r\n" },
		{ DKIM_CANON_SIMPLE, "a\r", "a\r\r\n" },
		{ DKIM_CANON_RELAXED, "\t lead\r\n", " lead\r\n" },
	};
	struct dkim_body_canon bc;
	struct buf out;

	test_begin("dkim canon body (whole and byte by byte)");
	buf_init(&out, BUF_UNLIMITED);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *in = cases[i].in;

		buf_reset(&out);
		dkim_body_canon_init(&bc, cases[i].canon, collect_sink, &out);
		dkim_body_canon_update(&bc, in, strlen(in));
		dkim_body_canon_final(&bc);
		test_assert_str(buf_cstr(&out), cases[i].out);
		test_assert_int(bc.out_len, strlen(cases[i].out));

		buf_reset(&out);
		dkim_body_canon_init(&bc, cases[i].canon, collect_sink, &out);
		for (size_t k = 0; in[k] != '\0'; k++)
			dkim_body_canon_update(&bc, in + k, 1);
		dkim_body_canon_final(&bc);
		test_assert_str(buf_cstr(&out), cases[i].out);
	}
	buf_free(&out);
	test_end();
}

static void
test_dkim_canon_body_large(void)
{
	struct dkim_body_canon bc;
	struct buf out;
	char chunk[1000];

	test_begin("dkim canon body: many empty lines, large output batches");
	buf_init(&out, BUF_UNLIMITED);
	dkim_body_canon_init(&bc, DKIM_CANON_RELAXED, collect_sink, &out);
	/* 5000 empty lines then text: all kept; then 5000 trailing: dropped */
	for (int i = 0; i < 5000; i++)
		dkim_body_canon_update(&bc, "\r\n", 2);
	memset(chunk, 'x', sizeof(chunk));
	for (int i = 0; i < 20; i++)
		dkim_body_canon_update(&bc, chunk, sizeof(chunk));
	for (int i = 0; i < 5000; i++)
		dkim_body_canon_update(&bc, " \r\n", 3);
	dkim_body_canon_final(&bc);
	test_assert_int(out.len, 5000 * 2 + 20000 + 2);
	buf_free(&out);
	test_end();
}

static struct dkim_key *
load_pem(const char *pem, const char *domain, const char *selector)
{
	struct dkim_key *key = NULL;
	char *error = NULL;

	if (dkim_key_from_pem(pem, strlen(pem), domain, selector, &key,
	    &error) < 0) {
		printf("     key: %s\n", error);
		free(error);
	}
	return key;
}

static void
test_dkim_rfc8463_vectors(void)
{
	static const char *const h[] = {
		"from", "to", "subject", "date", "message-id",
		"from", "subject", "date",
	};
	struct dkim_key *ed, *rsa;
	struct dkim_signer *s;
	char bh[45];
	char *b = NULL, *error = NULL, *rec;

	test_begin("dkim RFC 8463 appendix A: bh= and both b= exactly");
	ed = load_pem(RFC8463_ED25519_PEM, "football.example.com", "brisbane");
	rsa = load_pem(RFC8463_RSA_PEM, "football.example.com", "test");
	test_assert(ed != NULL && rsa != NULL);
	if (ed == NULL || rsa == NULL)
		goto out;
	test_assert_int(dkim_key_algorithm(ed), DKIM_ALG_ED25519_SHA256);
	test_assert_int(dkim_key_algorithm(rsa), DKIM_ALG_RSA_SHA256);
	/* The keys are the ones of A.2: same DNS records. */
	rec = dkim_key_dns_record(ed);
	test_assert_str(rec, RFC8463_ED25519_DNS);
	free(rec);
	rec = dkim_key_dns_record(rsa);
	test_assert_str(rec, RFC8463_RSA_DNS);
	free(rec);

	s = dkim_signer_new(1528637909);
	test_assert_int(dkim_signer_update(s, RFC8463_MESSAGE,
	    strlen(RFC8463_MESSAGE)), 0);
	dkim_signer_body_hash(s, bh);
	test_assert_str(bh, RFC8463_BH);
	test_assert_int(dkim_signer_sign_field(s, ed, h, 8,
	    RFC8463_ED25519_FIELD, &b, &error), 0);
	test_assert_str(b, RFC8463_ED25519_B);
	x_free(&b);
	test_assert_int(dkim_signer_sign_field(s, rsa, h, 8,
	    RFC8463_RSA_FIELD, &b, &error), 0);
	test_assert_str(b, RFC8463_RSA_B);
	x_free(&b);
	dkim_signer_free(&s);

	/* Same again, fed one byte at a time. */
	s = dkim_signer_new(1528637909);
	for (const char *p = RFC8463_MESSAGE; *p != '\0'; p++)
		dkim_signer_update(s, p, 1);
	test_assert_int(dkim_signer_sign_field(s, ed, h, 8,
	    RFC8463_ED25519_FIELD, &b, &error), 0);
	test_assert_str(b, RFC8463_ED25519_B);
	x_free(&b);
	dkim_signer_free(&s);
out:
	free(error);
	dkim_key_free(&ed);
	dkim_key_free(&rsa);
	test_end();
}

/* Counts "name" in the h= list of a field. */
static unsigned int
h_count(const char *field, const char *name)
{
	char *copy = xstrdup(field), *p, *h, *end, *tok, *save = NULL;
	unsigned int n = 0;

	/* Unfold, then take h=...; */
	for (p = copy; *p != '\0'; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	h = strstr(copy, " h=");
	if (h != NULL && (end = strchr(h, ';')) != NULL) {
		*end = '\0';
		for (tok = strtok_r(h + 3, ": ", &save); tok != NULL;
		    tok = strtok_r(NULL, ": ", &save))
			if (strcmp(tok, name) == 0)
				n++;
	}
	free(copy);
	return n;
}

static void
test_dkim_sign_fields(void)
{
	static const char msg[] =
	    "Received: from x by y; Fri, 27 Nov 2026 10:00:00 +0000\r\n"
	    "From: Joe <joe@football.example.com>\r\n"
	    "To: a@example.net,\r\n b@example.net\r\n"
	    "Subject: hello\r\n"
	    "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
	    "Message-ID: <1@football.example.com>\r\n"
	    "List-Id: <list.example.com>\r\n"
	    "\r\n"
	    "body\r\n";
	struct dkim_key *keys[2];
	struct dkim_signer *s;
	char *fields = NULL, *error = NULL, *line, *save = NULL, *copy;
	bool long_line = false;

	test_begin("dkim sign: fields, over-signing, folding, two keys");
	keys[0] = load_pem(RFC8463_RSA_PEM, "football.example.com", "test");
	keys[1] = load_pem(RFC8463_ED25519_PEM, "football.example.com", "brisbane");
	s = dkim_signer_new(1700000000);
	dkim_signer_update(s, msg, sizeof(msg) - 1);
	test_assert_int(dkim_signer_finish(s, keys, 2, &fields, &error), 0);
	test_assert(fields != NULL && strncmp(fields, "DKIM-Signature: v=1; a=rsa-sha256;", 34) == 0);
	test_assert(fields != NULL && strstr(fields, "\r\nDKIM-Signature: v=1; a=ed25519-sha256;") != NULL);
	test_assert(fields != NULL && strstr(fields, " t=1700000000;") != NULL);
	test_assert(fields != NULL && strstr(fields, " s=brisbane;") != NULL);
	test_assert(fields != NULL && strstr(fields, " d=football.example.com;") != NULL);
	if (fields != NULL) {
		char *second = strstr(fields, "\r\nDKIM-Signature:");

		test_assert(second != NULL);
		if (second != NULL)
			second[2] = '\0';
		/* Present once and over-signed: twice. Absent: once. */
		test_assert_int(h_count(fields, "from"), 2);
		test_assert_int(h_count(fields, "to"), 2);
		test_assert_int(h_count(fields, "cc"), 1);
		test_assert_int(h_count(fields, "reply-to"), 1);
		test_assert_int(h_count(fields, "list-id"), 1);
		test_assert_int(h_count(fields, "received"), 0);
		test_assert_int(h_count(fields, "resent-to"), 0);
		if (second != NULL)
			second[2] = 'D';
		test_assert(strlen(fields) > 4 &&
		    strcmp(fields + strlen(fields) - 2, "\r\n") == 0);
		copy = xstrdup(fields);
		for (line = strtok_r(copy, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save))
			if (strlen(line) >= 78)
				long_line = true;
		free(copy);
		test_assert(!long_line);
	}
	free(fields);
	free(error);
	dkim_signer_free(&s);

	/* No From: nothing to sign for. */
	s = dkim_signer_new(1700000000);
	dkim_signer_update(s, "Subject: x\r\n\r\n", 14);
	error = NULL;
	test_assert_int(dkim_signer_finish(s, keys, 1, &fields, &error), -1);
	test_assert(error != NULL);
	free(error);
	dkim_signer_free(&s);
	dkim_key_free(&keys[0]);
	dkim_key_free(&keys[1]);
	test_end();
}

static void
test_dkim_sign_limits(void)
{
	struct dkim_signer *s = dkim_signer_new(0);
	char line[100];
	int ret = 0;

	test_begin("dkim sign: header bounds");
	for (int i = 0; i <= DKIM_MAX_HEADER_FIELDS && ret == 0; i++) {
		snprintf(line, sizeof(line), "X-%d: y\r\n", i);
		ret = dkim_signer_update(s, line, strlen(line));
	}
	test_assert_int(ret, -1);
	test_assert_int(dkim_signer_update(s, "more", 4), -1);
	dkim_signer_free(&s);
	test_end();
}

static void
test_dkim_key_errors(void)
{
	struct dkim_key *key = NULL;
	char *error = NULL;

	test_begin("dkim key: bad input is an error, named");
	test_assert_int(dkim_key_from_pem("junk", 4, "d", "s", &key, &error), -1);
	test_assert(error != NULL);
	x_free(&error);
	test_assert_int(dkim_key_load("/nonexistent/k.private", "d", "s", &key,
	    &error), -1);
	test_assert(error != NULL && strstr(error, "/nonexistent/k.private") != NULL);
	x_free(&error);
	test_end();
}

static void
write_file(const char *dir, const char *name, const char *data)
{
	char *path = xasprintf("%s/%s", dir, name);

	file_write_atomic(path, data, strlen(data), 0600);
	free(path);
}

static void
test_dkim_keyset(void)
{
	const char *tmp = test_tmpdir();
	char *dir, *error = NULL;
	struct dkim_keyset *ks = NULL;
	struct dkim_key *found[4];

	test_begin("dkim keyset: KeyTable + SigningTable, and keys/ alone");
	dir = xasprintf("%s/opendkim/keys/football.example.com", tmp);
	mkdir_p(dir, 0700);
	write_file(dir, "test.private", RFC8463_RSA_PEM);
	write_file(dir, "brisbane.private", RFC8463_ED25519_PEM);

	/* keys/ alone: both keys sign for their domain. */
	test_assert_int(dkim_keyset_load(tmp, &ks, &error), 0);
	test_assert_int(dkim_keyset_count(ks), 2);
	test_assert_int(dkim_keyset_find(ks, "Joe@Football.Example.COM", found, 4), 2);
	test_assert_int(dkim_keyset_find(ks, "joe@example.com", found, 4), 0);
	test_assert(!dkim_keyset_changed(ks));
	dkim_keyset_free(&ks);

	/* KeyTable with the container path, SigningTable with one key. */
	free(dir);
	dir = xasprintf("%s/opendkim", tmp);
	write_file(dir, "KeyTable",
	    "# comment\n"
	    "test._domainkey.football.example.com football.example.com:test:/etc/opendkim/keys/football.example.com/test.private\n"
	    "brisbane._domainkey.football.example.com football.example.com:brisbane:/etc/opendkim/keys/football.example.com/brisbane.private\n");
	write_file(dir, "SigningTable",
	    "*@football.example.com brisbane._domainkey.football.example.com\n"
	    "boss@football.example.com test._domainkey.football.example.com\n");
	test_assert_int(dkim_keyset_load(tmp, &ks, &error), 0);
	if (ks != NULL) {
		test_assert_int(dkim_keyset_find(ks, "joe@football.example.com", found, 4), 1);
		test_assert_str(dkim_key_selector(found[0]), "brisbane");
		test_assert_int(dkim_keyset_find(ks, "boss@football.example.com", found, 4), 2);
		test_assert_int(dkim_keyset_find(ks, "boss@example.com", found, 4), 0);
		/* A change to a table is noticed. */
		write_file(dir, "SigningTable", "football.example.com test._domainkey.football.example.com\n");
		test_assert(dkim_keyset_changed(ks));
		dkim_keyset_free(&ks);
	}
	test_assert_int(dkim_keyset_load(tmp, &ks, &error), 0);
	if (ks != NULL) {
		test_assert_int(dkim_keyset_find(ks, "x@football.example.com", found, 4), 1);
		test_assert_str(dkim_key_selector(found[0]), "test");
		dkim_keyset_free(&ks);
	}

	/* A SigningTable naming an unknown key: error with file and line. */
	write_file(dir, "SigningTable", "\n*@x.test nokey\n");
	test_assert_int(dkim_keyset_load(tmp, &ks, &error), -1);
	test_assert(error != NULL && strstr(error, "SigningTable line 2") != NULL);
	x_free(&error);
	free(dir);
	test_end();
}

/*
 * For tests/integration/test_dkim_sign.py: when TEGAMI_TEST_DKIM_OUT names
 * a directory, sign a few messages with a fresh key per algorithm and
 * write <name>.eml (signed) and <selector>.txt (the DNS record) there, so
 * an independent verifier (dkimpy) can check them.
 */
static void
test_dkim_export(void)
{
	static const struct {
		const char *name, *msg;
	} msgs[] = {
		{ "plain", RFC8463_MESSAGE },
		{ "folded",
		    "From: \"A very long display name that goes on\"\r\n"
		    "  <sender@football.example.com>\r\n"
		    "To:   x@example.net\r\n"
		    "Cc: y@example.net\r\n"
		    "Subject:   spaces   and\ttabs  \r\n"
		    "Date: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
		    "MIME-Version: 1.0\r\n"
		    "Content-Type: text/plain; charset=utf-8\r\n"
		    "\r\n"
		    "line with trailing space   \r\n"
		    "\ttabbed\t line\r\n"
		    "\r\n\r\n\r\n" },
		{ "empty-body",
		    "From: a@football.example.com\r\nSubject: empty\r\n\r\n" },
		{ "no-final-crlf",
		    "From: a@football.example.com\r\nSubject: x\r\n\r\nlast line" },
	};
	const char *out = getenv("TEGAMI_TEST_DKIM_OUT");
	struct dkim_key *keys[2];
	char *error = NULL;

	if (out == NULL) {
		printf("skip dkim export (TEGAMI_TEST_DKIM_OUT not set)\n");
		return;
	}
	test_begin("dkim export signed messages for dkimpy");
	keys[0] = load_pem(RFC8463_RSA_PEM, "football.example.com", "test");
	keys[1] = load_pem(RFC8463_ED25519_PEM, "football.example.com", "brisbane");
	for (size_t k = 0; k < 2; k++) {
		char *rec = dkim_key_dns_record(keys[k]);

		write_file(out, k == 0 ? "test.txt" : "brisbane.txt", rec);
		free(rec);
	}
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		struct dkim_signer *s = dkim_signer_new(1700000000);
		char *fields = NULL, *name, *all;

		dkim_signer_update(s, msgs[i].msg, strlen(msgs[i].msg));
		test_assert_int(dkim_signer_finish(s, keys, 2, &fields, &error), 0);
		all = xasprintf("%s%s", fields != NULL ? fields : "", msgs[i].msg);
		name = xasprintf("%s.eml", msgs[i].name);
		write_file(out, name, all);
		free(name);
		free(all);
		free(fields);
		dkim_signer_free(&s);
	}
	free(error);
	dkim_key_free(&keys[0]);
	dkim_key_free(&keys[1]);
	test_end();
}

/*
 * For the e2e bed: with TEGAMI_TEST_DKIM_CONFIG_DIR (a docker-mailserver
 * config dir with opendkim/keys/...) and TEGAMI_TEST_DKIM_FROM, sign a
 * message from that address with the keyset's keys and write it to
 * TEGAMI_TEST_DKIM_OUT/keyset.eml, for dkimverify against the bed's DNS.
 */
static void
test_dkim_export_keyset(void)
{
	const char *config = getenv("TEGAMI_TEST_DKIM_CONFIG_DIR");
	const char *from = getenv("TEGAMI_TEST_DKIM_FROM");
	const char *out = getenv("TEGAMI_TEST_DKIM_OUT");
	struct dkim_keyset *ks = NULL;
	struct dkim_key *keys[DKIM_MAX_KEYS_PER_MESSAGE];
	struct dkim_signer *s;
	char *error = NULL, *msg, *fields = NULL, *all;
	size_t n;

	if (config == NULL || from == NULL || out == NULL) {
		printf("skip dkim export keyset (TEGAMI_TEST_DKIM_* not set)\n");
		return;
	}
	test_begin("dkim export: message signed with a config dir's keys");
	test_assert_int(dkim_keyset_load(config, &ks, &error), 0);
	if (ks == NULL) {
		printf("     %s\n", error);
		free(error);
		test_end();
		return;
	}
	n = dkim_keyset_find(ks, from, keys, DKIM_MAX_KEYS_PER_MESSAGE);
	test_assert_int(n, 2);
	msg = xasprintf("From: Sender <%s>\r\nTo: someone@example.net\r\n"
	    "Subject: e2e\r\nDate: Fri, 27 Nov 2026 10:00:00 +0000\r\n"
	    "Message-ID: <e2e@x>\r\n\r\nHello over the bed.\r\n", from);
	s = dkim_signer_new(time(NULL));
	dkim_signer_update(s, msg, strlen(msg));
	test_assert_int(dkim_signer_finish(s, keys, n, &fields, &error), 0);
	all = xasprintf("%s%s", fields != NULL ? fields : "", msg);
	write_file(out, "keyset.eml", all);
	free(all);
	free(fields);
	free(msg);
	free(error);
	dkim_signer_free(&s);
	dkim_keyset_free(&ks);
	test_end();
}

TEST(test_dkim_canon_header);
TEST(test_dkim_canon_body);
TEST(test_dkim_canon_body_large);
TEST(test_dkim_rfc8463_vectors);
TEST(test_dkim_sign_fields);
TEST(test_dkim_sign_limits);
TEST(test_dkim_key_errors);
TEST(test_dkim_keyset);
TEST(test_dkim_export);
TEST(test_dkim_export_keyset);
