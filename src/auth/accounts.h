/*
 * accounts: docker-mailserver's account files, read side.
 *
 * Files read from CONFIG_DIR (each may be missing, which means empty):
 *   postfix-accounts.cf        user@dom|{SCHEME}hash[|extra userdb fields]
 *   postfix-virtual.cf         key target[,target...]   key = user@dom,
 *                              @dom (catch-all) or user (bare local part)
 *   postfix-regexp.cf          /regex/[flags] target[,target...]
 *   dovecot-quotas.cf          user@dom:5G   (B k M G T, IEC; 0 = unlimited)
 *   dovecot-masters.cf         name|{SCHEME}hash
 *   postfix-send-access.cf     addr REJECT   (setup email restrict send)
 *   postfix-receive-access.cf  addr REJECT   (setup email restrict receive)
 *   postfix-aliases.cf         name: target[, target...]   aliases(5), local
 *                              aliases of the host's own names (below)
 *
 * Parsing follows DMS: CRLF is LF, blank lines and lines whose first
 * non-blank character is '#' are skipped, there are no inline comments.
 * A malformed line is logged (file:line) and skipped, never fatal; a
 * reload logs again only the files that changed. Addresses are lower-cased on load and matched
 * case-insensitively; resolved targets come back lower-cased.
 *
 * Resolution of a recipient (accounts_resolve), for an address in a local
 * domain. For each address on the way (recursively, the alias targets too):
 *   1. exact alias "user@dom" from postfix-virtual.cf (several targets);
 *   2. regexp aliases from postfix-regexp.cf, first match wins, matched on
 *      the whole address; $1..$9 in a target are replaced by the groups;
 *   3. an account "user@dom";
 *   4. when "user+tag@dom" matched none of 1-3, the same steps for
 *      "user@dom" (sub-addressing, '+' is the delimiter);
 *   5. a bare local-part alias "user" (it applies at every local domain);
 *   5b. at the host's own names (Postfix's mydestination in
 *      docker-mailserver: the host name, localhost.<mail domain>,
 *      localhost), a local alias "user" from postfix-aliases.cf, with
 *      "root" going to POSTMASTER_ADDRESS as in docker-mailserver's
 *      /etc/aliases (the first entry of a name wins, as with postalias).
 *      Its targets: addresses, bare names (name@<host name>, looked up
 *      again) and /dev/null (a DISCARD target); pipes, files and
 *      :include: are logged and skipped;
 *   6. the catch-all "@dom", ONLY when none of the above matched: unlike
 *      Postfix it never swallows mail for an existing account or alias
 *      (docker-mailserver #3022). A target "@other" keeps the local part.
 * Aliases come before accounts as in Postfix, so "u@d u@d,x@y" keeps a
 * copy and forwards one. An address already on the expansion path is not
 * expanded again (Postfix does the same) but taken as an account, which
 * makes loops terminate; nesting deeper than ACCOUNTS_MAX_DEPTH is an
 * error. Targets in a domain that is not local are remote addresses.
 * A target in a local domain that is nothing at all is dropped (and
 * counted); when nothing is left the recipient is unknown.
 *
 * Local domains: the domain of every account, of every alias key that has
 * one (the DMS vhost rule), the extra domains given in the settings, and
 * the host's own names when a host name is given.
 *
 * Regular expressions are POSIX extended with REG_ICASE (DMS uses PCRE):
 * \d \w \s \D \W \S outside brackets are translated, (?...) and lazy
 * quantifiers are not supported; a pattern that does not compile is logged
 * with file:line and skipped. Postfix "if/endif" blocks are not supported.
 *
 * Threads: a struct accounts is immutable once loaded; any number of
 * threads may use one at the same time and hold references
 * (accounts_ref/unref are atomic). A struct accounts_watch belongs to one
 * thread (the event loop).
 */
#ifndef TEGAMI_ACCOUNTS_H
#define TEGAMI_ACCOUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACCOUNTS_MAX_DEPTH 20
/* Bound on the targets of one recipient after expansion. */
#define ACCOUNTS_MAX_TARGETS 1000
/* Bound on the size of one file we read. */
#define ACCOUNTS_MAX_FILE_SIZE (64u * 1024 * 1024)

struct accounts_settings {
	const char *config_dir;		/* CONFIG_DIR */
	const char *mail_dir;		/* MAIL_DIR, the root of the Maildirs */
	/* NULL-terminated, may be NULL: domains local besides the vhost rule
	 * (the server's own mail domain). */
	const char *const *extra_domains;
	/* The FQDN; NULL = no local aliases (postfix-aliases.cf, root). */
	const char *hostname;
	/* root's local alias (POSTMASTER_ADDRESS); NULL = none. */
	const char *postmaster;
};

struct accounts;

/*
 * Reads every file under set->config_dir into a new snapshot with one
 * reference. A missing file is empty; a file that exists but cannot be
 * read (permissions, too big) fails the load: NULL and *error_r, a
 * malloc'd message naming the file. Bad lines never fail it.
 */
