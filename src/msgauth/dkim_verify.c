/*
 * DKIM verification (RFC 6376 §6). The message is in memory: the header
 * fields are indexed once, then each signature (at most
 * DKIM_VERIFY_MAX_SIGS) gets its key, its body hash (the body runs
 * through dkim_canon's streaming canonicalizer into SHA-256) and its
 * header hash.
 */
#include "msgauth/dkim_verify.h"

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "mail/decode.h"
#include "msgauth/dkim_canon.h"
#include "msgauth/dkim_sign.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_FIELDS 1000
#define KEY_P_MAX 8192		/* decoded public key bytes */
#define SIG_B_MAX 1024		/* decoded signature bytes (8192-bit RSA) */

const char *
dkim_result_name(enum dkim_result r)
{
	switch (r) {
	case DKIM_RESULT_NONE: return "none";
	case DKIM_RESULT_PASS: return "pass";
	case DKIM_RESULT_FAIL: return "fail";
	case DKIM_RESULT_POLICY: return "policy";
	case DKIM_RESULT_NEUTRAL: return "neutral";
	case DKIM_RESULT_TEMPERROR: return "temperror";
	case DKIM_RESULT_PERMERROR: return "permerror";
	}
	return "permerror";
}

/* ------------------------------------------------------------------ */
/* Tag lists (RFC 6376 §3.2).                                          */

struct tag {
	const char *name;
	size_t name_len;
	const char *value;	/* white space at both ends removed */
	size_t value_len;
};

static bool
is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Splits a tag-list; -1 on a malformed list or a duplicate tag. */
static int
tag_list(const char *s, size_t len, struct tag *tags, size_t max, size_t *n_r,
    const char **error_r)
{
	size_t pos = 0, n = 0;

	while (pos < len) {
		size_t semi, ns, ne, vs, ve;

		for (semi = pos; semi < len && s[semi] != ';'; semi++)
			;
		ns = pos;
		while (ns < semi && is_fws(s[ns]))
			ns++;
		if (ns == semi) {
			/* only a trailing ";" may leave an empty spec */
			if (semi == len && n > 0)
				break;
			*error_r = "empty tag-spec";
			return -1;
		}
		if (!isalpha((unsigned char)s[ns])) {
			*error_r = "bad tag name";
			return -1;
		}
		for (ne = ns; ne < semi && (isalnum((unsigned char)s[ne]) ||
		    s[ne] == '_'); ne++)
			;
		vs = ne;
		while (vs < semi && is_fws(s[vs]))
			vs++;
		if (vs == semi || s[vs] != '=') {
			*error_r = "tag without '='";
			return -1;
		}
		vs++;
		while (vs < semi && is_fws(s[vs]))
			vs++;
		ve = semi;
		while (ve > vs && is_fws(s[ve - 1]))
			ve--;
		for (size_t i = vs; i < ve; i++) {
			unsigned char c = (unsigned char)s[i];

			if (!(c >= 0x21 && c <= 0x7e && c != ';') && !is_fws((char)c)) {
				*error_r = "bad character in tag value";
				return -1;
			}
		}
		for (size_t i = 0; i < n; i++) {
			if (tags[i].name_len == ne - ns &&
			    memcmp(tags[i].name, s + ns, ne - ns) == 0) {
				*error_r = "duplicate tag";
				return -1;
			}
		}
		if (n == max) {
			*error_r = "too many tags";
			return -1;
		}
		tags[n].name = s + ns;
		tags[n].name_len = ne - ns;
		tags[n].value = s + vs;
		tags[n].value_len = ve - vs;
		n++;
		pos = semi + 1;
	}
	*n_r = n;
	return 0;
}

static const struct tag *
tag_find(const struct tag *tags, size_t n, const char *name)
{
	size_t len = strlen(name);

	for (size_t i = 0; i < n; i++) {
		if (tags[i].name_len == len && memcmp(tags[i].name, name, len) == 0)
			return &tags[i];
	}
	return NULL;
}

