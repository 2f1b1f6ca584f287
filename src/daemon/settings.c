#include "daemon/settings.h"
#include "dns/dns.h"
#include "queue/relay.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#define KB 1024ULL
#define GB (1024ULL * 1024 * 1024)

#define STR(n, d, h) { n, CONFIG_STR, d, 0, 0, NULL, h }
#define NUM(n, d, lo, hi, h) { n, CONFIG_NUM, d, lo, hi, NULL, h }
#define BOOL(n, d) { n, CONFIG_BOOL, d, 0, 0, NULL, NULL }
#define ENUM(n, d, c) { n, CONFIG_ENUM, d, 0, 0, c, NULL }
#define SIZE(n, d, lo, hi, h) { n, CONFIG_SIZE, d, lo, hi, NULL, h }
#define UNSUP(n, instead) { n, CONFIG_UNSUPPORTED, NULL, 0, 0, NULL, instead }
#define UNSUP_Q(n, quiet, instead) { n, CONFIG_UNSUPPORTED, NULL, 0, 0, quiet, instead }
#define UNSUP_IF(n, when, instead) { n, CONFIG_UNSUPPORTED, when, 0, 0, NULL, instead }
#define OFF "0|no|false|off"
#define LDAP "ACCOUNT_PROVISIONER=LDAP"

