/*
 * accounts: docker-mailserver's account files, read side. The rules are in
 * accounts.h; this file keeps the tables and walks them.
 */
#include "auth/accounts.h"
#include "auth/password.h"
#include "lib/buf.h"
#include "lib/file.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Bound on how many aliases one recipient may walk through in total. */
#define RESOLVE_MAX_STEPS 10000
/* A regexp target after $N substitution. */
#define REGEXP_MAX_RESULT 1024

/* Any valid SHA512-CRYPT hash (DMS's documented example): verified
 * against for an unknown login so a miss costs what a hit costs. */
#define DUMMY_HASH "{SHA512-CRYPT}$6$W4rxRQwI6HNMt9n3$riCi5/OqUxnU8eZsOlZwoCnrNgu1gBGPkJc.ER.LhJCu7sOg9i1kBrRIistlBIp938GdBgMlYuoXYUU5A4Qiv0"

enum acc_file {
	FILE_ACCOUNTS,
	FILE_VIRTUAL,
	FILE_REGEXP,
	FILE_QUOTAS,
	FILE_MASTERS,
	FILE_SEND_ACCESS,
	FILE_RECEIVE_ACCESS,
	FILE_LOCAL_ALIASES,
	FILE_COUNT
};

static const char *const file_names[FILE_COUNT] = {
	[FILE_ACCOUNTS] = "postfix-accounts.cf",
	[FILE_VIRTUAL] = "postfix-virtual.cf",
	[FILE_REGEXP] = "postfix-regexp.cf",
	[FILE_QUOTAS] = "dovecot-quotas.cf",
	[FILE_MASTERS] = "dovecot-masters.cf",
	[FILE_SEND_ACCESS] = "postfix-send-access.cf",
	[FILE_RECEIVE_ACCESS] = "postfix-receive-access.cf",
	[FILE_LOCAL_ALIASES] = "postfix-aliases.cf",
};

/* A local alias target that throws the mail away (aliases(5)). */
#define DISCARD_TARGET "/dev/null"

/* A string-keyed hash table with linear probing; it owns its keys. */
struct strmap_slot {
	char *key;
	void *value;
};

struct strmap {
	struct strmap_slot *slots;
	size_t cap;	/* power of two, or 0 */
	size_t count;
};

struct account {
	char *address;
	char *hash;
	char *extra;		/* the third field, verbatim, or NULL */
	char *maildir;
	uint64_t quota;
};

struct alias {
	char **targets;		/* NULL-terminated, lower-case */
};

struct regexp_alias {
	regex_t re;
	unsigned int line;
	char **targets;
};

struct accounts {
	atomic_uint refcount;
	struct strmap accounts;		/* address -> struct account */
	struct strmap aliases;		/* key -> struct alias */
	struct strmap domains;		/* domain -> (void *)1 */
	struct strmap masters;		/* name -> char *hash */
	struct strmap send_access;	/* key -> char *action */
	struct strmap receive_access;
	struct strmap local_aliases;	/* local part -> struct alias */
	struct strmap local_domains;	/* domain -> (void *)1 */
	char *hostname;			/* for bare names in local aliases */
	struct regexp_alias *regexps;
	size_t regexp_count;
	size_t alias_count;
};

/* ---- strmap ---- */

static uint64_t
strmap_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static struct strmap_slot *
strmap_find(const struct strmap *m, const char *key)
{
	size_t i;

	if (m->cap == 0)
		return NULL;
	i = strmap_hash(key) & (m->cap - 1);
	while (m->slots[i].key != NULL) {
		if (strcmp(m->slots[i].key, key) == 0)
			return &m->slots[i];
		i = (i + 1) & (m->cap - 1);
	}
	return NULL;
}

static void *
strmap_get(const struct strmap *m, const char *key)
{
	struct strmap_slot *s = strmap_find(m, key);

	return s == NULL ? NULL : s->value;
}

static void
strmap_insert_slot(struct strmap_slot *slots, size_t cap, char *key,
    void *value)
{
	size_t i = strmap_hash(key) & (cap - 1);

	while (slots[i].key != NULL)
		i = (i + 1) & (cap - 1);
	slots[i].key = key;
	slots[i].value = value;
}

/* Adds key (copied) -> value; the key must not be present. */
static void
strmap_put(struct strmap *m, const char *key, void *value)
{
	if ((m->count + 1) * 2 > m->cap) {
		size_t ncap = m->cap == 0 ? 16 : m->cap * 2;
		struct strmap_slot *ns = xcalloc(ncap, sizeof(*ns));

		for (size_t i = 0; i < m->cap; i++)
			if (m->slots[i].key != NULL)
				strmap_insert_slot(ns, ncap, m->slots[i].key,
				    m->slots[i].value);
		free(m->slots);
		m->slots = ns;
		m->cap = ncap;
	}
	strmap_insert_slot(m->slots, m->cap, xstrdup(key), value);
	m->count++;
}

static void
strmap_free(struct strmap *m, void (*free_value)(void *))
{
	for (size_t i = 0; i < m->cap; i++) {
		if (m->slots[i].key == NULL)
			continue;
		free(m->slots[i].key);
		if (free_value != NULL)
			free_value(m->slots[i].value);
	}
	free(m->slots);
	memset(m, 0, sizeof(*m));
}

static void
account_free(void *p)
{
	struct account *a = p;

	free(a->address);
	if (a->hash != NULL)
		str_wipe(a->hash, strlen(a->hash));
	free(a->hash);
	free(a->extra);
	free(a->maildir);
	free(a);
}

static void
alias_free(void *p)
{
	struct alias *a = p;

	str_array_free(a->targets);
	free(a);
}

/* ---- validation ---- */

/* A local part or domain that is safe as a path component and has no
 * byte that could break a table line or a log line. */
static bool
name_ok(const char *s, size_t len)
{
	if (len == 0 || len > 255)
		return false;
	if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= ' ' || c == 0x7f || c == '/' || c == '\\' ||
		    c == '|' || c == ',' || c == ':' || c == '"')
			return false;
	}
	return true;
}

