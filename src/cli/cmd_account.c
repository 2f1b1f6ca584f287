/*
 * email add|update|del|list|restrict and dovecot-master add|update|del|list:
 * postfix-accounts.cf and dovecot-masters.cf ("name|{SCHEME}hash[|extra]").
 */
#include "auth/password.h"
#include "cli/check.h"
#include "cli/cli_int.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include "store/quota.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/stat.h>

struct pw_args {
	bool from_stdin;
	char *pos[3];
	int npos;
};

/* Splits "--password-stdin" from the positional arguments. */
static int
parse_pw_args(struct cli *cli, int argc, char **argv, int min, int max,
    const char *usage, struct pw_args *a_r)
{
	memset(a_r, 0, sizeof(*a_r));
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--password-stdin") == 0) {
			a_r->from_stdin = true;
			continue;
		}
		if (a_r->npos == max) {
			cli_error(cli, "too many arguments; usage: %s %s",
			    cli->prog, usage);
			return -1;
		}
		a_r->pos[a_r->npos++] = argv[i];
	}
	if (a_r->npos < min) {
		cli_error(cli, "missing arguments; usage: %s %s", cli->prog,
		    usage);
		return -1;
	}
	return 0;
}

/* The hash of the password for a command, with every copy of it wiped. */
static char *
hash_password(struct cli *cli, char *arg, bool from_stdin)
{
	char *pw = cli_password_get(cli, arg, from_stdin), *hash;

	if (pw == NULL)
		return NULL;
	hash = password_hash(pw);
	cli_password_free(&pw);
	/* The argument is also in /proc/<pid>/cmdline: blank it there too. */
	if (arg != NULL)
		str_wipe(arg, strlen(arg));
	if (hash == NULL)
		cli_error(cli, "cannot hash the password: no entropy from the system");
	return hash;
}

static bool
has_key(struct cli *cli, const char *file, enum dbfile_delim delim,
    const char *key, bool *has_r)
{
	struct dbfile *f;

	if (cli_open(cli, file, delim, MODE_PUBLIC, &f) < 0)
		return false;
	*has_r = dbfile_find(f, key, 0) >= 0;
	dbfile_free(&f);
	return true;
}

/*
 * Checks that an account may be created (or updated): exists_wanted says
 * which. Prints the reason and returns -1 when not.
 */
static int
account_check(struct cli *cli, const char *db, const char *name,
    bool exists_wanted)
{
	bool exists, alias = false;

	if (!has_key(cli, db, DBFILE_DELIM_PIPE, name, &exists))
		return -1;
	if (exists_wanted && !exists)
		return cli_error(cli, "'%s' does not exist", name), -1;
	if (!exists_wanted && exists)
		return cli_error(cli, "'%s' already exists", name), -1;
	if (!exists_wanted && strcmp(db, DB_ACCOUNTS) == 0) {
		if (!has_key(cli, DB_VIRTUAL, DBFILE_DELIM_SPACE, name, &alias))
			return -1;
		if (alias)
			return cli_error(cli, "'%s' is already defined as an "
			    "alias", name), -1;
	}
	return 0;
}

static int
account_set(struct cli *cli, int argc, char **argv, const char *db,
    bool update, const char *usage)
{
	struct pw_args a;
	struct dbfile *f = NULL;
	char *name, *hash = NULL, *line;
	const char *why;
	long i;
	int r = CLI_FAIL;

	if (parse_pw_args(cli, argc, argv, 1, 2, usage, &a) < 0)
		return CLI_FAIL;
	if (strcmp(db, DB_ACCOUNTS) == 0) {
		if ((name = cli_address_arg(cli, a.pos[0], false)) == NULL)
			return CLI_FAIL;
	} else {
		name = str_lower(xstrdup(a.pos[0]));
		if (check_master_name(name, &why) < 0) {
			free(name);
			return cli_error(cli, "'%s': a master user name %s",
			    a.pos[0], why);
		}
	}
	/* Fail before asking for a password, as docker-mailserver does. */
	if (account_check(cli, db, name, update) < 0)
		goto out;
	if ((hash = hash_password(cli, a.npos > 1 ? a.pos[1] : NULL,
	    a.from_stdin)) == NULL)
		goto out;
	if (cli_begin_edit(cli) < 0 || account_check(cli, db, name, update) < 0)
		goto out;
	if (cli_open(cli, db, DBFILE_DELIM_PIPE, MODE_SECRET, &f) < 0)
		goto out;
	if (update) {
		const char *old;
		const char *extra;

		i = dbfile_find(f, name, 0);
		old = dbfile_line(f, (size_t)i);
		/* Keep the key as written and any userdb fields after a 2nd |. */
		extra = strchr(dbfile_value(f, (size_t)i), '|');
		line = xasprintf("%.*s|%s%s", (int)strcspn(old, "|"), old, hash,
		    extra != NULL ? extra : "");
		dbfile_set(f, (size_t)i, line);
	} else {
		line = xasprintf("%s|%s", name, hash);
		dbfile_append(f, line);
	}
	free(line);
	if (cli_commit(cli, f) < 0)
		goto out;
	r = CLI_OK;
out:
	dbfile_free(&f);
	free(hash);
	free(name);
	return r;
}

