#include "lib/config.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_FILE_MAX (1024 * 1024)
#define CONFIG_SECRET_MAX (64 * 1024)

struct config_value {
	const struct config_def *def;
	char *value;		/* never NULL after load */
	char *source;
	bool set;
	unsigned long long num;
	bool b;
};

struct config_extra {
	char *name;
	char *source;
};

struct config {
	struct config_value *values;
	size_t count;
	struct config_extra *extra;	/* keys in the file the table lacks */
	size_t extra_count;
};

int
config_parse_bool(const char *s, bool *v_r)
{
	static const char *const yes[] = { "1", "yes", "true", "on" };
	static const char *const no[] = { "0", "no", "false", "off" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*v_r = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*v_r = false;
			return 0;
		}
	}
	return -1;
}

static struct config_value *
config_find(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->count; i++)
		if (strcmp(cfg->values[i].def->name, name) == 0)
			return &cfg->values[i];
	return NULL;
}

static const char *
env_lookup(char *const *env, const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; env != NULL && env[i] != NULL; i++)
		if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
			return env[i] + n + 1;
	return NULL;
}

static void
value_set(struct config_value *v, const char *value, char *source)
{
	free(v->value);
	free(v->source);
	v->value = xstrdup(value);
	v->source = source;
	v->set = true;
}

static char *
unquote(char *s)
{
	size_t n = strlen(s);

	if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0]) {
		s[n - 1] = '\0';
		return s + 1;
	}
	return s;
}

static int
load_file(struct config *cfg, const char *file, bool must_exist,
    char **error_r)
{
	FILE *fp = fopen(file, "r");
	char *line = NULL;
	size_t cap = 0, total = 0;
	ssize_t n;
	unsigned int lineno = 0;

	if (fp == NULL) {
		if (errno == ENOENT && !must_exist)
			return 0;
		*error_r = xasprintf("cannot read configuration file %s: %s; "
		    "fix the path or its permissions", file, strerror(errno));
		return -1;
	}
	while ((n = getline(&line, &cap, fp)) >= 0) {
		char *p, *eq, *key, *val;
		struct config_value *v;

		lineno++;
		total += (size_t)n;
		if (total > CONFIG_FILE_MAX) {
			*error_r = xasprintf("%s: file larger than %d bytes; "
			    "is it the right file?", file, CONFIG_FILE_MAX);
			goto fail;
		}
		p = str_trim(line);
		if (*p == '\0' || *p == '#')
			continue;
		if (str_has_prefix(p, "export "))
			p = str_trim(p + 7);
		eq = strchr(p, '=');
		if (eq == NULL) {
			*error_r = xasprintf("%s:%u: line is not KEY=VALUE: "
			    "fix or remove it", file, lineno);
			goto fail;
		}
		*eq = '\0';
		key = str_trim(p);
		val = unquote(str_trim(eq + 1));
		v = config_find(cfg, key);
		if (v == NULL) {
			cfg->extra = xreallocarray(cfg->extra,
			    cfg->extra_count + 1, sizeof(*cfg->extra));
			cfg->extra[cfg->extra_count].name = xstrdup(key);
			cfg->extra[cfg->extra_count].source =
			    xasprintf("%s:%u", file, lineno);
			cfg->extra_count++;
			continue;
		}
		value_set(v, val, xasprintf("%s:%u", file, lineno));
	}
	free(line);
	fclose(fp);
	return 0;
fail:
	free(line);
	fclose(fp);
	return -1;
}

static int
read_secret(const char *path, char **value_r, char **error_r)
{
	FILE *fp = fopen(path, "r");
	char buf[CONFIG_SECRET_MAX + 1];
	size_t n;

	if (fp == NULL) {
		*error_r = xasprintf("cannot read %s: %s", path, strerror(errno));
		return -1;
	}
	n = fread(buf, 1, sizeof(buf), fp);
	fclose(fp);
	if (n > CONFIG_SECRET_MAX) {
		*error_r = xasprintf("%s is larger than %d bytes", path,
		    CONFIG_SECRET_MAX);
		return -1;
	}
	buf[n] = '\0';
	/* A secret file usually ends in a newline that is not part of it. */
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	*value_r = xstrdup(buf);
	return 0;
}

