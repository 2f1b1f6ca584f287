/*
 * settings: every configuration key tegami reads, declared once
 * (lib/config.h does the loading and validation), and what is derived from
 * them: host name, mail domain, directories, development defaults.
 */
#ifndef TEGAMI_SETTINGS_H
#define TEGAMI_SETTINGS_H

#include <stdbool.h>
#include "lib/config.h"

extern const struct config_def settings_defs[];

struct settings {
	struct config *cfg;
	bool dev;		/* development instance (no configuration) */
	char *hostname;		/* FQDN */
	char *domain;		/* mail domain derived as docker-mailserver does */
	const char *config_dir;
	const char *mail_dir;
	const char *state_dir;	/* STATE_DIR */
	char *tegami_state;	/* STATE_DIR/tegami */
	char *control_path;	/* control socket */
};

/*
 * Loads the settings. env_file may be NULL: then TEGAMI_ENV_FILE is used if
 * set. When no configuration is found at all (no env file, no CONFIG_DIR in
 * the environment, no /tmp/docker-mailserver), the development defaults of
 * DESIGN.md §5 apply: data under ./var/, host name localhost, ports
 * 2525/2587/2465/2143/2993/2110/2995 on 127.0.0.1.
 * Returns NULL with a one-line message in *error_r (malloc'd).
 */
struct settings *settings_load(const char *env_file, char *const *env,
    char **error_r);
void settings_free(struct settings **s);

/* Logs, once, every docker-mailserver key that is set but not implemented. */
void settings_log_ignored(const struct settings *s);

struct event_base;
struct dns_resolver;
struct dns_config;
struct relay_config;
/*
 * The relay hosts as the queue worker uses them (DEFAULT_RELAY_HOST,
 * RELAY_*, postfix-relaymap.cf, postfix-sasl-password.cf; queue/relay.h).
 * NULL with *error_r.
 */
struct relay_config *settings_relay_config(const struct settings *s,
    char **error_r);
/*
 * The resolver tegami uses: TEGAMI_DNS_SERVERS, else /etc/resolv.conf
 * (dns/dns.h; base NULL for blocking lookups only). opts (may be NULL)
 * gives the other dns_config fields (cache, trust anchor); its servers
 * are ignored. NULL with *error_r.
 */
struct dns_resolver *settings_dns_resolver(const struct settings *s,
    struct event_base *base, const struct dns_config *opts, char **error_r);
/*
 * Is an address of family (AF_INET, AF_INET6) from listen_key (LISTEN_SMTP)
 * to be bound? POSTFIX_INET_PROTOCOLS (smtp: ports 25/587/465) and
 * DOVECOT_INET_PROTOCOLS (IMAP, POP3) = ipv4|ipv6 leave out the other
 * family's default addresses, as docker-mailserver tells Postfix and
 * Dovecot; addresses given in LISTEN_* are always bound.
 */
bool settings_listen_family(const struct settings *s, const char *listen_key,
    bool smtp, int family);

/* "mail.example.com" -> "example.com"; two labels or fewer stay as they are. */
char *settings_domain_from_hostname(const char *fqdn);

#endif