int
cmd_email_add(struct cli *cli, int argc, char **argv)
{
	return account_set(cli, argc, argv, DB_ACCOUNTS, false,
	    "email add [--password-stdin] <EMAIL> [<PASSWORD>]");
}

int
cmd_email_update(struct cli *cli, int argc, char **argv)
{
	return account_set(cli, argc, argv, DB_ACCOUNTS, true,
	    "email update [--password-stdin] <EMAIL> [<PASSWORD>]");
}

int
cmd_master_add(struct cli *cli, int argc, char **argv)
{
	return account_set(cli, argc, argv, DB_MASTERS, false,
	    "dovecot-master add [--password-stdin] <USERNAME> [<PASSWORD>]");
}

int
cmd_master_update(struct cli *cli, int argc, char **argv)
{
	return account_set(cli, argc, argv, DB_MASTERS, true,
	    "dovecot-master update [--password-stdin] <USERNAME> [<PASSWORD>]");
}

/*
 * Removes recipient from every alias line of f; a line left with no
 * recipient goes. Recipients compare case-insensitively.
 */
static void
aliases_drop_recipient(struct dbfile *f, const char *recipient)
{
	char key[512];

	for (size_t i = 0; i < dbfile_count(f);) {
		const char *line = dbfile_line(f, i), *value;
		char **rcpts, *joined;
		size_t n, kept = 0;
		bool dropped = false;

		if (!dbfile_key(f, i, key, sizeof(key))) {
			i++;
			continue;
		}
		value = dbfile_value(f, i);
		rcpts = str_split(value, ",", &n);
		joined = xstrdup("");
		for (size_t j = 0; j < n; j++) {
			char *next;

			if (strcasecmp(rcpts[j], recipient) == 0) {
				dropped = true;
				continue;
			}
			next = xasprintf("%s%s%s", joined, kept > 0 ? "," : "",
			    rcpts[j]);
			free(joined);
			joined = next;
			kept++;
		}
		str_array_free(rcpts);
		if (!dropped) {
			free(joined);
			i++;
			continue;
		}
		if (kept == 0) {
			dbfile_delete(f, i);
		} else {
			/* Keep the key and the white space after it as they were. */
			char *nl = xasprintf("%.*s%s", (int)(value - line), line,
			    joined);

			dbfile_set(f, i, nl);
			free(nl);
			i++;
		}
		free(joined);
	}
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return (flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 ? -1 : 0;
}

static int
remove_mailbox(struct cli *cli, const char *addr)
{
	const char *at = strrchr(addr, '@');
	char *domdir = xasprintf("%s/%s", cli->mail_dir, at + 1);
	char *dir = xasprintf("%s/%.*s", domdir, (int)(at - addr), addr);
	struct stat st;
	int r = 0;

	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		cli_note(cli, "no mailbox at %s: nothing to delete", dir);
	} else if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0) {
		r = cli_error(cli, "cannot delete the mailbox %s: %s", dir,
		    strerror(errno));
	} else {
		cli_note(cli, "deleted the mailbox %s", dir);
		/* The domain directory goes too when it is left empty. */
		(void)rmdir(domdir);
	}
	free(dir);
	free(domdir);
	return r;
}

