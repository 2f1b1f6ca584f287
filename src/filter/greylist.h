/*
 * filter/greylist: greylisting with Postgrey's semantics and variables.
 *
 * A delivery is known by its triplet: the client's network (/24 for
 * IPv4, /64 for IPv6), the sender (lower-cased, "+extension" dropped,
 * numbers that stand alone as "#", so VERP and bounce addresses of one
 * sender are one), and the recipient. The first try of a new triplet is
 * deferred; a retry at least `delay` seconds later passes, and so does
 * every later delivery of that triplet. Triplets unseen for max_age days
 * are forgotten. A client network that got `awl_clients` deliveries
 * through (counted at most once an hour) is not greylisted any more
 * (auto-whitelist). Clients and recipients in Postgrey's whitelist files
 * are never delayed.
 *
 * Stored in SQLite (<dir>/greylist.db). A struct greylist is one
 * connection: one thread at a time; several processes may share the file.
 */
#ifndef TEGAMI_FILTER_GREYLIST_H
#define TEGAMI_FILTER_GREYLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct greylist_settings {
	unsigned int delay;		/* POSTGREY_DELAY, seconds (300) */
	unsigned int max_age_days;	/* POSTGREY_MAX_AGE (35) */
	unsigned int awl_clients;	/* POSTGREY_AUTO_WHITELIST_CLIENTS (5),
					   0 = no auto-whitelisting */
};

extern const struct greylist_settings greylist_default_settings;

enum greylist_verdict {
	GREYLIST_PASS,		/* known triplet, or retried late enough */
	GREYLIST_DEFER,		/* answer 450 4.2.0 with POSTGREY_TEXT */
	GREYLIST_WHITELISTED,	/* whitelist file or auto-whitelist */
};
const char *greylist_verdict_name(enum greylist_verdict v);

struct greylist_request {
	const char *client_ip;		/* text form */
	const char *client_name;	/* verified reverse name, or NULL */
	const char *sender;		/* "" for the null sender */
	const char *recipient;
	time_t now;
	/* The sender's domain when SPF passed for it (MAIL FROM), else NULL:
	 * a verified domain that got mail through before is not delayed. */
	const char *verified_domain;
};

struct greylist;

int greylist_open(const char *dir, const struct greylist_settings *settings,
    struct greylist **gl_r, char **error_r);
void greylist_close(struct greylist **gl);

/*
 * (Re)reads Postgrey's whitelist files; a path may be NULL or name a
 * missing file (then that list is empty). whitelist_clients lines: an IP
 * address, a network ("192.0.2.0/24", "2001:db8::/32"), an IPv4 prefix
 * ("192.0.2."), a domain (matches the client name and its subdomains) or
 * /regex/ (POSIX extended, case-insensitive, on the client name).
 * whitelist_recipients lines: an address, "localpart@" (any domain), a
 * domain (and its subdomains) or /regex/ on the address. '#' starts a
 * comment. Returns -1 (lists unchanged) on an unreadable file or a bad
 * regex, naming the file and line.
 */
int greylist_load_whitelists(struct greylist *gl, const char *clients_path,
    const char *recipients_path, char **error_r);

/*
 * Decides for one recipient of a delivery. *wait_r (may be NULL) is the
 * number of seconds before a retry can pass (0 unless DEFER). -1 on a
 * database error or an unparseable client_ip.
 */
int greylist_check(struct greylist *gl, const struct greylist_request *req,
    enum greylist_verdict *verdict_r, unsigned int *wait_r, char **error_r);

/*
 * Remembers that mail from a verified domain (SPF pass, or a valid DKIM
 * signature of the From domain, known after DATA) was accepted, so that
 * its later mail is not delayed (greylist_request.verified_domain).
 */
int greylist_note_verified(struct greylist *gl, const char *domain, time_t now,
    char **error_r);

/* Forgets triplets, clients and domains unseen for max_age days. */
int greylist_expire(struct greylist *gl, time_t now, char **error_r);
/* Number of stored triplets (for tests and stats). */
long long greylist_count(struct greylist *gl);

/* The normalized sender and network keys (exposed for tests). */
void greylist_sender_key(const char *sender, char *out, size_t outsize);
int greylist_net_key(const char *ip, char *out, size_t outsize);

#endif
