/*
 * cli: the operator's commands. One table row per command: where it sits in
 * the tree, its handler, its usage line and its help text. The same tree
 * answers as `tegami <cmd>` and, through a symlink named setup, as
 * docker-mailserver's `setup <cmd>`.
 */
#include "cli/cli.h"
#include "cli/check.h"
#include "cli/cli_int.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef TEGAMI_VERSION
#define TEGAMI_VERSION "0.1.0-dev"
#endif

extern char **environ;

struct cli_cmd {
	const char *group;	/* "email", or NULL for a top-level command */
	const char *name;
	int (*fn)(struct cli *cli, int argc, char **argv);
	const char *usage;	/* after "<prog> " */
	const char *help;
};

static const struct cli_cmd commands[] = {
	{ "email", "add", cmd_email_add,
	  "email add [--password-stdin] <EMAIL> [<PASSWORD>]",
	  "Adds the mail account EMAIL to postfix-accounts.cf as\n"
	  "EMAIL|{SHA512-CRYPT}<hash>. The address is lower-cased. It is refused when\n"
	  "it is already an account or an alias. Without PASSWORD, the password is\n"
	  "asked twice on the terminal (not echoed), or read as one line from\n"
	  "standard input with --password-stdin. A running server picks the account\n"
	  "up by itself; its mailbox is made on first delivery or login.\n" },
	{ "email", "update", cmd_email_update,
	  "email update [--password-stdin] <EMAIL> [<PASSWORD>]",
	  "Replaces the password hash of the account EMAIL (extra userdb fields after\n"
	  "a second | are kept). The password is given or asked as for `email add`.\n" },
	{ "email", "del", cmd_email_del,
	  "email del [-y|-n] <EMAIL> [<EMAIL>...]",
	  "Deletes the accounts, every alias recipient that is one of them (an alias\n"
	  "left with no recipient is removed) and their quota lines.\n"
	  "  -y   also delete the mailbox MAIL_DIR/<domain>/<local> (and the domain\n"
	  "       directory when it is left empty)\n"
	  "  -n   keep the mailbox\n"
	  "Without -y or -n the question is asked on the terminal ([y/N]); when\n"
	  "standard input is not a terminal the command refuses to guess.\n" },
	{ "email", "restrict", cmd_email_restrict,
	  "email restrict <add|del|list> <send|receive> [<EMAIL>]",
	  "Stops EMAIL from sending (postfix-send-access.cf) or receiving\n"
	  "(postfix-receive-access.cf) mail: `add` writes \"EMAIL \\t\\t REJECT\", `del`\n"
	  "removes it, `list` shows the restricted addresses.\n" },
	{ "email", "list", cmd_email_list,
	  "email list",
	  "Lists the accounts, as docker-mailserver prints them:\n"
	  "  * user@example.com ( <used> / <quota> ) [<percent>%]\n"
	  "      [ aliases -> alias1@example.com, alias2@example.com ]\n"
	  "The quota figures appear when ENABLE_QUOTAS=1 (the default); used is the\n"
	  "size of the messages in the mailbox, ~ means no quota.\n" },
	{ "alias", "add", cmd_alias_add,
	  "alias add <ALIAS> <RECIPIENT>",
	  "Adds RECIPIENT to ALIAS in postfix-virtual.cf (\"ALIAS r1,r2\"): appended to\n"
	  "the alias's line, or a new line. ALIAS is an address or @domain (catch-all);\n"
	  "several recipients may be given as 'a@example.com, b@example.org'. Refused\n"
	  "when ALIAS is an account or RECIPIENT is already there.\n" },
	{ "alias", "del", cmd_alias_del,
	  "alias del <ALIAS> <RECIPIENT>",
	  "Removes RECIPIENT from ALIAS; the line goes when no recipient is left.\n" },
	{ "alias", "list", cmd_alias_list,
	  "alias list",
	  "Prints every alias line of postfix-virtual.cf as \"* <line>\".\n" },
	{ "quota", "set", cmd_quota_set,
	  "quota set <EMAIL> [<QUOTA>]",
	  "Sets the quota of the account EMAIL in dovecot-quotas.cf (\"EMAIL:QUOTA\").\n"
	  "QUOTA is 0 (unlimited) or a number with a unit: B, k, M, G or T (powers of\n"
	  "1024), e.g. 512M or 5G. Asked on the terminal when not given.\n" },
	{ "quota", "del", cmd_quota_del,
	  "quota del <EMAIL>",
	  "Removes the quota of the account EMAIL (back to no quota).\n" },
	{ "dovecot-master", "add", cmd_master_add,
	  "dovecot-master add [--password-stdin] <USERNAME> [<PASSWORD>]",
	  "Adds a master user to dovecot-masters.cf (USERNAME|{SHA512-CRYPT}<hash>).\n"
	  "A master user logs in to any account as \"user@example.com*USERNAME\" with\n"
	  "its own password.\n" },
	{ "dovecot-master", "update", cmd_master_update,
	  "dovecot-master update [--password-stdin] <USERNAME> [<PASSWORD>]",
	  "Replaces the password hash of the master user USERNAME.\n" },
	{ "dovecot-master", "del", cmd_master_del,
	  "dovecot-master del <USERNAME> [<USERNAME>...]",
	  "Deletes master users.\n" },
	{ "dovecot-master", "list", cmd_master_list,
	  "dovecot-master list",
	  "Lists the master users.\n" },
	{ "config", "dkim", cmd_config_dkim,
	  "config dkim [keysize <BITS>] [selector <SELECTOR>] [domain '<D1>,<D2>']\n"
	  "                   [keytype rsa|ed25519] [help]",
	  "Makes a DKIM key for every domain that has accounts or aliases (or for the\n"
	  "domains given), in the OpenDKIM layout docker-mailserver uses:\n"
	  "  CONFIG_DIR/opendkim/keys/<domain>/<selector>.private   private key (PEM, 0600)\n"
	  "  CONFIG_DIR/opendkim/keys/<domain>/<selector>.txt       the DNS TXT record\n"
	  "  CONFIG_DIR/opendkim/KeyTable, SigningTable, TrustedHosts\n"
	  "An existing key is never replaced. Options:\n"
	  "  keysize   RSA bits: 1024, 2048 (default), 3072 or 4096\n"
	  "  selector  the DKIM selector (default: mail)\n"
	  "  domain    comma-separated domains instead of the local ones\n"
	  "  keytype   rsa (default): one RSA key. ed25519: an RSA key with SELECTOR\n"
	  "            and also an Ed25519 key (RFC 8463) with selector SELECTOR-ed25519,\n"
	  "            so mail is signed twice and receivers that do not know Ed25519\n"
	  "            still find a signature they can check.\n"
	  "  help      this text (anywhere among the options, as docker-mailserver)\n"
	  "`tegami dns` prints the records to publish.\n" },
	{ "relay", "add-domain", cmd_relay_add_domain,
	  "relay add-domain <DOMAIN> <HOST> [<PORT>]",
	  "Sends the mail of DOMAIN's senders through HOST:PORT (default port 25):\n"
	  "writes \"@DOMAIN [HOST]:PORT\" to postfix-relaymap.cf.\n" },
	{ "relay", "add-auth", cmd_relay_add_auth,
	  "relay add-auth [--password-stdin] <DOMAIN> <USERNAME> [<PASSWORD>]",
	  "Logs in to DOMAIN's relay host as USERNAME: writes \"@DOMAIN USERNAME:PASSWORD\"\n"
	  "to postfix-sasl-password.cf (mode 0600; the password is stored as given,\n"
	  "since it is sent to the relay).\n" },
	{ "relay", "exclude-domain", cmd_relay_exclude_domain,
	  "relay exclude-domain <DOMAIN>",
	  "Sends DOMAIN's mail directly even when RELAY_HOST is set: writes \"@DOMAIN \"\n"
	  "to postfix-relaymap.cf.\n" },
	{ NULL, "dns", cmd_dns,
	  "dns [--strict] [--check [--quiet]] [<DOMAIN>]",
	  "Prints every DNS record to publish for each local domain (or DOMAIN):\n"
	  "A/AAAA for the host name, MX, SPF, DKIM (from the keys on disk), DMARC, and\n"
	  "the PTR record your VPS provider must set. Twice: as zone-file lines, and\n"
	  "as a table (type, host, value) to paste into a registrar's form.\n"
	  "  --strict  SPF \"v=spf1 mx -all\" (fail) instead of \"~all\" (soft fail)\n"
	  "The public addresses come from TEGAMI_PUBLIC_IPV4 / TEGAMI_PUBLIC_IPV6; when\n"
	  "they are not set, a placeholder is printed and a note says how to find them.\n"
	  "  --check   check what is published instead (`tegami check`)\n" },
	{ NULL, "check", cmd_check,
	  "check [--quiet] [--strict] [<DOMAIN>]",
	  "Checks what is published against what this server needs, for each local\n"
	  "domain (or DOMAIN), with the resolver the server uses (TEGAMI_DNS_SERVERS\n"
	  "or /etc/resolv.conf), and prints one line per check, OK, WARN or FAIL:\n"
	  "  A/AAAA of the host name = TEGAMI_PUBLIC_IPV4/IPV6; the PTR of each address\n"
	  "  names the host name and resolves back; the MX points at the host name;\n"
	  "  one SPF record that passes this server (tegami's own SPF evaluator); each\n"
	  "  DKIM key on disk published as it is; a valid DMARC record (or the\n"
	  "  organizational domain's), its report address deliverable; the TLS\n"
	  "  certificate the server would serve names every MX host name and is in\n"
	  "  date; outbound port 25 reaches the mail hosts of TEGAMI_CHECK_PORT25_DOMAIN\n"
	  "  (default gmail.com; TEGAMI_CHECK_TIMEOUT seconds, default 5); the\n"
	  "  LISTEN_SMTP/SUBMISSION/SUBMISSIONS/IMAPS addresses answer.\n"
	  "Under every line that is not OK: what is published, what it should be, and\n"
	  "the record to publish (or what to do) instead.\n"
	  "  --quiet   only the problems; nothing at all when everything is OK\n"
	  "  --strict  suggest SPF \"v=spf1 mx -all\" (as `dns --strict`)\n"
	  "Exit status 0 when nothing FAILs (warnings alone are 0), 1 when something\n"
	  "does. `dns --check` is the same command.\n" },
	{ NULL, "status", cmd_status,
	  "status",
	  "Shows the running server: the master, its listeners and every worker with\n"
	  "its connections, transactions and counters (asked over the control socket\n"
	  "STATE_DIR/tegami/control.sock).\n" },
	{ "queue", "list", cmd_queue_list,
	  "queue list",
	  "Lists the outbound queue (like postqueue -p): id (! = held), size, arrival\n"
	  "time and sender, then each recipient with its state, attempts, next try\n"
	  "and the last reply.\n" },
	{ "queue", "flush", cmd_queue_flush,
	  "queue flush",
	  "Tries every deferred recipient now (asks the queue worker).\n" },
	{ "queue", "delete", cmd_queue_entry,
	  "queue delete <ID>...",
	  "Removes entries from the queue without a bounce.\n" },
	{ "queue", "hold", cmd_queue_entry,
	  "queue hold <ID>...",
	  "Keeps entries in the queue without trying them until released.\n" },
	{ "queue", "release", cmd_queue_entry,
	  "queue release <ID>...",
	  "Lets held entries be tried again.\n" },
	{ NULL, "fail2ban", cmd_fail2ban,
	  "fail2ban [ban|unban <IP>|status|log]",
	  "Lists the addresses banned for failed logins (SMTP AUTH, IMAP, POP3), or\n"
	  "bans / unbans one by hand (STATE_DIR/tegami/fail2ban.db; the server sees\n"
	  "the change within a second). A ban by hand lasts FAIL2BAN_BANTIME.\n"
	  "  status  the rule and the bans, laid out as fail2ban-client status\n"
	  "  log     there is no fail2ban.log: says where the ban lines are logged\n" },
	{ "debug", "show-mail-logs", cmd_debug_show_mail_logs,
	  "debug show-mail-logs",
	  "tegami keeps no /var/log/mail/mail.log: this says where its log is (it\n"
	  "writes to standard error: docker logs, journalctl) and exits 1.\n" },
	{ "debug", "login", cmd_debug_login,
	  "debug login [<COMMAND>...]",
	  "Opens a shell (bash, else sh) with CONFIG_DIR, MAIL_DIR and STATE_DIR set\n"
	  "as tegami reads them, or runs the words given as one command line in it.\n" },
	{ "debug", "fetchmail", cmd_debug_fetchmail,
	  "debug fetchmail",
	  "tegami has no fetchmail: says so and exits 1.\n" },
	{ "debug", "getmail", cmd_debug_fetchmail,
	  "debug getmail",
	  "tegami has no getmail: says so and exits 1.\n" },
	{ NULL, "junk", cmd_junk,
	  "junk train spam|ham <FILE|DIR|-> [<ACCOUNT>]",
	  "Trains the junk filter with one message (a file, or - for stdin), or with\n"
	  "every file of a directory (e.g. a Maildir's .Junk/cur): the global store,\n"
	  "and ACCOUNT's own store when given. Training a message again as the other\n"
	  "class moves it.\n" },
	{ NULL, "help", NULL,
	  "help [<COMMAND>]",
	  "Prints this overview, or the help of one command.\n" },
	{ NULL, "version", NULL,
	  "version",
	  "Prints tegami's version.\n" },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
print_overview(FILE *out, const char *prog)
{
	fprintf(out,
	    "%s - tegami's administration commands (docker-mailserver's `setup`)\n"
	    "\n"
	    "usage: %s <COMMAND> [<ARGUMENTS>...]\n"
	    "       %s <COMMAND> --help\n"
	    "\n"
	    "commands:\n", prog, prog, prog);
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(out, "    %s %s\n", prog, commands[i].usage);
	fprintf(out,
	    "    tegami serve                run the mail server\n"
	    "\n"
	    "Configuration comes from the environment and the env file\n"
	    "(TEGAMI_ENV_FILE): CONFIG_DIR (default /tmp/docker-mailserver) holds the\n"
	    "docker-mailserver files, MAIL_DIR (default /var/mail) the mailboxes.\n"
	    "Every change is written to a temporary file and renamed into place under\n"
	    "a lock (CONFIG_DIR/.tegami.lock); a running server notices it by itself.\n"
	    "\n"
	    "exit status: 0 success, 1 bad arguments or failure, 2 unknown command.\n"
	    "See docs/cli.md for the file formats.\n");
}

static void
print_command_help(FILE *out, const char *prog, const struct cli_cmd *c)
{
	fprintf(out, "usage: %s %s\n\n%s", prog, c->usage, c->help);
}

static void
print_group_help(FILE *out, const char *prog, const char *group)
{
	fprintf(out, "usage:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (commands[i].group != NULL &&
		    strcmp(commands[i].group, group) == 0)
			fprintf(out, "    %s %s\n", prog, commands[i].usage);
	fprintf(out, "\n`%s %s <SUBCOMMAND> --help` says more.\n", prog, group);
}

static bool
is_group(const char *word)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (commands[i].group != NULL &&
		    strcmp(commands[i].group, word) == 0)
			return true;
	return false;
}