const struct config_def settings_defs[] = {
	/* identity and directories */
	STR("OVERRIDE_HOSTNAME", NULL, "the mail server's FQDN"),
	STR("CONFIG_DIR", "/tmp/docker-mailserver", NULL),
	STR("MAIL_DIR", "/var/mail", NULL),
	STR("STATE_DIR", "/var/mail-state", NULL),
	NUM("DMS_VMAIL_UID", "5000", 1, 4294967294ULL, "the owner of MAIL_DIR (not 0)"),
	NUM("DMS_VMAIL_GID", "5000", 1, 4294967294ULL, "the group of MAIL_DIR (not 0)"),
	STR("POSTMASTER_ADDRESS", NULL, NULL),
	STR("TEGAMI_PUBLIC_IPV4", NULL, "the server's public IPv4 address, for `tegami dns`"),
	STR("TEGAMI_PUBLIC_IPV6", NULL, "the server's public IPv6 address, for `tegami dns`"),
	ENUM("LOG_LEVEL", "info", "trace|debug|info|warn|error"),
	{ "ACCOUNT_PROVISIONER", CONFIG_ENUM, "FILE", 0, 0, "FILE",
	  "tegami reads accounts from postfix-accounts.cf only: LDAP and OIDC are not implemented" },
	STR("TZ", NULL, "the time zone of the Date header added to submissions, e.g. Europe/Berlin (logs and Received headers stay in UTC)"),
	BOOL("SMTP_ONLY", "0"),

	/* SMTP policy */
	NUM("POSTFIX_MESSAGE_SIZE_LIMIT", "10240000", 1024, 2 * GB,
	    "the largest message in bytes, e.g. 10240000"),
	NUM("POSTFIX_MAILBOX_SIZE_LIMIT", "0", 0, 1ULL << 50, "bytes, 0 = unlimited"),
	BOOL("SPOOF_PROTECTION", "0"),
	ENUM("PERMIT_DOCKER", "none", "none|container|host|network|connected-networks|connected-network"),
	NUM("SMTP_MAX_RECIPIENTS", "1000", 1, 100000, "recipients per message"),
	NUM("SMTP_MAX_SESSIONS_PER_IP", "50", 1, 100000, "concurrent sessions from one address"),
	NUM("SMTP_TIMEOUT", "300", 10, 3600, "seconds an SMTP client may stay silent"),
	NUM("SMTP_GREET_PAUSE", "3", 0, 30, "seconds to wait before the greeting on port 25 (early-talker test, 0 = off)"),
	BOOL("ENABLE_QUOTAS", "1"),
	BOOL("ENABLE_IMAP", "1"),
	BOOL("ENABLE_POP3", "0"),
	BOOL("TEGAMI_POP3_PLAINTEXT_LOOPBACK", "1"),
	NUM("TEGAMI_IMAP_MAX_SESSIONS_PER_IP", "50", 1, 100000, "concurrent IMAP connections from one address"),
	NUM("TEGAMI_POP3_MAX_SESSIONS_PER_IP", "50", 1, 100000, "concurrent POP3 sessions from one address"),
	NUM("TEGAMI_POP3_TIMEOUT", "600", 600, 86400, "seconds a POP3 client may stay idle (RFC 1939: at least 600)"),
	/* IMAP sessions (docs/imap.md) */
	NUM("TEGAMI_IMAP_MAX_SESSIONS_PER_USER", "100", 1, 100000, "concurrent IMAP sessions of one account"),
	NUM("TEGAMI_IMAP_MAX_SESSIONS_PER_USER_IP", "10", 1, 100000, "concurrent IMAP sessions of one account from one address (Dovecot's mail_max_userip_connections)"),
	NUM("TEGAMI_IMAP_TIMEOUT", "1800", 60, 86400, "seconds an IMAP client may stay silent outside IDLE (RFC 9051: at least 1800)"),
	BOOL("TEGAMI_IMAP_COMPRESS", "1"),
	BOOL("TEGAMI_IMAP_URLAUTH", "0"),
	NUM("TEGAMI_IMAP_WORKERS", "0", 0, 8, "imap worker processes (IMAP and POP3), 0 = one per CPU up to 4"),

	/* TLS */
	ENUM("SSL_TYPE", "", "|letsencrypt|manual|self-signed|custom|snakeoil"),
	STR("SSL_DOMAIN", NULL, NULL),
	STR("SSL_CERT_PATH", NULL, NULL),
	STR("SSL_KEY_PATH", NULL, NULL),
	STR("SSL_ALT_CERT_PATH", NULL, NULL),
	STR("SSL_ALT_KEY_PATH", NULL, NULL),
	ENUM("TLS_LEVEL", "modern", "modern|intermediate"),
	STR("TEGAMI_LETSENCRYPT_DIR", "/etc/letsencrypt", "where certbot keeps live/<domain>/"),
	STR("TEGAMI_TLS_EXTRA", NULL, "more certificates for SNI: cert.pem:key.pem,..."),

	/* listeners: comma-separated addr:port, empty = off */
	STR("LISTEN_SMTP", "0.0.0.0:25,[::]:25", NULL),
	/* all|ipv4|ipv6: which default LISTEN_* addresses are bound
	   (POSTFIX_: 25/587/465, DOVECOT_: IMAP and POP3) */
	ENUM("POSTFIX_INET_PROTOCOLS", "all", "all|ipv4|ipv6"),
	ENUM("DOVECOT_INET_PROTOCOLS", "all", "all|ipv4|ipv6"),
	STR("LISTEN_SUBMISSION", "0.0.0.0:587,[::]:587", NULL),
	STR("LISTEN_SUBMISSIONS", "0.0.0.0:465,[::]:465", NULL),
	STR("LISTEN_IMAP", "0.0.0.0:143,[::]:143", NULL),
	STR("LISTEN_IMAPS", "0.0.0.0:993,[::]:993", NULL),
	STR("LISTEN_POP3", "0.0.0.0:110,[::]:110", NULL),
	STR("LISTEN_POP3S", "0.0.0.0:995,[::]:995", NULL),
	STR("TEGAMI_CONTROL_SOCKET", NULL, "path of the control socket"),
	NUM("TEGAMI_DELIVERY_THREADS", "32", 1, 256, "threads that write and fsync mail"),

	/* outbound queue (docs/queue.md) */
	NUM("TEGAMI_SMTP_PORT", "25", 1, 65535, "the port outbound mail is sent to (tests use others)"),
	NUM("TEGAMI_QUEUE_LIFETIME", "432000", 60, 100ULL * 86400, "seconds a message may wait in the queue before it bounces"),
	NUM("TEGAMI_QUEUE_DELAY_WARNING", "14400", 0, 100ULL * 86400, "seconds a recipient may be deferred before the sender is warned once (0 = never)"),
	NUM("TEGAMI_QUEUE_RETRY_FIRST", "60", 1, 3600, "seconds before the first retry after a temporary failure"),
	NUM("TEGAMI_QUEUE_DOMAIN_CONCURRENCY", "10", 1, 1000, "connections at once to one destination domain"),
	NUM("TEGAMI_QUEUE_CONCURRENCY", "100", 1, 10000, "outbound connections at once"),
	STR("TEGAMI_DNS_SERVERS", NULL, "resolver addresses, comma-separated (default: /etc/resolv.conf)"),
	STR("TEGAMI_DNS_TRUST_ANCHOR", NULL, "DNSSEC trust anchor file (e.g. /usr/share/dns/root.key): the queue worker's lookups are validated; empty = not validated"),
	NUM("TEGAMI_DNS_CACHE_SIZE", "1048576", 0, 64ULL * 1024 * 1024, "bytes of DNS answers the SPF/DKIM/DMARC checks keep for their TTL (0 = no cache)"),
	/* `tegami check` (docs/cli.md) */
	STR("TEGAMI_CHECK_PORT25_DOMAIN", "gmail.com", "a domain whose MX hosts `tegami check` connects to on port 25"),
	NUM("TEGAMI_CHECK_TIMEOUT", "5", 1, 60, "seconds `tegami check` waits for a TCP connection"),
	STR("DEFAULT_RELAY_HOST", NULL, "relay host for all outbound mail, e.g. [smtp.example.com]:587"),
	STR("RELAY_HOST", NULL, "relay host for the local domains' mail"),
	NUM("RELAY_PORT", "25", 1, 65535, "port of RELAY_HOST"),
	STR("RELAY_USER", NULL, "login at the relay host"),
	STR("RELAY_PASSWORD", NULL, "password at the relay host"),
	STR("TEGAMI_QUEUE_SOCKET", NULL, "path of the queue worker's control socket (default STATE_DIR/tegami/queue.sock)"),
	/* spam defences (docs/spam.md) */
	BOOL("ENABLE_OPENDKIM", "1"),
	BOOL("ENABLE_OPENDMARC", "1"),
	BOOL("ENABLE_POLICYD_SPF", "1"),
	ENUM("TEGAMI_SPF_REJECT", "fail", "fail|softfail|off"),
	BOOL("TEGAMI_SPF_PERMERROR_REJECT", "0"),
	BOOL("TEGAMI_SPF_TEMPERROR_DEFER", "0"),
	BOOL("ENABLE_DNSBL", "0"),
	STR("TEGAMI_DNSBL_SITES", NULL, "postscreen_dnsbl_sites syntax; empty = docker-mailserver's list"),
	NUM("TEGAMI_DNSBL_THRESHOLD", "3", 1, 1000, "DNSBL score that refuses a client"),
	BOOL("ENABLE_POSTGREY", "0"),
	NUM("POSTGREY_DELAY", "300", 0, 86400 * 7, "seconds a new triplet is deferred"),
	NUM("POSTGREY_MAX_AGE", "35", 1, 3650, "days an unseen triplet is kept"),
	NUM("POSTGREY_AUTO_WHITELIST_CLIENTS", "5", 0, 1000000, "deliveries before a client network is no longer greylisted (0 = never)"),
	STR("POSTGREY_TEXT", "Delayed by Postgrey", NULL),
	BOOL("ENABLE_FAIL2BAN", "0"),
	NUM("FAIL2BAN_MAXRETRY", "6", 1, 64, "failed logins before a ban"),
	STR("FAIL2BAN_FINDTIME", "1w", "the window failures are counted in: 600, 10m, 1h, 1d, 1w"),
	STR("FAIL2BAN_BANTIME", "1w", "how long a ban lasts: 600, 10m, 1h, 1d, 1w"),
	BOOL("MOVE_SPAM_TO_JUNK", "1"),
	BOOL("MARK_SPAM_AS_READ", "0"),
	STR("SPAM_SUBJECT", NULL, NULL),
	STR("SA_SPAM_SUBJECT", NULL, "docker-mailserver's old name of SPAM_SUBJECT"),
	BOOL("TEGAMI_JUNK_FILTER", "1"),
	NUM("TEGAMI_JUNK_SPAM_PERCENT", "90", 50, 100, "Bayes spam probability (percent) that makes a message spam"),
	BOOL("TEGAMI_JUNK_TRAIN_IMAP", "1"),
	BOOL("ENABLE_CLAMAV", "0"),
	STR("TEGAMI_CLAMD_SOCKET", "/run/clamav/clamd.ctl", "clamd's socket: a path or host:port"),
	SIZE("CLAMAV_MESSAGE_SIZE_LIMIT", "26214400", 1024, 2 * GB, "bytes (25M as docker-mailserver writes it); larger messages are not scanned"),
	BOOL("ENABLE_RSPAMD", "0"),
	STR("TEGAMI_RSPAMD_ADDRESS", "127.0.0.1:11333", "rspamd's normal worker: host:port or a socket path"),
	NUM("TEGAMI_SEND_LIMIT", "1000", 0, 10000000, "recipients one authenticated user may send to per TEGAMI_SEND_LIMIT_WINDOW (0 = no limit)"),
	NUM("TEGAMI_SEND_LIMIT_WINDOW", "3600", 60, 86400 * 7, "seconds"),
	STR("TEGAMI_PSL_FILE", "/usr/share/publicsuffix/public_suffix_list.dat", "the Public Suffix List, for DMARC"),

	/*
	 * docker-mailserver keys tegami does not implement, each with what
	 * tegami does instead (docs/migration.md has the whole table). A key
	 * is reported once at start when its value asks for something tegami
	 * lacks: not when it is empty or a quiet value (OFF: a switch that is
	 * off; else docker-mailserver's own default), and for UNSUP_IF keys
	 * only when the switch they belong to is on.
	 */
	UNSUP_Q("ENABLE_AMAVIS", OFF, "no Amavis: tegami's own filters run in-process (SPF/DKIM/DMARC, DNSBL, greylisting, junk filter, clamd, rspamd)"),
	UNSUP_Q("AMAVIS_LOGLEVEL", "0", "no Amavis; LOG_LEVEL applies"),
	UNSUP_Q("ENABLE_SPAMASSASSIN", OFF, "no SpamAssassin: tegami has a built-in Bayesian junk filter (TEGAMI_JUNK_FILTER, tegami junk train)"),
	UNSUP_Q("ENABLE_SPAMASSASSIN_KAM", OFF, "no SpamAssassin rules"),
	UNSUP_IF("SPAMASSASSIN_SPAM_TO_INBOX", "ENABLE_SPAMASSASSIN", "no SpamAssassin: spam is delivered, to Junk with MOVE_SPAM_TO_JUNK=1"),
	UNSUP_IF("SA_TAG", "ENABLE_SPAMASSASSIN", "no SpamAssassin scores: the junk filter's threshold is TEGAMI_JUNK_SPAM_PERCENT"),
	UNSUP_IF("SA_TAG2", "ENABLE_SPAMASSASSIN", "no SpamAssassin scores: the junk filter's threshold is TEGAMI_JUNK_SPAM_PERCENT"),
	UNSUP_IF("SA_KILL", "ENABLE_SPAMASSASSIN", "no SpamAssassin scores and no quarantine: spam is delivered (to Junk)"),
	UNSUP_IF("SA_SHORTCIRCUIT_BAYES_SPAM", "ENABLE_SPAMASSASSIN", "no SpamAssassin"),
	UNSUP_IF("SA_SHORTCIRCUIT_BAYES_HAM", "ENABLE_SPAMASSASSIN", "no SpamAssassin"),
	UNSUP_Q("VIRUSMAILS_DELETE_DELAY", "7", "no quarantine: a virus found by clamd is refused during SMTP (554 5.7.1), nothing is kept"),
	UNSUP_Q("ENABLE_RSPAMD_REDIS", OFF, "tegami starts neither rspamd nor Redis: it talks to the rspamd at TEGAMI_RSPAMD_ADDRESS, which keeps its own storage"),
	UNSUP_Q("RSPAMD_LEARN", OFF, "rspamd is not taught from IMAP moves; train tegami's junk filter with `tegami junk train`"),
	UNSUP_Q("RSPAMD_CHECK_AUTHENTICATED", "0", "authenticated submissions are never sent to rspamd"),
	UNSUP_Q("RSPAMD_GREYLISTING", OFF, "rspamd's greylisting answer is honoured (451) but tegami does not configure rspamd; ENABLE_POSTGREY greylists in tegami"),
	UNSUP_Q("RSPAMD_HFILTER", "1", "tegami does not write rspamd's configuration: rspamd's own settings decide"),
	UNSUP_Q("RSPAMD_HFILTER_HOSTNAME_UNKNOWN_SCORE", "6", "tegami does not write rspamd's configuration: rspamd's own settings decide"),
	UNSUP_Q("RSPAMD_NEURAL", OFF, "tegami does not write rspamd's configuration: rspamd's own settings decide"),
	UNSUP_IF("FAIL2BAN_BLOCKTYPE", "ENABLE_FAIL2BAN", "no firewall rules: a banned address gets 421 and is disconnected by tegami itself (SMTP)"),
	UNSUP_Q("POSTSCREEN_ACTION", "enforce", "a DNSBL-listed client is answered 554 in the greeting and an early talker is refused; there is no drop/ignore choice"),
	UNSUP_Q("POSTFIX_REJECT_UNKNOWN_CLIENT_HOSTNAME", OFF, "not yet: clients without a matching PTR record are not refused"),
	UNSUP_Q("ENABLE_MANAGESIEVE", OFF, "no ManageSieve (port 4190) and no Sieve: user filters do not run"),
	UNSUP_Q("ENABLE_FETCHMAIL", OFF, "no fetchmail: remote mailboxes are not fetched (run fetchmail beside tegami, delivering over SMTP)"),
	UNSUP_IF("FETCHMAIL_POLL", "ENABLE_FETCHMAIL", "no fetchmail"),
	UNSUP_IF("FETCHMAIL_PARALLEL", "ENABLE_FETCHMAIL", "no fetchmail"),
	UNSUP_Q("ENABLE_GETMAIL", OFF, "no getmail: remote mailboxes are not fetched (run getmail beside tegami, delivering over SMTP)"),
	UNSUP_IF("GETMAIL_POLL", "ENABLE_GETMAIL", "no getmail"),
	UNSUP_Q("ENABLE_SASLAUTHD", OFF, "no saslauthd: logins are checked against postfix-accounts.cf"),
	UNSUP_IF("SASLAUTHD_MECHANISMS", "ENABLE_SASLAUTHD", "no saslauthd"),
	UNSUP_IF("SASLAUTHD_MECH_OPTIONS", "ENABLE_SASLAUTHD", "no saslauthd"),
	UNSUP_IF("SASLAUTHD_LDAP_SERVER", "ENABLE_SASLAUTHD", "no saslauthd"),
	UNSUP_IF("SASLAUTHD_LDAP_BIND_DN", "ENABLE_SASLAUTHD", "no saslauthd"),
	UNSUP_IF("SASLAUTHD_LDAP_PASSWORD", "ENABLE_SASLAUTHD", "no saslauthd"),
	UNSUP_IF("SASLAUTHD_LDAP_SEARCH_BASE", "ENABLE_SASLAUTHD", "no saslauthd"),
	UNSUP_IF("SASLAUTHD_LDAP_FILTER", "ENABLE_SASLAUTHD", "no saslauthd"),
	UNSUP_IF("SASLAUTHD_LDAP_START_TLS", "ENABLE_SASLAUTHD", "no saslauthd"),
	UNSUP_IF("SASLAUTHD_LDAP_TLS_CHECK_PEER", "ENABLE_SASLAUTHD", "no saslauthd"),
	UNSUP_IF("SASLAUTHD_LDAP_TLS_CACERT_FILE", "ENABLE_SASLAUTHD", "no saslauthd"),
	UNSUP_IF("SASLAUTHD_LDAP_TLS_CACERT_DIR", "ENABLE_SASLAUTHD", "no saslauthd"),
	UNSUP_IF("SASLAUTHD_LDAP_PASSWORD_ATTR", "ENABLE_SASLAUTHD", "no saslauthd"),
	UNSUP_IF("SASLAUTHD_LDAP_AUTH_METHOD", "ENABLE_SASLAUTHD", "no saslauthd"),
	UNSUP_IF("SASLAUTHD_LDAP_MECH", "ENABLE_SASLAUTHD", "no saslauthd"),
	UNSUP_Q("ENABLE_OAUTH2", OFF, "password logins only (PLAIN/LOGIN); no OAUTHBEARER/XOAUTH2"),
	UNSUP_IF("OAUTH2_INTROSPECTION_URL", "ENABLE_OAUTH2", "password logins only"),
	UNSUP_Q("ENABLE_LDAP", OFF, "renamed ACCOUNT_PROVISIONER=LDAP by docker-mailserver v13; tegami has no LDAP: accounts come from postfix-accounts.cf"),
	/* LDAP: only read with ACCOUNT_PROVISIONER=LDAP, which tegami refuses */
	UNSUP_IF("LDAP_SERVER_HOST", LDAP, "no LDAP"),
	UNSUP_IF("LDAP_SEARCH_BASE", LDAP, "no LDAP"),
	UNSUP_IF("LDAP_BIND_DN", LDAP, "no LDAP"),
	UNSUP_IF("LDAP_BIND_PW", LDAP, "no LDAP"),
	UNSUP_IF("LDAP_START_TLS", LDAP, "no LDAP"),
	UNSUP_IF("LDAP_QUERY_FILTER_USER", LDAP, "no LDAP"),
	UNSUP_IF("LDAP_QUERY_FILTER_GROUP", LDAP, "no LDAP"),
	UNSUP_IF("LDAP_QUERY_FILTER_ALIAS", LDAP, "no LDAP"),
	UNSUP_IF("LDAP_QUERY_FILTER_DOMAIN", LDAP, "no LDAP"),
	UNSUP_IF("LDAP_QUERY_FILTER_SENDERS", LDAP, "no LDAP"),
	UNSUP_IF("DOVECOT_TLS", LDAP, "no LDAP"),
	UNSUP_IF("DOVECOT_BASE", LDAP, "no LDAP"),
	UNSUP_IF("DOVECOT_DN", LDAP, "no LDAP"),
	UNSUP_IF("DOVECOT_DNPASS", LDAP, "no LDAP"),
	UNSUP_IF("DOVECOT_URIS", LDAP, "no LDAP"),
	UNSUP_IF("DOVECOT_LDAP_VERSION", LDAP, "no LDAP"),
	UNSUP_IF("DOVECOT_USER_FILTER", LDAP, "no LDAP"),
	UNSUP_IF("DOVECOT_PASS_FILTER", LDAP, "no LDAP"),
	UNSUP_IF("DOVECOT_USER_ATTRS", LDAP, "no LDAP"),
	UNSUP_IF("DOVECOT_PASS_ATTRS", LDAP, "no LDAP"),
	UNSUP_IF("DOVECOT_AUTH_BIND", LDAP, "no LDAP"),
	UNSUP_IF("DOVECOT_DEFAULT_PASS_SCHEME", LDAP, "no LDAP"),
	UNSUP_Q("ENABLE_SRS", OFF, "no SRS: mail an alias forwards to another domain keeps its envelope sender, so the next hop's SPF check may fail for it"),
	UNSUP_IF("SRS_SENDER_CLASSES", "ENABLE_SRS", "no SRS"),
	UNSUP_IF("SRS_EXCLUDE_DOMAINS", "ENABLE_SRS", "no SRS"),
	UNSUP_IF("SRS_SECRET", "ENABLE_SRS", "no SRS"),
	UNSUP_IF("SRS_DOMAINNAME", "ENABLE_SRS", "no SRS"),
	UNSUP_Q("ENABLE_MTA_STS", OFF, "not yet: outbound STARTTLS is opportunistic, no MTA-STS policy is fetched"),
	UNSUP_Q("ENABLE_UPDATE_CHECK", OFF, "no update check: nothing is mailed when a release comes out"),
	UNSUP_Q("UPDATE_CHECK_INTERVAL", "1d", "no update check"),
	UNSUP("POSTFIX_DAGENT", "tegami delivers in-line to Maildir: no LMTP or other delivery agent"),
	UNSUP_Q("DOVECOT_MAILBOX_FORMAT", "maildir", "Maildir only (no sdbox/mdbox)"),
	UNSUP_Q("DMS_CONFIG_POLL", "2", "nothing to set: tegami notices changed account and alias files within about a second"),
	UNSUP_Q("LOGROTATE_INTERVAL", "weekly", "logs go to stderr (docker logs); rotate them there"),
	UNSUP_Q("LOGROTATE_COUNT", "4", "logs go to stderr (docker logs); rotate them there"),
	UNSUP_Q("PFLOGSUMM_TRIGGER", "none", "no pflogsumm reports"),
	UNSUP("PFLOGSUMM_RECIPIENT", "no pflogsumm reports"),
	UNSUP("PFLOGSUMM_SENDER", "no pflogsumm reports"),
	UNSUP_Q("LOGWATCH_INTERVAL", "none", "no logwatch reports"),
	UNSUP("LOGWATCH_RECIPIENT", "no logwatch reports"),
	UNSUP("LOGWATCH_SENDER", "no logwatch reports"),
	UNSUP("REPORT_RECIPIENT", "no reports are mailed (pflogsumm, logwatch, update check)"),
	UNSUP("REPORT_SENDER", "no reports are mailed (pflogsumm, logwatch, update check)"),
	UNSUP_Q("SUPERVISOR_LOGLEVEL", "warn", "no supervisord: LOG_LEVEL applies to every process"),
	UNSUP_Q("NETWORK_INTERFACE", "eth0", "only used by docker-mailserver to find PERMIT_DOCKER's network; tegami binds the LISTEN_* addresses"),
	{ NULL, 0, NULL, 0, 0, NULL, NULL }
};