/* "local@domain" with one '@' and safe parts. */
static bool
address_ok(const char *addr)
{
	const char *at = strchr(addr, '@');

	if (at == NULL || strchr(at + 1, '@') != NULL)
		return false;
	return name_ok(addr, (size_t)(at - addr)) &&
	    name_ok(at + 1, strlen(at + 1)) && at[1] != '.';
}

/* ---- loading ---- */

struct line_iter {
	const char *file;
	bool quiet;		/* the file did not change since it was logged */
	char *p;		/* rest of the data */
	char *end;
	unsigned int lineno;
};

/*
 * The next line that is not blank or a comment, trimmed, NUL-terminated
 * in place. NULL at the end. A line holding a NUL byte is reported and
 * skipped.
 */
static char *
line_next(struct line_iter *it)
{
	while (it->p < it->end) {
		char *line = it->p, *nl = memchr(line, '\n', (size_t)(it->end - line));
		char *lend = nl != NULL ? nl : it->end;
		char *t;

		it->p = nl != NULL ? nl + 1 : it->end;
		it->lineno++;
		if (memchr(line, '\0', (size_t)(lend - line)) != NULL) {
			if (!it->quiet)
				log_warn("event=accounts_bad_line file=%s line=%u reason=\"NUL byte\"",
			    it->file, it->lineno);
			continue;
		}
		*lend = '\0';
		t = str_trim(line);
		if (*t == '\0' || *t == '#')
			continue;
		return t;
	}
	return NULL;
}

static void
bad_line(const struct line_iter *it, const char *reason)
{
	if (!it->quiet)
		log_warn("event=accounts_bad_line file=%s line=%u reason=\"%s\"",
		    it->file, it->lineno, reason);
}

static void
add_domain(struct accounts *acc, const char *domain)
{
	if (strmap_get(&acc->domains, domain) == NULL)
		strmap_put(&acc->domains, domain, (void *)1);
}

/*
 * The third field of an account line is passed to Dovecot's userdb by
 * docker-mailserver (userdb_mail=..., userdb_quota_rule=...); tegami has
 * no userdb, so the names (never the values) are logged once.
 */
static void
extra_fields_ignored(const struct line_iter *it, const char *address,
    const char *extra)
{
	char names[256] = "";
	size_t o = 0;

	for (const char *p = extra; *p != '\0' && o + 4 < sizeof(names); ) {
		size_t w;

		p += strspn(p, " \t");
		w = strcspn(p, "= \t");
		if (w == 0)
			break;
		if (o > 0)
			names[o++] = ',';
		for (size_t i = 0; i < w && o + 4 < sizeof(names); i++) {
			unsigned char c = (unsigned char)p[i];

			names[o++] = c > ' ' && c < 0x7f && c != '"' ? (char)c : '?';
		}
		p += w;
		p += strcspn(p, " \t");
	}
	names[o] = '\0';
	log_warn("event=accounts_extra_ignored file=%s line=%u account=%s "
	    "fields=%s instead=\"Dovecot userdb fields are not used: the "
	    "Maildir is MAIL_DIR/<domain>/<user>/, quotas come from "
	    "dovecot-quotas.cf\"", it->file, it->lineno, address, names);
}

static void
parse_accounts(struct accounts *acc, struct line_iter *it, const char *mail_dir)
{
	char *line;

	while ((line = line_next(it)) != NULL) {
		char *bar = strchr(line, '|'), *hash, *extra, *at;
		struct account *a;

		if (bar == NULL) {
			bad_line(it, "no '|' between address and hash");
			continue;
		}
		*bar = '\0';
		hash = bar + 1;
		extra = strchr(hash, '|');
		if (extra != NULL)
			*extra++ = '\0';
		str_lower(str_trim(line));
		line = str_trim(line);
		hash = str_trim(hash);
		if (!address_ok(line)) {
			bad_line(it, "not a usable e-mail address");
			continue;
		}
		if (*hash == '\0') {
			bad_line(it, "empty password hash");
			continue;
		}
		if (strmap_get(&acc->accounts, line) != NULL) {
			bad_line(it, "duplicate account, the first one is used");
			continue;
		}
		at = strchr(line, '@');
		a = xcalloc(1, sizeof(*a));
		a->address = xstrdup(line);
		a->hash = xstrdup(hash);
		a->extra = extra != NULL ? xstrdup(str_trim(extra)) : NULL;
		if (a->extra != NULL && *a->extra != '\0' && !it->quiet)
			extra_fields_ignored(it, a->address, a->extra);
		*at = '\0';
		a->maildir = xasprintf("%s%s%s/%s/", mail_dir,
		    str_has_suffix(mail_dir, "/") ? "" : "/", at + 1, line);
		*at = '@';
		strmap_put(&acc->accounts, a->address, a);
		add_domain(acc, at + 1);
	}
}

/* Splits a target list; keeps the valid ones, lower-cased. */
static char **
parse_targets(const struct line_iter *it, const char *list, bool allow_dollar)
{
	size_t n, k = 0;
	char **t = str_split(list, ", \t", &n);

	for (size_t i = 0; i < n; i++) {
		char *s = str_lower(t[i]);
		bool ok;

		if (allow_dollar && strchr(s, '$') != NULL)
			ok = strchr(s, '@') != NULL;	/* checked after $N */
		else if (s[0] == '@')
			ok = name_ok(s + 1, strlen(s + 1)) && s[1] != '.';
		else
			ok = address_ok(s);
		if (!ok) {
			bad_line(it, "target is not an address, skipped");
			free(s);
			continue;
		}
		t[k++] = s;
	}
	t[k] = NULL;
	return t;
}

