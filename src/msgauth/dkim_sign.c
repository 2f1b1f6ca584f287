/* DKIM signing, RFC 6376 5 and RFC 8463. */
#include "msgauth/dkim_sign.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "lib/buf.h"
#include "lib/file.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "msgauth/dkim_canon.h"

#define DKIM_MAX_KEY_FILE (64 * 1024)
/* Fold before this column (RFC 5322 2.1.1 recommends 78). */
#define DKIM_FOLD_COLUMN 76

struct dkim_key {
	char *domain;
	char *selector;
	enum dkim_algorithm alg;
	EVP_PKEY *pkey;
};

struct dkim_field {
	size_t off, len;	/* in signer->headers, without final CRLF */
	size_t name_len;
};

struct dkim_signer {
	time_t now;
	bool in_body;
	bool failed;
	bool body_done;
	struct buf line;	/* header line being read */
	struct buf headers;	/* all fields, CRLF-joined lines */
	struct dkim_field *fields;
	size_t field_count;
	struct dkim_body_canon body;
	EVP_MD_CTX *body_md;
	unsigned char bh[32];
};

/* RFC 6376 5.4.1's recommended headers, in the order we list them. */
static const struct {
	const char *name;
	bool oversign;
} sign_headers[] = {
	{ "from", true },
	{ "reply-to", true },
	{ "subject", true },
	{ "date", true },
	{ "to", true },
	{ "cc", true },
	{ "message-id", true },
	{ "in-reply-to", true },
	{ "references", true },
	{ "mime-version", true },
	{ "content-type", true },
	{ "content-transfer-encoding", true },
	/* Not over-signed: forwarders and lists add these legitimately. */
	{ "resent-date", false },
	{ "resent-from", false },
	{ "resent-to", false },
	{ "resent-cc", false },
	{ "content-id", false },
	{ "content-description", false },
	{ "list-id", false },
	{ "list-help", false },
	{ "list-unsubscribe", false },
	{ "list-unsubscribe-post", false },
	{ "list-subscribe", false },
	{ "list-post", false },
	{ "list-owner", false },
	{ "list-archive", false },
};

static char *
openssl_error(const char *what)
{
	unsigned long e = ERR_get_error();
	char msg[256];

	ERR_clear_error();
	if (e == 0)
		return xstrdup(what);
	ERR_error_string_n(e, msg, sizeof(msg));
	return xasprintf("%s: %s", what, msg);
}

const char *
dkim_algorithm_name(enum dkim_algorithm alg)
{
	return alg == DKIM_ALG_ED25519_SHA256 ? "ed25519-sha256" : "rsa-sha256";
}

int
dkim_key_from_pem(const void *pem, size_t len, const char *domain,
    const char *selector, struct dkim_key **key_r, char **error_r)
{
	struct dkim_key *key;
	EVP_PKEY *pkey;
	BIO *bio;
	int type;

	if (len > INT32_MAX) {
		*error_r = xstrdup("key too large");
		return -1;
	}
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL)
		panic("BIO_new_mem_buf failed");
	/* No passphrase callback: an encrypted key fails instead of asking. */
	pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)"");
	BIO_free(bio);
	if (pkey == NULL) {
		*error_r = openssl_error("not a PEM private key");
		return -1;
	}
	type = EVP_PKEY_get_base_id(pkey);
	if (type != EVP_PKEY_RSA && type != EVP_PKEY_ED25519) {
		EVP_PKEY_free(pkey);
		*error_r = xstrdup("key is neither RSA nor Ed25519");
		return -1;
	}
	if (type == EVP_PKEY_RSA && EVP_PKEY_get_bits(pkey) < 1024) {
		EVP_PKEY_free(pkey);
		*error_r = xstrdup("RSA key shorter than 1024 bits (RFC 8301)");
		return -1;
	}
	key = xcalloc(1, sizeof(*key));
	key->domain = str_lower(xstrdup(domain));
	key->selector = xstrdup(selector);
	key->alg = type == EVP_PKEY_RSA ? DKIM_ALG_RSA_SHA256 :
	    DKIM_ALG_ED25519_SHA256;
	key->pkey = pkey;
	*key_r = key;
	return 0;
}

