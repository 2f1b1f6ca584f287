/*
 * tegami fail2ban [ban|unban <IP>|status|log]: docker-mailserver's
 * `setup fail2ban` over tegami's own ban table (STATE_DIR/tegami/fail2ban.db,
 * filter/ban.h), the one the smtp and imap workers share. They notice a
 * change within a second.
 */
#include "cli/cli_int.h"
#include "daemon/antispam.h"
#include "filter/ban.h"
#include "lib/file.h"
#include "lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Started as root: the workers (DMS_VMAIL_UID) must still read and
 * rewrite what we wrote. */
static void
give_to_vmail(struct cli *cli, const char *path)
{
	if (geteuid() != 0)
		return;
	if (chown(path, (uid_t)config_num(cli->set->cfg, "DMS_VMAIL_UID"),
	    (gid_t)config_num(cli->set->cfg, "DMS_VMAIL_GID")) < 0)
		cli_note(cli, "warning: cannot chown %s: %m", path);
}

/* The database and its WAL files: the workers must write them too. */
static void
give_db_to_vmail(struct cli *cli, const char *path)
{
	static const char *const sfx[] = { "", "-wal", "-shm" };

	for (size_t i = 0; i < 3; i++) {
		char *p = xasprintf("%s%s", path, sfx[i]);

		if (access(p, F_OK) == 0)
			give_to_vmail(cli, p);
		free(p);
	}
}

static int
open_bans(struct cli *cli, const char *path, struct ban **ban_r)
{
	struct ban_settings bs;
	char *err = NULL;

	if (mkdir_p(cli->set->tegami_state, 0700) < 0)
		return cli_error(cli, "cannot create %s: %m",
		    cli->set->tegami_state);
	give_to_vmail(cli, cli->set->tegami_state);
	if (antispam_ban_settings(cli->set, &bs, &err) < 0) {
		cli_error(cli, "%s", err);
		free(err);
		return CLI_FAIL;
	}
	if (ban_open(path, &bs, time(NULL), ban_r, &err) < 0) {
		cli_error(cli, "%s", err);
		free(err);
		return CLI_FAIL;
	}
	return CLI_OK;
}

int
cmd_fail2ban(struct cli *cli, int argc, char **argv)
{
	char *path = settings_ban_path(cli->set);
	struct ban *ban = NULL;
	time_t now = time(NULL);
	char *err = NULL;
	int ret = CLI_OK;

	if (argc == 2 && strcmp(argv[1], "log") == 0) {
		/* docker-mailserver cats /var/log/mail/fail2ban.log */
		free(path);
		return cli_error(cli, "tegami keeps no fail2ban.log: bans are "
		    "logged by the smtp worker to standard error (docker logs "
		    "<container> 2>&1 | grep -E 'event=(banned|ban_added|"
		    "ban_lifted)|reason=banned', or journalctl -u tegami)");
	}
	if (argc != 1 && !(argc == 2 && strcmp(argv[1], "status") == 0) &&
	    !(argc == 3 && (strcmp(argv[1], "ban") == 0 ||
	    strcmp(argv[1], "unban") == 0))) {
		fprintf(stderr, "%s: usage: %s fail2ban [ban|unban <IP>|status|log]\n",
		    cli->prog, cli->prog);
		free(path);
		return CLI_FAIL;
	}
	if (open_bans(cli, path, &ban) != CLI_OK) {
		free(path);
		return CLI_FAIL;
	}
	if (argc == 2) {
		/* fail2ban-client status <jail>, for tegami's one "jail" */
		size_t n = ban_list(ban, now, NULL, 0);
		struct ban_entry *e = xcalloc(n + 1, sizeof(*e));

		n = ban_list(ban, now, e, n);
		printf("Status for the jail: tegami\n"
		    "|- Filter\n"
		    "|  `- Rule:\t%u failed logins within %s\n"
		    "`- Actions\n"
		    "   |- Currently banned:\t%zu\n"
		    "   |- Ban time:\t%s\n"
		    "   `- Banned IP list:\t",
		    (unsigned int)config_num(cli->set->cfg, "FAIL2BAN_MAXRETRY"),
		    config_str(cli->set->cfg, "FAIL2BAN_FINDTIME"), n,
		    config_str(cli->set->cfg, "FAIL2BAN_BANTIME"));
		for (size_t i = 0; i < n; i++)
			printf("%s%s", i > 0 ? " " : "", e[i].ip);
		printf("\n\n");
		free(e);
	} else if (argc == 1) {
		size_t n = ban_list(ban, now, NULL, 0);
		struct ban_entry *e = xcalloc(n + 1, sizeof(*e));

		n = ban_list(ban, now, e, n);
		if (n == 0)
			printf("No IPs have been banned\n");
		for (size_t i = 0; i < n; i++) {
			char when[64];
			struct tm tm;

			gmtime_r(&e[i].until, &tm);
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
			printf("Banned: %s until %s\n", e[i].ip, when);
		}
		free(e);
	} else if (strcmp(argv[1], "ban") == 0) {
		if (ban_add(ban, argv[2], now, 0, &err) < 0) {
			ret = cli_error(cli, "cannot ban '%s': %s", argv[2],
			    err != NULL ? err : "not an IP address");
			free(err);
		} else {
			printf("Banned custom: %s\n", argv[2]);
		}
	} else {
		int r = ban_remove(ban, argv[2], now, &err);

		if (r < 0) {
			ret = cli_error(cli, "cannot unban '%s': %s", argv[2],
			    err != NULL ? err : "not an IP address");
			free(err);
		} else if (r == 0) {
			ret = cli_error(cli, "IP '%s' is not banned", argv[2]);
		} else {
			printf("Unbanned: %s\n", argv[2]);
		}
	}
	ban_close(&ban);
	give_db_to_vmail(cli, path);
	free(path);
	return ret;
}
