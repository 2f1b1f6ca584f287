#include "net/tls.h"
#include "lib/file.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#define PEM_MAX (1024 * 1024)

/* SNI choices hang off the default context and die with it. */
struct sni_set {
	size_t count;
	SSL_CTX **ctxs;
	X509 **certs;
};

static int sni_index = -1;

static char *
ssl_error_text(void)
{
	char buf[256];
	unsigned long e = ERR_get_error();

	ERR_clear_error();
	if (e == 0)
		return xstrdup("unknown OpenSSL error");
	ERR_error_string_n(e, buf, sizeof(buf));
	return xstrdup(buf);
}

void
tls_pair_clear(struct tls_pair *pair)
{
	if (pair->key_pem != NULL)
		str_wipe(pair->key_pem, pair->key_len);
	if (pair->alt_key_pem != NULL)
		str_wipe(pair->alt_key_pem, pair->alt_key_len);
	free(pair->cert_pem);
	free(pair->key_pem);
	free(pair->alt_cert_pem);
	free(pair->alt_key_pem);
	free(pair->source);
	memset(pair, 0, sizeof(*pair));
}

static X509 *
pair_cert(const struct tls_pair *pair)
{
	BIO *bio = BIO_new_mem_buf(pair->cert_pem, (int)pair->cert_len);
	X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);

	BIO_free(bio);
	return x;
}

static EVP_PKEY *
pair_key(const struct tls_pair *pair)
{
	BIO *bio = BIO_new_mem_buf(pair->key_pem, (int)pair->key_len);
	EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);

	BIO_free(bio);
	return k;
}

int
tls_pair_read(const char *cert_path, const char *key_path,
    struct tls_pair *pair_r, char **error_r)
{
	struct tls_pair p;
	X509 *x;
	EVP_PKEY *k;
	char *err;

	memset(&p, 0, sizeof(p));
	if (file_read_all(cert_path, PEM_MAX, &p.cert_pem, &p.cert_len) < 0) {
		*error_r = xasprintf("cannot read certificate %s: %s",
		    cert_path, strerror(errno));
		return -1;
	}
	if (file_read_all(key_path, PEM_MAX, &p.key_pem, &p.key_len) < 0) {
		*error_r = xasprintf("cannot read private key %s: %s",
		    key_path, strerror(errno));
		tls_pair_clear(&p);
		return -1;
	}
	p.source = strcmp(cert_path, key_path) == 0 ? xstrdup(cert_path) :
	    xasprintf("%s + %s", cert_path, key_path);
	x = pair_cert(&p);
	if (x == NULL) {
		err = ssl_error_text();
		*error_r = xasprintf("%s: no PEM certificate (%s)", cert_path, err);
		free(err);
		tls_pair_clear(&p);
		return -1;
	}
	k = pair_key(&p);
	if (k == NULL) {
		err = ssl_error_text();
		*error_r = xasprintf("%s: no PEM private key (%s)", key_path, err);
		free(err);
		X509_free(x);
		tls_pair_clear(&p);
		return -1;
	}
	if (X509_check_private_key(x, k) != 1) {
		ERR_clear_error();
		*error_r = xasprintf("%s does not belong to the certificate in "
		    "%s; point both at the same renewal", key_path, cert_path);
		X509_free(x);
		EVP_PKEY_free(k);
		tls_pair_clear(&p);
		return -1;
	}
	X509_free(x);
	EVP_PKEY_free(k);
	*pair_r = p;
	return 0;
}

int
tls_pair_read_alt(struct tls_pair *pair, const char *cert_path,
    const char *key_path, char **error_r)
{
	struct tls_pair alt;

	if (tls_pair_read(cert_path, key_path, &alt, error_r) < 0)
		return -1;
	pair->alt_cert_pem = alt.cert_pem;
	pair->alt_cert_len = alt.cert_len;
	pair->alt_key_pem = alt.key_pem;
	pair->alt_key_len = alt.key_len;
	free(alt.source);
	return 0;
}