static const struct cli_cmd *
find_command(const char *group, const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++) {
		const struct cli_cmd *c = &commands[i];

		if (name == NULL || strcmp(c->name, name) != 0)
			continue;
		if ((group == NULL) != (c->group == NULL))
			continue;
		if (group != NULL && strcmp(group, c->group) != 0)
			continue;
		return c;
	}
	return NULL;
}

static bool
wants_help(int argc, char **argv)
{
	if (argc >= 1 && (strcmp(argv[0], "help") == 0 ||
	    strcmp(argv[0], "-h") == 0))
		return true;
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0)
			return true;
	return false;
}

static int
unknown(const char *prog, int argc, char **argv)
{
	char line[256] = "";

	for (int i = 0; i < argc && i < 3; i++) {
		if (i > 0)
			strncat(line, " ", sizeof(line) - strlen(line) - 1);
		strncat(line, argv[i], sizeof(line) - strlen(line) - 1);
	}
	fprintf(stderr, "%s: unknown command '%s'; try '%s help'\n", prog,
	    line, prog);
	return CLI_UNKNOWN;
}

static int
help_command(const char *prog, int argc, char **argv)
{
	const struct cli_cmd *c;

	if (argc == 0) {
		print_overview(stdout, prog);
		return CLI_OK;
	}
	if (argc >= 2 && (c = find_command(argv[0], argv[1])) != NULL) {
		print_command_help(stdout, prog, c);
		return CLI_OK;
	}
	if (is_group(argv[0])) {
		print_group_help(stdout, prog, argv[0]);
		return CLI_OK;
	}
	if ((c = find_command(NULL, argv[0])) != NULL) {
		print_command_help(stdout, prog, c);
		return CLI_OK;
	}
	return unknown(prog, argc, argv);
}

