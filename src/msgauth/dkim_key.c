#include "msgauth/dkim_key.h"
#include "lib/buf.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

int
dkim_key_generate(enum dkim_key_type type, unsigned int bits, char **pem_r,
    const char **error_r)
{
	EVP_PKEY *key;
	BIO *bio;
	char *data;
	long len;
	int r = -1;

	if (type == DKIM_KEY_RSA) {
		if (bits < 1024 || bits > 8192) {
			*error_r = "RSA key size must be 1024 to 8192 bits";
			return -1;
		}
		key = EVP_RSA_gen(bits);
	} else {
		key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	}
	if (key == NULL) {
		*error_r = "key generation failed (OpenSSL)";
		return -1;
	}
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL || PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0,
	    NULL, NULL) != 1) {
		*error_r = "cannot encode the key as PEM (OpenSSL)";
		goto out;
	}
	len = BIO_get_mem_data(bio, &data);
	*pem_r = xstrndup(data, (size_t)len);
	/* The memory BIO held the key too: clear it before it is freed. */
	str_wipe(data, (size_t)len);
	r = 0;
out:
	BIO_free(bio);
	EVP_PKEY_free(key);
	return r;
}

static char *
base64(const unsigned char *raw, size_t len)
{
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, raw, (int)len);
	return out;
}

int
dkim_key_record(const char *pem, size_t len, char **record_r,
    enum dkim_key_type *type_r, unsigned int *bits_r, const char **error_r)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *key = NULL;
	unsigned char *der = NULL, raw[32];
	size_t rawlen = sizeof(raw);
	char *b64;
	int derlen, r = -1;

	if (bio == NULL || len > 1024 * 1024 ||
	    (key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL) {
		*error_r = "not a PEM private key";
		goto out;
	}
	if (EVP_PKEY_is_a(key, "RSA")) {
		derlen = i2d_PUBKEY(key, &der);
		if (derlen <= 0) {
			*error_r = "cannot encode the public key";
			goto out;
		}
		b64 = base64(der, (size_t)derlen);
		*record_r = xasprintf("v=DKIM1; h=sha256; k=rsa; p=%s", b64);
		free(b64);
		if (type_r != NULL)
			*type_r = DKIM_KEY_RSA;
		if (bits_r != NULL)
			*bits_r = (unsigned int)EVP_PKEY_get_bits(key);
	} else if (EVP_PKEY_is_a(key, "ED25519")) {
		if (EVP_PKEY_get_raw_public_key(key, raw, &rawlen) != 1 ||
		    rawlen != 32) {
			*error_r = "cannot read the Ed25519 public key";
			goto out;
		}
		b64 = base64(raw, rawlen);
		*record_r = xasprintf("v=DKIM1; k=ed25519; p=%s", b64);
		free(b64);
		if (type_r != NULL)
			*type_r = DKIM_KEY_ED25519;
		if (bits_r != NULL)
			*bits_r = 256;
	} else {
		*error_r = "neither an RSA nor an Ed25519 key";
		goto out;
	}
	r = 0;
out:
	OPENSSL_free(der);
	EVP_PKEY_free(key);
	BIO_free(bio);
	return r;
}

static void
push(char ***arr, size_t *n, const char *s, size_t len)
{
	*arr = xreallocarray(*arr, *n + 2, sizeof(**arr));
	(*arr)[(*n)++] = xstrndup(s, len);
	(*arr)[*n] = NULL;
}

char **
dkim_txt_split(const char *value, size_t max, size_t *n_r)
{
	char **arr = xcalloc(1, sizeof(*arr));
	const char *p = value, *key = strstr(value, "p=");
	size_t n = 0;

	if (max == 0 || max > DKIM_TXT_STRING_MAX)
		max = DKIM_TXT_STRING_MAX;
	/* "v=DKIM1; k=rsa; " on its own when it is a tag list before p=. */
	if (key != NULL && key != value && key[-1] == ' ' &&
	    (size_t)(key - value) <= max && strncmp(value, "v=DKIM1", 7) == 0) {
		push(&arr, &n, value, (size_t)(key - value));
		p = key;
	}
	while (*p != '\0') {
		size_t len = strlen(p);

		if (len > max)
			len = max;
		push(&arr, &n, p, len);
		p += len;
	}
	if (n == 0)
		push(&arr, &n, "", 0);
	if (n_r != NULL)
		*n_r = n;
	return arr;
}

char *
dkim_key_zone_snippet(const char *selector, const char *domain,
    const char *record)
{
	size_t n;
	char **parts = dkim_txt_split(record, DKIM_TXT_STRING_MAX, &n);
	struct buf b;
	char *out;

	buf_init(&b, 64 * 1024);
	buf_printf(&b, "%s._domainkey\tIN\tTXT\t( ", selector);
	for (size_t i = 0; i < n; i++)
		buf_printf(&b, "%s\"%s\"", i == 0 ? "" : "\n\t  ", parts[i]);
	buf_printf(&b, " )  ; ----- DKIM key %s for %s\n", selector, domain);
	str_array_free(parts);
	out = xstrdup(buf_cstr(&b));
	buf_free(&b);
	return out;
}

char *
dkim_key_local_path(const char *keytable_path, const char *config_dir)
{
	static const char *const prefixes[] = {
		"/etc/opendkim/keys/",
		"/tmp/docker-mailserver/opendkim/keys/",
	};

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (str_has_prefix(keytable_path, prefixes[i]))
			return xasprintf("%s/opendkim/keys/%s", config_dir,
			    keytable_path + strlen(prefixes[i]));
	return xstrdup(keytable_path);
}
