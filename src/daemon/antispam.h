/*
 * antispam: the smtp worker's spam defences, configured from the
 * docker-mailserver keys (docs/spam.md): SPF/DKIM/DMARC (msgauth/check),
 * DNSBL at connect, greylisting at RCPT, brute-force bans on AUTH
 * failures, the Bayesian junk filter, clamd and rspamd.
 *
 * Threads: antispam_message() and antispam_greylist() block (DNS,
 * SQLite, sockets) and run on pool threads; the SQLite connections are
 * shared behind a lock each. The ban table is thread-safe (filter/ban.h):
 * failures are counted by daemon/authcheck on its pool thread, and the
 * worker re-reads the table every second on a pool thread.
 */
#ifndef TEGAMI_ANTISPAM_H
#define TEGAMI_ANTISPAM_H

#include "filter/dnsbl.h"
#include "filter/rspamd.h"
#include "filter/spammark.h"
#include "msgauth/spf.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct settings;
struct event_base;
struct dns_resolver;
struct ban;
struct ban_settings;

/* What an SPF result does at RCPT (docker-mailserver runs policyd-spf
 * with Debian's policyd-spf.conf: HELO_reject and Mail_From_reject =
 * Fail, PermError_reject and TempError_Defer = False). */
enum antispam_spf_reject {
	ANTISPAM_SPF_REJECT_OFF,	/* never: Received-SPF only, DMARC decides */
	ANTISPAM_SPF_REJECT_FAIL,	/* fail: 550 5.7.23 (the default) */
	ANTISPAM_SPF_REJECT_SOFTFAIL,	/* softfail and fail */
};

struct antispam_reply {
	int code;			/* 0 = no refusal */
	char enhanced[8];
	char text[240];
};

struct antispam {
	bool spf, dkim, dmarc;
	enum antispam_spf_reject spf_reject;	/* TEGAMI_SPF_REJECT */
	bool spf_permerror_reject;		/* TEGAMI_SPF_PERMERROR_REJECT */
	bool spf_temperror_defer;		/* TEGAMI_SPF_TEMPERROR_DEFER */
	bool dnsbl_on, greylist_on, ban_on, junk_on, clamav_on, rspamd_on;
	struct dns_resolver *resolver;
	struct dnsbl_list dnsbl;
	struct ban *ban;
	const char *postgrey_text;
	struct spammark_settings mark;
	struct antispam_private *priv;
};

/* Opens what the keys turn on. -1 with *error_r (malloc'd) naming the key. */
int antispam_open(const struct settings *st, struct event_base *base,
    struct antispam **as_r, char **error_r);
void antispam_close(struct antispam **as);

/* Where the ban list and the junk filter live (STATE_DIR/tegami/...),
 * malloc'd; shared with `tegami fail2ban` and `tegami junk`. */
char *settings_ban_path(const struct settings *st);
char *settings_bayes_path(const struct settings *st);

/* Parses "600", "10m", "1h", "2d", "1w" into seconds. -1 if malformed. */
int antispam_parse_duration(const char *s, unsigned int *seconds_r);

/*
 * The shared ban table (filter/ban.h) at STATE_DIR/tegami/fail2ban.db,
 * with the FAIL2BAN_* limits, when ENABLE_FAIL2BAN=1; else *ban_r is
 * NULL. Used by the smtp worker (through antispam_open) and by the imap
 * worker for IMAP and POP3. BLOCKING (opens the file): at start only.
 */
int antispam_ban_open(const struct settings *st, struct ban **ban_r,
    char **error_r);
/* FAIL2BAN_* into settings; -1 with *error_r naming the key. */
int antispam_ban_settings(const struct settings *st, struct ban_settings *bs_r,
    char **error_r);

/* Is ip banned now? (ENABLE_FAIL2BAN) */
bool antispam_banned(struct antispam *as, const char *ip, time_t *until_r);

/* Does the RCPT stage need the SPF result (reject policy or greylisting)? */
bool antispam_spf_at_rcpt(const struct antispam *as);
/*
 * BLOCKING. SPF for a transaction at its first RCPT, as policyd-spf does
 * in docker-mailserver: the HELO name first (a fail refuses), then MAIL
 * FROM. *mfrom_r gets the MAIL FROM result (the HELO identity for <>),
 * for greylisting and for the header fields at the end of DATA (free with
 * spf_outcome_free). Returns 0 to go on, or 1 with the refusal in *reply_r
 * (550 5.7.23 fail, 550 5.7.24 permerror, 451 4.7.24 temperror, by the
 * TEGAMI_SPF_* keys).
 */
int antispam_spf_rcpt(struct antispam *as, const char *client_ip,
    const char *helo, const char *sender, struct spf_outcome *mfrom_r,
    struct antispam_reply *reply_r);

/* BLOCKING. Greylisting for one recipient: 0 pass, 1 defer, -1 error
 * (the caller lets the mail pass and logs). spf (NULL: not checked) is
 * the transaction's MAIL FROM result: a domain that passed SPF and got
 * mail through before (DMARC or SPF pass at the end of DATA) is not
 * delayed. */
int antispam_greylist(struct antispam *as, const char *client_ip,
    const char *sender, const char *recipient, const struct spf_outcome *spf,
    unsigned int *wait_r);

/* BLOCKING (pool thread, every second): re-reads whitelist_clients.local
 * and whitelist_recipients when they changed (a bad file keeps the old
 * lists, logged). */
void antispam_refresh_files(struct antispam *as);

/* BLOCKING (pool thread, once an hour): forgets greylist triplets,
 * clients and domains unseen for POSTGREY_MAX_AGE days. */
void antispam_expire(struct antispam *as);

enum antispam_action {
	ANTISPAM_ACCEPT,
	ANTISPAM_JUNK,		/* deliver to the Junk folder */
	ANTISPAM_REJECT,	/* reply code/enhanced/text */
	ANTISPAM_TEMPFAIL,	/* the same, 4xx */
};

struct antispam_request {
	const char *client_ip;
	const char *helo;
	const char *sender;		/* "" for <> */
	const char *const *recipients;
	size_t nrecipients;
	const char *account;		/* the one local account, or NULL */
	const char *auth_login;		/* NULL for unauthenticated mail */
	const char *queue_id;
	const char *msg;
	size_t len;
	/* the MAIL FROM result from RCPT, or NULL: then it is evaluated here */
	const struct spf_outcome *spf;
};

struct antispam_result {
	enum antispam_action action;
	int code;
	char enhanced[8];
	char text[200];
	char *received_spf;		/* trace fields (malloc'd) or NULL */
	char *authentication_results;
	struct spammark_verdict verdict;
	bool mark;			/* rewrite with verdict (X-Spam...) */
	bool seen;			/* deliver as read (MARK_SPAM_AS_READ) */
	char rspamd_subject[RSPAMD_SUBJECT_MAX + 1];	/* verdict.subject */
	char log[512];			/* key=value for the summary line */
};

/* BLOCKING: every content check for one message. */
void antispam_message(struct antispam *as, const struct antispam_request *req,
    struct antispam_result *r);
void antispam_result_free(struct antispam_result *r);

#endif