struct dns_resolver *
settings_dns_resolver(const struct settings *s, struct event_base *base,
    const struct dns_config *opts, char **error_r)
{
	const char *list = config_str(s->cfg, "TEGAMI_DNS_SERVERS");
	struct dns_config dc;
	struct dns_resolver *r;
	char **servers = NULL;
	size_t n = 0;

	if (opts != NULL)
		dc = *opts;
	else
		memset(&dc, 0, sizeof(dc));
	dc.servers = NULL;
	dc.server_count = 0;
	if (list != NULL && *list != '\0') {
		servers = str_split(list, ", ", &n);
		dc.servers = (const char *const *)servers;
		dc.server_count = n;
	}
	r = dns_resolver_create(base, &dc, error_r);
	if (servers != NULL)
		str_array_free(servers);
	return r;
}

struct relay_config *
settings_relay_config(const struct settings *s, char **error_r)
{
	struct relay_settings rs;

	memset(&rs, 0, sizeof(rs));
	rs.config_dir = s->config_dir;
	rs.default_relay_host = config_str(s->cfg, "DEFAULT_RELAY_HOST");
	rs.relay_host = config_str(s->cfg, "RELAY_HOST");
	rs.relay_port = (unsigned int)config_num(s->cfg, "RELAY_PORT");
	rs.relay_user = config_str(s->cfg, "RELAY_USER");
	rs.relay_password = config_str(s->cfg, "RELAY_PASSWORD");
	return relay_config_load(&rs, error_r);
}

