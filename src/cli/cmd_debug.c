/*
 * debug fetchmail|getmail|show-mail-logs|login: docker-mailserver's
 * `setup debug` tree. tegami has no fetchmail or getmail and keeps no log
 * file, so those say where to look instead (and fail: nothing was shown);
 * login opens a shell with tegami's directories in its environment.
 */
#include "cli/cli_int.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
cmd_debug_fetchmail(struct cli *cli, int argc, char **argv)
{
	return cli_error(cli, "tegami has no %s: remote mailboxes are not "
	    "fetched (run %s beside tegami, delivering over SMTP to port 25)",
	    argv[0], argv[0]);
}

int
cmd_debug_show_mail_logs(struct cli *cli, int argc, char **argv)
{
	if (argc > 1)
		return cli_error(cli, "too many arguments; usage: %s debug "
		    "show-mail-logs", cli->prog);
	/* docker-mailserver cats /var/log/mail/mail.log */
	return cli_error(cli, "tegami keeps no mail.log: every process logs "
	    "one key=value line per event to standard error. In a container: "
	    "docker logs <container>; under systemd: journalctl -u tegami; "
	    "else wherever `tegami serve` was started. Delivery lines have "
	    "msgid= from= to= status=; LOG_LEVEL=debug shows more");
}

int
cmd_debug_login(struct cli *cli, int argc, char **argv)
{
	const char *shell = access("/bin/bash", X_OK) == 0 ? "/bin/bash" : "/bin/sh";
	char *cmd = NULL;

	/* the commands run in the shell see the same folders as this one */
	if (setenv("CONFIG_DIR", cli->set->config_dir, 1) < 0 ||
	    setenv("MAIL_DIR", cli->set->mail_dir, 1) < 0 ||
	    setenv("STATE_DIR", cli->set->state_dir, 1) < 0)
		return cli_error(cli, "setenv: %s", strerror(errno));
	fflush(NULL);
	if (argc <= 1) {
		execl(shell, shell, (char *)NULL);
	} else {
		/* the words are one command line, as typed */
		size_t len = 1;

		for (int i = 1; i < argc; i++)
			len += strlen(argv[i]) + 1;
		cmd = xcalloc(1, len);
		for (int i = 1; i < argc; i++) {
			if (i > 1)
				strcat(cmd, " ");
			strcat(cmd, argv[i]);
		}
		execl(shell, shell, "-c", cmd, (char *)NULL);
	}
	free(cmd);
	return cli_error(cli, "cannot run %s: %s", shell, strerror(errno));
}