bool
tls_pair_matches(const struct tls_pair *pair, const char *name)
{
	X509 *x = pair_cert(pair);
	bool r;

	if (x == NULL)
		return false;
	r = X509_check_host(x, name, 0, 0, NULL) == 1;
	X509_free(x);
	return r;
}

int
tls_pair_days_left(const struct tls_pair *pair)
{
	X509 *x = pair_cert(pair);
	int days = 0, secs = 0;

	if (x == NULL)
		return -1;
	if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)) != 1)
		days = -1;
	X509_free(x);
	return days;
}

static void
sni_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	struct sni_set *set = ptr;

	if (set == NULL)
		return;
	for (size_t i = 0; i < set->count; i++) {
		SSL_CTX_free(set->ctxs[i]);
		X509_free(set->certs[i]);
	}
	free(set->ctxs);
	free(set->certs);
	free(set);
}

static int
sni_cb(SSL *ssl, int *alert, void *arg)
{
	SSL_CTX *def = SSL_get_SSL_CTX(ssl);
	struct sni_set *set = SSL_CTX_get_ex_data(def, sni_index);
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	if (set == NULL || name == NULL)
		return SSL_TLSEXT_ERR_OK;
	/* ctxs[0] is NULL: the first pair is the default context itself */
	for (size_t i = 0; i < set->count; i++) {
		if (X509_check_host(set->certs[i], name, 0, 0, NULL) == 1) {
			if (set->ctxs[i] != NULL && set->ctxs[i] != def)
				SSL_set_SSL_CTX(ssl, set->ctxs[i]);
			return SSL_TLSEXT_ERR_OK;
		}
	}
	return SSL_TLSEXT_ERR_OK;
}

/* Loads a chain (leaf first) and its key into ctx; *leaf_r gets a ref. */
static int
ctx_add_cert(SSL_CTX *ctx, const char *cert_pem, size_t cert_len,
    const char *key_pem, size_t key_len, X509 **leaf_r)
{
	BIO *bio = BIO_new_mem_buf(cert_pem, (int)cert_len);
	X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL), *extra;
	EVP_PKEY *k;

	if (x == NULL || SSL_CTX_use_certificate(ctx, x) != 1) {
		BIO_free(bio);
		X509_free(x);
		return -1;
	}
	/* Chain certificates belong to the certificate just set. */
	SSL_CTX_clear_chain_certs(ctx);
	while ((extra = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
		if (SSL_CTX_add0_chain_cert(ctx, extra) != 1) {
			X509_free(extra);
			BIO_free(bio);
			X509_free(x);
			return -1;
		}
	}
	ERR_clear_error();	/* the end of the chain reads as an error */
	BIO_free(bio);
	bio = BIO_new_mem_buf(key_pem, (int)key_len);
	k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (k == NULL || SSL_CTX_use_PrivateKey(ctx, k) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		EVP_PKEY_free(k);
		X509_free(x);
		return -1;
	}
	EVP_PKEY_free(k);
	if (leaf_r != NULL)
		*leaf_r = x;
	else
		X509_free(x);
	return 0;
}