char *
settings_domain_from_hostname(const char *fqdn)
{
	const char *dot = strchr(fqdn, '.');

	/* More than two labels: drop the first (mail.example.com). */
	if (dot != NULL && strchr(dot + 1, '.') != NULL)
		return str_lower(xstrdup(dot + 1));
	return str_lower(xstrdup(fqdn));
}

static char *
system_fqdn(void)
{
	char name[256];
	struct addrinfo hints, *ai = NULL;
	char *fqdn;

	if (gethostname(name, sizeof(name)) < 0)
		return xstrdup("localhost");
	name[sizeof(name) - 1] = '\0';
	if (strchr(name, '.') != NULL)
		return str_lower(xstrdup(name));
	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_CANONNAME;
	if (getaddrinfo(name, NULL, &hints, &ai) == 0 && ai != NULL &&
	    ai->ai_canonname != NULL && strchr(ai->ai_canonname, '.') != NULL)
		fqdn = xstrdup(ai->ai_canonname);
	else
		fqdn = xstrdup(name);
	if (ai != NULL)
		freeaddrinfo(ai);
	return str_lower(fqdn);
}

static bool
env_has(char *const *env, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; env != NULL && env[i] != NULL; i++)
		if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
			return true;
	return false;
}

/*
 * What docker-mailserver derives from other keys (variables-stack.sh),
 * done once here so every process sees the same values.
 */
