#include "auth/password.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

static int
verify_crypt(const char *hash, const char *plain, const char **error_r)
{
	struct crypt_data *cd = xcalloc(1, sizeof(*cd));
	const char *out = crypt_r(plain, hash, cd);
	int r;

	if (out == NULL || out[0] == '*') {
		*error_r = "hash not understood by crypt(3)";
		r = -1;
	} else {
		size_t n = strlen(out);

		r = n == strlen(hash) && str_mem_equal_ct(out, hash, n) ? 1 : 0;
	}
	str_wipe(cd, sizeof(*cd));
	free(cd);
	return r;
}

/* {SSHA512}: base64(sha512(password + salt) + salt); {SHA512}: no salt. */
static int
verify_sha512(const char *b64, const char *plain, int salted,
    const char **error_r)
{
	unsigned char raw[512], digest[SHA512_DIGEST_LENGTH];
	size_t b64len = strlen(b64);
	int n, pad = 0;
	EVP_MD_CTX *md;
	unsigned int dlen;
	int r;

	if (b64len == 0 || b64len % 4 != 0 || b64len / 4 * 3 > sizeof(raw)) {
		*error_r = "malformed base64 hash";
		return -1;
	}
	n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)b64len);
	if (n < 0) {
		*error_r = "malformed base64 hash";
		return -1;
	}
	if (b64[b64len - 1] == '=')
		pad++;
	if (b64[b64len - 2] == '=')
		pad++;
	n -= pad;
	if (n < SHA512_DIGEST_LENGTH || (!salted && n != SHA512_DIGEST_LENGTH)) {
		*error_r = "hash has the wrong length";
		return -1;
	}
	md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(md, EVP_sha512(), NULL);
	EVP_DigestUpdate(md, plain, strlen(plain));
	EVP_DigestUpdate(md, raw + SHA512_DIGEST_LENGTH,
	    (size_t)n - SHA512_DIGEST_LENGTH);
	EVP_DigestFinal_ex(md, digest, &dlen);
	EVP_MD_CTX_free(md);
	r = str_mem_equal_ct(digest, raw, SHA512_DIGEST_LENGTH) ? 1 : 0;
	str_wipe(digest, sizeof(digest));
	return r;
}

int
password_verify(const char *stored, const char *plain, const char **error_r)
{
	const char *scheme = "SHA512-CRYPT", *hash = stored, *end;
	char sch[32];

	*error_r = NULL;
	if (stored[0] == '{' && (end = strchr(stored, '}')) != NULL) {
		size_t n = (size_t)(end - stored - 1);

		if (n == 0 || n >= sizeof(sch)) {
			*error_r = "malformed {SCHEME}";
			return -1;
		}
		memcpy(sch, stored + 1, n);
		sch[n] = '\0';
		scheme = sch;
		hash = end + 1;
	}
	if (strcasecmp(scheme, "PLAIN") == 0 ||
	    strcasecmp(scheme, "CLEARTEXT") == 0 ||
	    strcasecmp(scheme, "CLEAR") == 0) {
		size_t a = strlen(hash), b = strlen(plain);

		return a == b && str_mem_equal_ct(hash, plain, a) ? 1 : 0;
	}
	if (strcasecmp(scheme, "SHA512-CRYPT") == 0 ||
	    strcasecmp(scheme, "SHA256-CRYPT") == 0 ||
	    strcasecmp(scheme, "BLF-CRYPT") == 0 ||
	    strcasecmp(scheme, "MD5-CRYPT") == 0 ||
	    strcasecmp(scheme, "CRYPT") == 0 ||
	    strcasecmp(scheme, "DES-CRYPT") == 0 ||
	    strcasecmp(scheme, "YESCRYPT") == 0) {
		/* Only the traditional DES crypt lacks a "$id$" prefix. */
		if (hash[0] != '$' && strcasecmp(scheme, "CRYPT") != 0 &&
		    strcasecmp(scheme, "DES-CRYPT") != 0) {
			*error_r = "malformed crypt hash";
			return -1;
		}
		return verify_crypt(hash, plain, error_r);
	}
	if (strcasecmp(scheme, "SSHA512") == 0)
		return verify_sha512(hash, plain, 1, error_r);
	if (strcasecmp(scheme, "SHA512") == 0)
		return verify_sha512(hash, plain, 0, error_r);
	*error_r = "unsupported password scheme";
	return -1;
}

char *
password_hash(const char *plain)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd;
	const char *out;
	char *result = NULL;

	/* 0 rounds = the default, 5000, which is what doveadm pw uses. */
	if (crypt_gensalt_rn("$6$", 0, NULL, 0, salt, sizeof(salt)) == NULL)
		return NULL;
	cd = xcalloc(1, sizeof(*cd));
	out = crypt_r(plain, salt, cd);
	if (out != NULL && out[0] == '$')
		result = xasprintf("{SHA512-CRYPT}%s", out);
	str_wipe(cd, sizeof(*cd));
	free(cd);
	return result;
}
