/*
 * dkim_verify: checks every DKIM-Signature of a message (RFC 6376), with
 * RSA-SHA256 and Ed25519-SHA256 (RFC 8463), both canonicalizations (from
 * dkim_canon), keys fetched through the msgauth_dns table.
 *
 * What we refuse, beyond syntax: rsa-sha1 (RFC 8301), RSA keys under
 * 1024 bits, expired signatures (x=), h= without From, i= outside d=,
 * keys that are revoked (empty p=) or not for email. A signature with l=
 * that leaves part of the body unsigned is never a pass: it gets the
 * result "policy" (anything could have been appended).
 *
 * Results per signature, as Authentication-Results names them (RFC 8601
 * §2.7.1): pass, fail (the signature or body hash does not match, or the
 * key/signature is unacceptable), policy, neutral (the signature cannot
 * be parsed), temperror (DNS), permerror (no usable key record).
 *
 * Reentrant (no globals); DNS is synchronous: run it on a pool thread.
 */
#ifndef TEGAMI_MSGAUTH_DKIM_VERIFY_H
#define TEGAMI_MSGAUTH_DKIM_VERIFY_H

#include "msgauth/dns_iface.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define DKIM_VERIFY_MAX_SIGS 8		/* more are not looked at */
#define DKIM_VERIFY_MIN_RSA_BITS 1024
#define DKIM_SIG_MAX 8192		/* bytes of one DKIM-Signature field */

enum dkim_result {
	DKIM_RESULT_NONE = 0,	/* no signature at all */
	DKIM_RESULT_PASS,
	DKIM_RESULT_FAIL,
	DKIM_RESULT_POLICY,
	DKIM_RESULT_NEUTRAL,
	DKIM_RESULT_TEMPERROR,
	DKIM_RESULT_PERMERROR,
};
const char *dkim_result_name(enum dkim_result r);

/* A parsed DKIM-Signature (RFC 6376 §3.5). Strings are NUL-terminated,
 * bounded copies. */
struct dkim_sig {
	int algorithm;		/* enum dkim_algorithm of dkim_sign.h */
	int header_canon;	/* enum dkim_canon */
	int body_canon;
	char domain[MSGAUTH_DNS_NAME_MAX];	/* d= */
	char selector[MSGAUTH_DNS_NAME_MAX];	/* s= */
	char identity[512];	/* i=, "@d" when absent */
	char *headers;		/* h= as written (malloc'd), names ':'-separated */
	unsigned char bh[64];	/* bh= decoded */
	size_t bh_len;
	unsigned char *b;	/* b= decoded (malloc'd) */
	size_t b_len;
	char b_text[16];	/* the first 8 characters of b= (header.b) */
	bool have_l;
	uint64_t l;
	bool have_t, have_x;
	uint64_t t, x;
};

/* Parses the value of a DKIM-Signature field (after the colon). -1 with
 * a static reason; then nothing needs freeing. */
int dkim_sig_parse(const char *value, size_t len, struct dkim_sig *sig_r,
    const char **error_r);
void dkim_sig_free(struct dkim_sig *sig);

/* A parsed key record (RFC 6376 §3.6.1). */
struct dkim_key_record {
	int key_type;		/* 0 = rsa, 1 = ed25519 */
	bool revoked;		/* p= empty */
	bool testing;		/* t=y */
	bool strict;		/* t=s: i= must be exactly d= */
	bool sha256_ok;		/* h= absent or lists sha256 */
	bool email_ok;		/* s= absent, "*" or "email" */
	unsigned char *p;	/* p= decoded (malloc'd) */
	size_t p_len;
};

int dkim_key_record_parse(const char *txt, size_t len,
    struct dkim_key_record *key_r, const char **error_r);
void dkim_key_record_free(struct dkim_key_record *key);

struct dkim_sig_result {
	enum dkim_result result;
	char domain[MSGAUTH_DNS_NAME_MAX];	/* d=, "" if unparseable */
	char selector[MSGAUTH_DNS_NAME_MAX];
	char identity[512];
	char b_text[16];
	const char *algorithm;	/* "rsa-sha256", ... or "" */
	unsigned int key_bits;
	bool testing;		/* the key says t=y */
	char problem[128];
};

struct dkim_verify_result {
	size_t count;		/* signatures looked at */
	struct dkim_sig_result sig[DKIM_VERIFY_MAX_SIGS];
};

/*
 * Verifies every DKIM-Signature of msg (header and body, CRLF or LF
 * lines) at time now. Fills *out; out->count == 0 means no signature
 * (result none).
 */
void dkim_verify(const struct msgauth_dns *dns, const char *msg, size_t len,
    time_t now, struct dkim_verify_result *out);

#endif