static void
derive_dms_defaults(struct settings *s)
{
	const char *tz = config_str(s->cfg, "TZ");

	if (*config_str(s->cfg, "POSTMASTER_ADDRESS") == '\0') {
		char *pm = xasprintf("postmaster@%s", s->domain);

		config_set(s->cfg, "POSTMASTER_ADDRESS", pm);
		free(pm);
	}
	/* the old name still works, as docker-mailserver copies it over */
	if (*config_str(s->cfg, "SA_SPAM_SUBJECT") != '\0' &&
	    !config_is_set(s->cfg, "SPAM_SUBJECT"))
		config_set(s->cfg, "SPAM_SUBJECT",
		    config_str(s->cfg, "SA_SPAM_SUBJECT"));
	/* SMTP_ONLY=1: no Dovecot there, so no IMAP, POP3 or quotas here */
	if (config_bool(s->cfg, "SMTP_ONLY")) {
		config_set(s->cfg, "ENABLE_IMAP", "0");
		config_set(s->cfg, "ENABLE_POP3", "0");
		if (!config_is_set(s->cfg, "ENABLE_QUOTAS"))
			config_set(s->cfg, "ENABLE_QUOTAS", "0");
	}
	/* TZ from the env file too (the environment's is used anyway) */
	if (*tz != '\0') {
		setenv("TZ", tz, 1);
		tzset();
	}
}