int
cmd_email_del(struct cli *cli, int argc, char **argv)
{
	static const char usage[] = "email del [-y|-n] <EMAIL> [<EMAIL>...]";
	struct dbfile *acc = NULL, *virt = NULL, *quota = NULL;
	char **addrs;
	int naddr = 0, maildel = 0, i = 1, r = CLI_FAIL;

	for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
		for (const char *p = argv[i] + 1; *p != '\0'; p++) {
			if (*p == 'y' || *p == 'Y')
				maildel = 1;
			else if (*p == 'n' || *p == 'N')
				maildel = 2;
			else
				return cli_error(cli, "the option '-%c' is "
				    "unknown; usage: %s %s", *p, cli->prog,
				    usage);
		}
	}
	if (i >= argc)
		return cli_error(cli, "no account given; usage: %s %s",
		    cli->prog, usage);
	addrs = xcalloc((size_t)(argc - i), sizeof(*addrs));
	for (; i < argc; i++)
		if ((addrs[naddr++] = cli_address_arg(cli, argv[i], false)) == NULL)
			goto out;
	if (maildel == 0) {
		char *answer;

		if (!cli_interactive()) {
			cli_error(cli, "delete the mailbox data too? pass -y "
			    "to delete it or -n to keep it (standard input is "
			    "not a terminal to ask)");
			goto out;
		}
		answer = cli_ask("Do you want to delete the mailbox data as "
		    "well (removing all mails)? [y/N] ");
		maildel = answer != NULL && strcasecmp(answer, "y") == 0 ? 1 : 2;
		free(answer);
	}
	if (cli_begin_edit(cli) < 0 ||
	    cli_open(cli, DB_ACCOUNTS, DBFILE_DELIM_PIPE, MODE_SECRET, &acc) < 0 ||
	    cli_open(cli, DB_VIRTUAL, DBFILE_DELIM_SPACE, MODE_PUBLIC, &virt) < 0 ||
	    cli_open(cli, DB_QUOTAS, DBFILE_DELIM_COLON, MODE_PUBLIC, &quota) < 0)
		goto out;
	/* All or nothing: every account must exist before anything changes. */
	for (int j = 0; j < naddr; j++)
		if (dbfile_find(acc, addrs[j], 0) < 0) {
			cli_error(cli, "'%s' does not exist", addrs[j]);
			goto out;
		}
	for (int j = 0; j < naddr; j++) {
		long k;

		aliases_drop_recipient(virt, addrs[j]);
		while ((k = dbfile_find(quota, addrs[j], 0)) >= 0)
			dbfile_delete(quota, (size_t)k);
		while ((k = dbfile_find(acc, addrs[j], 0)) >= 0)
			dbfile_delete(acc, (size_t)k);
	}
	/* The account goes last: a failure before leaves it to retry. */
	if (cli_commit(cli, virt) < 0 || cli_commit(cli, quota) < 0 ||
	    cli_commit(cli, acc) < 0)
		goto out;
	r = CLI_OK;
	for (int j = 0; j < naddr; j++) {
		if (maildel == 1) {
			if (remove_mailbox(cli, addrs[j]) != 0)
				r = CLI_FAIL;
		} else {
			cli_note(cli, "'%s' deleted; its mailbox data is kept",
			    addrs[j]);
		}
	}
out:
	dbfile_free(&acc);
	dbfile_free(&virt);
	dbfile_free(&quota);
	for (int j = 0; j < naddr; j++)
		free(addrs[j]);
	free(addrs);
	return r;
}

/*
 * The bytes an account uses, as the server counts them for QUOTA and the
 * 552 at RCPT (store/quota.h). As root, with the Maildir owner's identity:
 * SQLite may create the index's -wal/-shm files, which must stay the
 * workers'.
 */
static unsigned long long
account_usage(const char *root)
{
	struct store_usage u = { 0 };
	struct stat st;
	bool become = geteuid() == 0 && stat(root, &st) == 0 && st.st_uid != 0;
	char *err = NULL;

	if (become && (setegid(st.st_gid) < 0 || seteuid(st.st_uid) < 0)) {
		/* not even the figure without the index: leave it at 0 */
		if (setegid(0) < 0)
			fatal("event=cli_setegid_failed error=\"%s\"", strerror(errno));
		return 0;
	}
	if (store_maildir_usage(root, &u, &err) < 0) {
		free(err);
		u.bytes = 0;
	}
	if (become && (seteuid(0) < 0 || setegid(0) < 0))
		fatal("event=cli_seteuid_failed path=%s error=\"%s\"", root,
		    strerror(errno));
	return (unsigned long long)u.bytes;
}

