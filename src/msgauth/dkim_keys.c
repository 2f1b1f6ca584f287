/* The OpenDKIM KeyTable / SigningTable layout. */
#include "msgauth/dkim_keys.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "lib/file.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "msgauth/dkim_sign.h"

#define DKIM_MAX_TABLE_FILE (4 * 1024 * 1024)
#define DKIM_MAX_KEYS 10000

struct keyset_key {
	char *name;	/* KeyTable key name, or NULL */
	struct dkim_key *key;
};

struct signing_rule {
	char *pattern;	/* lower-cased */
	size_t key;	/* index into keys */
};

struct watched {
	char *path;
	struct file_stamp stamp;
};

struct dkim_keyset {
	struct keyset_key *keys;
	size_t key_count;
	struct signing_rule *rules;
	size_t rule_count;
	bool have_rules;
	struct watched *watched;
	size_t watched_count;
};

static void
watch(struct dkim_keyset *ks, const char *path)
{
	ks->watched = xreallocarray(ks->watched, ks->watched_count + 1,
	    sizeof(*ks->watched));
	ks->watched[ks->watched_count].path = xstrdup(path);
	file_stamp_get(path, &ks->watched[ks->watched_count].stamp);
	ks->watched_count++;
}

static int
add_key(struct dkim_keyset *ks, const char *name, const char *path,
    const char *domain, const char *selector, char **error_r)
{
	struct dkim_key *key;

	if (ks->key_count == DKIM_MAX_KEYS) {
		*error_r = xstrdup("too many DKIM keys");
		return -1;
	}
	if (dkim_key_load(path, domain, selector, &key, error_r) < 0)
		return -1;
	watch(ks, path);
	ks->keys = xreallocarray(ks->keys, ks->key_count + 1, sizeof(*ks->keys));
	ks->keys[ks->key_count].name = name != NULL ? xstrdup(name) : NULL;
	ks->keys[ks->key_count].key = key;
	ks->key_count++;
	return 0;
}

/* "/etc/opendkim/keys/x" (the container path) -> "<config>/opendkim/keys/x". */
static char *
map_path(const char *config_dir, const char *path)
{
	if (str_has_prefix(path, "/etc/opendkim/"))
		return xasprintf("%s/opendkim/%s", config_dir,
		    path + strlen("/etc/opendkim/"));
	if (path[0] == '/')
		return xstrdup(path);
	return xasprintf("%s/opendkim/%s", config_dir, path);
}

/* Calls fn for each non-comment line split in fields. */
static int
read_table(const char *path, bool *exists_r,
    int (*fn)(struct dkim_keyset *, const char *, char **, size_t,
    unsigned int, char **), struct dkim_keyset *ks, const char *config_dir,
    char **error_r)
{
	char *data = NULL, *line, *next;
	unsigned int lineno = 0;
	size_t len;
	int ret = 0;

	*exists_r = false;
	if (file_read_all(path, DKIM_MAX_TABLE_FILE, &data, &len) < 0) {
		if (errno == ENOENT)
			return 0;
		*error_r = xasprintf("%s: cannot read (%m)", path);
		return -1;
	}
	*exists_r = true;
	watch(ks, path);
	for (line = data; line != NULL && ret == 0; line = next) {
		char *hash, **fields;
		size_t n;

		/* Not strtok: empty lines count for the line numbers. */
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		lineno++;
		if ((hash = strchr(line, '#')) != NULL)
			*hash = '\0';
		fields = str_split(line, " \t\r", &n);
		if (n > 0)
			ret = fn(ks, config_dir, fields, n, lineno, error_r);
		str_array_free(fields);
		if (ret < 0) {
			char *e = *error_r;

			*error_r = xasprintf("%s line %u: %s", path, lineno, e);
			free(e);
		}
	}
	free(data);
	return ret;
}

static int
keytable_line(struct dkim_keyset *ks, const char *config_dir, char **f,
    size_t n, unsigned int lineno, char **error_r)
{
	char **parts;
	size_t np;
	char *path;
	int ret;

	/* keyname domain:selector:path */
	if (n != 2) {
		*error_r = xstrdup("expected 'keyname domain:selector:keyfile'");
		return -1;
	}
	parts = str_split(f[1], ":", &np);
	if (np != 3) {
		str_array_free(parts);
		*error_r = xstrdup("expected 'domain:selector:keyfile'");
		return -1;
	}
	path = map_path(config_dir, parts[2]);
	ret = add_key(ks, f[0], path, parts[0], parts[1], error_r);
	free(path);
	str_array_free(parts);
	return ret;
}

static int
signingtable_line(struct dkim_keyset *ks, const char *config_dir, char **f,
    size_t n, unsigned int lineno, char **error_r)
{
	size_t k;

	if (n != 2) {
		*error_r = xstrdup("expected 'pattern keyname'");
		return -1;
	}
	for (k = 0; k < ks->key_count; k++)
		if (ks->keys[k].name != NULL &&
		    strcasecmp(ks->keys[k].name, f[1]) == 0)
			break;
	if (k == ks->key_count) {
		*error_r = xasprintf("key '%s' is not in the KeyTable", f[1]);
		return -1;
	}
	ks->rules = xreallocarray(ks->rules, ks->rule_count + 1,
	    sizeof(*ks->rules));
	ks->rules[ks->rule_count].pattern = str_lower(xstrdup(f[0]));
	ks->rules[ks->rule_count].key = k;
	ks->rule_count++;
	return 0;
}