static SSL_CTX *
ctx_for_pair(const struct tls_pair *pair, enum tls_level level, X509 **cert_r,
    char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	X509 *x = NULL;
	char *err;

	if (ctx == NULL)
		goto ssl_fail;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	if (level == TLS_LEVEL_MODERN)
		SSL_CTX_set_cipher_list(ctx,
		    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
		    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
		    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305");
	else
		SSL_CTX_set_cipher_list(ctx,
		    "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:ECDHE+AES:"
		    "!aNULL:!MD5:!DSS:!RC4:!3DES");
	if (pair->alt_cert_pem != NULL &&
	    ctx_add_cert(ctx, pair->alt_cert_pem, pair->alt_cert_len,
	    pair->alt_key_pem, pair->alt_key_len, NULL) < 0)
		goto ssl_fail;
	/* The primary last: it is the one SSL_CTX_get0_certificate names. */
	if (ctx_add_cert(ctx, pair->cert_pem, pair->cert_len, pair->key_pem,
	    pair->key_len, &x) < 0)
		goto ssl_fail;
	*cert_r = x;
	return ctx;
ssl_fail:
	err = ssl_error_text();
	*error_r = xasprintf("TLS setup with %s failed: %s",
	    pair->source != NULL ? pair->source : "certificate", err);
	free(err);
	SSL_CTX_free(ctx);
	return NULL;
}

SSL_CTX *
tls_server_ctx_new(const struct tls_pair *pairs, size_t count,
    enum tls_level level, char **error_r)
{
	struct sni_set *set;
	SSL_CTX *def;

	if (count == 0) {
		*error_r = xstrdup("no certificate to serve TLS with");
		return NULL;
	}
	if (sni_index < 0)
		sni_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL,
		    sni_free);
	set = xcalloc(1, sizeof(*set));
	set->ctxs = xcalloc(count, sizeof(*set->ctxs));
	set->certs = xcalloc(count, sizeof(*set->certs));
	set->count = count;
	/*
	 * The set hangs off the default context (pairs[0]) and is freed with
	 * it; it holds references to the other contexts only, never to the
	 * one it hangs off (ctxs[0] stays NULL), or it would never be freed.
	 */
	def = ctx_for_pair(&pairs[0], level, &set->certs[0], error_r);
	if (def == NULL) {
		sni_free(NULL, set, NULL, 0, 0, NULL);
		return NULL;
	}
	for (size_t i = 1; i < count; i++) {
		set->ctxs[i] = ctx_for_pair(&pairs[i], level, &set->certs[i],
		    error_r);
		if (set->ctxs[i] == NULL) {
			sni_free(NULL, set, NULL, 0, 0, NULL);
			SSL_CTX_free(def);
			return NULL;
		}
	}
	SSL_CTX_set_tlsext_servername_callback(def, sni_cb);
	SSL_CTX_set_ex_data(def, sni_index, set);
	return def;
}

/* A directory of OpenSSL's hashed names ("<8 hex digits>.0"). */
static bool
dir_has_hashed_certs(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	bool found = false;

	if (d == NULL)
		return false;
	while (!found && (e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);

		found = n == 10 && strspn(e->d_name, "0123456789abcdef") == 8 &&
		    strcmp(e->d_name + 8, ".0") == 0;
	}
	closedir(d);
	return found;
}

void
tls_ctx_trust_system(SSL_CTX *ctx)
{
	const char *dir = getenv(X509_get_default_cert_dir_env());
	const char *file = getenv(X509_get_default_cert_file_env());

	/*
	 * SSL_CTX_set_default_verify_paths() parses the whole bundle
	 * (cert.pem, ~140 CAs) into the store when the context is made:
	 * ~0.9 MB of heap in every process that has a client context. The
	 * hashed directory beside it holds the same CAs and is read per
	 * issuer during a verification, only what a chain needs. A bundle
	 * the operator names with SSL_CERT_FILE is still loaded, and a
	 * system without the hashed directory keeps OpenSSL's defaults.
	 */
	if (file != NULL && *file != '\0')
		(void)SSL_CTX_load_verify_file(ctx, file);
	if (dir == NULL || *dir == '\0') {
		dir = X509_get_default_cert_dir();
		if (!dir_has_hashed_certs(dir)) {
			(void)SSL_CTX_set_default_verify_paths(ctx);
			ERR_clear_error();
			return;
		}
	}
	(void)SSL_CTX_load_verify_dir(ctx, dir);
	ERR_clear_error();
}

SSL_CTX *
tls_client_ctx_new(char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char *err;

	if (ctx == NULL) {
		err = ssl_error_text();
		*error_r = xasprintf("TLS client setup failed: %s", err);
		free(err);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	tls_ctx_trust_system(ctx);
	return ctx;
}

static int
pem_to_string(int (*write_fn)(BIO *, void *), void *obj, char **out_r,
    size_t *len_r)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p;
	long n;

	if (bio == NULL || write_fn(bio, obj) != 1) {
		BIO_free(bio);
		return -1;
	}
	n = BIO_get_mem_data(bio, &p);
	*out_r = xstrndup(p, (size_t)n);
	*len_r = (size_t)n;
	BIO_free(bio);
	return 0;
}