/* "* <key>" lines need a file with entries, as docker-mailserver says. */
static int
need_entries(struct cli *cli, struct dbfile *f, const char *name)
{
	char *path = cli_path(cli, name);
	int r = 0;

	if (!dbfile_exists(f)) {
		cli_error(cli, "'%s' does not exist", path);
		r = -1;
	} else {
		bool any = false;

		for (size_t i = 0; i < dbfile_count(f) && !any; i++)
			any = dbfile_is_entry(f, i);
		if (!any) {
			cli_error(cli, "'%s' is empty, nothing to list", path);
			r = -1;
		}
	}
	free(path);
	return r;
}

int
cmd_email_list(struct cli *cli, int argc, char **argv)
{
	struct dbfile *acc = NULL, *virt = NULL, *quota = NULL;
	bool quotas = config_bool(cli->set->cfg, "ENABLE_QUOTAS");
	char key[512], vkey[512];
	int r = CLI_FAIL;

	if (argc > 1)
		return cli_error(cli, "too many arguments; usage: %s email list",
		    cli->prog);
	if (cli_open(cli, DB_ACCOUNTS, DBFILE_DELIM_PIPE, MODE_SECRET, &acc) < 0 ||
	    cli_open(cli, DB_VIRTUAL, DBFILE_DELIM_SPACE, MODE_PUBLIC, &virt) < 0 ||
	    cli_open(cli, DB_QUOTAS, DBFILE_DELIM_COLON, MODE_PUBLIC, &quota) < 0 ||
	    need_entries(cli, acc, DB_ACCOUNTS) < 0)
		goto out;
	for (size_t i = 0; i < dbfile_count(acc); i++) {
		char *aliases = NULL;

		if (!dbfile_key(acc, i, key, sizeof(key)))
			continue;
		printf("* %s", key);
		if (quotas) {
			const char *at = strrchr(key, '@');
			char *dir = at == NULL ? NULL :
			    xasprintf("%s/%s/%.*s", cli->mail_dir, at + 1,
				(int)(at - key), key);
			unsigned long long used = dir != NULL ?
			    account_usage(dir) : 0, limit = 0;
			long q = dbfile_find(quota, key, 0);
			char ub[32], lb[32];

			if (q < 0 || check_quota(dbfile_value(quota, (size_t)q),
			    &limit) < 0)
				/* what the servers enforce for an account
				   without a quota line */
				limit = config_num(cli->set->cfg,
				    "POSTFIX_MAILBOX_SIZE_LIMIT");
			/* Dovecot reports whole KiB: 0 until the first 1024 */
			used -= used % 1024;
			printf(" ( %s / %s ) [%llu%%]",
			    check_format_iec(used, ub, sizeof(ub)),
			    limit > 0 ? check_format_iec(limit, lb, sizeof(lb)) : "~",
			    limit > 0 ? used * 100 / limit : 0);
			free(dir);
		}
		for (size_t j = 0; j < dbfile_count(virt); j++) {
			size_t n;
			char **rcpts;
			bool match = false;

			if (!dbfile_key(virt, j, vkey, sizeof(vkey)))
				continue;
			rcpts = str_split(dbfile_value(virt, j), ",", &n);
			for (size_t k = 0; k < n && !match; k++)
				match = strcasecmp(rcpts[k], key) == 0;
			str_array_free(rcpts);
			if (!match)
				continue;
			char *next = xasprintf("%s%s%s", aliases != NULL ?
			    aliases : "", aliases != NULL ? ", " : "", vkey);
			free(aliases);
			aliases = next;
		}
		if (aliases != NULL)
			printf("\n    [ aliases -> %s ]", aliases);
		printf("\n\n");
		free(aliases);
	}
	r = CLI_OK;
out:
	dbfile_free(&acc);
	dbfile_free(&virt);
	dbfile_free(&quota);
	return r;
}

int
cmd_master_del(struct cli *cli, int argc, char **argv)
{
	struct dbfile *f = NULL;
	int r = CLI_FAIL;

	if (argc < 2)
		return cli_error(cli, "no user given; usage: %s dovecot-master "
		    "del <USERNAME> [<USERNAME>...]", cli->prog);
	if (cli_begin_edit(cli) < 0 ||
	    cli_open(cli, DB_MASTERS, DBFILE_DELIM_PIPE, MODE_SECRET, &f) < 0)
		goto out;
	for (int i = 1; i < argc; i++) {
		char *name = str_lower(xstrdup(argv[i]));
		long k;
		bool found = false;

		while ((k = dbfile_find(f, name, 0)) >= 0) {
			dbfile_delete(f, (size_t)k);
			found = true;
		}
		if (!found)
			cli_note(cli, "'%s' is not a master user: nothing to "
			    "delete", name);
		free(name);
	}
	if (cli_commit(cli, f) < 0)
		goto out;
	r = CLI_OK;
out:
	dbfile_free(&f);
	return r;
}

