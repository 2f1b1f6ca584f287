/*
 * alias add|del|list (postfix-virtual.cf: "alias r1,r2"), quota set|del
 * (dovecot-quotas.cf: "email:5G") and relay add-domain|add-auth|
 * exclude-domain (postfix-relaymap.cf, postfix-sasl-password.cf).
 */
#include "cli/check.h"
#include "cli/cli_int.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Is rcpt one of the comma-separated recipients of value? */
static bool
value_has(const char *value, const char *rcpt)
{
	size_t n;
	char **list = str_split(value, ",", &n);
	bool found = false;

	for (size_t i = 0; i < n && !found; i++)
		found = strcasecmp(list[i], rcpt) == 0;
	str_array_free(list);
	return found;
}

/* Lower-cased, checked recipients of "a@x, b@y"; NULL after an error. */
static char **
recipients_arg(struct cli *cli, const char *arg, size_t *n_r)
{
	char **list = str_split(arg, ",", n_r);

	if (*n_r == 0) {
		str_array_free(list);
		cli_error(cli, "no recipient given");
		return NULL;
	}
	for (size_t i = 0; i < *n_r; i++) {
		char *a = cli_address_arg(cli, list[i], false);

		if (a == NULL) {
			str_array_free(list);
			return NULL;
		}
		free(list[i]);
		list[i] = a;
	}
	return list;
}

int
cmd_alias_add(struct cli *cli, int argc, char **argv)
{
	struct dbfile *virt = NULL, *acc = NULL;
	char *alias = NULL, **rcpts = NULL;
	size_t n = 0;
	long i;
	int r = CLI_FAIL;

	if (argc != 3)
		return cli_error(cli, "%s; usage: %s alias add <ALIAS> "
		    "<RECIPIENT>", argc < 3 ? "missing arguments" :
		    "too many arguments", cli->prog);
	if ((alias = cli_address_arg(cli, argv[1], true)) == NULL ||
	    (rcpts = recipients_arg(cli, argv[2], &n)) == NULL ||
	    cli_begin_edit(cli) < 0 ||
	    cli_open(cli, DB_ACCOUNTS, DBFILE_DELIM_PIPE, MODE_SECRET, &acc) < 0 ||
	    cli_open(cli, DB_VIRTUAL, DBFILE_DELIM_SPACE, MODE_PUBLIC, &virt) < 0)
		goto out;
	if (dbfile_find(acc, alias, 0) >= 0) {
		cli_error(cli, "'%s' is already defined as an account", alias);
		goto out;
	}
	i = dbfile_find(virt, alias, 0);
	for (size_t k = 0; k < n; k++) {
		bool dup = false;

		for (size_t j = 0; j < k; j++)
			dup = dup || strcmp(rcpts[j], rcpts[k]) == 0;
		if (dup || (i >= 0 && value_has(dbfile_value(virt, (size_t)i),
		    rcpts[k]))) {
			cli_error(cli, "'%s' is already an alias for recipient: "
			    "'%s'", alias, rcpts[k]);
			goto out;
		}
	}
	for (size_t k = 0; k < n; k++) {
		char *line;

		if (i >= 0) {
			const char *old = dbfile_line(virt, (size_t)i);

			/* An empty value gets its first recipient, no comma. */
			line = *dbfile_value(virt, (size_t)i) == '\0' ?
			    xasprintf("%.*s %s", (int)strcspn(old, " \t"), old,
				rcpts[k]) :
			    xasprintf("%s,%s", old, rcpts[k]);
			dbfile_set(virt, (size_t)i, line);
		} else {
			line = xasprintf("%s %s", alias, rcpts[k]);
			dbfile_append(virt, line);
			i = (long)dbfile_count(virt) - 1;
		}
		free(line);
	}
	if (cli_commit(cli, virt) < 0)
		goto out;
	r = CLI_OK;
out:
	dbfile_free(&virt);
	dbfile_free(&acc);
	str_array_free(rcpts);
	free(alias);
	return r;
}

