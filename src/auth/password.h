/*
 * password: the {SCHEME} hashes of Dovecot and docker-mailserver.
 *
 * Stored form: "{SCHEME}hash". Verified: SHA512-CRYPT ($6$), SHA256-CRYPT
 * ($5$), BLF-CRYPT ($2y$/$2b$), CRYPT/MD5-CRYPT and yescrypt ($y$) through
 * libxcrypt; PLAIN and CLEARTEXT; SSHA512 and SHA512 (base64). A hash with
 * no {SCHEME} is taken as SHA512-CRYPT, Dovecot's default_password_scheme
 * in docker-mailserver. Hashing costs milliseconds: call it off the event loop.
 */
#ifndef TEGAMI_PASSWORD_H
#define TEGAMI_PASSWORD_H

#include <stddef.h>

/*
 * 1 = the password matches, 0 = it does not, -1 = the stored hash is of a
 * scheme we cannot verify or is malformed (*error_r says which).
 */
int password_verify(const char *stored, const char *plain, const char **error_r);

/*
 * A new "{SHA512-CRYPT}$6$<16 salt chars>$..." hash (5000 rounds, what
 * `doveadm pw -s SHA512-CRYPT` writes). NULL if the system has no entropy.
 * The caller frees it.
 */
char *password_hash(const char *plain);

#endif