/* Copies a value without its folding white space; -1 if too long. */
static int
copy_nows(char *out, size_t outsize, const char *v, size_t len)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (is_fws(v[i]))
			continue;
		if (n + 1 >= outsize)
			return -1;
		out[n++] = v[i];
	}
	out[n] = '\0';
	return 0;
}

static int
parse_u64(const char *v, size_t len, uint64_t *v_r)
{
	uint64_t n = 0;

	/* RFC 6376: at most 76 bits for l=, 12 digits for t=/x= in practice */
	if (len == 0 || len > 18)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)v[i]))
			return -1;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	*v_r = n;
	return 0;
}

static int
b64_decode(const char *v, size_t len, size_t max, unsigned char **out_r,
    size_t *len_r)
{
	struct buf b;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];

		if (!isalnum(c) && c != '+' && c != '/' && c != '=' && !is_fws((char)c))
			return -1;
	}
	buf_init(&b, max);
	if (decode_base64(v, len, &b) < 0) {
		buf_free(&b);
		return -1;
	}
	*len_r = b.len;
	*out_r = (unsigned char *)buf_steal(&b);
	if (*out_r == NULL)
		*out_r = xcalloc(1, 1);
	return 0;
}

/* Is name (an i= domain) d or a subdomain of d? */
static bool
domain_within(const char *name, const char *d)
{
	size_t n = strlen(name), dl = strlen(d);

	if (n < dl || strcasecmp(name + n - dl, d) != 0)
		return false;
	return n == dl || name[n - dl - 1] == '.';
}

void
dkim_sig_free(struct dkim_sig *sig)
{
	x_free(&sig->headers);
	x_free(&sig->b);
}

