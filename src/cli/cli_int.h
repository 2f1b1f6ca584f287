/*
 * cli internals: what the command files share. Each command file
 * (cmd_*.c) implements the handlers named in cli.c's command table.
 */
#ifndef TEGAMI_CLI_INT_H
#define TEGAMI_CLI_INT_H

#include "cli/dbfile.h"
#include "daemon/settings.h"
#include "msgauth/dkim_key.h"

#include <stdbool.h>

/* Exit codes, as docker-mailserver's setup. */
#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_UNKNOWN 2

/* How long a command waits for another one's lock. */
#define CLI_LOCK_TIMEOUT_MS 30000

struct cli {
	const char *prog;	/* "tegami" or "setup" */
	struct settings *set;
	const char *config_dir;
	const char *mail_dir;
	int lock_fd;		/* -1 until cli_begin_edit() */
};

/* One line "prog: error: ..." on stderr; returns CLI_FAIL. */
int cli_error(struct cli *cli, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* One line "prog: ..." on stderr (progress and notes). */
void cli_note(struct cli *cli, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* CONFIG_DIR/name, malloc'd. */
char *cli_path(struct cli *cli, const char *name);

/*
 * Takes the config-dir lock (see dbfile.h). 0, or -1 after printing why.
 * Released at exit.
 */
int cli_begin_edit(struct cli *cli);
/* Opens CONFIG_DIR/name as a dbfile; prints the error itself. */
int cli_open(struct cli *cli, const char *name, enum dbfile_delim delim,
    mode_t new_mode, struct dbfile **f_r);
/* Commits; prints the error itself. */
int cli_commit(struct cli *cli, struct dbfile *f);

/*
 * Lower-cases an address given on the command line and checks it with
 * check_address (alias: check_alias_key). Returns a malloc'd copy, or NULL
 * after printing "'<arg>' <reason>".
 */
char *cli_address_arg(struct cli *cli, const char *arg, bool alias_key);

/*
 * The password for a command: *arg if given (argv storage: wiped by
 * cli_password_wipe), else one line of stdin with --password-stdin, else
 * asked twice with no echo on a terminal. NULL after printing why.
 * The result is malloc'd: wipe and free it with cli_password_free().
 */
char *cli_password_get(struct cli *cli, char *arg, bool from_stdin);
void cli_password_free(char **pw);

/*
 * Asks a question on the terminal and reads one line (echoed). NULL when
 * stdin is not a terminal or at EOF.
 */
char *cli_ask(const char *prompt);

/* Is stdin a terminal? */
bool cli_interactive(void);

/*
 * The docker-mailserver "vhost" list: the domain of every account and of
 * every alias key with an @, sorted, without duplicates. NULL-terminated
 * (str_array_free). NULL after printing an error.
 */
char **cli_local_domains(struct cli *cli);

/*
 * The domains `dns` and `check` cover: only_arg (checked, lower-cased),
 * else the local domains, else (none yet, with a note) the host name's
 * domain. NULL after printing an error; cmd names the command in it.
 */
char **cli_record_domains(struct cli *cli, const char *only_arg,
    const char *cmd);

/* A DKIM key on disk: CONFIG_DIR/opendkim/keys/<domain>/<selector>.private. */
struct cli_dkim_key {
	char *selector;
	char *path;
	char *record;		/* the TXT value, derived from the private key */
	enum dkim_key_type type;
	unsigned int bits;
};
/*
 * The usable keys of domain, by selector; a file that is no usable key
 * gets a note on stderr and is skipped. Free with cli_dkim_keys_free.
 */
struct cli_dkim_key *cli_dkim_keys(struct cli *cli, const char *domain,
    size_t *n_r);
void cli_dkim_keys_free(struct cli_dkim_key *keys, size_t n);

/* Command handlers: argv[0] is the subcommand's own name ("add", "dkim"). */
int cmd_email_add(struct cli *cli, int argc, char **argv);
int cmd_email_update(struct cli *cli, int argc, char **argv);
int cmd_email_del(struct cli *cli, int argc, char **argv);
int cmd_email_restrict(struct cli *cli, int argc, char **argv);
int cmd_email_list(struct cli *cli, int argc, char **argv);
int cmd_alias_add(struct cli *cli, int argc, char **argv);
int cmd_alias_del(struct cli *cli, int argc, char **argv);
int cmd_alias_list(struct cli *cli, int argc, char **argv);
int cmd_quota_set(struct cli *cli, int argc, char **argv);
int cmd_quota_del(struct cli *cli, int argc, char **argv);
int cmd_master_add(struct cli *cli, int argc, char **argv);
int cmd_master_update(struct cli *cli, int argc, char **argv);
int cmd_master_del(struct cli *cli, int argc, char **argv);
int cmd_master_list(struct cli *cli, int argc, char **argv);
int cmd_config_dkim(struct cli *cli, int argc, char **argv);
int cmd_relay_add_domain(struct cli *cli, int argc, char **argv);
int cmd_relay_add_auth(struct cli *cli, int argc, char **argv);
int cmd_relay_exclude_domain(struct cli *cli, int argc, char **argv);
int cmd_dns(struct cli *cli, int argc, char **argv);
int cmd_check(struct cli *cli, int argc, char **argv);
int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_queue_list(struct cli *cli, int argc, char **argv);
int cmd_queue_flush(struct cli *cli, int argc, char **argv);
int cmd_queue_entry(struct cli *cli, int argc, char **argv);
int cmd_fail2ban(struct cli *cli, int argc, char **argv);
int cmd_junk(struct cli *cli, int argc, char **argv);
int cmd_debug_fetchmail(struct cli *cli, int argc, char **argv);
int cmd_debug_show_mail_logs(struct cli *cli, int argc, char **argv);
int cmd_debug_login(struct cli *cli, int argc, char **argv);

/* The files, as docker-mailserver names them in CONFIG_DIR. */
#define DB_ACCOUNTS "postfix-accounts.cf"
#define DB_VIRTUAL "postfix-virtual.cf"
#define DB_QUOTAS "dovecot-quotas.cf"
#define DB_MASTERS "dovecot-masters.cf"
#define DB_RELAYMAP "postfix-relaymap.cf"
#define DB_SASL "postfix-sasl-password.cf"
#define DB_SEND_ACCESS "postfix-send-access.cf"
#define DB_RECEIVE_ACCESS "postfix-receive-access.cf"

/* Modes of files created new: hashes and relay passwords are not for everyone. */
#define MODE_SECRET 0640
#define MODE_PASSWORDS 0600
#define MODE_PUBLIC 0644

#endif