struct settings *
settings_load(const char *env_file, char *const *env, char **error_r)
{
	struct settings *s = xcalloc(1, sizeof(*s));
	struct stat st;
	const char *host;

	if (env_file == NULL)
		env_file = getenv("TEGAMI_ENV_FILE");
	s->cfg = config_load(settings_defs, env_file, env_file != NULL, env,
	    error_r);
	if (s->cfg == NULL) {
		free(s);
		return NULL;
	}
	s->dev = env_file == NULL && !env_has(env, "CONFIG_DIR") &&
	    stat("/tmp/docker-mailserver", &st) < 0;
	if (s->dev) {
		static const struct { const char *key, *value; } dev[] = {
			{ "CONFIG_DIR", "var/config" },
			{ "MAIL_DIR", "var/mail" },
			{ "STATE_DIR", "var/state" },
			{ "OVERRIDE_HOSTNAME", "localhost" },
			{ "LISTEN_SMTP", "127.0.0.1:2525" },
			{ "LISTEN_SUBMISSION", "127.0.0.1:2587" },
			{ "LISTEN_SUBMISSIONS", "127.0.0.1:2465" },
			{ "LISTEN_IMAP", "127.0.0.1:2143" },
			{ "LISTEN_IMAPS", "127.0.0.1:2993" },
			{ "LISTEN_POP3", "127.0.0.1:2110" },
			{ "LISTEN_POP3S", "127.0.0.1:2995" },
		};
		for (size_t i = 0; i < sizeof(dev) / sizeof(dev[0]); i++)
			if (!config_is_set(s->cfg, dev[i].key))
				config_set(s->cfg, dev[i].key, dev[i].value);
	}
	host = config_str(s->cfg, "OVERRIDE_HOSTNAME");
	s->hostname = *host != '\0' ? str_lower(xstrdup(host)) : system_fqdn();
	s->domain = settings_domain_from_hostname(s->hostname);
	derive_dms_defaults(s);
	s->config_dir = config_str(s->cfg, "CONFIG_DIR");
	s->mail_dir = config_str(s->cfg, "MAIL_DIR");
	s->state_dir = config_str(s->cfg, "STATE_DIR");
	s->tegami_state = xasprintf("%s/tegami", s->state_dir);
	if (*config_str(s->cfg, "TEGAMI_CONTROL_SOCKET") != '\0')
		s->control_path = xstrdup(config_str(s->cfg,
		    "TEGAMI_CONTROL_SOCKET"));
	else
		s->control_path = xasprintf("%s/control.sock", s->tegami_state);
	return s;
}

