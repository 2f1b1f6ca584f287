/*
 * filter/ban: brute-force bans, fail2ban's job without a firewall, shared
 * by every process that takes logins (the smtp worker for SMTP AUTH, the
 * imap worker for IMAP and POP3) and by `tegami fail2ban`.
 *
 * Failed logins are counted per client: an IPv4 address, or the /64 of
 * an IPv6 address (one host owns a whole /64, so rotating inside it must
 * not reset the count). `maxretry` failures within `findtime` seconds,
 * from any protocol and any process, ban the client for `bantime` seconds
 * (docker-mailserver: 6, 1 week, 1 week); the servers then refuse it
 * (SMTP 421, IMAP BYE, POP3 -ERR). Bans can also be added and lifted by
 * hand (`tegami fail2ban ban|unban <IP>`).
 *
 * Storage: one SQLite file (WAL, busy timeout) that every process opens:
 * table `failures` (a client's latest maxretry failure times) and table
 * `bans` (client, until). A failure is counted in one transaction, so two
 * processes counting the same client at once never lose a failure nor
 * ban twice. Each process also keeps a snapshot of the active bans in
 * memory: ban_is_banned() reads only that (no SQLite, no lock held across
 * I/O), so the event loop may call it at every connection. The snapshot
 * follows what the process itself changes at once, and what other
 * processes changed when ban_refresh() runs (the workers call it every
 * second, on a pool thread).
 *
 * Bounds: at most max_tracked clients have failures on file; past that
 * the quietest tenth is forgotten (never a ban). Failures older than
 * findtime and ended bans are removed as they are met.
 *
 * Threads: every function may be called from any thread (one lock for
 * the database connection, one for the snapshot). Functions marked
 * BLOCKING touch the file: not on the event loop.
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

/*
 * BLOCKING. Opens (creating) the database at path, NULL = a private
 * in-memory one (tests). Loads the snapshot of active bans as of now.
 */
int ban_open(const char *path, const struct ban_settings *settings,
    time_t now, struct ban **ban_r, char **error_r);
void ban_close(struct ban **ban);

/*
 * BLOCKING. Counts one failed login from ip. Returns 1 if this failure
 * got the client banned, 0 if not (yet, or it was banned already), -1 if
 * ip is not an address or the database failed (logged; nothing counted).
 */
int ban_record_failure(struct ban *ban, const char *ip, time_t now);
/* Is ip banned at now, by the snapshot? *until_r (may be NULL) gets the
 * end of the ban. Never blocks on I/O. */
bool ban_is_banned(struct ban *ban, const char *ip, time_t now,
    time_t *until_r);
/* BLOCKING. Bans by hand for `seconds` (0 = bantime). -1 if ip is no
 * address or the database failed. */
int ban_add(struct ban *ban, const char *ip, time_t now, unsigned int seconds,
    char **error_r);
/* BLOCKING. Lifts a ban and forgets the failures. 1 = was banned, 0 =
 * was not, -1 = error. */
int ban_remove(struct ban *ban, const char *ip, time_t now, char **error_r);
/*
 * BLOCKING (cheap when nothing changed: one PRAGMA data_version). Re-reads
 * the active bans when another process changed the file. 1 = the
 * snapshot changed, 0 = it did not, -1 = error (*error_r).
 */
int ban_refresh(struct ban *ban, time_t now, char **error_r);

struct ban_entry {
	char ip[64];	/* the address, or "<prefix>/64" */
	time_t until;
};
/* Active bans of the snapshot into out[0..max); returns how many there
 * are in total. */
size_t ban_list(struct ban *ban, time_t now, struct ban_entry *out, size_t max);
/* BLOCKING. Clients on file (with failures or a ban that has not ended). */
size_t ban_tracked(struct ban *ban, time_t now);

#endif