static void
parse_virtual(struct accounts *acc, struct line_iter *it)
{
	char *line;

	while ((line = line_next(it)) != NULL) {
		size_t klen = strcspn(line, " \t");
		char *key = line, *rest = line + klen, *at;
		struct alias *a;
		char **targets;

		if (*rest == '\0') {
			bad_line(it, "alias without target");
			continue;
		}
		*rest++ = '\0';
		str_lower(key);
		at = strchr(key, '@');
		if (at == NULL ? !name_ok(key, klen) :
		    at == key ? !name_ok(key + 1, klen - 1) || key[1] == '.' :
		    !address_ok(key)) {
			bad_line(it, "alias key is not user@domain, @domain or user");
			continue;
		}
		targets = parse_targets(it, rest, false);
		if (targets[0] == NULL) {
			bad_line(it, "alias without a valid target");
			str_array_free(targets);
			continue;
		}
		if (at != NULL)
			add_domain(acc, at + 1);
		a = strmap_get(&acc->aliases, key);
		if (a == NULL) {
			a = xcalloc(1, sizeof(*a));
			a->targets = targets;
			strmap_put(&acc->aliases, key, a);
			acc->alias_count++;
			continue;
		}
		/* A key given twice: the targets add up. */
		{
			size_t n1 = str_array_len(a->targets);
			size_t n2 = str_array_len(targets);

			a->targets = xreallocarray(a->targets, n1 + n2 + 1,
			    sizeof(char *));
			memcpy(a->targets + n1, targets, (n2 + 1) * sizeof(char *));
			free(targets);
		}
	}
}

/*
 * PCRE's common shorthand classes in POSIX terms, outside brackets only;
 * "\/" (the escaped delimiter) becomes "/".
 */
static char *
regexp_translate(const char *pcre, size_t len)
{
	char *out = xmalloc(len * 12 + 1), *o = out;
	bool in_bracket = false;

	for (size_t i = 0; i < len; i++) {
		char c = pcre[i];
		const char *rep = NULL;

		if (in_bracket) {
			if (c == '[' && i + 1 < len && pcre[i + 1] == ':') {
				const char *close = strstr(pcre + i + 2, ":]");

				if (close != NULL && (size_t)(close - pcre) < len) {
					size_t n = (size_t)(close - pcre) + 2 - i;

					memcpy(o, pcre + i, n);
					o += n;
					i += n - 1;
					continue;
				}
			}
			if (c == ']')
				in_bracket = false;
			*o++ = c;
			continue;
		}
		if (c == '[') {
			in_bracket = true;
			*o++ = c;
			if (i + 1 < len && pcre[i + 1] == '^')
				*o++ = pcre[++i];
			if (i + 1 < len && pcre[i + 1] == ']')
				*o++ = pcre[++i];
			continue;
		}
		if (c == '\\' && i + 1 < len) {
			switch (pcre[i + 1]) {
			case 'd': rep = "[0-9]"; break;
			case 'D': rep = "[^0-9]"; break;
			case 'w': rep = "[[:alnum:]_]"; break;
			case 'W': rep = "[^[:alnum:]_]"; break;
			case 's': rep = "[[:space:]]"; break;
			case 'S': rep = "[^[:space:]]"; break;
			case '/': rep = "/"; break;
			default:
				*o++ = c;
				*o++ = pcre[++i];
				continue;
			}
			i++;
			o = stpcpy(o, rep);
			continue;
		}
		*o++ = c;
	}
	*o = '\0';
	return out;
}

static void
parse_regexp(struct accounts *acc, struct line_iter *it)
{
	char *line;
	size_t cap = 0;

	while ((line = line_next(it)) != NULL) {
		size_t i = 1;
		char *pattern, *rest, errbuf[128];
		struct regexp_alias ra;
		int rc;

		if (line[0] != '/') {
			bad_line(it, "not a /regex/ target line (if/endif are not supported)");
			continue;
		}
		while (line[i] != '\0' && line[i] != '/') {
			if (line[i] == '\\' && line[i + 1] != '\0')
				i++;
			i++;
		}
		if (line[i] != '/' || i == 1) {
			bad_line(it, "regex without closing '/'");
			continue;
		}
		rest = line + i + 1;
		/* PCRE flags; matching is case-insensitive anyway. */
		while (*rest >= 'a' && *rest <= 'z')
			rest++;
		if (*rest != ' ' && *rest != '\t') {
			bad_line(it, "regex without target");
			continue;
		}
		memset(&ra, 0, sizeof(ra));
		pattern = regexp_translate(line + 1, i - 1);
		rc = regcomp(&ra.re, pattern, REG_EXTENDED | REG_ICASE);
		free(pattern);
		if (rc != 0) {
			regerror(rc, &ra.re, errbuf, sizeof(errbuf));
			if (!it->quiet)
				log_warn("event=accounts_bad_regex file=%s line=%u reason=\"%s\"",
			    it->file, it->lineno, errbuf);
			continue;
		}
		ra.targets = parse_targets(it, rest, true);
		if (ra.targets[0] == NULL) {
			bad_line(it, "regex without a valid target");
			str_array_free(ra.targets);
			regfree(&ra.re);
			continue;
		}
		ra.line = it->lineno;
		if (acc->regexp_count == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			acc->regexps = xreallocarray(acc->regexps, cap,
			    sizeof(*acc->regexps));
		}
		acc->regexps[acc->regexp_count++] = ra;
	}
}

/* "5G", "500M", "10k", "123", "0"; IEC units. -1 if malformed. */
static int
parse_size(const char *s, uint64_t *bytes_r)
{
	char num[32];
	size_t n = strspn(s, "0123456789");
	unsigned long long v;
	unsigned int shift = 0;
	const char *u = s + n;

	if (n == 0 || n >= sizeof(num))
		return -1;
	memcpy(num, s, n);
	num[n] = '\0';
	if (str_to_ullong(num, &v) < 0)
		return -1;
	switch (*u) {
	case '\0': break;
	case 'B': case 'b': shift = 0; u++; break;
	case 'k': case 'K': shift = 10; u++; break;
	case 'M': case 'm': shift = 20; u++; break;
	case 'G': case 'g': shift = 30; u++; break;
	case 'T': case 't': shift = 40; u++; break;
	default: return -1;
	}
	/* Tolerate "5GB" and "5GiB". */
	if (shift > 0 && (*u == 'i' || *u == 'I'))
		u++;
	if (shift > 0 && (*u == 'B' || *u == 'b'))
		u++;
	if (*u != '\0')
		return -1;
	if (shift > 0 && v > (UINT64_MAX >> shift))
		return -1;
	*bytes_r = (uint64_t)v << shift;
	return 0;
}

