/*
 * filter/ban: brute-force bans, fail2ban's job without a firewall.
 *
 * Failed logins are counted per client: an IPv4 address, or the /64 of
 * an IPv6 address (one host owns a whole /64, so rotating inside it must
 * not reset the count). `maxretry` failures within `findtime` seconds ban
 * the client for `bantime` seconds (docker-mailserver: 6, 1 week, 1
 * week); the servers then refuse it (SMTP 421, IMAP BYE). Bans can also
 * be added and lifted by hand (`tegami fail2ban ban|unban <IP>`).
 *
 * Memory is bounded: at most max_tracked clients are followed; when the
 * table is full, clients whose failures are all older than findtime go
 * first, then the longest quiet ones (never an active ban). Active bans
 * are kept in a file (one "address until" line each, written atomically)
 * so they survive a restart. All functions are thread-safe (one mutex).
 * Counting across processes (smtp, imap) is the caller's: one struct ban
 * in the process that receives every failure report.
 */
#ifndef TEGAMI_FILTER_BAN_H
#define TEGAMI_FILTER_BAN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define BAN_MAXRETRY_MAX 64

struct ban_settings {
	unsigned int maxretry;	/* 6; at most BAN_MAXRETRY_MAX */
	unsigned int findtime;	/* seconds, 604800 */
	unsigned int bantime;	/* seconds, 604800 */
	size_t max_tracked;	/* 100000 */
};

extern const struct ban_settings ban_default_settings;

struct ban;

/* state_path: the persisted ban list (NULL = memory only); a missing
 * file is an empty list. Unparseable lines are skipped with a warning. */
int ban_open(const char *state_path, const struct ban_settings *settings,
    time_t now, struct ban **ban_r, char **error_r);
void ban_close(struct ban **ban);

/*
 * Counts one failed login from ip. Returns 1 if this failure got the
 * client banned, 0 if not (yet, or it was banned already), -1 if ip is
 * not an address.
 */
int ban_record_failure(struct ban *ban, const char *ip, time_t now);
/* Is ip banned at now? *until_r (may be NULL) gets the end of the ban. */
bool ban_is_banned(struct ban *ban, const char *ip, time_t now,
    time_t *until_r);
/* Bans by hand for `seconds` (0 = bantime). -1 if ip is no address or
 * the list could not be saved (the ban holds in memory anyway). */
int ban_add(struct ban *ban, const char *ip, time_t now, unsigned int seconds,
    char **error_r);
/* Lifts a ban and forgets the failures. 1 = was banned, 0 = was not. */
int ban_remove(struct ban *ban, const char *ip, time_t now, char **error_r);

struct ban_entry {
	char ip[64];	/* the address, or "<prefix>/64" */
	time_t until;
};
/* Active bans into out[0..max); returns how many there are in total. */
size_t ban_list(struct ban *ban, time_t now, struct ban_entry *out, size_t max);
/* Clients currently followed (failures or bans). */
size_t ban_tracked(struct ban *ban);

#endif
