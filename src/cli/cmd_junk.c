/*
 * tegami junk train spam|ham <file|dir|-> [<ACCOUNT>]: feeds the junk
 * filter (filter/bayes.h, STATE_DIR/tegami/bayes.db), the global store,
 * and with ACCOUNT that account's own store too. A directory (a Maildir's
 * cur/ or new/, or any folder of message files) trains every regular file
 * in it, in one transaction per message, one database connection.
 */
#include "cli/cli_int.h"
#include "daemon/antispam.h"
#include "filter/bayes.h"
#include "lib/buf.h"
#include "lib/file.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
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

/* Trains one message; 1 trained, 0 already, -1 error (reported). */
static int
train_buf(struct cli *cli, struct bayes *b, const char *account,
    const struct buf *msg, enum bayes_class cls)
{
	char *err = NULL;
	int r = bayes_train(b, account, msg->data != NULL ? msg->data : "",
	    msg->len, cls, time(NULL), &err);

	if (r < 0) {
		cli_error(cli, "%s", err);
		free(err);
	}
	return r;
}

/* Every regular file of dir; -1 if the directory cannot be read. */
static int
train_dir(struct cli *cli, struct bayes *b, const char *account,
    const char *dir, enum bayes_class cls, unsigned int *trained_r,
    unsigned int *already_r)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int ret = 0;

	if (d == NULL)
		return cli_error(cli, "cannot read %s: %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		char *path;
		struct stat st;
		struct buf msg;
		int r;

		if (e->d_name[0] == '.')
			continue;
		path = xasprintf("%s/%s", dir, e->d_name);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
			free(path);
			continue;
		}
		buf_init(&msg, JUNK_MSG_MAX);
		r = read_input(cli, path, &msg) == CLI_OK ?
		    train_buf(cli, b, account, &msg, cls) : -1;
		buf_free(&msg);
		free(path);
		if (r < 0) {
			ret = CLI_FAIL;
			break;
		}
		if (r == 1)
			(*trained_r)++;
		else
			(*already_r)++;
	}
	closedir(d);
	return ret;
}

int
cmd_junk(struct cli *cli, int argc, char **argv)
{
	enum bayes_class cls;
	struct bayes *b = NULL;
	struct buf msg;
	char *path, *err = NULL, *account = NULL;
	struct stat st;
	bool is_dir;
	int ret = CLI_OK, r;

	if ((argc != 4 && argc != 5) || strcmp(argv[1], "train") != 0 ||
	    (strcmp(argv[2], "spam") != 0 && strcmp(argv[2], "ham") != 0)) {
		fprintf(stderr, "%s: usage: %s junk train spam|ham <FILE|DIR|-> "
		    "[<ACCOUNT>]\n", cli->prog, cli->prog);
		return CLI_FAIL;
	}
	cls = strcmp(argv[2], "spam") == 0 ? BAYES_SPAM : BAYES_HAM;
	if (argc == 5) {
		account = cli_address_arg(cli, argv[4], false);
		if (account == NULL)
			return CLI_FAIL;
	}
	is_dir = strcmp(argv[3], "-") != 0 && stat(argv[3], &st) == 0 &&
	    S_ISDIR(st.st_mode);
	buf_init(&msg, JUNK_MSG_MAX);
	if (!is_dir && read_input(cli, argv[3], &msg) != CLI_OK) {
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
	if (is_dir) {
		unsigned int trained = 0, already = 0;

		ret = train_dir(cli, b, account, argv[3], cls, &trained, &already);
		printf("Trained %u, already trained %u, as %s%s%s\n", trained,
		    already, argv[2], account != NULL ? " for " : "",
		    account != NULL ? account : "");
	} else {
		r = train_buf(cli, b, account, &msg, cls);
		if (r < 0)
			ret = CLI_FAIL;
		else
			printf("%s as %s%s%s\n", r == 1 ? "Trained" :
			    "Already trained", argv[2], account != NULL ? " for " : "",
			    account != NULL ? account : "");
	}
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