static void
parse_quotas(struct accounts *acc, struct line_iter *it)
{
	char *line;

	while ((line = line_next(it)) != NULL) {
		char *colon = strchr(line, ':');
		struct account *a;
		uint64_t q;

		if (colon == NULL) {
			bad_line(it, "no ':' between address and size");
			continue;
		}
		*colon = '\0';
		line = str_lower(str_trim(line));
		if (parse_size(str_trim(colon + 1), &q) < 0) {
			bad_line(it, "size is not a number with unit B, k, M, G or T");
			continue;
		}
		a = strmap_get(&acc->accounts, line);
		if (a == NULL) {
			log_debug("event=accounts_quota_unknown file=%s line=%u",
			    it->file, it->lineno);
			continue;
		}
		a->quota = q;
	}
}

static void
parse_masters(struct accounts *acc, struct line_iter *it)
{
	char *line;

	while ((line = line_next(it)) != NULL) {
		char *bar = strchr(line, '|'), *hash, *extra;

		if (bar == NULL) {
			bad_line(it, "no '|' between name and hash");
			continue;
		}
		*bar = '\0';
		hash = bar + 1;
		if ((extra = strchr(hash, '|')) != NULL)
			*extra = '\0';
		line = str_lower(str_trim(line));
		hash = str_trim(hash);
		if (!name_ok(line, strlen(line)) || *hash == '\0') {
			bad_line(it, "bad master user name or empty hash");
			continue;
		}
		if (strmap_get(&acc->masters, line) != NULL) {
			bad_line(it, "duplicate master user, the first one is used");
			continue;
		}
		strmap_put(&acc->masters, line, xstrdup(hash));
	}
}

static void
parse_access(struct strmap *map, struct line_iter *it)
{
	char *line;

	while ((line = line_next(it)) != NULL) {
		size_t klen = strcspn(line, " \t");
		char *action;

		if (line[klen] == '\0') {
			bad_line(it, "access line without action");
			continue;
		}
		line[klen] = '\0';
		action = str_trim(line + klen + 1);
		str_lower(line);
		if (strmap_get(map, line) == NULL)
			strmap_put(map, line, xstrdup(action));
	}
}

/*
 * One local alias "name: target, target" (aliases(5)). Targets: an
 * address; a bare name, which is name@<host name> (so it is looked up
 * again, as Postfix's local delivery does); /dev/null (discard). Pipes,
 * files and :include: are not supported: logged and skipped.
 */
static void
local_alias_add(struct accounts *acc, const char *file, unsigned int lineno,
    bool quiet, char *name, char *list)
{
	size_t n, k = 0;
	char **t;
	struct alias *a;

	name = str_lower(str_trim(name));
	if (name[0] == '"' && name[1] != '\0' && name[strlen(name) - 1] == '"') {
		name[strlen(name) - 1] = '\0';
		name++;
	}
	if (!name_ok(name, strlen(name)) || strchr(name, '@') != NULL) {
		if (!quiet)
			log_warn("event=accounts_bad_line file=%s line=%u "
			    "reason=\"local alias name is not a local part\"",
			    file, lineno);
		return;
	}
	if (strmap_get(&acc->local_aliases, name) != NULL) {
		/* postalias keeps the first, so root: POSTMASTER_ADDRESS wins */
		if (!quiet)
			log_warn("event=accounts_bad_line file=%s line=%u "
			    "reason=\"local alias '%s' given twice, the first one "
			    "is used%s\"", file, lineno, name,
			    strcmp(name, "root") == 0 ?
			    " (root is POSTMASTER_ADDRESS)" : "");
		return;
	}
	t = str_split(list, ",", &n);
	for (size_t i = 0; i < n; i++) {
		char *v = str_trim(t[i]), *target = NULL;

		if (*v == '"' && v[1] != '\0' && v[strlen(v) - 1] == '"') {
			v[strlen(v) - 1] = '\0';
			v++;
		}
		if (*v == '\0')
			continue;
		if (strcmp(v, DISCARD_TARGET) == 0)
			target = xstrdup(DISCARD_TARGET);
		else if (*v == '|' || *v == '/' || strncasecmp(v, ":include:", 9) == 0) {
			if (!quiet)
				log_warn("event=accounts_unsupported file=%s line=%u "
				    "alias=%s target=\"%.100s\" reason=\"pipes, files "
				    "and :include: are not delivered to; the target "
				    "is skipped\"", file, lineno, name, v);
		} else if (strchr(v, '@') != NULL) {
			target = str_lower(xstrdup(v));
		} else if (acc->hostname != NULL) {
			target = str_lower(xasprintf("%s@%s", v, acc->hostname));
		}
		if (target != NULL && strcmp(target, DISCARD_TARGET) != 0 &&
		    !address_ok(target)) {
			if (!quiet)
				log_warn("event=accounts_bad_line file=%s line=%u "
				    "reason=\"local alias target is not an address, "
				    "skipped\"", file, lineno);
			x_free(&target);
		}
		free(t[i]);
		if (target != NULL)
			t[k++] = target;
	}
	t[k] = NULL;
	if (k == 0) {
		str_array_free(t);
		return;
	}
	a = xcalloc(1, sizeof(*a));
	a->targets = t;
	strmap_put(&acc->local_aliases, name, a);
}

/*
 * postfix-aliases.cf in aliases(5) form: "name: targets"; a line that
 * starts with white space continues the one before; # starts a comment
 * line. docker-mailserver appends it to "root: ${POSTMASTER_ADDRESS}".
 */
