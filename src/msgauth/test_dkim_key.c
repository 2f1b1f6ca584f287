#include "lib/str.h"
#include "lib/test.h"
#include "lib/xalloc.h"
#include "msgauth/dkim_key.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *
join(char **parts)
{
	char *out = xstrdup(""), *next;

	for (size_t i = 0; parts[i] != NULL; i++) {
		next = xasprintf("%s%s", out, parts[i]);
		free(out);
		out = next;
	}
	return out;
}

static void
test_txt_split(void)
{
	char big[700], *joined, **parts;
	size_t n;

	test_begin("dkim_key: TXT values split into <=255-byte strings");
	parts = dkim_txt_split("v=spf1 mx ~all", 255, &n);
	test_assert_int(n, 1);
	test_assert_str(parts[0], "v=spf1 mx ~all");
	str_array_free(parts);

	parts = dkim_txt_split("", 255, &n);
	test_assert_int(n, 1);
	test_assert_str(parts[0], "");
	str_array_free(parts);

	/* A DKIM record: the tags in one string, p= starting the next. */
	memcpy(big, "v=DKIM1; h=sha256; k=rsa; p=", 28);
	memset(big + 28, 'A', 600);
	big[628] = '\0';
	parts = dkim_txt_split(big, 255, &n);
	test_assert_int(n, 4);
	test_assert_str(parts[0], "v=DKIM1; h=sha256; k=rsa; ");
	test_assert(str_has_prefix(parts[1], "p=AAA"));
	for (size_t i = 0; i < n; i++)
		test_assert(strlen(parts[i]) <= 255);
	test_assert_int(strlen(parts[1]), 255);
	joined = join(parts);
	test_assert_str(joined, big);
	free(joined);
	str_array_free(parts);

	/* Exactly 255, and 256, with no tag list: plain cuts. */
	memset(big, 'x', 256);
	big[255] = '\0';
	parts = dkim_txt_split(big, 255, &n);
	test_assert_int(n, 1);
	str_array_free(parts);
	big[255] = 'y';
	big[256] = '\0';
	parts = dkim_txt_split(big, 255, &n);
	test_assert_int(n, 2);
	test_assert_str(parts[1], "y");
	str_array_free(parts);

	/* A smaller max is honoured; 0 means 255. */
	parts = dkim_txt_split("abcdefg", 3, &n);
	test_assert_int(n, 3);
	test_assert_str(parts[2], "g");
	str_array_free(parts);
	test_end();
}
TEST(test_txt_split)

static void
test_key_roundtrip(void)
{
	char *pem = NULL, *record = NULL, *snippet;
	const char *why;
	enum dkim_key_type type;
	unsigned int bits;

	test_begin("dkim_key: generate RSA and Ed25519, derive their records");
	test_assert(dkim_key_generate(DKIM_KEY_RSA, 1024, &pem, &why) == 0);
	test_assert(str_has_prefix(pem, "-----BEGIN PRIVATE KEY-----\n"));
	test_assert(dkim_key_record(pem, strlen(pem), &record, &type, &bits,
	    &why) == 0);
	test_assert(type == DKIM_KEY_RSA && bits == 1024);
	test_assert(str_has_prefix(record, "v=DKIM1; h=sha256; k=rsa; p=MIGfMA0G"));
	snippet = dkim_key_zone_snippet("mail", "example.com", record);
	test_assert(str_has_prefix(snippet,
	    "mail._domainkey\tIN\tTXT\t( \"v=DKIM1; h=sha256; k=rsa; \"\n\t  \"p="));
	test_assert(str_has_suffix(snippet,
	    "\" )  ; ----- DKIM key mail for example.com\n"));
	free(snippet);
	free(record);
	free(pem);

	test_assert(dkim_key_generate(DKIM_KEY_ED25519, 0, &pem, &why) == 0);
	test_assert(dkim_key_record(pem, strlen(pem), &record, &type, &bits,
	    &why) == 0);
	test_assert(type == DKIM_KEY_ED25519);
	/* 32 raw bytes are 44 base64 characters (RFC 8463 §4). */
	test_assert(str_has_prefix(record, "v=DKIM1; k=ed25519; p="));
	test_assert_int(strlen(record) - strlen("v=DKIM1; k=ed25519; p="), 44);
	free(record);
	free(pem);

	test_assert(dkim_key_generate(DKIM_KEY_RSA, 512, &pem, &why) < 0);
	test_assert(dkim_key_record("junk", 4, &record, NULL, NULL, &why) < 0);
	test_end();
}
TEST(test_key_roundtrip)

static void
test_local_path(void)
{
	char *p;

	test_begin("dkim_key: KeyTable container paths map into CONFIG_DIR");
	p = dkim_key_local_path("/etc/opendkim/keys/example.com/mail.private",
	    "/srv/config");
	test_assert_str(p, "/srv/config/opendkim/keys/example.com/mail.private");
	free(p);
	p = dkim_key_local_path("/tmp/docker-mailserver/opendkim/keys/x.org/s.private",
	    "/c");
	test_assert_str(p, "/c/opendkim/keys/x.org/s.private");
	free(p);
	p = dkim_key_local_path("/var/lib/keys/k.pem", "/c");
	test_assert_str(p, "/var/lib/keys/k.pem");
	free(p);
	test_end();
}
TEST(test_local_path)