static int
write_key(BIO *bio, void *k)
{
	return PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL);
}

static int
write_cert(BIO *bio, void *x)
{
	return PEM_write_bio_X509(bio, x);
}

int
tls_make_self_signed(const char *const *names, size_t count,
    const char *cert_path, const char *key_path, char **error_r)
{
	EVP_PKEY *k = NULL;
	X509 *x = NULL;
	X509_NAME *subj;
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	struct buf_san { char s[2048]; size_t n; } san = { "", 0 };
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	char *key_pem = NULL, *cert_pem = NULL, *err;
	size_t key_len, cert_len;
	int r = -1;

	k = EVP_RSA_gen(2048);
	x = X509_new();
	if (k == NULL || x == NULL)
		goto ssl_fail;
	X509_set_version(x, 2);
	if (RAND_bytes(serial, sizeof(serial)) != 1)
		goto ssl_fail;
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 825L * 24 * 3600);
	X509_set_pubkey(x, k);
	subj = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8,
	    (const unsigned char *)names[0], -1, -1, 0);
	X509_set_issuer_name(x, subj);
	for (size_t i = 0; i < count; i++) {
		int w = snprintf(san.s + san.n, sizeof(san.s) - san.n, "%sDNS:%s",
		    i > 0 ? "," : "", names[i]);

		if (w < 0 || (size_t)w >= sizeof(san.s) - san.n)
			break;
		san.n += (size_t)w;
	}
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san.s);
	if (ext == NULL || X509_add_ext(x, ext, -1) != 1) {
		X509_EXTENSION_free(ext);
		goto ssl_fail;
	}
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "CA:FALSE");
	if (ext != NULL) {
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	if (X509_sign(x, k, EVP_sha256()) == 0)
		goto ssl_fail;
	if (pem_to_string(write_key, k, &key_pem, &key_len) < 0 ||
	    pem_to_string(write_cert, x, &cert_pem, &cert_len) < 0)
		goto ssl_fail;
	if (file_write_atomic(key_path, key_pem, key_len, 0600) < 0) {
		*error_r = xasprintf("cannot write %s: %s", key_path,
		    strerror(errno));
		goto out;
	}
	if (file_write_atomic(cert_path, cert_pem, cert_len, 0644) < 0) {
		*error_r = xasprintf("cannot write %s: %s", cert_path,
		    strerror(errno));
		goto out;
	}
	r = 0;
	goto out;
ssl_fail:
	err = ssl_error_text();
	*error_r = xasprintf("cannot make a self-signed certificate: %s", err);
	free(err);
out:
	if (key_pem != NULL) {
		str_wipe(key_pem, key_len);
		free(key_pem);
	}
	free(cert_pem);
	BN_free(bn);
	X509_free(x);
	EVP_PKEY_free(k);
	return r;
}

bool
tls_pair_is(const struct tls_pair *pair, X509 *x)
{
	X509 *mine = pair_cert(pair);
	bool r = mine != NULL && X509_cmp(mine, x) == 0;

	X509_free(mine);
	return r;
}

/* Moves what one side wrote to the other; false on a hard error. */
static bool
handshake_step(SSL *ssl, int *done)
{
	int r;

	if (*done)
		return true;
	r = SSL_do_handshake(ssl);
	if (r == 1) {
		*done = 1;
		return true;
	}
	r = SSL_get_error(ssl, r);
	return r == SSL_ERROR_WANT_READ || r == SSL_ERROR_WANT_WRITE;
}