static void
parse_local_aliases(struct accounts *acc, struct line_iter *it)
{
	char *name = NULL;
	struct buf list;
	unsigned int first = 0;

	buf_init(&list, ACCOUNTS_MAX_FILE_SIZE);
	while (it->p <= it->end) {
		char *line = it->p, *nl, *lend;
		bool cont, at_end = it->p == it->end;

		if (!at_end) {
			nl = memchr(line, '\n', (size_t)(it->end - line));
			lend = nl != NULL ? nl : it->end;
			it->p = nl != NULL ? nl + 1 : it->end;
			it->lineno++;
			if (lend > line && lend[-1] == '\r')
				lend--;
			*lend = '\0';
			if (memchr(line, '\0', (size_t)(lend - line)) != NULL ||
			    *str_trim(line) == '#' || *str_trim(line) == '\0')
				continue;
			cont = line[0] == ' ' || line[0] == '\t';
		} else {
			cont = false;
			line = NULL;
		}
		if (cont && name != NULL) {
			buf_append_str(&list, ",");
			buf_append_str(&list, line);
			continue;
		}
		if (name != NULL) {
			buf_append_c(&list, '\0');
			local_alias_add(acc, it->file, first, it->quiet, name,
			    list.data);
			x_free(&name);
			buf_reset(&list);
		}
		if (at_end)
			break;
		{
			char *colon = strchr(line, ':');

			if (cont || colon == NULL) {
				bad_line(it, cont ? "continuation line without an alias" :
				    "no ':' after the alias name");
				continue;
			}
			*colon = '\0';
			name = xstrdup(line);
			first = it->lineno;
			buf_append_str(&list, colon + 1);
		}
	}
	free(name);
	buf_free(&list);
}

static void
free_string(void *p)
{
	if (p != NULL)
		str_wipe(p, strlen(p));
	free(p);
}

static void
accounts_free(struct accounts *acc)
{
	strmap_free(&acc->accounts, account_free);
	strmap_free(&acc->aliases, alias_free);
	strmap_free(&acc->domains, NULL);
	strmap_free(&acc->masters, free_string);
	strmap_free(&acc->send_access, free);
	strmap_free(&acc->receive_access, free);
	strmap_free(&acc->local_aliases, alias_free);
	strmap_free(&acc->local_domains, NULL);
	free(acc->hostname);
	for (size_t i = 0; i < acc->regexp_count; i++) {
		regfree(&acc->regexps[i].re);
		str_array_free(acc->regexps[i].targets);
	}
	free(acc->regexps);
	free(acc);
}

/*
 * Postfix's mydestination in docker-mailserver: the host name,
 * localhost.<mail domain> and localhost take local aliases, with root
 * going to POSTMASTER_ADDRESS.
 */
static void
local_setup(struct accounts *acc, const struct accounts_settings *set)
{
	const char *dot;
	char *names[3];

	if (set->hostname == NULL || *set->hostname == '\0')
		return;
	acc->hostname = str_lower(xstrdup(set->hostname));
	dot = strchr(acc->hostname, '.');
	names[0] = xstrdup(acc->hostname);
	/* mydomain: the host name without its first label when it has
	   three or more (settings_domain_from_hostname) */
	names[1] = dot != NULL && strchr(dot + 1, '.') != NULL ?
	    xasprintf("localhost.%s", dot + 1) :
	    xasprintf("localhost.%s", acc->hostname);
	names[2] = xstrdup("localhost");
	for (int i = 0; i < 3; i++) {
		if (strmap_get(&acc->local_domains, names[i]) == NULL)
			strmap_put(&acc->local_domains, names[i], (void *)1);
		add_domain(acc, names[i]);
		free(names[i]);
	}
	if (set->postmaster != NULL && *set->postmaster != '\0') {
		char *list = xstrdup(set->postmaster), *name = xstrdup("root");

		local_alias_add(acc, "POSTMASTER_ADDRESS", 0, false, name, list);
		free(name);
		free(list);
	}
}

/* quiet[f]: do not log file f's bad lines again (it did not change). */
static struct accounts *
load(const struct accounts_settings *set, const bool *quiet, char **error_r)
{
	struct accounts *acc = xcalloc(1, sizeof(*acc));

	atomic_init(&acc->refcount, 1);
	local_setup(acc, set);
	/* Accounts first: the quotas attach to them. */
	for (int f = 0; f < FILE_COUNT; f++) {
		char *path = xasprintf("%s/%s", set->config_dir, file_names[f]);
		struct line_iter it;
		char *data;
		size_t len;

		if (file_read_all(path, ACCOUNTS_MAX_FILE_SIZE, &data, &len) < 0) {
			if (errno == ENOENT) {
				free(path);
				continue;
			}
			*error_r = xasprintf("%s: %s", path, errno == EFBIG ?
			    "file too large" : strerror(errno));
			free(path);
			accounts_free(acc);
			return NULL;
		}
		it.file = path;
		it.quiet = quiet != NULL && quiet[f];
		it.p = data;
		it.end = data + len;
		it.lineno = 0;
		switch ((enum acc_file)f) {
		case FILE_ACCOUNTS:
			parse_accounts(acc, &it, set->mail_dir);
			break;
		case FILE_VIRTUAL:
			parse_virtual(acc, &it);
			break;
		case FILE_REGEXP:
			parse_regexp(acc, &it);
			break;
		case FILE_QUOTAS:
			parse_quotas(acc, &it);
			break;
		case FILE_MASTERS:
			parse_masters(acc, &it);
			break;
		case FILE_SEND_ACCESS:
			parse_access(&acc->send_access, &it);
			break;
		case FILE_RECEIVE_ACCESS:
			parse_access(&acc->receive_access, &it);
			break;
		case FILE_LOCAL_ALIASES:
			if (acc->hostname != NULL)
				parse_local_aliases(acc, &it);
			break;
		case FILE_COUNT:
			panic("accounts: bad file index");
		}
		if (f == FILE_MASTERS)
			str_wipe(data, len);
		free(data);
		free(path);
	}
	if (set->extra_domains != NULL) {
		for (const char *const *d = set->extra_domains; *d != NULL; d++) {
			char *lower = str_lower(xstrdup(*d));

			if (*lower != '\0')
				add_domain(acc, lower);
			free(lower);
		}
	}
	return acc;
}

