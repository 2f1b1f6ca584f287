/*
 * dkim_key: making DKIM keys and the DNS records that publish them
 * (RFC 6376 §3.6.1, RFC 8463 for Ed25519). Signing lives elsewhere.
 *
 * Private keys are PEM, PKCS#8 ("BEGIN PRIVATE KEY"), which OpenDKIM,
 * rspamd and OpenSSL all read. The record is derived from the private key
 * every time, so what is published always matches what signs.
 */
#ifndef TEGAMI_DKIM_KEY_H
#define TEGAMI_DKIM_KEY_H

#include <stddef.h>

enum dkim_key_type {
	DKIM_KEY_RSA,
	DKIM_KEY_ED25519,
};

/* Longest character-string in a DNS TXT record (RFC 1035 §3.3). */
#define DKIM_TXT_STRING_MAX 255

/*
 * Generates a key: RSA of `bits` (1024..8192), or Ed25519 (bits ignored).
 * Returns 0 and the PEM text (malloc'd, NUL-terminated; wipe it before
 * freeing) in *pem_r, or -1 with a reason.
 */
int dkim_key_generate(enum dkim_key_type type, unsigned int bits,
    char **pem_r, const char **error_r);

/*
 * The TXT record value for a private key in PEM:
 *   RSA:     "v=DKIM1; h=sha256; k=rsa; p=<base64 SubjectPublicKeyInfo>"
 *   Ed25519: "v=DKIM1; k=ed25519; p=<base64 of the raw 32-byte key>"
 * *type_r and *bits_r (may be NULL) say what the key is. -1 with a reason
 * when the PEM is not an RSA or Ed25519 private key.
 */
int dkim_key_record(const char *pem, size_t len, char **record_r,
    enum dkim_key_type *type_r, unsigned int *bits_r, const char **error_r);

/*
 * Splits a TXT value into character-strings of at most max bytes (1..255),
 * in order; their concatenation is the value (RFC 7208 §3.3, RFC 6376
 * §3.6.2.2). The tags part of a DKIM record ("...; p=") is cut before
 * "p=" so the key starts a string of its own, as opendkim-genkey does.
 * NULL-terminated array of malloc'd strings (str_array_free); *n_r the count.
 */
char **dkim_txt_split(const char *value, size_t max, size_t *n_r);

/*
 * The record as opendkim-genkey's <selector>.txt shapes it, one string per
 * line, ending in a newline:
 *   mail._domainkey\tIN\tTXT\t( "v=DKIM1; h=sha256; k=rsa; "
 *   \t  "p=MIIB..." )  ; ----- DKIM key mail for example.com
 * malloc'd.
 */
char *dkim_key_zone_snippet(const char *selector, const char *domain,
    const char *record);

/*
 * Where a KeyTable key path is on this machine. docker-mailserver's
 * KeyTable names the container paths /etc/opendkim/keys/<d>/<s>.private
 * (config/opendkim/ is copied to /etc/opendkim/) or, in older setups,
 * /tmp/docker-mailserver/opendkim/keys/...: both are read as
 * <config_dir>/opendkim/keys/...; any other path is used as it is.
 * malloc'd.
 */
char *dkim_key_local_path(const char *keytable_path, const char *config_dir);

#endif