/* "25M" -> 26214400 (k, M, G: powers of 1024); a plain number is bytes. */
static int
parse_size(const char *s, unsigned long long *v_r)
{
	size_t len = strlen(s);
	unsigned int shift = 0;
	char num[32];

	if (len == 0 || len >= sizeof(num))
		return -1;
	switch (s[len - 1]) {
	case 'k': case 'K':
		shift = 10;
		break;
	case 'm': case 'M':
		shift = 20;
		break;
	case 'g': case 'G':
		shift = 30;
		break;
	}
	if (shift > 0)
		len--;
	memcpy(num, s, len);
	num[len] = '\0';
	if (str_to_ullong(num, v_r) < 0)
		return -1;
	if (shift > 0 && (*v_r >> (64 - shift)) != 0)
		return -1;
	*v_r <<= shift;
	return 0;
}

/*
 * An empty number, switch or choice is its default (docker-mailserver's
 * ${KEY:=default}); the source still says where the empty value was.
 */
static void
empty_is_default(struct config_value *v)
{
	if (*v->value != '\0' || v->def->def == NULL || *v->def->def == '\0')
		return;
	free(v->value);
	v->value = xstrdup(v->def->def);
}

static bool
in_choices(const char *choices, const char *value)
{
	char **list;
	bool found = false;

	if (choices == NULL)
		return false;
	list = str_split(choices, "|", NULL);
	for (char **c = list; *c != NULL && !found; c++)
		found = strcasecmp(*c, value) == 0;
	str_array_free(list);
	return found;
}

static int
validate(struct config_value *v, char **error_r)
{
	const struct config_def *d = v->def;
	char **choices;
	bool ok = false;
	int r;

	switch (d->type) {
	case CONFIG_STR:
	case CONFIG_UNSUPPORTED:
		return 0;
	case CONFIG_NUM:
	case CONFIG_SIZE:
		empty_is_default(v);
		if (*v->value == '\0') {
			v->num = d->min;
			return 0;
		}
		r = d->type == CONFIG_SIZE ? parse_size(v->value, &v->num) :
		    str_to_ullong(v->value, &v->num);
		if (r < 0 || v->num < d->min || v->num > d->max) {
			*error_r = xasprintf("%s=%s (%s): not a %s from %llu "
			    "to %llu; set %s to a whole number in that range%s%s%s",
			    d->name, v->value, v->source, d->type == CONFIG_SIZE ?
			    "size in bytes" : "number", d->min, d->max, d->name,
			    d->type == CONFIG_SIZE ? " (or with k, M or G)" : "",
			    d->help != NULL ? ": " : "",
			    d->help != NULL ? d->help : "");
			return -1;
		}
		return 0;
	case CONFIG_BOOL:
		empty_is_default(v);
		if (*v->value == '\0') {
			/* no default: off, as docker-mailserver's empty switches */
			v->b = false;
			return 0;
		}
		if (config_parse_bool(v->value, &v->b) < 0) {
			*error_r = xasprintf("%s=%s (%s): not a switch; set %s=1 "
			    "to turn it on or %s=0 to turn it off", d->name,
			    v->value, v->source, d->name, d->name);
			return -1;
		}
		return 0;
	case CONFIG_ENUM:
		if (*v->value == '\0' && d->choices[0] == '|')
			return 0;	/* the empty choice is allowed */
		empty_is_default(v);
		choices = str_split(d->choices, "|", NULL);
		for (char **c = choices; *c != NULL; c++) {
			if (strcasecmp(*c, v->value) == 0) {
				/* keep the table's spelling */
				free(v->value);
				v->value = xstrdup(*c);
				ok = true;
				break;
			}
		}
		str_array_free(choices);
		if (!ok) {
			*error_r = xasprintf("%s=%s (%s): not one of %s; set %s to "
			    "one of those%s%s%s", d->name, v->value, v->source,
			    d->choices, d->name, d->help != NULL ? " (" : "",
			    d->help != NULL ? d->help : "",
			    d->help != NULL ? ")" : "");
			return -1;
		}
		return 0;
	}
	return 0;
}

