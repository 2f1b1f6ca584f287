#include "daemon/settings.h"
#include "dns/dns.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define KB 1024ULL
#define GB (1024ULL * 1024 * 1024)

#define STR(n, d, h) { n, CONFIG_STR, d, 0, 0, NULL, h }
#define NUM(n, d, lo, hi, h) { n, CONFIG_NUM, d, lo, hi, NULL, h }
#define BOOL(n, d) { n, CONFIG_BOOL, d, 0, 0, NULL, NULL }
#define ENUM(n, d, c) { n, CONFIG_ENUM, d, 0, 0, c, NULL }
#define UNSUP(n, instead) { n, CONFIG_UNSUPPORTED, NULL, 0, 0, NULL, instead }

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
	ENUM("ACCOUNT_PROVISIONER", "FILE", "FILE"),

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
	BOOL("TEGAMI_JUNK_FILTER", "1"),
	NUM("TEGAMI_JUNK_SPAM_PERCENT", "90", 50, 100, "Bayes spam probability (percent) that makes a message spam"),
	BOOL("TEGAMI_JUNK_TRAIN_IMAP", "1"),
	BOOL("ENABLE_CLAMAV", "0"),
	STR("TEGAMI_CLAMD_SOCKET", "/run/clamav/clamd.ctl", "clamd's socket: a path or host:port"),
	NUM("CLAMAV_MESSAGE_SIZE_LIMIT", "26214400", 1024, 2 * GB, "bytes; larger messages are not scanned"),
	BOOL("ENABLE_RSPAMD", "0"),
	STR("TEGAMI_RSPAMD_ADDRESS", "127.0.0.1:11333", "rspamd's normal worker: host:port or a socket path"),
	NUM("TEGAMI_SEND_LIMIT", "1000", 0, 10000000, "recipients one authenticated user may send to per TEGAMI_SEND_LIMIT_WINDOW (0 = no limit)"),
	NUM("TEGAMI_SEND_LIMIT_WINDOW", "3600", 60, 86400 * 7, "seconds"),
	STR("TEGAMI_PSL_FILE", "/usr/share/publicsuffix/public_suffix_list.dat", "the Public Suffix List, for DMARC"),

	/* docker-mailserver keys tegami does not implement (yet) */
	UNSUP("ENABLE_AMAVIS", "no Amavis: tegami's own filters run in-process"),
	UNSUP("ENABLE_SPAMASSASSIN", "no SpamAssassin: tegami has a built-in junk filter"),
	UNSUP("ENABLE_SPAMASSASSIN_KAM", "no SpamAssassin rules"),
	UNSUP("SPAMASSASSIN_SPAM_TO_INBOX", "no SpamAssassin"),
	UNSUP("SA_TAG", "no SpamAssassin"),
	UNSUP("SA_TAG2", "no SpamAssassin"),
	UNSUP("SA_KILL", "no SpamAssassin"),
	UNSUP("ENABLE_RSPAMD_REDIS", "no rspamd"),
	UNSUP("ENABLE_MANAGESIEVE", "no ManageSieve"),
	UNSUP("ENABLE_FETCHMAIL", "no fetchmail"),
	UNSUP("ENABLE_GETMAIL", "no getmail"),
	UNSUP("ENABLE_SASLAUTHD", "accounts come from postfix-accounts.cf"),
	UNSUP("ENABLE_OAUTH2", "password logins only"),
	UNSUP("ENABLE_SRS", "no SRS rewriting"),
	UNSUP("ENABLE_MTA_STS", "not yet: no MTA-STS"),
	UNSUP("ENABLE_UPDATE_CHECK", "no update check"),
	UNSUP("SMTP_ONLY", "IMAP is controlled by ENABLE_IMAP"),
	UNSUP("POSTFIX_DAGENT", "tegami delivers in-line to Maildir"),
	UNSUP("POSTFIX_INET_PROTOCOLS", "use the LISTEN_* keys"),
	UNSUP("DOVECOT_INET_PROTOCOLS", "use the LISTEN_* keys"),
	UNSUP("DOVECOT_MAILBOX_FORMAT", "Maildir only"),
	UNSUP("POSTSCREEN_ACTION", "not yet"),
	UNSUP("LOGROTATE_INTERVAL", "logs go to stderr; rotate them there"),
	UNSUP("PFLOGSUMM_TRIGGER", "no pflogsumm reports"),
	UNSUP("LOGWATCH_INTERVAL", "no logwatch reports"),
	UNSUP("SUPERVISOR_LOGLEVEL", "no supervisord: LOG_LEVEL applies"),
	UNSUP("NETWORK_INTERFACE", "use the LISTEN_* keys"),
	UNSUP("TZ", "logs are in UTC"),
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
	config_foreach_ignored(s->cfg, log_ignored, NULL);
}
