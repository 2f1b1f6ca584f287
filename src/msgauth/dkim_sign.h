/*
 * dkim_sign: DKIM signatures (RFC 6376) with RSA-SHA256 and
 * Ed25519-SHA256 (RFC 8463), relaxed/relaxed.
 *
 *   struct dkim_signer *s = dkim_signer_new(time(NULL));
 *   while (read a chunk of the message)       any chunk sizes; the body is
 *       dkim_signer_update(s, chunk, n);      hashed as it streams past
 *   dkim_signer_finish(s, keys, nkeys, &fields, &error);
 *   -> fields = "DKIM-Signature: ...\r\n" once per key, to put on top
 *
 * Headers signed: RFC 6376 5.4.1's recommended set that is present; the
 * ones that must not be added later (From, To, Cc, Subject, Date,
 * Reply-To, Message-ID, In-Reply-To, References, MIME-Version,
 * Content-Type, Content-Transfer-Encoding) are over-signed: listed once
 * more than they occur, so a verifier fails if one more is added.
 *
 * The signing (RSA especially) costs a millisecond or more: call finish on
 * a pool thread, not on an event loop.
 */
#ifndef TEGAMI_DKIM_SIGN_H
#define TEGAMI_DKIM_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

enum dkim_algorithm {
	DKIM_ALG_RSA_SHA256,
	DKIM_ALG_ED25519_SHA256,
};

/* Most header bytes the signer keeps (the body is streamed). */
#define DKIM_MAX_HEADER_BYTES (1024 * 1024)
#define DKIM_MAX_HEADER_FIELDS 1000

struct dkim_key;
struct dkim_signer;

/*
 * Loads a private key (PEM: PKCS#1 "RSA PRIVATE KEY" or PKCS#8 "PRIVATE
 * KEY", RSA >= 1024 bits or Ed25519) for signing as selector._domainkey.
 * domain. -1 with a malloc'd *error_r naming the file.
 */
int dkim_key_load(const char *path, const char *domain, const char *selector,
    struct dkim_key **key_r, char **error_r);
int dkim_key_from_pem(const void *pem, size_t len, const char *domain,
    const char *selector, struct dkim_key **key_r, char **error_r);
void dkim_key_free(struct dkim_key **key);
const char *dkim_key_domain(const struct dkim_key *key);
const char *dkim_key_selector(const struct dkim_key *key);
enum dkim_algorithm dkim_key_algorithm(const struct dkim_key *key);
/* "rsa-sha256" / "ed25519-sha256" */
const char *dkim_algorithm_name(enum dkim_algorithm alg);
/* The key's DNS TXT record "v=DKIM1; k=rsa; p=..." (malloc'd). */
char *dkim_key_dns_record(const struct dkim_key *key);

/* now: the t= tag (injectable for tests). */
struct dkim_signer *dkim_signer_new(time_t now);
void dkim_signer_free(struct dkim_signer **signer);
/*
 * Feeds the message (header, empty line, body; CRLF or LF line ends).
 * -1 once the header passes DKIM_MAX_HEADER_BYTES/FIELDS: the message
 * cannot be signed (later calls are ignored, finish fails).
 */
int dkim_signer_update(struct dkim_signer *signer, const void *data,
    size_t len);
/*
 * Ends the message and makes one DKIM-Signature field per key (folded
 * below 78 columns, each ending in CRLF), concatenated into *fields_r
 * (malloc'd). -1 with a malloc'd *error_r. May be called once.
 */
int dkim_signer_finish(struct dkim_signer *signer,
    struct dkim_key *const *keys, size_t key_count, char **fields_r,
    char **error_r);

/* Lower-level steps, used by finish and by tests with fixed vectors. */

/* Ends the body (if not yet) and gives bh= (base64 of the SHA-256). */
void dkim_signer_body_hash(struct dkim_signer *signer, char bh_r[45]);
/*
 * Signs with a DKIM-Signature field the caller made: field is the whole
 * field ("DKIM-Signature: v=1; ...; b=") with an empty b= value, as it
 * will appear (folding included); h_names/h_count are its h= list. Gives
 * the base64 b= value (malloc'd).
 */
int dkim_signer_sign_field(struct dkim_signer *signer,
    const struct dkim_key *key, const char *const *h_names, size_t h_count,
    const char *field, char **b64_r, char **error_r);

#endif