int
dkim_sig_parse(const char *value, size_t len, struct dkim_sig *sig,
    const char **error_r)
{
	struct tag tags[32];
	const struct tag *t;
	size_t n;
	char tmp[64];
	unsigned char *bh = NULL;

	memset(sig, 0, sizeof(*sig));
	if (len > DKIM_SIG_MAX) {
		*error_r = "signature field too long";
		return -1;
	}
	if (tag_list(value, len, tags, 32, &n, error_r) < 0)
		return -1;
	if ((t = tag_find(tags, n, "v")) == NULL || t->value_len != 1 ||
	    t->value[0] != '1') {
		*error_r = "v= is not 1";
		return -1;
	}
	for (const char *req = "a\0b\0bh\0d\0h\0s\0"; *req != '\0';
	    req += strlen(req) + 1) {
		if (tag_find(tags, n, req) == NULL) {
			*error_r = "a required tag (a, b, bh, d, h, s) is missing";
			return -1;
		}
	}
	t = tag_find(tags, n, "a");
	if (copy_nows(tmp, sizeof(tmp), t->value, t->value_len) < 0) {
		*error_r = "unknown algorithm";
		return -1;
	}
	if (strcasecmp(tmp, "rsa-sha256") == 0) {
		sig->algorithm = DKIM_ALG_RSA_SHA256;
	} else if (strcasecmp(tmp, "ed25519-sha256") == 0) {
		sig->algorithm = DKIM_ALG_ED25519_SHA256;
	} else if (strcasecmp(tmp, "rsa-sha1") == 0) {
		*error_r = "rsa-sha1 is not accepted (RFC 8301)";
		return -1;
	} else {
		*error_r = "unknown algorithm";
		return -1;
	}

	sig->header_canon = DKIM_CANON_SIMPLE;
	sig->body_canon = DKIM_CANON_SIMPLE;
	if ((t = tag_find(tags, n, "c")) != NULL) {
		const char *slash = memchr(t->value, '/', t->value_len);
		enum dkim_canon hc, bc = DKIM_CANON_SIMPLE;
		size_t hl = slash != NULL ? (size_t)(slash - t->value) : t->value_len;

		if (dkim_canon_parse(t->value, hl, &hc) < 0 || (slash != NULL &&
		    dkim_canon_parse(slash + 1, t->value_len - hl - 1, &bc) < 0)) {
			*error_r = "unknown canonicalization";
			return -1;
		}
		sig->header_canon = (int)hc;
		sig->body_canon = (int)bc;
	}
	if ((t = tag_find(tags, n, "q")) != NULL &&
	    (copy_nows(tmp, sizeof(tmp), t->value, t->value_len) < 0 ||
	    strcasecmp(tmp, "dns/txt") != 0)) {
		*error_r = "unknown query method";
		return -1;
	}

	t = tag_find(tags, n, "d");
	if (copy_nows(sig->domain, sizeof(sig->domain), t->value, t->value_len) < 0 ||
	    sig->domain[0] == '\0' || sig->domain[0] == '.') {
		*error_r = "bad d= domain";
		return -1;
	}
	str_lower(sig->domain);
	t = tag_find(tags, n, "s");
	if (copy_nows(sig->selector, sizeof(sig->selector), t->value,
	    t->value_len) < 0 || sig->selector[0] == '\0') {
		*error_r = "bad s= selector";
		return -1;
	}
	if (strlen(sig->selector) + strlen(sig->domain) + 12 > 253) {
		*error_r = "key name too long";
		return -1;
	}
	if ((t = tag_find(tags, n, "i")) != NULL) {
		const char *at;

		if (copy_nows(sig->identity, sizeof(sig->identity), t->value,
		    t->value_len) < 0 || (at = strrchr(sig->identity, '@')) == NULL) {
			*error_r = "bad i= identity";
			return -1;
		}
		if (!domain_within(at + 1, sig->domain)) {
			*error_r = "i= is not within d=";
			return -1;
		}
	} else {
		snprintf(sig->identity, sizeof(sig->identity), "@%s", sig->domain);
	}

	t = tag_find(tags, n, "h");
	sig->headers = xmalloc(t->value_len + 1);
	copy_nows(sig->headers, t->value_len + 1, t->value, t->value_len);
	{
		/* h= must sign From (RFC 6376 §5.4) */
		bool from = false;
		char **names = str_split(sig->headers, ":", NULL);

		for (size_t i = 0; names[i] != NULL; i++)
			from = from || strcasecmp(names[i], "from") == 0;
		str_array_free(names);
		if (!from) {
			dkim_sig_free(sig);
			*error_r = "h= does not include From";
			return -1;
		}
	}

	t = tag_find(tags, n, "bh");
	if (b64_decode(t->value, t->value_len, sizeof(sig->bh), &bh,
	    &sig->bh_len) < 0) {
		dkim_sig_free(sig);
		*error_r = "bad bh=";
		return -1;
	}
	memcpy(sig->bh, bh, sig->bh_len);
	free(bh);
	t = tag_find(tags, n, "b");
	if (b64_decode(t->value, t->value_len, SIG_B_MAX, &sig->b,
	    &sig->b_len) < 0 || sig->b_len == 0) {
		dkim_sig_free(sig);
		*error_r = "bad b=";
		return -1;
	}
	{
		size_t k = 0;

		for (size_t i = 0; i < t->value_len && k < 8; i++) {
			if (!is_fws(t->value[i]))
				sig->b_text[k++] = t->value[i];
		}
		sig->b_text[k] = '\0';
	}
	if ((t = tag_find(tags, n, "l")) != NULL) {
		if (parse_u64(t->value, t->value_len, &sig->l) < 0) {
			dkim_sig_free(sig);
			*error_r = "bad l=";
			return -1;
		}
		sig->have_l = true;
	}
	if ((t = tag_find(tags, n, "t")) != NULL) {
		if (parse_u64(t->value, t->value_len, &sig->t) < 0) {
			dkim_sig_free(sig);
			*error_r = "bad t=";
			return -1;
		}
		sig->have_t = true;
	}
	if ((t = tag_find(tags, n, "x")) != NULL) {
		if (parse_u64(t->value, t->value_len, &sig->x) < 0 ||
		    (sig->have_t && sig->x < sig->t)) {
			dkim_sig_free(sig);
			*error_r = "bad x=";
			return -1;
		}
		sig->have_x = true;
	}
	return 0;
}

void
dkim_key_record_free(struct dkim_key_record *key)
{
	x_free(&key->p);
}

