/*
 * Fuzzes DKIM canonicalization and signing with hostile messages: the
 * message goes through the signer in chunks whose sizes come from the
 * first byte, and through both body canonicalizations; each is compared
 * with a one-chunk run of itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/xalloc.h"
#include "msgauth/dkim_canon.h"
#include "msgauth/dkim_sign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char ed_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
    "-----END PRIVATE KEY-----\n";

static void
sink(void *context, const void *p, size_t n)
{
	buf_append(context, p, n);
}

static void
canon_both(enum dkim_canon c, const uint8_t *data, size_t size, size_t step)
{
	struct dkim_body_canon bc;
	struct buf a, b;

	buf_init(&a, BUF_UNLIMITED);
	buf_init(&b, BUF_UNLIMITED);
	dkim_body_canon_init(&bc, c, sink, &a);
	dkim_body_canon_update(&bc, data, size);
	dkim_body_canon_final(&bc);
	dkim_body_canon_init(&bc, c, sink, &b);
	for (size_t pos = 0; pos < size; pos += step)
		dkim_body_canon_update(&bc, data + pos,
		    size - pos < step ? size - pos : step);
	dkim_body_canon_final(&bc);
	if (a.len != b.len || memcmp(buf_cstr(&a), buf_cstr(&b), a.len) != 0)
		abort();
	buf_free(&a);
	buf_free(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dkim_key *key;
	struct dkim_signer *s;
	struct buf hdr;
	char *fields = NULL, *error = NULL;
	size_t step;

	if (key == NULL) {
		char *e = NULL;

		if (dkim_key_from_pem(ed_pem, strlen(ed_pem), "example.test",
		    "sel", &key, &e) < 0)
			abort();
	}
	if (size < 1)
		return 0;
	step = (size_t)data[0] % 17 + 1;
	data++;
	size--;

	canon_both(DKIM_CANON_SIMPLE, data, size, step);
	canon_both(DKIM_CANON_RELAXED, data, size, step);

	buf_init(&hdr, BUF_UNLIMITED);
	dkim_canon_header(DKIM_CANON_RELAXED, (const char *)data, size, true, &hdr);
	buf_free(&hdr);

	s = dkim_signer_new(1700000000);
	for (size_t pos = 0; pos < size; pos += step)
		dkim_signer_update(s, data + pos, size - pos < step ? size - pos : step);
	if (dkim_signer_finish(s, &key, 1, &fields, &error) == 0) {
		if (strncmp(fields, "DKIM-Signature: ", 16) != 0)
			abort();
	}
	free(fields);
	free(error);
	dkim_signer_free(&s);
	return 0;
}