int
cli_main(int argc, char **argv, int as_setup)
{
	const char *prog = as_setup ? "setup" : "tegami";
	const struct cli_cmd *c;
	struct cli cli;
	char *err = NULL;
	int sub, r;

	if (argc < 2) {
		print_overview(stdout, prog);
		return CLI_OK;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)
		return help_command(prog, argc - 2, argv + 2);
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
		printf("tegami %s\n", TEGAMI_VERSION);
		return CLI_OK;
	}
	if (is_group(argv[1])) {
		if (argc >= 3 && (strcmp(argv[2], "--help") == 0 ||
		    strcmp(argv[2], "help") == 0 || strcmp(argv[2], "-h") == 0)) {
			print_group_help(stdout, prog, argv[1]);
			return CLI_OK;
		}
		c = find_command(argv[1], argc >= 3 ? argv[2] : NULL);
		sub = 2;
	} else {
		c = find_command(NULL, argv[1]);
		sub = 1;
	}
	if (c == NULL || c->fn == NULL)
		return unknown(prog, argc - 1, argv + 1);
	/* config dkim's options come in "name value" pairs, and a "help" in
	   a name's place prints the help (docker-mailserver's open-dkim) */
	if (c->fn == cmd_config_dkim)
		for (int i = sub + 1; i < argc; i += 2)
			if (strcmp(argv[i], "help") == 0) {
				print_command_help(stdout, prog, c);
				return CLI_OK;
			}
	if (wants_help(argc - sub - 1, argv + sub + 1)) {
		print_command_help(stdout, prog, c);
		return CLI_OK;
	}

	memset(&cli, 0, sizeof(cli));
	cli.prog = prog;
	cli.lock_fd = -1;
	/* Commands print for people; log lines (if any) only for errors. */
	log_set_level(LOG_ERROR);
	cli.set = settings_load(NULL, environ, &err);
	if (cli.set == NULL) {
		fprintf(stderr, "%s: error: %s\n", prog, err);
		free(err);
		return CLI_FAIL;
	}
	cli.config_dir = cli.set->config_dir;
	cli.mail_dir = cli.set->mail_dir;
	r = c->fn(&cli, argc - sub, argv + sub);
	if (cli.lock_fd >= 0)
		close(cli.lock_fd);
	settings_free(&cli.set);
	return r;
}