struct accounts *accounts_load(const struct accounts_settings *set,
    char **error_r);
/* Takes a reference; returns acc. Thread-safe. */
struct accounts *accounts_ref(struct accounts *acc);
/* Drops a reference (NULL is fine); the last one frees. Thread-safe. */
void accounts_unref(struct accounts *acc);

size_t accounts_count(const struct accounts *acc);
/* Is domain (any case) one we receive mail for? */
bool accounts_is_local_domain(const struct accounts *acc, const char *domain);
/* Is address (any case, no +tag handling) an account? */
bool accounts_exists(const struct accounts *acc, const char *address);

enum accounts_target_kind {
	ACCOUNTS_TARGET_LOCAL,	/* an account: deliver to maildir */
	ACCOUNTS_TARGET_REMOTE,	/* an address outside our domains: queue */
	ACCOUNTS_TARGET_DISCARD, /* a local alias to /dev/null: accept, drop;
				    address is the alias */
};

struct accounts_target {
	enum accounts_target_kind kind;
	char *address;		/* lower-case; the account for LOCAL */
	char *maildir;		/* LOCAL: MAIL_DIR/<domain>/<localpart>/ */
};

struct accounts_resolution {
	struct accounts_target *targets;	/* deduplicated */
	size_t count;
	/* Targets dropped because they name nothing in a local domain. */
	unsigned int dropped;
};

/*
 * The final targets of one recipient address (any case, may carry a
 * +tag), per the rules at the top. Returns 1 with res_r filled (count >
 * 0), 0 = unknown user in a local domain (the glue replies 550 5.1.1),
 * -1 = the expansion is too deep or too wide (*error_r; reply 550 5.4.6
 * or 451). An address whose domain is not local resolves to itself as one
 * REMOTE target. An address without '@' or with an empty part is unknown.
 * Free res_r with accounts_resolution_free() in every case.
 */
int accounts_resolve(const struct accounts *acc, const char *address,
    struct accounts_resolution *res_r, const char **error_r);
void accounts_resolution_free(struct accounts_resolution *res);

struct accounts_login {
	char *user;	/* the account, lower-case */
	char *master;	/* the master user that logged in for it, or NULL */
};

/*
 * Checks a login (the e-mail address, any case; "user@dom*master" logs in
 * as user@dom with the password of master user "master") and a password.
 * Returns 1 and fills login_r (free with accounts_login_free), 0 = wrong
 * login or password, -1 = the stored hash cannot be verified (*error_r;
 * logged with the account name, never the password). Costs one crypt(3)
 * even for an unknown login, so timing does not tell which logins exist.
 * BLOCKING (milliseconds): run it on a pool thread.
 */
int accounts_authenticate(const struct accounts *acc, const char *login,
    const char *password, struct accounts_login *login_r,
    const char **error_r);
void accounts_login_free(struct accounts_login *login);

/*
 * SPOOF_PROTECTION=1: may the account "user" (as from accounts_login)
 * use "address" as envelope or From: sender? Yes for its own address (any
 * case, with or without a +tag) and for every address that resolves to it
 * (aliases, nested, regexp, and a catch-all for addresses that are
 * nothing else); yes for the null sender "". No otherwise.
 */
bool accounts_sender_allowed(const struct accounts *acc, const char *user,
    const char *address);

/* Quota in bytes of an account (dovecot-quotas.cf); 0 = none/unlimited. */
uint64_t accounts_quota(const struct accounts *acc, const char *address);

/*
 * access(5)-style restriction lists: true when address matches a line of
 * postfix-send-access.cf (as sender) or postfix-receive-access.cf (as
 * recipient) whose action is not OK/DUNNO/PERMIT. Keys matched, in order:
 * "user@dom", "user@" (a local part anywhere), "dom" and "@dom".
 */
bool accounts_send_restricted(const struct accounts *acc, const char *address);
bool accounts_receive_restricted(const struct accounts *acc,
    const char *address);

/*
 * The current snapshot, reloaded when a file changes. Owned by one thread.
 */
struct accounts_watch;

/*
 * Loads the first snapshot (copies set). NULL and *error_r (malloc'd) when
 * accounts_load fails: the caller decides whether that stops startup.
 */
struct accounts_watch *accounts_watch_create(const struct accounts_settings *set,
    char **error_r);
void accounts_watch_free(struct accounts_watch **w);
/* The current snapshot, with a new reference for the caller. */
struct accounts *accounts_watch_get(struct accounts_watch *w);
/*
 * Compares the files' stamps (lib/file.h) with those of the current
 * snapshot and reloads when one changed (or always when force, for
 * SIGHUP). Call it about once a second. Returns 1 = reloaded, 0 = nothing
 * changed, -1 = the reload failed (logged; the old snapshot stays and the
 * next call tries again).
 */
int accounts_watch_refresh(struct accounts_watch *w, bool force);

#endif