int
cmd_master_list(struct cli *cli, int argc, char **argv)
{
	struct dbfile *f = NULL;
	char key[512];
	int r = CLI_FAIL;

	if (argc > 1)
		return cli_error(cli, "too many arguments; usage: %s "
		    "dovecot-master list", cli->prog);
	if (cli_open(cli, DB_MASTERS, DBFILE_DELIM_PIPE, MODE_SECRET, &f) < 0 ||
	    need_entries(cli, f, DB_MASTERS) < 0)
		goto out;
	for (size_t i = 0; i < dbfile_count(f); i++)
		if (dbfile_key(f, i, key, sizeof(key)))
			printf("* %s\n\n", key);
	r = CLI_OK;
out:
	dbfile_free(&f);
	return r;
}

int
cmd_email_restrict(struct cli *cli, int argc, char **argv)
{
	static const char usage[] =
	    "email restrict <add|del|list> <send|receive> [<EMAIL>]";
	const char *verb = argc > 1 ? argv[1] : "";
	char *dir = argc > 2 ? str_lower(xstrdup(argv[2])) : xstrdup("");
	char *addr = NULL, *db = NULL;
	struct dbfile *f = NULL;
	int r = CLI_FAIL;

	if (strcmp(dir, "send") != 0 && strcmp(dir, "receive") != 0) {
		cli_error(cli, "unknown or missing second parameter '%s': "
		    "specify 'send' or 'receive'; usage: %s %s", dir, cli->prog,
		    usage);
		goto out;
	}
	db = xasprintf("postfix-%s-access.cf", dir);
	if (strcmp(verb, "list") == 0) {
		bool any = false;

		if (argc > 3) {
			cli_error(cli, "too many arguments; usage: %s %s",
			    cli->prog, usage);
			goto out;
		}
		if (cli_open(cli, db, DBFILE_DELIM_SPACE, MODE_PUBLIC, &f) < 0)
			goto out;
		for (size_t i = 0; i < dbfile_count(f); i++)
			if (dbfile_is_entry(f, i) &&
			    strstr(dbfile_line(f, i), "REJECT") != NULL) {
				printf("%s\n", dbfile_line(f, i));
				any = true;
			}
		if (!any)
			printf("Everyone is allowed to %s mails\n", dir);
		r = CLI_OK;
		goto out;
	}
	if (strcmp(verb, "add") != 0 && strcmp(verb, "del") != 0) {
		cli_error(cli, "unknown or missing command '%s': specify 'add', "
		    "'del' or 'list'; usage: %s %s", verb, cli->prog, usage);
		goto out;
	}
	if (argc != 4) {
		cli_error(cli, "%s; usage: %s %s", argc < 4 ?
		    "no address given" : "too many arguments", cli->prog, usage);
		goto out;
	}
	if ((addr = cli_address_arg(cli, argv[3], true)) == NULL ||
	    cli_begin_edit(cli) < 0 ||
	    cli_open(cli, db, DBFILE_DELIM_SPACE, MODE_PUBLIC, &f) < 0)
		goto out;
	if (strcmp(verb, "add") == 0) {
		char *line;

		if (dbfile_find(f, addr, 0) >= 0) {
			cli_error(cli, "user '%s' already denied to %s mails",
			    addr, dir);
			goto out;
		}
		/* docker-mailserver writes `echo -e "${USER} \t\t REJECT"`. */
		line = xasprintf("%s \t\t REJECT", addr);
		dbfile_append(f, line);
		free(line);
	} else {
		long k;
		bool found = false;

		while ((k = dbfile_find(f, addr, 0)) >= 0) {
			dbfile_delete(f, (size_t)k);
			found = true;
		}
		if (!found)
			cli_note(cli, "'%s' is not restricted from %s mails: "
			    "nothing to delete", addr, dir);
	}
	if (cli_commit(cli, f) < 0)
		goto out;
	r = CLI_OK;
out:
	dbfile_free(&f);
	free(addr);
	free(db);
	free(dir);
	return r;
}