int
dkim_key_load(const char *path, const char *domain, const char *selector,
    struct dkim_key **key_r, char **error_r)
{
	char *data = NULL, *error = NULL;
	size_t len;
	int ret;

	if (file_read_all(path, DKIM_MAX_KEY_FILE, &data, &len) < 0) {
		*error_r = xasprintf("DKIM key %s: cannot read (%m)", path);
		return -1;
	}
	ret = dkim_key_from_pem(data, len, domain, selector, key_r, &error);
	str_wipe(data, len);
	free(data);
	if (ret < 0) {
		*error_r = xasprintf("DKIM key %s: %s", path, error);
		free(error);
	}
	return ret;
}

void
dkim_key_free(struct dkim_key **keyp)
{
	struct dkim_key *key = *keyp;

	if (key == NULL)
		return;
	EVP_PKEY_free(key->pkey);
	free(key->domain);
	free(key->selector);
	free(key);
	*keyp = NULL;
}

const char *
dkim_key_domain(const struct dkim_key *key)
{
	return key->domain;
}

const char *
dkim_key_selector(const struct dkim_key *key)
{
	return key->selector;
}

enum dkim_algorithm
dkim_key_algorithm(const struct dkim_key *key)
{
	return key->alg;
}

static char *
base64(const unsigned char *p, size_t len)
{
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, p, (int)len);
	return out;
}

char *
dkim_key_dns_record(const struct dkim_key *key)
{
	unsigned char *der = NULL;
	char *b64, *rec;
	int n;

	if (key->alg == DKIM_ALG_ED25519_SHA256) {
		/* RFC 8463 4.2: p= is the raw 32-byte public key. */
		unsigned char raw[32];
		size_t rawlen = sizeof(raw);

		if (EVP_PKEY_get_raw_public_key(key->pkey, raw, &rawlen) != 1)
			panic("Ed25519 public key");
		b64 = base64(raw, rawlen);
		rec = xasprintf("v=DKIM1; k=ed25519; p=%s", b64);
	} else {
		/* RFC 6376 3.6.1: p= is the SubjectPublicKeyInfo. */
		n = i2d_PUBKEY(key->pkey, &der);
		if (n <= 0)
			panic("i2d_PUBKEY failed");
		b64 = base64(der, (size_t)n);
		OPENSSL_free(der);
		rec = xasprintf("v=DKIM1; k=rsa; p=%s", b64);
	}
	free(b64);
	return rec;
}

static void
body_sink(void *context, const void *data, size_t len)
{
	struct dkim_signer *s = context;

	if (EVP_DigestUpdate(s->body_md, data, len) != 1)
		panic("EVP_DigestUpdate failed");
}

struct dkim_signer *
dkim_signer_new(time_t now)
{
	struct dkim_signer *s = xcalloc(1, sizeof(*s));

	s->now = now;
	buf_init(&s->line, DKIM_MAX_HEADER_BYTES);
	buf_init(&s->headers, DKIM_MAX_HEADER_BYTES);
	s->fields = xcalloc(DKIM_MAX_HEADER_FIELDS, sizeof(*s->fields));
	s->body_md = EVP_MD_CTX_new();
	if (s->body_md == NULL ||
	    EVP_DigestInit_ex(s->body_md, EVP_sha256(), NULL) != 1)
		panic("EVP_DigestInit_ex(sha256) failed");
	/* Both algorithms use relaxed body canonicalization and SHA-256. */
	dkim_body_canon_init(&s->body, DKIM_CANON_RELAXED, body_sink, s);
	return s;
}

void
dkim_signer_free(struct dkim_signer **sp)
{
	struct dkim_signer *s = *sp;

	if (s == NULL)
		return;
	buf_free(&s->line);
	buf_free(&s->headers);
	free(s->fields);
	EVP_MD_CTX_free(s->body_md);
	free(s);
	*sp = NULL;
}