int
cmd_alias_del(struct cli *cli, int argc, char **argv)
{
	struct dbfile *virt = NULL;
	char *alias = NULL, **rcpts = NULL;
	size_t n = 0;
	int r = CLI_FAIL;

	if (argc != 3)
		return cli_error(cli, "%s; usage: %s alias del <ALIAS> "
		    "<RECIPIENT>", argc < 3 ? "missing arguments" :
		    "too many arguments", cli->prog);
	if ((alias = cli_address_arg(cli, argv[1], true)) == NULL ||
	    (rcpts = recipients_arg(cli, argv[2], &n)) == NULL ||
	    cli_begin_edit(cli) < 0 ||
	    cli_open(cli, DB_VIRTUAL, DBFILE_DELIM_SPACE, MODE_PUBLIC, &virt) < 0)
		goto out;
	for (size_t k = 0; k < n; k++) {
		long i = dbfile_find(virt, alias, 0);
		const char *line, *value;
		char **list, *joined;
		size_t m, kept = 0;

		if (i < 0 || !value_has(dbfile_value(virt, (size_t)i), rcpts[k])) {
			cli_note(cli, "'%s' is not an alias for '%s': nothing "
			    "to delete", alias, rcpts[k]);
			continue;
		}
		line = dbfile_line(virt, (size_t)i);
		value = dbfile_value(virt, (size_t)i);
		list = str_split(value, ",", &m);
		joined = xstrdup("");
		for (size_t j = 0; j < m; j++) {
			char *next;

			if (strcasecmp(list[j], rcpts[k]) == 0)
				continue;
			next = xasprintf("%s%s%s", joined, kept++ > 0 ? "," : "",
			    list[j]);
			free(joined);
			joined = next;
		}
		str_array_free(list);
		if (kept == 0) {
			dbfile_delete(virt, (size_t)i);
		} else {
			char *nl = xasprintf("%.*s%s", (int)(value - line), line,
			    joined);

			dbfile_set(virt, (size_t)i, nl);
			free(nl);
		}
		free(joined);
	}
	if (cli_commit(cli, virt) < 0)
		goto out;
	r = CLI_OK;
out:
	dbfile_free(&virt);
	str_array_free(rcpts);
	free(alias);
	return r;
}

int
cmd_alias_list(struct cli *cli, int argc, char **argv)
{
	struct dbfile *f = NULL;
	char *path;
	bool any = false;

	if (argc > 1)
		return cli_error(cli, "too many arguments; usage: %s alias list",
		    cli->prog);
	if (cli_open(cli, DB_VIRTUAL, DBFILE_DELIM_SPACE, MODE_PUBLIC, &f) < 0)
		return CLI_FAIL;
	path = cli_path(cli, DB_VIRTUAL);
	if (!dbfile_exists(f)) {
		dbfile_free(&f);
		cli_error(cli, "'%s' does not exist", path);
		free(path);
		return CLI_FAIL;
	}
	for (size_t i = 0; i < dbfile_count(f); i++) {
		if (!dbfile_is_entry(f, i))
			continue;
		printf("* %s\n\n", dbfile_line(f, i));
		any = true;
	}
	dbfile_free(&f);
	if (!any) {
		cli_error(cli, "'%s' is empty, nothing to list", path);
		free(path);
		return CLI_FAIL;
	}
	free(path);
	return CLI_OK;
}

/* The account must exist for quota set/del (docker-mailserver's rule). */
static int
account_exists(struct cli *cli, const char *addr)
{
	struct dbfile *acc = NULL;
	bool found;

	if (cli_open(cli, DB_ACCOUNTS, DBFILE_DELIM_PIPE, MODE_SECRET, &acc) < 0)
		return -1;
	found = dbfile_find(acc, addr, 0) >= 0;
	dbfile_free(&acc);
	if (!found)
		return cli_error(cli, "'%s' does not exist", addr), -1;
	return 0;
}