struct accounts *
accounts_load(const struct accounts_settings *set, char **error_r)
{
	return load(set, NULL, error_r);
}

struct accounts *
accounts_ref(struct accounts *acc)
{
	atomic_fetch_add_explicit(&acc->refcount, 1, memory_order_relaxed);
	return acc;
}

void
accounts_unref(struct accounts *acc)
{
	if (acc == NULL)
		return;
	if (atomic_fetch_sub_explicit(&acc->refcount, 1,
	    memory_order_acq_rel) == 1)
		accounts_free(acc);
}

size_t
accounts_count(const struct accounts *acc)
{
	return acc->accounts.count;
}

bool
accounts_is_local_domain(const struct accounts *acc, const char *domain)
{
	char buf[256];

	if (str_copy(buf, sizeof(buf), domain) < 0)
		return false;
	return strmap_get(&acc->domains, str_lower(buf)) != NULL;
}

static const struct account *
find_account(const struct accounts *acc, const char *lower_addr)
{
	return strmap_get(&acc->accounts, lower_addr);
}

bool
accounts_exists(const struct accounts *acc, const char *address)
{
	char *lower = str_lower(xstrdup(address));
	bool r = find_account(acc, lower) != NULL;

	free(lower);
	return r;
}

/* ---- resolution ---- */

struct resolve_ctx {
	const struct accounts *acc;
	struct accounts_resolution *res;
	const char *path[ACCOUNTS_MAX_DEPTH + 2];
	unsigned int depth;
	unsigned int steps;
	const char *error;
};

/* "user+tag@dom" -> malloc'd "user@dom", or NULL if there is no tag. */
static char *
untag(const char *addr)
{
	const char *plus = strchr(addr, '+'), *at = strrchr(addr, '@');

	if (plus == NULL || at == NULL || plus > at || plus == addr)
		return NULL;
	return xasprintf("%.*s%s", (int)(plus - addr), addr, at);
}

static int
add_target(struct resolve_ctx *ctx, enum accounts_target_kind kind,
    const char *address, const char *maildir)
{
	struct accounts_resolution *res = ctx->res;

	for (size_t i = 0; i < res->count; i++)
		if (strcmp(res->targets[i].address, address) == 0 &&
		    res->targets[i].kind == kind)
			return 0;
	if (res->count >= ACCOUNTS_MAX_TARGETS) {
		ctx->error = "alias expands to too many targets";
		return -1;
	}
	res->targets = xreallocarray(res->targets, res->count + 1,
	    sizeof(*res->targets));
	res->targets[res->count].kind = kind;
	res->targets[res->count].address = xstrdup(address);
	res->targets[res->count].maildir = maildir != NULL ? xstrdup(maildir) : NULL;
	res->count++;
	return 0;
}

/* Replaces $N and ${N} in tmpl with the groups of the match. */
static char *
regexp_subst(const char *tmpl, const char *subject, const regmatch_t *m,
    size_t nm)
{
	char out[REGEXP_MAX_RESULT];
	size_t o = 0;

	for (const char *p = tmpl; *p != '\0'; p++) {
		const char *from = p;
		size_t n = 1;
		int g = -1;

		if (p[0] == '$' && p[1] >= '0' && p[1] <= '9') {
			g = p[1] - '0';
			p += 1;
		} else if (p[0] == '$' && p[1] == '{' && p[2] >= '0' &&
		    p[2] <= '9' && p[3] == '}') {
			g = p[2] - '0';
			p += 3;
		}
		if (g >= 0) {
			if ((size_t)g >= nm || m[g].rm_so < 0)
				continue;
			from = subject + m[g].rm_so;
			n = (size_t)(m[g].rm_eo - m[g].rm_so);
		}
		if (o + n >= sizeof(out))
			return NULL;
		memcpy(out + o, from, n);
		o += n;
	}
	out[o] = '\0';
	return str_lower(xstrdup(out));
}

/*
 * Steps 1 and 2 of accounts.h for one address: the exact alias, then the
 * first matching regexp. A malloc'd NULL-terminated list, or NULL.
 */
static char **
find_alias(const struct accounts *acc, const char *addr)
{
	const struct alias *a = strmap_get(&acc->aliases, addr);
	char **out;
	size_t n;

	if (a != NULL) {
		n = str_array_len(a->targets);
		out = xcalloc(n + 1, sizeof(*out));
		for (size_t i = 0; i < n; i++)
			out[i] = xstrdup(a->targets[i]);
		return out;
	}
	for (size_t r = 0; r < acc->regexp_count; r++) {
		const struct regexp_alias *ra = &acc->regexps[r];
		regmatch_t m[10];
		size_t k = 0;

		if (regexec(&ra->re, addr, 10, m, 0) != 0)
			continue;
		n = str_array_len(ra->targets);
		out = xcalloc(n + 1, sizeof(*out));
		for (size_t i = 0; i < n; i++) {
			char *t = regexp_subst(ra->targets[i], addr, m, 10);

			if (t == NULL || !address_ok(t)) {
				free(t);
				continue;
			}
			out[k++] = t;
		}
		return out;
	}
	return NULL;
}

static int resolve_addr(struct resolve_ctx *ctx, const char *addr);

static int
expand(struct resolve_ctx *ctx, const char *key, char **targets,
    const char *local)
{
	int r = 0;

	if (ctx->depth >= ACCOUNTS_MAX_DEPTH) {
		ctx->error = "aliases nested too deep";
		str_array_free(targets);
		return -1;
	}
	ctx->path[ctx->depth++] = key;
	for (char **t = targets; *t != NULL && r == 0; t++) {
		if (strcmp(*t, DISCARD_TARGET) == 0) {
			/* a local alias to /dev/null: accepted, thrown away */
			r = add_target(ctx, ACCOUNTS_TARGET_DISCARD, key, NULL);
		} else if ((*t)[0] == '@') {
			/* "@dom @other": the same local part elsewhere. */
			char *addr = xasprintf("%s%s", local, *t);

			r = resolve_addr(ctx, addr);
			free(addr);
		} else {
			r = resolve_addr(ctx, *t);
		}
	}
	ctx->depth--;
	str_array_free(targets);
	return r;
}

