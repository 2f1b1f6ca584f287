/*
 * tls: OpenSSL server contexts, several certificates chosen by SNI, and
 * self-signed certificates for development and first starts.
 *
 * Key material travels as PEM text (struct tls_pair), so the master, which
 * can read root-only key files, hands it to workers that cannot.
 */
#ifndef TEGAMI_TLS_H
#define TEGAMI_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <openssl/ssl.h>

struct tls_pair {
	char *cert_pem;		/* certificate chain, leaf first */
	size_t cert_len;
	char *key_pem;
	size_t key_len;
	char *source;		/* for logs: "cert.pem + key.pem" */
	/* Optional second certificate of another key type (RSA + ECDSA),
	 * served from the same context: SSL_ALT_CERT_PATH/SSL_ALT_KEY_PATH. */
	char *alt_cert_pem;
	size_t alt_cert_len;
	char *alt_key_pem;
	size_t alt_key_len;
};

enum tls_level { TLS_LEVEL_MODERN, TLS_LEVEL_INTERMEDIATE };

/*
 * Reads a certificate chain and its key from files (key_path may equal
 * cert_path: one file with both, as SSL_TYPE=custom has). The pair is
 * checked: the key must match the certificate. -1 with *error_r (malloc'd)
 * naming the file and the fix.
 */
int tls_pair_read(const char *cert_path, const char *key_path,
    struct tls_pair *pair_r, char **error_r);
void tls_pair_clear(struct tls_pair *pair);
/* Adds the alternative certificate of another key type to pair. */
int tls_pair_read_alt(struct tls_pair *pair, const char *cert_path,
    const char *key_path, char **error_r);

/*
 * A server context serving every pair: SNI selects the first pair whose
 * certificate names (subjectAltName DNS names, wildcards one label deep)
 * match; without SNI or with no match, the first pair is used. TLS 1.2 is
 * the minimum. The caller owns one reference (SSL_CTX_free); connections
 * keep what they need alive on their own. NULL with *error_r on failure.
 */
SSL_CTX *tls_server_ctx_new(const struct tls_pair *pairs, size_t count,
    enum tls_level level, char **error_r);

/* A client context (outbound SMTP); verification is the caller's choice. */
SSL_CTX *tls_client_ctx_new(char **error_r);

/*
 * Makes an RSA-2048 key and a self-signed certificate for the names
 * (first = subject CN), valid for 825 days, written atomically (key 0600).
 */
int tls_make_self_signed(const char *const *names, size_t count,
    const char *cert_path, const char *key_path, char **error_r);

/* Does the certificate in pair match host name (SAN/CN, wildcards)? */
bool tls_pair_matches(const struct tls_pair *pair, const char *name);
/* Days until the certificate expires (negative when it has). */
int tls_pair_days_left(const struct tls_pair *pair);

#endif
