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

/* A client context (outbound SMTP); verification is the caller's choice.
 * It trusts the system's CAs (tls_ctx_trust_system). */
SSL_CTX *tls_client_ctx_new(char **error_r);

/*
 * Makes ctx trust the system's CAs as SSL_CTX_set_default_verify_paths()
 * would (SSL_CERT_DIR, SSL_CERT_FILE, else OpenSSL's directory and
 * bundle), but reads them from the hashed directory when a chain is
 * verified instead of loading the whole bundle now (about 0.9 MB a
 * context). Without a hashed directory: OpenSSL's defaults.
 */
void tls_ctx_trust_system(SSL_CTX *ctx);

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
/* Is x the leaf certificate of pair? */
bool tls_pair_is(const struct tls_pair *pair, X509 *x);

/*
 * The certificate chain a server context really serves to a client that
 * names sni (NULL: sends no SNI), found by a TLS handshake with it in
 * memory: whatever rules the context has (SNI choice, RSA or ECDSA) are
 * the ones applied. *leaf_r and *chain_r (leaf first; sk_X509_pop_free
 * with X509_free) belong to the caller. -1 with a malloc'd *error_r when
 * the handshake fails.
 */
int tls_served_chain(SSL_CTX *server, const char *sni, X509 **leaf_r,
    STACK_OF(X509) **chain_r, char **error_r);

/* What an operator wants to know about a certificate. */
struct tls_cert_info {
	char names[512];	/* subjectAltName DNS names, ", "-separated
				 * (the subject CN when there are none) */
	char issuer[256];	/* issuer CN (or the whole issuer name) */
	char not_after[32];	/* "2027-03-01" (UTC) */
	int days_left;		/* negative when expired */
	bool trusted;		/* verifies against this machine's CAs */
	char why[128];		/* when not trusted: OpenSSL's reason */
};

/*
 * Describes leaf, verifying it with chain (may be NULL) against the
 * default CA store (which honours SSL_CERT_FILE / SSL_CERT_DIR) for TLS
 * server use. Host names are not part of the verification.
 */
void tls_cert_describe(X509 *leaf, STACK_OF(X509) *chain,
    struct tls_cert_info *info_r);

#endif
