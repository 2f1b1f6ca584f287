#include "daemon/tlsconf.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

static bool
exists(const char *path)
{
	return access(path, R_OK) == 0;
}

static void
add_files(struct tlsconf *tc, const char *cert, const char *key,
    const char *alt_cert, const char *alt_key)
{
	struct tlsconf_files *f;

	tc->files = xreallocarray(tc->files, tc->count + 1, sizeof(*tc->files));
	f = &tc->files[tc->count++];
	f->cert = xstrdup(cert);
	f->key = xstrdup(key);
	f->alt_cert = alt_cert != NULL ? xstrdup(alt_cert) : NULL;
	f->alt_key = alt_key != NULL ? xstrdup(alt_key) : NULL;
}

/* certbot's live/<name>/: fullchain.pem with privkey.pem (or key.pem). */
static bool
add_letsencrypt_dir(struct tlsconf *tc, const char *live, const char *name)
{
	char *cert = xasprintf("%s/%s/fullchain.pem", live, name);
	char *key = xasprintf("%s/%s/privkey.pem", live, name);
	bool ok = false;

	if (!exists(key)) {
		free(key);
		key = xasprintf("%s/%s/key.pem", live, name);
	}
	if (exists(cert) && exists(key)) {
		for (size_t i = 0; i < tc->count; i++)
			if (strcmp(tc->files[i].cert, cert) == 0)
				goto out;
		add_files(tc, cert, key, NULL, NULL);
		ok = true;
	}
out:
	free(cert);
	free(key);
	return ok;
}

