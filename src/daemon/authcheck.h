/*
 * authcheck: one login check for a worker's protocol sessions (SMTP AUTH,
 * IMAP LOGIN/AUTHENTICATE, POP3 USER/PASS/AUTH). The password hash is
 * checked on a pool thread against the current accounts snapshot; the
 * answer comes back on the loop thread, and a failed one only after
 * AUTHCHECK_FAIL_DELAY_MS, so guessing costs the guesser time.
 *
 * With a ban table (ENABLE_FAIL2BAN, filter/ban.h, shared by every
 * worker), a wrong password is counted there on the same pool thread, and
 * a client that is banned gets result 0 and `banned` without its password
 * being looked at: a connection kept open across the ban guesses no more.
 */
#ifndef TEGAMI_AUTHCHECK_H
#define TEGAMI_AUTHCHECK_H

#include <stdbool.h>

#define AUTHCHECK_FAIL_DELAY_MS 1000

struct accounts_watch;
struct ban;
struct event_base;
struct pool;

struct authcheck_result {
	int result;		/* 1 = ok, 0 = wrong login or password,
				 * -1 = the stored hash cannot be verified */
	const char *login;	/* as the client gave it (escape before logging) */
	const char *user;	/* the account, lower-case (result 1) */
	const char *master;	/* the master user who logged in for it, or NULL */
	const char *error;	/* why, for -1 */
	bool banned;		/* the client is banned (now, or by this failure) */
};

typedef void authcheck_done_fn(const struct authcheck_result *r, void *ctx);

/*
 * Starts a check. login and password are copied (the copy of the password
 * is wiped once hashed); the caller may wipe its own at once. ban may be
 * NULL (no bans); ip is the client's address. done(r, ctx) runs exactly
 * once, later, on the loop's thread; the strings in r live until it
 * returns.
 */
void authcheck_start(struct pool *pool, struct event_base *base,
    struct accounts_watch *accounts, struct ban *ban, const char *ip,
    const char *login, const char *password, authcheck_done_fn *done,
    void *ctx);

#endif
