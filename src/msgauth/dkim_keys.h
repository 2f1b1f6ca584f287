/*
 * dkim_keys: which DKIM keys sign a message, from docker-mailserver's
 * OpenDKIM layout under CONFIG_DIR/opendkim/:
 *
 *   KeyTable      mail._domainkey.example.com example.com:mail:/etc/opendkim/keys/example.com/mail.private
 *   SigningTable  *@example.com mail._domainkey.example.com
 *   keys/<domain>/<selector>.private
 *
 * Paths under /etc/opendkim/ in KeyTable (the container path) are read
 * from CONFIG_DIR/opendkim/. Without a SigningTable, a KeyTable key signs
 * mail from its own domain. Without a KeyTable, every
 * keys/<domain>/<selector>.private signs mail from <domain>. Every
 * matching key signs (an RSA and an Ed25519 key give two signatures).
 * SigningTable patterns are matched case-insensitively against the From
 * address with shell wildcards (`*@example.com`, `user@example.com`,
 * `*`), and a bare domain matches that domain.
 */
#ifndef TEGAMI_DKIM_KEYS_H
#define TEGAMI_DKIM_KEYS_H

#include <stdbool.h>
#include <stddef.h>

struct dkim_key;
struct dkim_keyset;

/* Most keys one message is signed with. */
#define DKIM_MAX_KEYS_PER_MESSAGE 4

/*
 * Loads the keyset; no opendkim/ directory is an empty keyset. -1 with a
 * malloc'd *error_r naming the file and line on a broken table or an
 * unreadable key.
 */
int dkim_keyset_load(const char *config_dir, struct dkim_keyset **ks_r,
    char **error_r);
void dkim_keyset_free(struct dkim_keyset **ks);
/* Number of keys loaded. */
size_t dkim_keyset_count(const struct dkim_keyset *ks);
/*
 * The keys (at most max) for a message whose From address is from_addr
 * ("local@domain"); 0 if none. The keys belong to the keyset.
 */
size_t dkim_keyset_find(const struct dkim_keyset *ks, const char *from_addr,
    struct dkim_key **keys_r, size_t max);
/* Has a table, key file or the keys directory changed since load? */
bool dkim_keyset_changed(const struct dkim_keyset *ks);

#endif