int
tls_served_chain(SSL_CTX *server, const char *sni, X509 **leaf_r,
    STACK_OF(X509) **chain_r, char **error_r)
{
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	SSL *c = NULL, *s = NULL;
	BIO *cb = NULL, *sb = NULL;
	STACK_OF(X509) *peer;
	int cdone = 0, sdone = 0, r = -1;
	char *err;

	if (cctx == NULL || (c = SSL_new(cctx)) == NULL ||
	    (s = SSL_new(server)) == NULL ||
	    BIO_new_bio_pair(&cb, 0, &sb, 0) != 1)
		goto ssl_fail;
	/* From here the SSLs own the two ends. */
	SSL_set_bio(c, cb, cb);
	SSL_set_bio(s, sb, sb);
	/* Only the certificate is wanted here; it is judged afterwards. */
	SSL_set_verify(c, SSL_VERIFY_NONE, NULL);
	if (sni != NULL && SSL_set_tlsext_host_name(c, sni) != 1)
		goto ssl_fail;
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	/* A handshake is a few flights; bound the loop all the same. */
	for (int i = 0; i < 64 && !(cdone && sdone); i++) {
		if (!handshake_step(c, &cdone) || !handshake_step(s, &sdone))
			goto ssl_fail;
	}
	if (!cdone)
		goto ssl_fail;
	*leaf_r = SSL_get1_peer_certificate(c);
	peer = SSL_get_peer_cert_chain(c);
	*chain_r = peer != NULL ? X509_chain_up_ref(peer) : sk_X509_new_null();
	if (*leaf_r == NULL) {
		*error_r = xstrdup("the server sent no certificate");
		sk_X509_pop_free(*chain_r, X509_free);
		goto out;
	}
	r = 0;
	goto out;
ssl_fail:
	err = ssl_error_text();
	*error_r = xasprintf("TLS handshake with the configured certificates "
	    "failed: %s", err);
	free(err);
out:
	SSL_free(c);	/* frees cb */
	SSL_free(s);	/* frees sb */
	SSL_CTX_free(cctx);
	return r;
}

void
tls_cert_describe(X509 *leaf, STACK_OF(X509) *chain,
    struct tls_cert_info *info)
{
	GENERAL_NAMES *sans;
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *vctx = X509_STORE_CTX_new();
	const ASN1_TIME *na = X509_get0_notAfter(leaf);
	struct tm tm;
	int days = 0, secs = 0, cn;
	size_t off = 0;

	memset(info, 0, sizeof(*info));
	sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
		const unsigned char *d;
		int len;

		if (g->type != GEN_DNS)
			continue;
		d = ASN1_STRING_get0_data(g->d.dNSName);
		len = ASN1_STRING_length(g->d.dNSName);
		if (off < sizeof(info->names))
			off += (size_t)snprintf(info->names + off,
			    sizeof(info->names) - off, "%s%.*s",
			    off == 0 ? "" : ", ", len, (const char *)d);
	}
	GENERAL_NAMES_free(sans);
	if (info->names[0] == '\0' && X509_NAME_get_text_by_NID(
	    X509_get_subject_name(leaf), NID_commonName, info->names,
	    sizeof(info->names)) < 0)
		str_copy(info->names, sizeof(info->names), "(no names)");
	cn = X509_NAME_get_text_by_NID(X509_get_issuer_name(leaf),
	    NID_commonName, info->issuer, sizeof(info->issuer));
	if (cn < 0)
		X509_NAME_oneline(X509_get_issuer_name(leaf), info->issuer,
		    sizeof(info->issuer));
	if (ASN1_TIME_to_tm(na, &tm) == 1)
		strftime(info->not_after, sizeof(info->not_after), "%Y-%m-%d",
		    &tm);
	if (ASN1_TIME_diff(&days, &secs, NULL, na) != 1)
		days = -1;
	info->days_left = days < 0 || secs < 0 ? (days < 0 ? days : -1) : days;
	if (store == NULL || vctx == NULL ||
	    X509_STORE_set_default_paths(store) != 1 ||
	    X509_STORE_CTX_init(vctx, store, leaf, chain) != 1) {
		str_copy(info->why, sizeof(info->why), "cannot set up the "
		    "verification (OpenSSL)");
	} else {
		X509_STORE_CTX_set_purpose(vctx, X509_PURPOSE_SSL_SERVER);
		if (X509_verify_cert(vctx) == 1)
			info->trusted = true;
		else
			str_copy(info->why, sizeof(info->why),
			    X509_verify_cert_error_string(
			    X509_STORE_CTX_get_error(vctx)));
	}
	ERR_clear_error();
	X509_STORE_CTX_free(vctx);
	X509_STORE_free(store);
}
