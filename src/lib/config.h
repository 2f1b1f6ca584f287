/*
 * config: KEY=VALUE settings in the mailserver.env format.
 *
 * Every key is declared once in a table of struct config_def (name, type,
 * default, bounds). Values come from, strongest first: the environment,
 * <KEY>__FILE in the environment (the value is that file's content, as
 * Docker secrets use it), the env file, the default. Lines in the file are
 * KEY=VALUE, optionally "export KEY=VALUE"; blank lines and lines starting
 * with # are skipped; a value in matching single or double quotes loses them.
 *
 * config_load() validates everything up front: a bad value fails the load
 * with one line naming the key, where it came from, and how to fix it.
 *
 * An empty value of a number, switch or choice means its default, as
 * docker-mailserver's ${KEY:=default} reads it: its mailserver.env template
 * leaves most keys empty ("DMS_VMAIL_UID="), and it must load unchanged.
 * An empty text value stays empty (LISTEN_SMTP= turns a listener off).
 */
#ifndef TEGAMI_CONFIG_H
#define TEGAMI_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

enum config_type {
	CONFIG_STR,		/* any text */
	CONFIG_NUM,		/* unsigned decimal within [min, max] */
	CONFIG_SIZE,		/* CONFIG_NUM in bytes, with an optional k/K, m/M or
				   g/G suffix (powers of 1024, as ClamAV's "25M") */
	CONFIG_BOOL,		/* 0/1 (also no/yes, false/true, off/on) */
	CONFIG_ENUM,		/* one of choices, "a|b|c" (case-insensitive) */
	CONFIG_UNSUPPORTED,	/* a docker-mailserver key tegami does not implement */
};

struct config_def {
	const char *name;
	enum config_type type;
	/*
	 * Default as text; NULL = empty. CONFIG_UNSUPPORTED: the condition
	 * for reporting it, NULL = always, "KEY" = when the switch KEY is on,
	 * "KEY=VALUE" = when KEY has that value.
	 */
	const char *def;
	unsigned long long min, max;	/* CONFIG_NUM */
	/*
	 * CONFIG_ENUM: the allowed values, "a|b|c". CONFIG_UNSUPPORTED: the
	 * values that ask for nothing tegami lacks ("0" for a switch that is
	 * off, docker-mailserver's default of a companion key), which are not
	 * reported; NULL = every non-empty value is reported.
	 */
	const char *choices;
	/*
	 * CONFIG_UNSUPPORTED: what tegami does instead (logged once at start
	 * when the key is set). Other types: a short description for errors.
	 */
	const char *help;
};

struct config;

/*
 * Loads and validates. file may be NULL (no env file); a missing file is an
 * error only when must_exist. env is an environ-style array (NULL = none).
 * Returns NULL and a malloc'd one-line message in *error_r on failure.
 */
struct config *config_load(const struct config_def *defs, const char *file,
    bool must_exist, char *const *env, char **error_r);
void config_free(struct config **cfg);

const char *config_str(const struct config *cfg, const char *name);
unsigned long long config_num(const struct config *cfg, const char *name);
bool config_bool(const struct config *cfg, const char *name);
/* Was the key given (file or environment), rather than defaulted? */
bool config_is_set(const struct config *cfg, const char *name);
/* "environment", "<file>:<line>", "<path> (<KEY>__FILE)" or "default". */
const char *config_source(const struct config *cfg, const char *name);
/* Overrides a value after loading (tests, derived defaults). Not validated. */
void config_set(struct config *cfg, const char *name, const char *value);

/*
 * Calls fn for every CONFIG_UNSUPPORTED key that is set to a value other
 * than empty or one of its quiet values (config_def.choices), and for
 * every key in the file that the table does not know.
 */
void config_foreach_ignored(const struct config *cfg,
    void (*fn)(const char *name, const char *source, const char *instead,
    void *ctx), void *ctx);

/* Parses a boolean as config does; -1 if it is not one. */
int config_parse_bool(const char *s, bool *v_r);

#endif