int
cli_error(struct cli *cli, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: error: ", cli->prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CLI_FAIL;
}

void
cli_note(struct cli *cli, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", cli->prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

char *
cli_path(struct cli *cli, const char *name)
{
	return xasprintf("%s/%s", cli->config_dir, name);
}

int
cli_begin_edit(struct cli *cli)
{
	char *err = NULL;

	if (cli->lock_fd >= 0)
		return 0;
	cli->lock_fd = cli_lock(cli->config_dir, CLI_LOCK_TIMEOUT_MS, &err);
	if (cli->lock_fd < 0) {
		cli_error(cli, "%s", err);
		free(err);
		return -1;
	}
	return 0;
}

int
cli_open(struct cli *cli, const char *name, enum dbfile_delim delim,
    mode_t new_mode, struct dbfile **f_r)
{
	char *path = cli_path(cli, name), *err = NULL;
	int r = dbfile_open(path, delim, new_mode, f_r, &err);

	free(path);
	if (r < 0) {
		cli_error(cli, "%s", err);
		free(err);
		return -1;
	}
	if (new_mode == MODE_SECRET)
		dbfile_set_new_group(*f_r,
		    (gid_t)config_num(cli->set->cfg, "DMS_VMAIL_GID"));
	return 0;
}

int
cli_commit(struct cli *cli, struct dbfile *f)
{
	char *err = NULL;

	if (dbfile_commit(f, &err) < 0) {
		cli_error(cli, "%s", err);
		free(err);
		return -1;
	}
	return 0;
}

char *
cli_address_arg(struct cli *cli, const char *arg, bool alias_key)
{
	char *addr = str_lower(xstrdup(arg));
	const char *why;

	if ((alias_key ? check_alias_key(addr, &why) :
	    check_address(addr, &why)) < 0) {
		cli_error(cli, "'%s' %s", arg, why);
		free(addr);
		return NULL;
	}
	return addr;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char **
cli_local_domains(struct cli *cli)
{
	struct dbfile *acc = NULL, *virt = NULL;
	char **out = NULL, key[512];
	size_t n = 0, cap = 0;

	if (cli_open(cli, DB_ACCOUNTS, DBFILE_DELIM_PIPE, MODE_SECRET, &acc) < 0 ||
	    cli_open(cli, DB_VIRTUAL, DBFILE_DELIM_SPACE, MODE_PUBLIC, &virt) < 0) {
		dbfile_free(&acc);
		return NULL;
	}
	for (int pass = 0; pass < 2; pass++) {
		struct dbfile *f = pass == 0 ? acc : virt;

		for (size_t i = 0; i < dbfile_count(f); i++) {
			const char *at;

			if (!dbfile_key(f, i, key, sizeof(key)) ||
			    (at = strrchr(key, '@')) == NULL ||
			    !check_domain(at + 1))
				continue;
			if (n + 2 > cap) {
				cap = cap == 0 ? 16 : cap * 2;
				out = xreallocarray(out, cap, sizeof(*out));
			}
			out[n++] = str_lower(xstrdup(at + 1));
		}
	}
	dbfile_free(&acc);
	dbfile_free(&virt);
	if (out == NULL)
		out = xcalloc(1, sizeof(*out));
	qsort(out, n, sizeof(*out), cmp_str);
	/* Drop duplicates in place. */
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		if (w > 0 && strcmp(out[w - 1], out[i]) == 0) {
			free(out[i]);
			continue;
		}
		out[w++] = out[i];
	}
	out[w] = NULL;
	return out;
}