static bool
on_path(const struct resolve_ctx *ctx, const char *addr)
{
	for (unsigned int i = 0; i < ctx->depth; i++)
		if (strcmp(ctx->path[i], addr) == 0)
			return true;
	return false;
}

static int
resolve_addr(struct resolve_ctx *ctx, const char *addr)
{
	const struct accounts *acc = ctx->acc;
	const struct account *a;
	const char *at = strrchr(addr, '@');
	char *untagged, *local, **targets;
	const char *forms[2];
	int r;

	if (++ctx->steps > RESOLVE_MAX_STEPS) {
		ctx->error = "alias expansion too large";
		return -1;
	}
	if (at == NULL || at == addr || at[1] == '\0') {
		ctx->res->dropped++;
		return 0;
	}
	if (strmap_get(&acc->domains, at + 1) == NULL)
		return add_target(ctx, ACCOUNTS_TARGET_REMOTE, addr, NULL);

	untagged = untag(addr);
	forms[0] = addr;
	forms[1] = untagged;
	if (on_path(ctx, addr)) {
		/* Already being expanded: the address itself, no alias. */
		for (int i = 0; i < 2; i++) {
			if (forms[i] != NULL &&
			    (a = find_account(acc, forms[i])) != NULL) {
				free(untagged);
				return add_target(ctx, ACCOUNTS_TARGET_LOCAL,
				    a->address, a->maildir);
			}
		}
		free(untagged);
		ctx->res->dropped++;
		return 0;
	}
	local = xstrndup(addr, (size_t)(at - addr));
	r = 1;	/* 1 = still unresolved */
	for (int i = 0; i < 2 && r == 1; i++) {
		if (forms[i] == NULL)
			continue;
		if ((targets = find_alias(acc, forms[i])) != NULL)
			r = expand(ctx, forms[i], targets, local);
		else if ((a = find_account(acc, forms[i])) != NULL)
			r = add_target(ctx, ACCOUNTS_TARGET_LOCAL, a->address,
			    a->maildir);
	}
	if (r == 1) {
		/* The bare local part, untagged too, then the catch-all. */
		char *ulocal = untagged == NULL ? NULL :
		    xstrndup(untagged, strcspn(untagged, "@"));
		const struct alias *al = strmap_get(&acc->aliases, local);
		char *catch = xasprintf("@%s", at + 1);

		if (al == NULL && ulocal != NULL)
			al = strmap_get(&acc->aliases, ulocal);
		/* local aliases (postfix-aliases.cf) at the host's own names */
		if (al == NULL && strmap_get(&acc->local_domains, at + 1) != NULL) {
			al = strmap_get(&acc->local_aliases, local);
			if (al == NULL && ulocal != NULL)
				al = strmap_get(&acc->local_aliases, ulocal);
		}
		if (al == NULL)
			al = strmap_get(&acc->aliases, catch);
		if (al != NULL) {
			size_t n = str_array_len(al->targets);

			targets = xcalloc(n + 1, sizeof(*targets));
			for (size_t i = 0; i < n; i++)
				targets[i] = xstrdup(al->targets[i]);
			r = expand(ctx, addr, targets, local);
		} else {
			ctx->res->dropped++;
			r = 0;
		}
		free(ulocal);
		free(catch);
	}
	free(local);
	free(untagged);
	return r;
}

int
accounts_resolve(const struct accounts *acc, const char *address,
    struct accounts_resolution *res_r, const char **error_r)
{
	struct resolve_ctx ctx;
	char *addr;
	const char *at;
	int r;

	memset(res_r, 0, sizeof(*res_r));
	memset(&ctx, 0, sizeof(ctx));
	ctx.acc = acc;
	ctx.res = res_r;
	addr = str_lower(xstrdup(address));
	at = strrchr(addr, '@');
	if (at == NULL || at == addr || at[1] == '\0' ||
	    strlen(addr) > 512) {
		free(addr);
		return 0;
	}
	r = resolve_addr(&ctx, addr);
	free(addr);
	if (r < 0) {
		*error_r = ctx.error;
		return -1;
	}
	return res_r->count > 0 ? 1 : 0;
}

void
accounts_resolution_free(struct accounts_resolution *res)
{
	for (size_t i = 0; i < res->count; i++) {
		free(res->targets[i].address);
		free(res->targets[i].maildir);
	}
	free(res->targets);
	memset(res, 0, sizeof(*res));
}

/* ---- authentication and policy ---- */

int
accounts_authenticate(const struct accounts *acc, const char *login,
    const char *password, struct accounts_login *login_r,
    const char **error_r)
{
	char *user = str_lower(xstrdup(login)), *star = strrchr(user, '*');
	const char *master_hash = NULL, *stored, *err = NULL;
	const struct account *a;
	int r;

	memset(login_r, 0, sizeof(*login_r));
	if (star != NULL && star[1] != '\0' &&
	    (master_hash = strmap_get(&acc->masters, star + 1)) != NULL)
		*star = '\0';
	a = find_account(acc, user);
	if (master_hash != NULL)
		stored = master_hash;
	else
		stored = a != NULL ? a->hash : DUMMY_HASH;
	r = password_verify(stored, password, &err);
	if (a == NULL) {
		free(user);
		return 0;
	}
	if (r < 0) {
		log_warn("event=auth_bad_hash %s=%s reason=\"%s\"",
		    master_hash != NULL ? "master" : "user",
		    master_hash != NULL ? star + 1 : a->address, err);
		*error_r = err;
		free(user);
		return -1;
	}
	if (r == 1) {
		login_r->user = xstrdup(a->address);
		login_r->master = master_hash != NULL ? xstrdup(star + 1) : NULL;
	}
	free(user);
	return r;
}

void
accounts_login_free(struct accounts_login *login)
{
	x_free(&login->user);
	x_free(&login->master);
}

