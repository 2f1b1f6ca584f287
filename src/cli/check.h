/*
 * check: what the operator's commands accept, as pure functions (no files,
 * no settings), so each rule is unit-tested on its own.
 */
#ifndef TEGAMI_CLI_CHECK_H
#define TEGAMI_CLI_CHECK_H

#include <stdbool.h>
#include <stddef.h>

/*
 * A mail domain: LDH labels of 1..63 bytes, at least two labels, at most
 * 253 bytes, no leading/trailing hyphen in a label. Case is not checked
 * (callers lower-case first). A trailing dot is refused.
 */
bool check_domain(const char *s);

/*
 * An account or alias address "local@domain" as the docker-mailserver files
 * hold it: local part of 1..64 bytes of RFC 5322 atext or UTF-8 (dots inside
 * only, never two in a row), minus the characters that are field separators
 * in those files or would escape MAIL_DIR (| , : / and white space); a valid
 * domain; at most 254 bytes. -1 and a reason in *error_r when not.
 */
int check_address(const char *s, const char **error_r);

/* An alias key: an address, or "@domain" (catch-all). */
int check_alias_key(const char *s, const char **error_r);

/*
 * A dovecot-master user name: 1..64 bytes of printable ASCII without white
 * space and without | : * @ (the file separator, the passwd-file separator,
 * Dovecot's master separator).
 */
int check_master_name(const char *s, const char **error_r);

/* A DKIM selector: one DNS label (letters, digits, hyphen; 1..63 bytes). */
bool check_selector(const char *s);

/*
 * A docker-mailserver quota: "0" (unlimited) or digits followed by one of
 * B k M G T (IEC: k = 1024). 0 and the size in bytes (0 = unlimited) in
 * *bytes_r; -1 when malformed or 2^63 bytes or more.
 */
int check_quota(const char *s, unsigned long long *bytes_r);

/*
 * Formats bytes as `numfmt --to=iec` does (docker-mailserver's `email list`):
 * below 1024 the number itself; else one decimal below 10 ("1.5K"), none
 * from 10 on ("10K", "512M"), always rounded up. Returns out.
 */
char *check_format_iec(unsigned long long bytes, char *out, size_t outsize);

/* A TCP port "1".."65535" (decimal, no sign). */
int check_port(const char *s, unsigned int *port_r);

/* A line a password may be: not empty, no NUL/CR/LF. */
bool check_password(const char *s);

#endif