int
cmd_quota_set(struct cli *cli, int argc, char **argv)
{
	struct dbfile *f = NULL;
	char *addr = NULL, *quota = NULL, *line;
	unsigned long long bytes;
	long i;
	int r = CLI_FAIL;

	if (argc < 2 || argc > 3)
		return cli_error(cli, "%s; usage: %s quota set <EMAIL> [<QUOTA>]",
		    argc < 2 ? "no account given" : "too many arguments",
		    cli->prog);
	if ((addr = cli_address_arg(cli, argv[1], false)) == NULL ||
	    account_exists(cli, addr) < 0)
		goto out;
	if (argc == 3)
		quota = xstrdup(argv[2]);
	else if ((quota = cli_ask("Enter quota (e.g. 10M): ")) == NULL) {
		cli_error(cli, "no quota given (e.g. 10M, or 0 for unlimited)");
		goto out;
	}
	if (check_quota(quota, &bytes) < 0) {
		cli_error(cli, "invalid quota '%s': use 0 (unlimited) or a number "
		    "with a unit, e.g. 302M (B byte, k kibibyte, M mebibyte, "
		    "G gibibyte, T tebibyte)", quota);
		goto out;
	}
	if (cli_begin_edit(cli) < 0 || account_exists(cli, addr) < 0 ||
	    cli_open(cli, DB_QUOTAS, DBFILE_DELIM_COLON, MODE_PUBLIC, &f) < 0)
		goto out;
	line = xasprintf("%s:%s", addr, quota);
	if ((i = dbfile_find(f, addr, 0)) >= 0)
		dbfile_set(f, (size_t)i, line);
	else
		dbfile_append(f, line);
	free(line);
	if (cli_commit(cli, f) < 0)
		goto out;
	r = CLI_OK;
out:
	dbfile_free(&f);
	free(addr);
	free(quota);
	return r;
}

int
cmd_quota_del(struct cli *cli, int argc, char **argv)
{
	struct dbfile *f = NULL;
	char *addr = NULL;
	long i;
	int r = CLI_FAIL;

	if (argc != 2)
		return cli_error(cli, "%s; usage: %s quota del <EMAIL>",
		    argc < 2 ? "no account given" : "too many arguments",
		    cli->prog);
	if ((addr = cli_address_arg(cli, argv[1], false)) == NULL ||
	    account_exists(cli, addr) < 0 || cli_begin_edit(cli) < 0 ||
	    cli_open(cli, DB_QUOTAS, DBFILE_DELIM_COLON, MODE_PUBLIC, &f) < 0)
		goto out;
	while ((i = dbfile_find(f, addr, 0)) >= 0)
		dbfile_delete(f, (size_t)i);
	if (cli_commit(cli, f) < 0)
		goto out;
	r = CLI_OK;
out:
	dbfile_free(&f);
	free(addr);
	return r;
}

/* "@domain" for the relay files, from a checked domain argument. */
static char *
relay_key(struct cli *cli, const char *arg)
{
	char *d = str_lower(xstrdup(arg)), *key;

	if (!check_domain(d)) {
		cli_error(cli, "'%s' is not a valid domain (e.g. example.com)",
		    arg);
		free(d);
		return NULL;
	}
	key = xasprintf("@%s", d);
	free(d);
	return key;
}

/* Adds or replaces the line for key (docker-mailserver's "replace"). */
static int
relay_put(struct cli *cli, const char *db, mode_t mode, const char *key,
    const char *value)
{
	struct dbfile *f = NULL;
	char *line;
	long i;
	int r = CLI_FAIL;

	if (cli_begin_edit(cli) < 0 ||
	    cli_open(cli, db, DBFILE_DELIM_SPACE, mode, &f) < 0)
		return CLI_FAIL;
	line = xasprintf("%s %s", key, value);
	if ((i = dbfile_find(f, key, 0)) >= 0)
		dbfile_set(f, (size_t)i, line);
	else
		dbfile_append(f, line);
	str_wipe(line, strlen(line));
	free(line);
	if (cli_commit(cli, f) == 0)
		r = CLI_OK;
	dbfile_free(&f);
	return r;
}

