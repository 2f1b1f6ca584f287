#include "net/tls.h"
#include "lib/test.h"
#include "lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

static X509 *
read_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;

	if (f != NULL)
		fclose(f);
	return x;
}

static int
verify_with(SSL_CTX *ctx, X509 *leaf)
{
	X509_STORE_CTX *v = X509_STORE_CTX_new();
	int ok;

	X509_STORE_CTX_init(v, SSL_CTX_get_cert_store(ctx), leaf, NULL);
	ok = X509_verify_cert(v);
	X509_STORE_CTX_free(v);
	return ok;
}

/* The client context's trust: nothing parsed when it is made, and a CA
 * of the hashed directory (SSL_CERT_DIR) is found when a chain needs it;
 * SSL_CERT_FILE is loaded at once, as OpenSSL's default paths would. */
static void
test_tls_trust_system(void)
{
	const char *names[] = { "ca.example.test" };
	char *dir = xasprintf("%s/tls-trust-certs", test_tmpdir());
	char *empty = xasprintf("%s/tls-trust-empty", test_tmpdir());
	char *cert = xasprintf("%s/tls-trust-ca.pem", test_tmpdir());
	char *key = xasprintf("%s/tls-trust-ca.key", test_tmpdir());
	char *err = NULL, *link;
	char *old_dir = getenv("SSL_CERT_DIR"), *old_file = getenv("SSL_CERT_FILE");
	SSL_CTX *ctx;
	X509 *x;

	old_dir = old_dir != NULL ? xstrdup(old_dir) : NULL;
	old_file = old_file != NULL ? xstrdup(old_file) : NULL;
	test_begin("net tls: system trust read per issuer, not loaded up front");
	test_assert(tls_make_self_signed(names, 1, cert, key, &err) == 0);
	x = read_cert(cert);
	test_assert(x != NULL);
	test_assert(mkdir(dir, 0700) == 0);
	test_assert(mkdir(empty, 0700) == 0);
	link = xasprintf("%s/%08lx.0", dir, X509_subject_name_hash(x));
	test_assert(symlink(cert, link) == 0);

	/* an empty directory: the certificate is not trusted */
	setenv("SSL_CERT_DIR", empty, 1);
	unsetenv("SSL_CERT_FILE");
	ctx = tls_client_ctx_new(&err);
	test_assert(ctx != NULL);
	test_assert(verify_with(ctx, x) != 1);
	SSL_CTX_free(ctx);

	/* the hashed directory: nothing in the store until a verification,
	   which finds the CA */
	setenv("SSL_CERT_DIR", dir, 1);
	ctx = tls_client_ctx_new(&err);
	test_assert(ctx != NULL);
	test_assert_int(sk_X509_OBJECT_num(X509_STORE_get0_objects(
	    SSL_CTX_get_cert_store(ctx))), 0);
	test_assert(verify_with(ctx, x) == 1);
	test_assert_int(sk_X509_OBJECT_num(X509_STORE_get0_objects(
	    SSL_CTX_get_cert_store(ctx))), 1);
	SSL_CTX_free(ctx);

	/* a bundle named by SSL_CERT_FILE is loaded when the context is made */
	setenv("SSL_CERT_DIR", empty, 1);
	setenv("SSL_CERT_FILE", cert, 1);
	ctx = tls_client_ctx_new(&err);
	test_assert(ctx != NULL);
	test_assert_int(sk_X509_OBJECT_num(X509_STORE_get0_objects(
	    SSL_CTX_get_cert_store(ctx))), 1);
	test_assert(verify_with(ctx, x) == 1);
	SSL_CTX_free(ctx);

	if (old_dir != NULL)
		setenv("SSL_CERT_DIR", old_dir, 1);
	else
		unsetenv("SSL_CERT_DIR");
	if (old_file != NULL)
		setenv("SSL_CERT_FILE", old_file, 1);
	else
		unsetenv("SSL_CERT_FILE");
	X509_free(x);
	free(old_dir);
	free(old_file);
	free(link);
	free(dir);
	free(empty);
	free(cert);
	free(key);
	free(err);
	test_end();
}
TEST(test_tls_trust_system)