/* One complete header line (without its line end). */
static int
header_line(struct dkim_signer *s, const char *line, size_t len)
{
	struct dkim_field *f;

	if (len == 0) {
		s->in_body = true;
		return 0;
	}
	if ((line[0] == ' ' || line[0] == '\t') && s->field_count > 0) {
		/* A folding line: continues the last field. */
		f = &s->fields[s->field_count - 1];
		if (buf_append(&s->headers, "\r\n", 2) < 0 ||
		    buf_append(&s->headers, line, len) < 0)
			return -1;
		f->len += 2 + len;
		return 0;
	}
	if (s->field_count == DKIM_MAX_HEADER_FIELDS)
		return -1;
	f = &s->fields[s->field_count];
	f->off = s->headers.len;
	f->len = len;
	f->name_len = 0;
	while (f->name_len < len && line[f->name_len] != ':')
		f->name_len++;
	while (f->name_len > 0 && (line[f->name_len - 1] == ' ' ||
	    line[f->name_len - 1] == '\t'))
		f->name_len--;
	if (buf_append(&s->headers, line, len) < 0)
		return -1;
	s->field_count++;
	return 0;
}

static int
line_done(struct dkim_signer *s)
{
	size_t len = s->line.len;
	int ret;

	if (len > 0 && s->line.data[len - 1] == '\n')
		len--;
	if (len > 0 && s->line.data[len - 1] == '\r')
		len--;
	ret = header_line(s, buf_cstr(&s->line), len);
	buf_reset(&s->line);
	return ret;
}

int
dkim_signer_update(struct dkim_signer *s, const void *data, size_t len)
{
	const char *p = data;

	if (s->failed)
		return -1;
	if (s->body_done)
		panic("dkim_signer_update after the body was finished");
	while (len > 0 && !s->in_body) {
		const char *nl = memchr(p, '\n', len);
		size_t n = nl != NULL ? (size_t)(nl - p) + 1 : len;

		if (buf_append(&s->line, p, n) < 0 ||
		    (nl != NULL && line_done(s) < 0)) {
			s->failed = true;
			return -1;
		}
		p += n;
		len -= n;
	}
	if (len > 0)
		dkim_body_canon_update(&s->body, p, len);
	return 0;
}

static void
body_finish(struct dkim_signer *s)
{
	unsigned int n = 0;

	if (s->body_done)
		return;
	/* A header without an empty line after it: no body. */
	if (!s->in_body && s->line.len > 0 && line_done(s) < 0)
		s->failed = true;
	dkim_body_canon_final(&s->body);
	if (EVP_DigestFinal_ex(s->body_md, s->bh, &n) != 1 || n != 32)
		panic("EVP_DigestFinal_ex failed");
	s->body_done = true;
}

void
dkim_signer_body_hash(struct dkim_signer *s, char bh_r[45])
{
	char *b64;

	body_finish(s);
	b64 = base64(s->bh, sizeof(s->bh));
	memcpy(bh_r, b64, 45);
	free(b64);
}

static bool
field_is(const struct dkim_signer *s, const struct dkim_field *f,
    const char *name)
{
	return strlen(name) == f->name_len &&
	    strncasecmp(s->headers.data + f->off, name, f->name_len) == 0;
}

static size_t
field_count_named(const struct dkim_signer *s, const char *name)
{
	size_t n = 0;

	for (size_t i = 0; i < s->field_count; i++)
		if (field_is(s, &s->fields[i], name))
			n++;
	return n;
}

/*
 * The data that gets signed (RFC 6376 3.7): each h= name picks the
 * lowest not yet used instance of that field (5.4.2: bottom up); a name
 * with none left adds nothing. Then the signature field itself, without
 * its final CRLF.
 */
static int
signed_data(struct dkim_signer *s, const char *const *h_names, size_t h_count,
    const char *field, struct buf *out)
{
	bool *used = xcalloc(s->field_count + 1, sizeof(*used));
	int ret = 0;

	for (size_t h = 0; h < h_count && ret == 0; h++) {
		for (size_t i = s->field_count; i-- > 0;) {
			struct dkim_field *f = &s->fields[i];

			if (used[i] || !field_is(s, f, h_names[h]))
				continue;
			used[i] = true;
			ret = dkim_canon_header(DKIM_CANON_RELAXED,
			    s->headers.data + f->off, f->len, true, out);
			break;
		}
	}
	free(used);
	if (ret == 0)
		ret = dkim_canon_header(DKIM_CANON_RELAXED, field, strlen(field),
		    false, out);
	return ret;
}

