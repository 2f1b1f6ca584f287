/*
 * tlsconf: which certificate files SSL_TYPE points at (docker-mailserver's
 * rules), and reading them into PEM pairs for the workers.
 */
#ifndef TEGAMI_TLSCONF_H
#define TEGAMI_TLSCONF_H

#include <stddef.h>
#include "daemon/settings.h"
#include "lib/file.h"
#include "net/tls.h"

struct tlsconf_files {
	char *cert, *key;		/* key may equal cert (custom) */
	char *alt_cert, *alt_key;	/* optional */
};

struct tlsconf {
	struct tlsconf_files *files;
	size_t count;
	struct file_stamp *stamps;	/* one per path in files, in order */
	size_t nstamps;
};

/*
 * Works out the files for the settings; with SSL_TYPE empty, makes a
 * self-signed certificate for the host name under STATE_DIR/tegami/tls/
 * on first use and logs that it did. -1 with a one-line *error_r that names
 * the key and the file.
 */
int tlsconf_resolve(const struct settings *s, struct tlsconf *tc, char **error_r);
/*
 * The same choice, but nothing is made or logged as made: with SSL_TYPE
 * empty and no certificate of tegami's own yet, 0 with tc->count == 0
 * (`tegami check` reports what the server will do).
 */
int tlsconf_find(const struct settings *s, struct tlsconf *tc, char **error_r);
/* Reads every pair; -1 with *error_r. Pairs are freed with tls_pair_clear. */
int tlsconf_read(const struct tlsconf *tc, struct tls_pair **pairs_r,
    size_t *count_r, char **error_r);
/* Did any of the files change since resolve/the last call? Updates stamps. */
int tlsconf_changed(struct tlsconf *tc);
void tlsconf_free(struct tlsconf *tc);

/* Serializes pairs for ipc (and back). */
char *tlsconf_pack(const struct tls_pair *pairs, size_t count, size_t *len_r);
int tlsconf_unpack(const char *data, size_t len, struct tls_pair **pairs_r,
    size_t *count_r);

#endif
