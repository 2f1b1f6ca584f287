/*
 * compat: what a docker-mailserver config folder and mail folder hold that
 * tegami does not honour, found once at start and logged by name with what
 * tegami does instead (DESIGN.md §5: never silently ignored). A user who
 * moves over with Sieve filters, Postfix overrides or fetchmail must be
 * told on the first start, not find out from missing mail.
 *
 * The scan is cheap: one readdir of CONFIG_DIR and of CONFIG_DIR/rspamd,
 * and for the mail folder one readdir per domain plus two lstat/opendir
 * calls per account (home/.dovecot.sieve, home/sieve/).
 */
#ifndef TEGAMI_COMPAT_H
#define TEGAMI_COMPAT_H

#include <stddef.h>

#include "daemon/settings.h"

struct compat_finding {
	const char *what;	/* "postfix-main.cf", "sieve", ... (static) */
	char *path;		/* the file or directory, or an example of them */
	unsigned int count;	/* files or accounts it stands for (>= 1) */
	char *detail;		/* e.g. the Postfix parameters found; or NULL */
	const char *instead;	/* what tegami does instead (static) */
};

/*
 * Scans config_dir and mail_dir (either may be missing or unreadable,
 * which finds nothing). letsencrypt_dir is looked at for Traefik's
 * acme.json when ssl_type is "letsencrypt" (NULL = not). Returns the
 * findings in a fixed order (the table in compat.c), *count_r of them;
 * free with compat_findings_free.
 */
struct compat_finding *compat_scan(const char *config_dir,
    const char *mail_dir, const char *ssl_type, const char *letsencrypt_dir,
    size_t *count_r);
void compat_findings_free(struct compat_finding *f, size_t count);

/* Scans with the settings and logs one warn line per finding. */
void compat_log_unused(const struct settings *s);

#endif