static int
sign_bytes(const struct dkim_key *key, const unsigned char *data, size_t len,
    char **b64_r, char **error_r)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char hash[32];
	unsigned char *sig = NULL;
	size_t siglen = 0;
	int ret = -1;

	if (md == NULL)
		panic("EVP_MD_CTX_new failed");
	if (key->alg == DKIM_ALG_ED25519_SHA256) {
		/*
		 * RFC 8463 3: Ed25519 (pure, no pre-hash mode) signs the
		 * SHA-256 hash of the data, not the data itself.
		 */
		if (EVP_Digest(data, len, hash, NULL, EVP_sha256(), NULL) != 1)
			panic("EVP_Digest(sha256) failed");
		data = hash;
		len = sizeof(hash);
		if (EVP_DigestSignInit(md, NULL, NULL, NULL, key->pkey) != 1)
			goto fail;
	} else {
		if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key->pkey) != 1)
			goto fail;
	}
	/* One-shot: Ed25519 cannot stream. */
	if (EVP_DigestSign(md, NULL, &siglen, data, len) != 1)
		goto fail;
	sig = xmalloc(siglen);
	if (EVP_DigestSign(md, sig, &siglen, data, len) != 1)
		goto fail;
	*b64_r = base64(sig, siglen);
	ret = 0;
	goto out;
fail:
	*error_r = openssl_error("DKIM signing failed");
out:
	free(sig);
	EVP_MD_CTX_free(md);
	return ret;
}

int
dkim_signer_sign_field(struct dkim_signer *s, const struct dkim_key *key,
    const char *const *h_names, size_t h_count, const char *field,
    char **b64_r, char **error_r)
{
	struct buf data;
	int ret;

	body_finish(s);
	if (s->failed) {
		*error_r = xstrdup("message header too large to sign");
		return -1;
	}
	buf_init(&data, DKIM_MAX_HEADER_BYTES * 2);
	if (signed_data(s, h_names, h_count, field, &data) < 0) {
		buf_free(&data);
		*error_r = xstrdup("message header too large to sign");
		return -1;
	}
	ret = sign_bytes(key, (const unsigned char *)buf_cstr(&data), data.len,
	    b64_r, error_r);
	buf_free(&data);
	return ret;
}

/* Folds a field as it is written: a token goes to a new line if needed. */
struct folder {
	struct buf *out;
	size_t col;
};

static void
fold_token(struct folder *f, const char *tok, size_t len, bool space_before)
{
	size_t need = len + (space_before ? 1 : 0);

	if (f->col + need > DKIM_FOLD_COLUMN && f->col > 1) {
		buf_append(f->out, "\r\n ", 3);
		f->col = 1;
	} else if (space_before) {
		buf_append_c(f->out, ' ');
		f->col++;
	}
	buf_append(f->out, tok, len);
	f->col += len;
}

/* The h= list may fold after any colon (RFC 6376 3.5: FWS allowed). */
static void
fold_hlist(struct folder *f, const char *tok)
{
	size_t len = strlen(tok), pos = 0;

	while (pos < len) {
		const char *colon = memchr(tok + pos, ':', len - pos);
		size_t n = colon != NULL ? (size_t)(colon - (tok + pos)) + 1 :
		    len - pos;

		if (pos == 0) {
			fold_token(f, tok, n, true);
		} else {
			if (f->col + n > DKIM_FOLD_COLUMN) {
				buf_append(f->out, "\r\n ", 3);
				f->col = 1;
			}
			buf_append(f->out, tok + pos, n);
			f->col += n;
		}
		pos += n;
	}
}