static int
resolve_letsencrypt(const struct settings *s, struct tlsconf *tc,
    char **error_r)
{
	const char *base = config_str(s->cfg, "TEGAMI_LETSENCRYPT_DIR");
	const char *ssl_domain = config_str(s->cfg, "SSL_DOMAIN");
	char *live = xasprintf("%s/live", base);
	const char *candidates[3];
	size_t n = 0;
	DIR *d;
	struct dirent *de;

	if (*ssl_domain != '\0')
		candidates[n++] = str_has_prefix(ssl_domain, "*.") ?
		    ssl_domain + 2 : ssl_domain;
	candidates[n++] = s->hostname;
	candidates[n++] = s->domain;
	for (size_t i = 0; i < n && tc->count == 0; i++)
		add_letsencrypt_dir(tc, live, candidates[i]);
	if (tc->count == 0) {
		*error_r = xasprintf("SSL_TYPE=letsencrypt: no certificate in "
		    "%s/<name>/fullchain.pem for %s%s%s or %s; run certbot for "
		    "the host name %s, or set SSL_DOMAIN", live,
		    *ssl_domain != '\0' ? ssl_domain : "", *ssl_domain != '\0' ?
		    ", " : "", s->hostname, s->domain, s->hostname);
		free(live);
		return -1;
	}
	/* Every other certificate certbot keeps is served by SNI. */
	d = opendir(live);
	while (d != NULL && (de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.')
			add_letsencrypt_dir(tc, live, de->d_name);
	}
	if (d != NULL)
		closedir(d);
	free(live);
	return 0;
}

static int
need_files(const char *key, const char *cert, const char *keyfile,
    char **error_r)
{
	if (!exists(cert)) {
		*error_r = xasprintf("SSL_TYPE=%s: cannot read %s: %s", key,
		    cert, strerror(errno));
		return -1;
	}
	if (!exists(keyfile)) {
		*error_r = xasprintf("SSL_TYPE=%s: cannot read %s: %s", key,
		    keyfile, strerror(errno));
		return -1;
	}
	return 0;
}

static int
resolve(const struct settings *s, struct tlsconf *tc, bool make,
    char **error_r)
{
	const char *type = config_str(s->cfg, "SSL_TYPE");
	const char *extra = config_str(s->cfg, "TEGAMI_TLS_EXTRA");
	char *cert = NULL, *key = NULL;
	int r = 0;

	memset(tc, 0, sizeof(*tc));
	if (strcmp(type, "letsencrypt") == 0) {
		r = resolve_letsencrypt(s, tc, error_r);
	} else if (strcmp(type, "manual") == 0) {
		const char *c = config_str(s->cfg, "SSL_CERT_PATH");
		const char *k = config_str(s->cfg, "SSL_KEY_PATH");
		const char *ac = config_str(s->cfg, "SSL_ALT_CERT_PATH");
		const char *ak = config_str(s->cfg, "SSL_ALT_KEY_PATH");

		if (*c == '\0' || *k == '\0') {
			*error_r = xstrdup("SSL_TYPE=manual needs SSL_CERT_PATH "
			    "and SSL_KEY_PATH: set both to your PEM files");
			return -1;
		}
		if (need_files("manual", c, k, error_r) < 0)
			return -1;
		if ((*ac == '\0') != (*ak == '\0')) {
			*error_r = xstrdup("SSL_ALT_CERT_PATH and SSL_ALT_KEY_PATH "
			    "go together: set both or neither");
			return -1;
		}
		if (*ac != '\0' && need_files("manual", ac, ak, error_r) < 0)
			return -1;
		add_files(tc, c, k, *ac != '\0' ? ac : NULL,
		    *ak != '\0' ? ak : NULL);
	} else if (strcmp(type, "custom") == 0) {
		cert = xasprintf("%s/ssl/%s-full.pem", s->config_dir, s->hostname);
		if ((r = need_files("custom", cert, cert, error_r)) == 0)
			add_files(tc, cert, cert, NULL, NULL);
	} else if (strcmp(type, "self-signed") == 0) {
		cert = xasprintf("%s/ssl/%s-cert.pem", s->config_dir, s->hostname);
		key = xasprintf("%s/ssl/%s-key.pem", s->config_dir, s->hostname);
		if ((r = need_files("self-signed", cert, key, error_r)) == 0)
			add_files(tc, cert, key, NULL, NULL);
	} else if (strcmp(type, "snakeoil") == 0) {
		cert = xstrdup("/etc/ssl/certs/ssl-cert-snakeoil.pem");
		key = xstrdup("/etc/ssl/private/ssl-cert-snakeoil.key");
		if ((r = need_files("snakeoil", cert, key, error_r)) == 0)
			add_files(tc, cert, key, NULL, NULL);
	} else {
		/*
		 * No SSL_TYPE: docker-mailserver would run without TLS and
		 * let passwords cross the network in clear text. tegami makes
		 * its own certificate instead.
		 */
		char *dir = xasprintf("%s/tls", s->tegami_state);

		cert = xasprintf("%s/%s-cert.pem", dir, s->hostname);
		key = xasprintf("%s/%s-key.pem", dir, s->hostname);
		if (!make && (!exists(cert) || !exists(key))) {
			/* Not made yet: `tegami serve` will. */
			free(dir);
			goto out;
		}
		if (!exists(cert) || !exists(key)) {
			const char *names[2] = { s->hostname, "localhost" };

			if (mkdir_p(dir, 0700) < 0) {
				*error_r = xasprintf("cannot create %s: %s; check "
				    "STATE_DIR", dir, strerror(errno));
				free(dir);
				r = -1;
				goto out;
			}
			if (tls_make_self_signed(names,
			    strcmp(s->hostname, "localhost") == 0 ? 1 : 2,
			    cert, key, error_r) < 0) {
				free(dir);
				r = -1;
				goto out;
			}
			log_warn("event=tls_self_signed cert=%s host=%s "
			    "hint=\"SSL_TYPE is empty: made a self-signed "
			    "certificate; clients will warn until you set "
			    "SSL_TYPE=letsencrypt or manual\"", cert, s->hostname);
		} else {
			log_warn("event=tls_self_signed cert=%s host=%s "
			    "hint=\"SSL_TYPE is empty: using tegami's own "
			    "self-signed certificate\"", cert, s->hostname);
		}
		free(dir);
		add_files(tc, cert, key, NULL, NULL);
	}
	if (r == 0 && *extra != '\0') {
		size_t n;
		char **items = str_split(extra, ",", &n);

		for (size_t i = 0; i < n && r == 0; i++) {
			char *colon = strchr(items[i], ':');

			if (colon == NULL) {
				*error_r = xasprintf("TEGAMI_TLS_EXTRA: \"%s\" is "
				    "not cert.pem:key.pem", items[i]);
				r = -1;
				break;
			}
			*colon = '\0';
			if ((r = need_files("TEGAMI_TLS_EXTRA", items[i],
			    colon + 1, error_r)) == 0)
				add_files(tc, items[i], colon + 1, NULL, NULL);
		}
		str_array_free(items);
	}
out:
	free(cert);
	free(key);
	if (r < 0) {
		tlsconf_free(tc);
		return -1;
	}
	tlsconf_changed(tc);
	return 0;
}

int
tlsconf_resolve(const struct settings *s, struct tlsconf *tc, char **error_r)
{
	return resolve(s, tc, true, error_r);
}

int
tlsconf_find(const struct settings *s, struct tlsconf *tc, char **error_r)
{
	return resolve(s, tc, false, error_r);
}

int
tlsconf_read(const struct tlsconf *tc, struct tls_pair **pairs_r,
    size_t *count_r, char **error_r)
{
	struct tls_pair *pairs = xcalloc(tc->count, sizeof(*pairs));

	for (size_t i = 0; i < tc->count; i++) {
		const struct tlsconf_files *f = &tc->files[i];

		if (tls_pair_read(f->cert, f->key, &pairs[i], error_r) < 0 ||
		    (f->alt_cert != NULL && tls_pair_read_alt(&pairs[i],
		    f->alt_cert, f->alt_key, error_r) < 0)) {
			for (size_t k = 0; k <= i; k++)
				tls_pair_clear(&pairs[k]);
			free(pairs);
			return -1;
		}
	}
	*pairs_r = pairs;
	*count_r = tc->count;
	return 0;
}

int
tlsconf_changed(struct tlsconf *tc)
{
	size_t n = 0;
	int changed = 0;

	if (tc->stamps == NULL) {
		tc->stamps = xcalloc(tc->count * 4, sizeof(*tc->stamps));
		changed = 1;
	}
	for (size_t i = 0; i < tc->count; i++) {
		const char *paths[4] = { tc->files[i].cert, tc->files[i].key,
		    tc->files[i].alt_cert, tc->files[i].alt_key };

		for (size_t k = 0; k < 4; k++) {
			struct file_stamp st;

			if (paths[k] == NULL)
				continue;
			file_stamp_get(paths[k], &st);
			if (!file_stamp_equal(&st, &tc->stamps[n])) {
				tc->stamps[n] = st;
				changed = 1;
			}
			n++;
		}
	}
	tc->nstamps = n;
	return changed;
}

void
tlsconf_free(struct tlsconf *tc)
{
	for (size_t i = 0; i < tc->count; i++) {
		free(tc->files[i].cert);
		free(tc->files[i].key);
		free(tc->files[i].alt_cert);
		free(tc->files[i].alt_key);
	}
	free(tc->files);
	free(tc->stamps);
	memset(tc, 0, sizeof(*tc));
}

static void
pack_field(struct buf *b, const char *p, size_t len)
{
	uint32_t n = (uint32_t)len;
	unsigned char be[4] = { n >> 24, n >> 16, n >> 8, n };

	if (buf_append(b, be, 4) < 0 || buf_append(b, p, len) < 0)
		panic("tlsconf_pack: certificate set too large");
}

char *
tlsconf_pack(const struct tls_pair *pairs, size_t count, size_t *len_r)
{
	struct buf b;

	buf_init(&b, BUF_UNLIMITED);
	for (size_t i = 0; i < count; i++) {
		const struct tls_pair *p = &pairs[i];

		pack_field(&b, p->source, strlen(p->source));
		pack_field(&b, p->cert_pem, p->cert_len);
		pack_field(&b, p->key_pem, p->key_len);
		pack_field(&b, p->alt_cert_pem != NULL ? p->alt_cert_pem : "",
		    p->alt_cert_len);
		pack_field(&b, p->alt_key_pem != NULL ? p->alt_key_pem : "",
		    p->alt_key_len);
	}
	*len_r = b.len;
	return buf_steal(&b);
}

static int
unpack_field(struct bufreader *r, char **out_r, size_t *len_r)
{
	uint32_t n;
	const unsigned char *p;

	if (bufreader_get_u32be(r, &n) < 0 || bufreader_get_bytes(r, n, &p) < 0)
		return -1;
	*out_r = n > 0 ? xstrndup((const char *)p, n) : NULL;
	*len_r = n;
	return 0;
}

int
tlsconf_unpack(const char *data, size_t len, struct tls_pair **pairs_r,
    size_t *count_r)
{
	struct bufreader r;
	struct tls_pair *pairs = NULL;
	size_t count = 0, dummy;

	bufreader_init(&r, data, len);
	while (bufreader_left(&r) > 0) {
		struct tls_pair *p;

		pairs = xreallocarray(pairs, count + 1, sizeof(*pairs));
		p = &pairs[count++];
		memset(p, 0, sizeof(*p));
		if (unpack_field(&r, &p->source, &dummy) < 0 ||
		    unpack_field(&r, &p->cert_pem, &p->cert_len) < 0 ||
		    unpack_field(&r, &p->key_pem, &p->key_len) < 0 ||
		    unpack_field(&r, &p->alt_cert_pem, &p->alt_cert_len) < 0 ||
		    unpack_field(&r, &p->alt_key_pem, &p->alt_key_len) < 0 ||
		    p->source == NULL || p->cert_pem == NULL ||
		    p->key_pem == NULL) {
			for (size_t i = 0; i < count; i++)
				tls_pair_clear(&pairs[i]);
			free(pairs);
			return -1;
		}
	}
	*pairs_r = pairs;
	*count_r = count;
	return 0;
}