/* Does a colon-separated list hold item (case-insensitive)? */
static bool
list_has(const char *v, size_t len, const char *item)
{
	char buf[256];
	char **parts;
	bool found = false;

	if (copy_nows(buf, sizeof(buf), v, len) < 0)
		return false;
	parts = str_split(buf, ":", NULL);
	for (size_t i = 0; parts[i] != NULL; i++)
		found = found || strcasecmp(parts[i], item) == 0;
	str_array_free(parts);
	return found;
}

int
dkim_key_record_parse(const char *txt, size_t len, struct dkim_key_record *key,
    const char **error_r)
{
	struct tag tags[32];
	const struct tag *t;
	size_t n;

	memset(key, 0, sizeof(*key));
	if (memchr(txt, '\0', len) != NULL) {
		*error_r = "NUL in key record";
		return -1;
	}
	if (tag_list(txt, len, tags, 32, &n, error_r) < 0)
		return -1;
	if ((t = tag_find(tags, n, "v")) != NULL &&
	    (t != &tags[0] || t->value_len != 5 ||
	    memcmp(t->value, "DKIM1", 5) != 0)) {
		*error_r = "v= is not DKIM1 or not first";
		return -1;
	}
	key->sha256_ok = (t = tag_find(tags, n, "h")) == NULL ||
	    list_has(t->value, t->value_len, "sha256");
	key->email_ok = (t = tag_find(tags, n, "s")) == NULL ||
	    list_has(t->value, t->value_len, "*") ||
	    list_has(t->value, t->value_len, "email");
	if ((t = tag_find(tags, n, "t")) != NULL) {
		key->testing = list_has(t->value, t->value_len, "y");
		key->strict = list_has(t->value, t->value_len, "s");
	}
	key->key_type = 0;
	if ((t = tag_find(tags, n, "k")) != NULL) {
		char k[16];

		if (copy_nows(k, sizeof(k), t->value, t->value_len) < 0) {
			*error_r = "unknown key type";
			return -1;
		}
		if (strcasecmp(k, "ed25519") == 0)
			key->key_type = 1;
		else if (strcasecmp(k, "rsa") != 0) {
			*error_r = "unknown key type";
			return -1;
		}
	}
	if ((t = tag_find(tags, n, "p")) == NULL) {
		*error_r = "no p= in key record";
		return -1;
	}
	if (b64_decode(t->value, t->value_len, KEY_P_MAX, &key->p,
	    &key->p_len) < 0) {
		*error_r = "bad p=";
		return -1;
	}
	key->revoked = key->p_len == 0;
	return 0;
}

/* ------------------------------------------------------------------ */
/* The message.                                                        */

struct field {
	const char *p;		/* "Name: value" with folding and line end */
	size_t len;
	size_t name_len;
};

struct msg {
	struct field fields[MAX_FIELDS];
	size_t nfields;
	const char *body;
	size_t body_len;
};

/* Indexes the header fields; the body starts after the empty line. */
static void
index_message(const char *m, size_t len, struct msg *msg)
{
	size_t pos = 0;

	msg->nfields = 0;
	msg->body = m + len;
	msg->body_len = 0;
	while (pos < len) {
		size_t end = pos, colon;

		if (m[pos] == '\n' || (m[pos] == '\r' && pos + 1 < len &&
		    m[pos + 1] == '\n')) {
			pos += m[pos] == '\n' ? 1 : 2;
			msg->body = m + pos;
			msg->body_len = len - pos;
			return;
		}
		do {
			const char *e = memchr(m + end, '\n', len - end);

			end = e != NULL ? (size_t)(e - m) + 1 : len;
		} while (end < len && (m[end] == ' ' || m[end] == '\t'));
		for (colon = pos; colon < end && m[colon] != ':'; colon++)
			;
		if (colon < end && msg->nfields < MAX_FIELDS) {
			size_t nl = colon - pos;

			while (nl > 0 && (m[pos + nl - 1] == ' ' ||
			    m[pos + nl - 1] == '\t'))
				nl--;
			msg->fields[msg->nfields].p = m + pos;
			msg->fields[msg->nfields].len = end - pos;
			msg->fields[msg->nfields].name_len = nl;
			msg->nfields++;
		}
		pos = end;
	}
}