bool
settings_listen_family(const struct settings *s, const char *listen_key,
    bool smtp, int family)
{
	const char *want = config_str(s->cfg, smtp ? "POSTFIX_INET_PROTOCOLS" :
	    "DOVECOT_INET_PROTOCOLS");

	if (config_is_set(s->cfg, listen_key))
		return true;
	if (strcmp(want, "ipv4") == 0)
		return family == AF_INET;
	if (strcmp(want, "ipv6") == 0)
		return family == AF_INET6;
	return true;
}

void
settings_free(struct settings **sp)
{
	struct settings *s = *sp;

	if (s == NULL)
		return;
	config_free(&s->cfg);
	free(s->hostname);
	free(s->domain);
	free(s->tegami_state);
	free(s->control_path);
	free(s);
	*sp = NULL;
}

static void
log_ignored(const char *name, const char *source, const char *instead,
    void *ctx)
{
	if (instead != NULL)
		log_warn("event=config_ignored key=%s source=%s instead=\"%s\"",
		    name, source, instead);
	else
		log_warn("event=config_unknown key=%s source=%s "
		    "hint=\"not a key tegami knows; check the spelling\"",
		    name, source);
}

void
settings_log_ignored(const struct settings *s)
{
	const char *tz = config_str(s->cfg, "TZ");

	config_foreach_ignored(s->cfg, log_ignored, NULL);
	if (*config_str(s->cfg, "SA_SPAM_SUBJECT") != '\0')
		log_warn("event=config_renamed key=SA_SPAM_SUBJECT source=%s "
		    "now=SPAM_SUBJECT hint=\"%s\"",
		    config_source(s->cfg, "SA_SPAM_SUBJECT"),
		    config_is_set(s->cfg, "SPAM_SUBJECT") ?
		    "SPAM_SUBJECT is set too and wins" :
		    "its value is used as SPAM_SUBJECT; rename it");
	if (config_bool(s->cfg, "SMTP_ONLY"))
		log_info("event=smtp_only source=%s hint=\"SMTP_ONLY=1: no IMAP "
		    "or POP3 listeners%s\"", config_source(s->cfg, "SMTP_ONLY"),
		    config_bool(s->cfg, "ENABLE_QUOTAS") ? "" : ", no quotas");
	/* A zone name glibc cannot find silently means UTC. */
	if (*tz != '\0' && *tz != ':' && strpbrk(tz, "0123456789") == NULL) {
		char *path = xasprintf("/usr/share/zoneinfo/%s", tz);
		struct stat st;

		if (stat(path, &st) < 0)
			log_warn("event=config_warning key=TZ value=%s source=%s "
			    "hint=\"no %s (install tzdata?): times are in UTC\"",
			    tz, config_source(s->cfg, "TZ"), path);
		free(path);
	}
}