/* No KeyTable: keys/<domain>/<selector>.private. */
static int
scan_keys_dir(struct dkim_keyset *ks, const char *keys_dir, char **error_r)
{
	struct dirent **domains = NULL;
	int nd, ret = 0;

	watch(ks, keys_dir);
	nd = scandir(keys_dir, &domains, NULL, alphasort);
	if (nd < 0)
		return 0;	/* no keys directory: no keys */
	for (int i = 0; i < nd; i++) {
		struct dirent **files = NULL;
		char *dir;
		int nf;

		if (domains[i]->d_name[0] == '.' || ret < 0) {
			free(domains[i]);
			continue;
		}
		dir = xasprintf("%s/%s", keys_dir, domains[i]->d_name);
		watch(ks, dir);
		nf = scandir(dir, &files, NULL, alphasort);
		for (int j = 0; j < nf; j++) {
			const char *name = files[j]->d_name;

			if (ret == 0 && name[0] != '.' &&
			    str_has_suffix(name, ".private")) {
				char *selector = xstrndup(name,
				    strlen(name) - strlen(".private"));
				char *path = xasprintf("%s/%s", dir, name);

				ret = add_key(ks, NULL, path, domains[i]->d_name,
				    selector, error_r);
				free(selector);
				free(path);
			}
			free(files[j]);
		}
		free(files);
		free(dir);
		free(domains[i]);
	}
	free(domains);
	return ret;
}

int
dkim_keyset_load(const char *config_dir, struct dkim_keyset **ks_r,
    char **error_r)
{
	struct dkim_keyset *ks = xcalloc(1, sizeof(*ks));
	char *keytable = xasprintf("%s/opendkim/KeyTable", config_dir);
	char *signingtable = xasprintf("%s/opendkim/SigningTable", config_dir);
	char *keys_dir = xasprintf("%s/opendkim/keys", config_dir);
	bool have_keytable;
	int ret;

	ret = read_table(keytable, &have_keytable, keytable_line, ks,
	    config_dir, error_r);
	if (ret == 0 && have_keytable) {
		ret = read_table(signingtable, &ks->have_rules,
		    signingtable_line, ks, config_dir, error_r);
	} else if (ret == 0) {
		watch(ks, signingtable);
		ret = scan_keys_dir(ks, keys_dir, error_r);
	}
	free(keytable);
	free(signingtable);
	free(keys_dir);
	if (ret < 0) {
		dkim_keyset_free(&ks);
		return -1;
	}
	*ks_r = ks;
	return 0;
}

void
dkim_keyset_free(struct dkim_keyset **ksp)
{
	struct dkim_keyset *ks = *ksp;

	if (ks == NULL)
		return;
	for (size_t i = 0; i < ks->key_count; i++) {
		free(ks->keys[i].name);
		dkim_key_free(&ks->keys[i].key);
	}
	for (size_t i = 0; i < ks->rule_count; i++)
		free(ks->rules[i].pattern);
	for (size_t i = 0; i < ks->watched_count; i++)
		free(ks->watched[i].path);
	free(ks->keys);
	free(ks->rules);
	free(ks->watched);
	free(ks);
	*ksp = NULL;
}

size_t
dkim_keyset_count(const struct dkim_keyset *ks)
{
	return ks->key_count;
}

static bool
rule_matches(const char *pattern, const char *addr, const char *domain)
{
	if (strchr(pattern, '@') == NULL && strchr(pattern, '*') == NULL)
		return strcmp(pattern, domain) == 0;
	return fnmatch(pattern, addr, 0) == 0;
}

static size_t
add_found(struct dkim_key **keys, size_t n, size_t max, struct dkim_key *key)
{
	for (size_t i = 0; i < n; i++)
		if (keys[i] == key)
			return n;
	if (n < max)
		keys[n++] = key;
	return n;
}

size_t
dkim_keyset_find(const struct dkim_keyset *ks, const char *from_addr,
    struct dkim_key **keys_r, size_t max)
{
	char *addr = str_lower(xstrdup(from_addr));
	const char *at = strrchr(addr, '@');
	const char *domain = at != NULL ? at + 1 : addr;
	size_t n = 0;

	if (ks->have_rules) {
		for (size_t i = 0; i < ks->rule_count; i++)
			if (rule_matches(ks->rules[i].pattern, addr, domain))
				n = add_found(keys_r, n, max,
				    ks->keys[ks->rules[i].key].key);
	} else {
		for (size_t i = 0; i < ks->key_count; i++)
			if (strcmp(dkim_key_domain(ks->keys[i].key), domain) == 0)
				n = add_found(keys_r, n, max, ks->keys[i].key);
	}
	free(addr);
	return n;
}

bool
dkim_keyset_changed(const struct dkim_keyset *ks)
{
	for (size_t i = 0; i < ks->watched_count; i++) {
		struct file_stamp now;

		file_stamp_get(ks->watched[i].path, &now);
		if (!file_stamp_equal(&now, &ks->watched[i].stamp))
			return true;
	}
	return false;
}