static bool
field_named(const struct field *f, const char *name, size_t len)
{
	return f->name_len == len && strncasecmp(f->p, name, len) == 0;
}

struct hash_sink {
	EVP_MD_CTX *md;
	uint64_t left;		/* l=: bytes still to hash */
	bool limited;
};

static void
hash_sink(void *ctx, const void *data, size_t len)
{
	struct hash_sink *h = ctx;

	if (h->limited) {
		if (h->left == 0)
			return;
		if (len > h->left)
			len = (size_t)h->left;
		h->left -= len;
	}
	if (EVP_DigestUpdate(h->md, data, len) != 1)
		panic("dkim: EVP_DigestUpdate failed");
}

/*
 * Canonicalizes one field as it was on the wire: a message stored with
 * bare LF line ends (Maildir) gets its CRLF back first, which "simple"
 * canonicalization needs (relaxed does not care).
 */
static void
canon_field(int canon, const char *p, size_t len, bool with_crlf,
    struct buf *out)
{
	struct buf tmp;

	if (memchr(p, '\n', len) == NULL) {
		dkim_canon_header((enum dkim_canon)canon, p, len, with_crlf, out);
		return;
	}
	buf_init(&tmp, len * 2 + 2);
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			buf_append_c(&tmp, '\r');
		buf_append_c(&tmp, p[i]);
	}
	dkim_canon_header((enum dkim_canon)canon, tmp.data, tmp.len, with_crlf, out);
	buf_free(&tmp);
}

/* The signature field with the value of b= emptied (RFC 6376 §3.7). */
static void
strip_b(const struct field *f, struct buf *out)
{
	const char *v = f->p, *end = f->p + f->len;
	const char *p = memchr(v, ':', f->len);

	p = p != NULL ? p + 1 : v;
	buf_append(out, v, (size_t)(p - v));
	while (p < end) {
		const char *semi = memchr(p, ';', (size_t)(end - p));
		const char *tend = semi != NULL ? semi : end;
		const char *q = p;

		while (q < tend && is_fws(*q))
			q++;
		if (q < tend && *q == 'b') {
			const char *r = q + 1;

			while (r < tend && is_fws(*r))
				r++;
			if (r < tend && *r == '=') {
				/* keep "b=", drop the value */
				buf_append(out, p, (size_t)(r + 1 - p));
				p = tend;
				if (semi != NULL) {
					buf_append_c(out, ';');
					p++;
				}
				continue;
			}
		}
		buf_append(out, p, (size_t)(tend - p) + (semi != NULL ? 1 : 0));
		p = tend + (semi != NULL ? 1 : 0);
	}
}

static EVP_PKEY *
make_pkey(const struct dkim_key_record *key, unsigned int *bits_r)
{
	EVP_PKEY *pkey = NULL;

	if (key->key_type == 1) {
		if (key->p_len != 32)
			return NULL;
		pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, key->p, 32);
		*bits_r = 256;
	} else {
		const unsigned char *q = key->p;

		pkey = d2i_PUBKEY(NULL, &q, (long)key->p_len);
		if (pkey != NULL && (EVP_PKEY_base_id(pkey) != EVP_PKEY_RSA ||
		    q != key->p + key->p_len)) {
			EVP_PKEY_free(pkey);
			return NULL;
		}
		if (pkey != NULL)
			*bits_r = (unsigned int)EVP_PKEY_get_bits(pkey);
	}
	return pkey;
}

/* Finds and parses the key; a result other than PASS means stop. */
static enum dkim_result
fetch_key(const struct msgauth_dns *dns, const struct dkim_sig *sig,
    struct dkim_key_record *key, struct dkim_sig_result *r)
{
	struct msgauth_dns_txt *txt = xcalloc(1, sizeof(*txt));
	char name[2 * MSGAUTH_DNS_NAME_MAX + 16];
	enum msgauth_dns_rc rc;
	enum dkim_result res = DKIM_RESULT_PERMERROR;
	const char *err = "no key record";

