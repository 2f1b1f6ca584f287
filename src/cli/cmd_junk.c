/*
 * tegami junk train spam|ham <file|-> [<ACCOUNT>]: feeds the junk filter
 * (filter/bayes.h, STATE_DIR/tegami/bayes.db), the global store, and with
 * ACCOUNT that account's own store too.
 */
#include "cli/cli_int.h"
#include "daemon/antispam.h"
#include "filter/bayes.h"
#include "lib/buf.h"
#include "lib/file.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define JUNK_MSG_MAX (64 * 1024 * 1024)

static int
read_input(struct cli *cli, const char *name, struct buf *b)
{
	FILE *f = strcmp(name, "-") == 0 ? stdin : fopen(name, "rb");
	char chunk[65536];
	size_t n;

	if (f == NULL)
		return cli_error(cli, "cannot open %s: %s", name,
		    strerror(errno));
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf_append(b, chunk, n) < 0) {
			if (f != stdin)
				fclose(f);
			return cli_error(cli, "%s: larger than %d bytes", name,
			    JUNK_MSG_MAX);
		}
	}
	if (f != stdin)
		fclose(f);
	return CLI_OK;
}

static void
give_to_vmail(struct cli *cli, const char *path)
{
	if (geteuid() == 0 && chown(path, (uid_t)config_num(cli->set->cfg,
	    "DMS_VMAIL_UID"), (gid_t)config_num(cli->set->cfg,
	    "DMS_VMAIL_GID")) < 0 && errno != ENOENT)
		cli_note(cli, "warning: cannot chown %s: %s", path,
		    strerror(errno));
}

int
cmd_junk(struct cli *cli, int argc, char **argv)
{
	enum bayes_class cls;
	struct bayes *b = NULL;
	struct buf msg;
	char *path, *err = NULL, *account = NULL;
	int ret = CLI_OK, r;

	if ((argc != 4 && argc != 5) || strcmp(argv[1], "train") != 0 ||
	    (strcmp(argv[2], "spam") != 0 && strcmp(argv[2], "ham") != 0)) {
		fprintf(stderr, "%s: usage: %s junk train spam|ham <FILE|-> "
		    "[<ACCOUNT>]\n", cli->prog, cli->prog);
		return CLI_FAIL;
	}
	cls = strcmp(argv[2], "spam") == 0 ? BAYES_SPAM : BAYES_HAM;
	if (argc == 5) {
		account = cli_address_arg(cli, argv[4], false);
		if (account == NULL)
			return CLI_FAIL;
	}
	buf_init(&msg, JUNK_MSG_MAX);
	if (read_input(cli, argv[3], &msg) != CLI_OK) {
		buf_free(&msg);
		free(account);
		return CLI_FAIL;
	}
	if (mkdir_p(cli->set->tegami_state, 0700) < 0) {
		buf_free(&msg);
		free(account);
		return cli_error(cli, "cannot create %s: %s",
		    cli->set->tegami_state, strerror(errno));
	}
	give_to_vmail(cli, cli->set->tegami_state);
	path = settings_bayes_path(cli->set);
	if (bayes_open(path, NULL, &b, &err) < 0) {
		ret = cli_error(cli, "%s", err);
		goto out;
	}
	r = bayes_train(b, account, msg.data != NULL ? msg.data : "", msg.len,
	    cls, time(NULL), &err);
	if (r < 0)
		ret = cli_error(cli, "%s", err);
	else
		printf("%s as %s%s%s\n", r == 1 ? "Trained" : "Already trained",
		    argv[2], account != NULL ? " for " : "",
		    account != NULL ? account : "");
	bayes_close(&b);
	{
		static const char *const sfx[] = { "", "-wal", "-shm" };

		for (size_t i = 0; i < 3; i++) {
			char *p = xasprintf("%s%s", path, sfx[i]);

			give_to_vmail(cli, p);
			free(p);
		}
	}
out:
	free(err);
	free(path);
	free(account);
	buf_free(&msg);
	return ret;
}