bool
accounts_sender_allowed(const struct accounts *acc, const char *user,
    const char *address)
{
	struct accounts_resolution res;
	const char *err;
	char *addr, *u, *untagged;
	bool ok = false;

	if (address[0] == '\0')
		return true;
	addr = str_lower(xstrdup(address));
	u = str_lower(xstrdup(user));
	untagged = untag(addr);
	if (strcmp(addr, u) == 0 || (untagged != NULL && strcmp(untagged, u) == 0))
		ok = true;
	if (!ok) {
		if (accounts_resolve(acc, addr, &res, &err) > 0) {
			for (size_t i = 0; i < res.count && !ok; i++)
				ok = res.targets[i].kind == ACCOUNTS_TARGET_LOCAL &&
				    strcmp(res.targets[i].address, u) == 0;
		}
		accounts_resolution_free(&res);
	}
	free(addr);
	free(u);
	free(untagged);
	return ok;
}

uint64_t
accounts_quota(const struct accounts *acc, const char *address)
{
	char *addr = str_lower(xstrdup(address)), *untagged = untag(addr);
	const struct account *a = find_account(acc, addr);

	if (a == NULL && untagged != NULL)
		a = find_account(acc, untagged);
	free(addr);
	free(untagged);
	return a != NULL ? a->quota : 0;
}

static bool
access_restricted(const struct strmap *map, const char *address)
{
	char *addr, *at, *key;
	const char *action = NULL;

	if (map->count == 0 || address[0] == '\0')
		return false;
	addr = str_lower(xstrdup(address));
	at = strrchr(addr, '@');
	action = strmap_get(map, addr);
	if (action == NULL && at != NULL) {
		key = xstrndup(addr, (size_t)(at - addr) + 1);
		action = strmap_get(map, key);
		free(key);
		if (action == NULL)
			action = strmap_get(map, at + 1);
		if (action == NULL)
			action = strmap_get(map, at);
	}
	free(addr);
	return action != NULL && strcasecmp(action, "OK") != 0 &&
	    strcasecmp(action, "DUNNO") != 0 && strcasecmp(action, "PERMIT") != 0;
}

bool
accounts_send_restricted(const struct accounts *acc, const char *address)
{
	return access_restricted(&acc->send_access, address);
}

bool
accounts_receive_restricted(const struct accounts *acc, const char *address)
{
	return access_restricted(&acc->receive_access, address);
}

/* ---- watch ---- */

struct accounts_watch {
	char *config_dir;
	char *mail_dir;
	char *hostname;
	char *postmaster;
	char **extra_domains;
	struct accounts *cur;
	struct file_stamp stamps[FILE_COUNT];
};

static void
watch_stamps(const struct accounts_watch *w, struct file_stamp *st)
{
	for (int f = 0; f < FILE_COUNT; f++) {
		char *path = xasprintf("%s/%s", w->config_dir, file_names[f]);

		file_stamp_get(path, &st[f]);
		free(path);
	}
}

static struct accounts *
watch_load(struct accounts_watch *w, const bool *quiet, char **error_r)
{
	struct accounts_settings set = {
		.config_dir = w->config_dir,
		.mail_dir = w->mail_dir,
		.extra_domains = (const char *const *)w->extra_domains,
		.hostname = w->hostname,
		.postmaster = w->postmaster,
	};

	return load(&set, quiet, error_r);
}

struct accounts_watch *
accounts_watch_create(const struct accounts_settings *set, char **error_r)
{
	struct accounts_watch *w = xcalloc(1, sizeof(*w));
	size_t n = 0;

	w->config_dir = xstrdup(set->config_dir);
	w->mail_dir = xstrdup(set->mail_dir);
	w->hostname = set->hostname != NULL ? xstrdup(set->hostname) : NULL;
	w->postmaster = set->postmaster != NULL ? xstrdup(set->postmaster) : NULL;
	while (set->extra_domains != NULL && set->extra_domains[n] != NULL)
		n++;
	w->extra_domains = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		w->extra_domains[i] = xstrdup(set->extra_domains[i]);
	/* Stamps before reading: a change made while we read is seen by
	 * the next refresh. */
	watch_stamps(w, w->stamps);
	w->cur = watch_load(w, NULL, error_r);
	if (w->cur == NULL) {
		accounts_watch_free(&w);
		return NULL;
	}
	log_info("event=accounts_load accounts=%zu aliases=%zu regexps=%zu domains=%zu",
	    w->cur->accounts.count, w->cur->alias_count, w->cur->regexp_count,
	    w->cur->domains.count);
	return w;
}

void
accounts_watch_free(struct accounts_watch **wp)
{
	struct accounts_watch *w = *wp;

	if (w == NULL)
		return;
	accounts_unref(w->cur);
	free(w->config_dir);
	free(w->mail_dir);
	free(w->hostname);
	free(w->postmaster);
	str_array_free(w->extra_domains);
	free(w);
	*wp = NULL;
}

struct accounts *
accounts_watch_get(struct accounts_watch *w)
{
	return accounts_ref(w->cur);
}

int
accounts_watch_refresh(struct accounts_watch *w, bool force)
{
	struct file_stamp st[FILE_COUNT];
	bool quiet[FILE_COUNT], changed = force;
	struct accounts *acc;
	char *error = NULL;

	watch_stamps(w, st);
	for (int f = 0; f < FILE_COUNT; f++) {
		quiet[f] = file_stamp_equal(&st[f], &w->stamps[f]);
		if (!quiet[f])
			changed = true;
	}
	if (!changed)
		return 0;
	acc = watch_load(w, quiet, &error);
	if (acc == NULL) {
		log_error("event=accounts_reload_failed reason=\"%s\"", error);
		free(error);
		return -1;
	}
	accounts_unref(w->cur);
	w->cur = acc;
	memcpy(w->stamps, st, sizeof(st));
	log_info("event=accounts_reload accounts=%zu aliases=%zu regexps=%zu domains=%zu",
	    acc->accounts.count, acc->alias_count, acc->regexp_count,
	    acc->domains.count);
	return 1;
}