static int
sign_one(struct dkim_signer *s, const struct dkim_key *key, struct buf *out,
    char **error_r)
{
	const char *h_names[2 * DKIM_MAX_HEADER_FIELDS];
	size_t h_count = 0;
	struct buf field, hlist, tok;
	struct folder f;
	char bh[45];
	char *b64 = NULL;
	int ret;

	buf_init(&hlist, BUF_UNLIMITED);
	for (size_t i = 0; i < sizeof(sign_headers) / sizeof(sign_headers[0]); i++) {
		size_t n = field_count_named(s, sign_headers[i].name);

		if (sign_headers[i].oversign)
			n++;
		for (size_t k = 0; k < n; k++) {
			h_names[h_count++] = sign_headers[i].name;
			buf_printf(&hlist, "%s%s", hlist.len > 0 ? ":" : "",
			    sign_headers[i].name);
		}
	}
	dkim_signer_body_hash(s, bh);

	buf_init(&field, BUF_UNLIMITED);
	buf_init(&tok, BUF_UNLIMITED);
	f.out = &field;
	buf_append_str(&field, "DKIM-Signature:");
	f.col = field.len;
	fold_token(&f, "v=1;", 4, true);
	buf_printf(&tok, "a=%s;", dkim_algorithm_name(key->alg));
	fold_token(&f, tok.data, tok.len, true);
	fold_token(&f, "c=relaxed/relaxed;", 18, true);
	buf_reset(&tok);
	buf_printf(&tok, "d=%s;", key->domain);
	fold_token(&f, tok.data, tok.len, true);
	buf_reset(&tok);
	buf_printf(&tok, "s=%s;", key->selector);
	fold_token(&f, tok.data, tok.len, true);
	buf_reset(&tok);
	buf_printf(&tok, "t=%lld;", (long long)s->now);
	fold_token(&f, tok.data, tok.len, true);
	buf_reset(&tok);
	buf_printf(&tok, "h=%s;", buf_cstr(&hlist));
	fold_hlist(&f, tok.data);
	buf_reset(&tok);
	buf_printf(&tok, "bh=%s;", bh);
	fold_token(&f, tok.data, tok.len, true);
	/* "b=" never ends a line: its value starts on the same one. */
	if (f.col + 1 + 2 + 8 > DKIM_FOLD_COLUMN) {
		buf_append_str(&field, "\r\n b=");
		f.col = 3;
	} else {
		buf_append_str(&field, " b=");
		f.col += 3;
	}

	ret = dkim_signer_sign_field(s, key, h_names, h_count, buf_cstr(&field),
	    &b64, error_r);
	if (ret == 0) {
		/* The value is cut anywhere: FWS inside base64 is allowed. */
		size_t len = strlen(b64), pos = 0;

		while (pos < len) {
			size_t room = DKIM_FOLD_COLUMN - f.col;
			size_t n = len - pos < room ? len - pos : room;

			if (pos > 0) {
				buf_append_str(&field, "\r\n ");
				f.col = 1;
				room = DKIM_FOLD_COLUMN - f.col;
				n = len - pos < room ? len - pos : room;
			}
			buf_append(&field, b64 + pos, n);
			f.col += n;
			pos += n;
		}
		buf_append_str(&field, "\r\n");
		buf_append(out, field.data, field.len);
	}
	free(b64);
	buf_free(&field);
	buf_free(&tok);
	buf_free(&hlist);
	return ret;
}

int
dkim_signer_finish(struct dkim_signer *s, struct dkim_key *const *keys,
    size_t key_count, char **fields_r, char **error_r)
{
	struct buf out;

	body_finish(s);
	if (s->failed) {
		*error_r = xstrdup("message header too large to sign");
		return -1;
	}
	if (field_count_named(s, "from") == 0) {
		/* RFC 6376 5.4: From must be signed; nothing to sign for. */
		*error_r = xstrdup("message has no From header");
		return -1;
	}
	buf_init(&out, BUF_UNLIMITED);
	for (size_t i = 0; i < key_count; i++) {
		if (sign_one(s, keys[i], &out, error_r) < 0) {
			buf_free(&out);
			return -1;
		}
	}
	*fields_r = buf_steal(&out);
	return 0;
}
