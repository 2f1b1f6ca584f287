/*
 * relay: which relay host (smarthost) outbound mail goes through, with
 * docker-mailserver's settings (reference §1.8):
 *
 *   postfix-relaymap.cf     "@domain [host]:port"  mail from senders in
 *                           domain goes through host:port;
 *                           "@domain" alone        domain sends directly
 *                           (excluded from RELAY_HOST)
 *   RELAY_HOST, RELAY_PORT  every other sender domain goes through
 *                           [RELAY_HOST]:RELAY_PORT
 *   DEFAULT_RELAY_HOST      what is left goes through it ("[host]:port")
 *   postfix-sasl-password.cf "@domain user:password" (by sender domain)
 *                           or "[host]:port user:password" (by relay);
 *                           else RELAY_USER / RELAY_PASSWORD
 *
 * A relay with credentials is only spoken to over TLS (STARTTLS required),
 * and AUTH is only sent over TLS (smtp/client.h).
 *
 * Host forms: "[host]:port", "[host]", "host:port", "host". Postfix looks
 * up MX records for a host without brackets; tegami resolves both forms
 * with the MX route (a name without MX falls back to its address).
 */
#ifndef TEGAMI_QUEUE_RELAY_H
#define TEGAMI_QUEUE_RELAY_H

#include <stdbool.h>

/* Bound on each file. */
#define RELAY_MAX_FILE (1024 * 1024)

struct relay_settings {
	const char *config_dir;
	const char *default_relay_host;	/* DEFAULT_RELAY_HOST or NULL */
	const char *relay_host;		/* RELAY_HOST or NULL */
	unsigned int relay_port;	/* RELAY_PORT */
	const char *relay_user;
	const char *relay_password;
};

struct relay_target {
	char host[256];
	unsigned int port;
	const char *user;	/* NULL = no AUTH; in user_buf or the config */
	const char *password;	/* owned by the config */
	char user_buf[256];
};

struct relay_config;

/* Reads the files (missing ones are empty). NULL + *error_r (malloc'd)
 * when one cannot be read. The config is read-only afterwards. */
struct relay_config *relay_config_load(const struct relay_settings *set,
    char **error_r);
void relay_config_free(struct relay_config **rc);
/* Has either file changed since load? */
bool relay_config_changed(const struct relay_config *rc);

/*
 * The relay for mail from sender ("" = null sender: uses
 * DEFAULT_RELAY_HOST only). 1 = relay (t_r filled), 0 = send directly.
 */
int relay_for_sender(const struct relay_config *rc, const char *sender,
    struct relay_target *t_r);

/* Parses "[host]:port" forms; default_port when none. -1 if malformed. */
int relay_parse_host(const char *spec, unsigned int default_port,
    char *host, unsigned long hostsize, unsigned int *port_r);

#endif