struct config *
config_load(const struct config_def *defs, const char *file, bool must_exist,
    char *const *env, char **error_r)
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	size_t n = 0;

	*error_r = NULL;
	while (defs[n].name != NULL)
		n++;
	cfg->values = xcalloc(n, sizeof(*cfg->values));
	cfg->count = n;
	for (size_t i = 0; i < n; i++) {
		cfg->values[i].def = &defs[i];
		/* an unsupported key's def is the switch it belongs to */
		cfg->values[i].value = xstrdup(defs[i].def != NULL &&
		    defs[i].type != CONFIG_UNSUPPORTED ? defs[i].def : "");
		cfg->values[i].source = xstrdup("default");
	}
	if (file != NULL && load_file(cfg, file, must_exist, error_r) < 0)
		goto fail;
	for (size_t i = 0; i < n; i++) {
		struct config_value *v = &cfg->values[i];
		char *fname = xasprintf("%s__FILE", v->def->name);
		const char *e = env_lookup(env, fname);

		if (e != NULL) {
			char *secret, *err;

			if (read_secret(e, &secret, &err) < 0) {
				*error_r = xasprintf("%s=%s: %s; point %s at a "
				    "readable file", fname, e, err, fname);
				free(err);
				free(fname);
				goto fail;
			}
			value_set(v, secret, xasprintf("%s (%s)", e, fname));
			free(secret);
		}
		free(fname);
		e = env_lookup(env, v->def->name);
		if (e != NULL)
			value_set(v, e, xstrdup("environment"));
		if (validate(v, error_r) < 0)
			goto fail;
	}
	return cfg;
fail:
	config_free(&cfg);
	return NULL;
}

void
config_free(struct config **cfgp)
{
	struct config *cfg = *cfgp;

	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->count; i++) {
		free(cfg->values[i].value);
		free(cfg->values[i].source);
	}
	for (size_t i = 0; i < cfg->extra_count; i++) {
		free(cfg->extra[i].name);
		free(cfg->extra[i].source);
	}
	free(cfg->extra);
	free(cfg->values);
	free(cfg);
	*cfgp = NULL;
}

static struct config_value *
config_need(const struct config *cfg, const char *name)
{
	struct config_value *v = config_find(cfg, name);

	if (v == NULL) {
		fprintf(stderr, "config key %s is not declared\n", name);
		abort();
	}
	return v;
}

const char *
config_str(const struct config *cfg, const char *name)
{
	return config_need(cfg, name)->value;
}

unsigned long long
config_num(const struct config *cfg, const char *name)
{
	return config_need(cfg, name)->num;
}

bool
config_bool(const struct config *cfg, const char *name)
{
	return config_need(cfg, name)->b;
}

bool
config_is_set(const struct config *cfg, const char *name)
{
	return config_need(cfg, name)->set;
}

const char *
config_source(const struct config *cfg, const char *name)
{
	return config_need(cfg, name)->source;
}

void
config_set(struct config *cfg, const char *name, const char *value)
{
	struct config_value *v = config_need(cfg, name);
	bool set = v->set;
	char *err = NULL;

	value_set(v, value, xstrdup(v->source));
	v->set = set;
	if (validate(v, &err) < 0)
		free(err);
}

/*
 * An unsupported key's condition (its def): NULL = always; "KEY" = the
 * switch KEY is on; "KEY=VALUE" = KEY has that value (any case).
 */
static bool
condition_holds(const struct config *cfg, const char *cond)
{
	const char *eq;
	const struct config_value *v;
	char name[128];
	bool on;

	if (cond == NULL)
		return true;
	eq = strchr(cond, '=');
	if (str_copy(name, sizeof(name), cond) < 0)
		return true;
	if (eq != NULL)
		name[eq - cond] = '\0';
	v = config_find(cfg, name);
	if (v == NULL)
		return true;
	if (eq != NULL)
		return strcasecmp(v->value, eq + 1) == 0;
	return config_parse_bool(v->value, &on) == 0 && on;
}

void
config_foreach_ignored(const struct config *cfg,
    void (*fn)(const char *, const char *, const char *, void *), void *ctx)
{
	for (size_t i = 0; i < cfg->count; i++) {
		const struct config_value *v = &cfg->values[i];

		if (v->def->type == CONFIG_UNSUPPORTED && v->set &&
		    *v->value != '\0' && !in_choices(v->def->choices, v->value) &&
		    condition_holds(cfg, v->def->def))
			fn(v->def->name, v->source, v->def->help, ctx);
	}
	for (size_t i = 0; i < cfg->extra_count; i++)
		fn(cfg->extra[i].name, cfg->extra[i].source, NULL, ctx);
}