	snprintf(name, sizeof(name), "%s._domainkey.%s", sig->selector,
	    sig->domain);
	rc = dns->txt(dns->ctx, name, txt);
	if (rc == MSGAUTH_DNS_TEMPFAIL) {
		snprintf(r->problem, sizeof(r->problem), "DNS failure for %.80s", name);
		res = DKIM_RESULT_TEMPERROR;
		goto out;
	}
	for (size_t i = 0; rc == MSGAUTH_DNS_FOUND && i < txt->count; i++) {
		if (dkim_key_record_parse(txt->txt[i], txt->len[i], key, &err) == 0) {
			res = DKIM_RESULT_PASS;
			break;
		}
	}
	if (res != DKIM_RESULT_PASS)
		snprintf(r->problem, sizeof(r->problem), "key %.80s: %s", name, err);
out:
	msgauth_dns_txt_free(txt);
	free(txt);
	return res;
}

static void
verify_one(const struct msgauth_dns *dns, const struct msg *msg,
    const struct field *sf, time_t now, struct dkim_sig_result *r)
{
	struct dkim_sig sig;
	struct dkim_key_record key;
	const char *err, *colon = memchr(sf->p, ':', sf->len);
	EVP_PKEY *pkey = NULL;
	EVP_MD_CTX *md = NULL;
	struct hash_sink hs;
	struct dkim_body_canon bc;
	unsigned char bh[EVP_MAX_MD_SIZE], hh[32];
	unsigned int bhl = 0;
	uint64_t body_total;
	struct buf data;
	bool *used;
	char **names;

	memset(r, 0, sizeof(*r));
	r->algorithm = "";
	if (dkim_sig_parse(colon + 1, sf->len - (size_t)(colon + 1 - sf->p), &sig,
	    &err) < 0) {
		r->result = DKIM_RESULT_NEUTRAL;
		snprintf(r->problem, sizeof(r->problem), "%s", err);
		/* rsa-sha1 and the like parse but are refused: a fail */
		if (strstr(err, "rsa-sha1") != NULL)
			r->result = DKIM_RESULT_FAIL;
		return;
	}
	str_copy(r->domain, sizeof(r->domain), sig.domain);
	str_copy(r->selector, sizeof(r->selector), sig.selector);
	str_copy(r->identity, sizeof(r->identity), sig.identity);
	str_copy(r->b_text, sizeof(r->b_text), sig.b_text);
	r->algorithm = dkim_algorithm_name((enum dkim_algorithm)sig.algorithm);

	if (sig.have_x && (uint64_t)now > sig.x) {
		r->result = DKIM_RESULT_FAIL;
		str_copy(r->problem, sizeof(r->problem), "signature expired");
		dkim_sig_free(&sig);
		return;
	}
	r->result = fetch_key(dns, &sig, &key, r);
	if (r->result != DKIM_RESULT_PASS) {
		dkim_sig_free(&sig);
		return;
	}
	r->testing = key.testing;
	r->result = DKIM_RESULT_FAIL;
	if (key.revoked) {
		str_copy(r->problem, sizeof(r->problem), "key revoked");
		goto done;
	}
	if (!key.sha256_ok || !key.email_ok ||
	    (key.key_type == 1) != (sig.algorithm == DKIM_ALG_ED25519_SHA256)) {
		str_copy(r->problem, sizeof(r->problem),
		    "key not usable for this signature");
		goto done;
	}
	if (key.strict) {
		const char *at = strrchr(sig.identity, '@');

		if (at == NULL || strcasecmp(at + 1, sig.domain) != 0) {
			str_copy(r->problem, sizeof(r->problem),
			    "key requires i= to be d= (t=s)");
			goto done;
		}
	}
	pkey = make_pkey(&key, &r->key_bits);
	if (pkey == NULL) {
		r->result = DKIM_RESULT_PERMERROR;
		str_copy(r->problem, sizeof(r->problem), "bad public key");
		goto done;
	}
	if (key.key_type == 0 && r->key_bits < DKIM_VERIFY_MIN_RSA_BITS) {
		snprintf(r->problem, sizeof(r->problem), "RSA key of %u bits is "
		    "too short", r->key_bits);
		goto done;
	}

	/* the body hash */
	md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		panic("dkim: EVP_DigestInit failed");
	hs.md = md;
	hs.limited = sig.have_l;
	hs.left = sig.l;
	dkim_body_canon_init(&bc, (enum dkim_canon)sig.body_canon, hash_sink, &hs);
	dkim_body_canon_update(&bc, msg->body, msg->body_len);
	dkim_body_canon_final(&bc);
	body_total = bc.out_len;
	if (EVP_DigestFinal_ex(md, bh, &bhl) != 1)
		panic("dkim: EVP_DigestFinal failed");
	if (sig.have_l && sig.l > body_total) {
		str_copy(r->problem, sizeof(r->problem), "l= is longer than the body");
		goto done;
	}
	if (bhl != sig.bh_len || memcmp(bh, sig.bh, bhl) != 0) {
		str_copy(r->problem, sizeof(r->problem), "body hash mismatch");
		goto done;
	}

	/* the header hash: h= names bottom-up, then the signature itself */
	buf_init(&data, 4 * 1024 * 1024);
	used = xcalloc(msg->nfields + 1, sizeof(*used));
	names = str_split(sig.headers, ":", NULL);
	for (size_t h = 0; names[h] != NULL; h++) {
		for (size_t i = msg->nfields; i-- > 0;) {
			const struct field *f = &msg->fields[i];

			if (used[i] || !field_named(f, names[h], strlen(names[h])))
				continue;
			used[i] = true;
			canon_field(sig.header_canon, f->p, f->len, true, &data);
			break;
		}
	}
	str_array_free(names);
	free(used);
	{
		struct buf self;

		buf_init(&self, DKIM_SIG_MAX * 2);
		strip_b(sf, &self);
		canon_field(sig.header_canon, self.data != NULL ? self.data : "",
		    self.len, false, &data);
		buf_free(&self);
	}

	EVP_MD_CTX_reset(md);
	if (sig.algorithm == DKIM_ALG_ED25519_SHA256) {
		/* RFC 8463: Ed25519 over the SHA-256 of the data */
		if (EVP_Digest(data.data, data.len, hh, NULL, EVP_sha256(), NULL) != 1)
			panic("dkim: EVP_Digest failed");
		if (EVP_DigestVerifyInit(md, NULL, NULL, NULL, pkey) == 1 &&
		    EVP_DigestVerify(md, sig.b, sig.b_len, hh, sizeof(hh)) == 1)
			r->result = DKIM_RESULT_PASS;
	} else if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) == 1 &&
	    EVP_DigestVerify(md, sig.b, sig.b_len, (const unsigned char *)data.data,
	    data.len) == 1) {
		r->result = DKIM_RESULT_PASS;
	}
	buf_free(&data);
	if (r->result != DKIM_RESULT_PASS) {
		str_copy(r->problem, sizeof(r->problem), "signature did not verify");
	} else if (sig.have_l && sig.l < body_total) {
		/* right, but part of the body is not covered: unsafe */
		r->result = DKIM_RESULT_POLICY;
		snprintf(r->problem, sizeof(r->problem), "l= leaves %llu body "
		    "bytes unsigned", (unsigned long long)(body_total - sig.l));
	}
done:
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pkey);
	dkim_key_record_free(&key);
	dkim_sig_free(&sig);
}

void
dkim_verify(const struct msgauth_dns *dns, const char *m, size_t len,
    time_t now, struct dkim_verify_result *out)
{
	struct msg *msg = xmalloc(sizeof(*msg));

	memset(out, 0, sizeof(*out));
	index_message(m, len, msg);
	for (size_t i = 0; i < msg->nfields && out->count < DKIM_VERIFY_MAX_SIGS;
	    i++) {
		if (field_named(&msg->fields[i], "DKIM-Signature", 14))
			verify_one(dns, msg, &msg->fields[i], now,
			    &out->sig[out->count++]);
	}
	free(msg);
}