static bool
check_relay_host(const char *h)
{
	/* A host name, or an address literal without the brackets. */
	if (check_domain(h))
		return true;
	for (const char *p = h; *p != '\0'; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') ||
		    (*p >= 'A' && *p <= 'F') || *p == '.' || *p == ':'))
			return false;
	return *h != '\0' && strlen(h) <= 45;
}

int
cmd_relay_add_domain(struct cli *cli, int argc, char **argv)
{
	char *key, *value;
	unsigned int port = 25;
	int r;

	if (argc < 3 || argc > 4)
		return cli_error(cli, "%s; usage: %s relay add-domain <DOMAIN> "
		    "<HOST> [<PORT>]", argc < 3 ? "missing arguments" :
		    "too many arguments", cli->prog);
	if (!check_relay_host(argv[2]))
		return cli_error(cli, "'%s' is not a valid relay host name",
		    argv[2]);
	if (argc == 4 && check_port(argv[3], &port) < 0)
		return cli_error(cli, "'%s' is not a valid port (1-65535)",
		    argv[3]);
	if ((key = relay_key(cli, argv[1])) == NULL)
		return CLI_FAIL;
	value = xasprintf("[%s]:%u", argv[2], port);
	r = relay_put(cli, DB_RELAYMAP, MODE_PUBLIC, key, value);
	free(value);
	free(key);
	return r;
}

int
cmd_relay_exclude_domain(struct cli *cli, int argc, char **argv)
{
	char *key;
	int r;

	if (argc != 2)
		return cli_error(cli, "%s; usage: %s relay exclude-domain "
		    "<DOMAIN>", argc < 2 ? "no domain given" :
		    "too many arguments", cli->prog);
	if ((key = relay_key(cli, argv[1])) == NULL)
		return CLI_FAIL;
	/* "@domain " with its trailing space, as docker-mailserver writes it. */
	r = relay_put(cli, DB_RELAYMAP, MODE_PUBLIC, key, "");
	free(key);
	return r;
}

int
cmd_relay_add_auth(struct cli *cli, int argc, char **argv)
{
	static const char usage[] =
	    "relay add-auth [--password-stdin] <DOMAIN> <USERNAME> [<PASSWORD>]";
	char *pos[3], *key = NULL, *pw = NULL, *value;
	bool from_stdin = false;
	int npos = 0, r = CLI_FAIL;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--password-stdin") == 0)
			from_stdin = true;
		else if (npos == 3)
			return cli_error(cli, "too many arguments; usage: %s %s",
			    cli->prog, usage);
		else
			pos[npos++] = argv[i];
	}
	if (npos < 2)
		return cli_error(cli, "missing arguments; usage: %s %s",
		    cli->prog, usage);
	if (pos[1][0] == '\0' || strpbrk(pos[1], " \t\r\n:") != NULL)
		return cli_error(cli, "'%s' is not a valid relay user name (no "
		    "white space, no ':')", pos[1]);
	if ((key = relay_key(cli, pos[0])) == NULL)
		return CLI_FAIL;
	if ((pw = cli_password_get(cli, npos > 2 ? pos[2] : NULL,
	    from_stdin)) == NULL)
		goto out;
	if (npos > 2)
		str_wipe(pos[2], strlen(pos[2]));
	value = xasprintf("%s:%s", pos[1], pw);
	r = relay_put(cli, DB_SASL, MODE_PASSWORDS, key, value);
	str_wipe(value, strlen(value));
	free(value);
out:
	cli_password_free(&pw);
	free(key);
	return r;
}
