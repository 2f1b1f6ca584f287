#include "queue/relay.h"
#include "lib/file.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct relay_entry {
	char *key;	/* "@domain" or "[host]:port", lower-case */
	char *value;	/* "" = exclusion (relaymap) */
};

struct relay_map {
	struct relay_entry *e;
	size_t n;
};

struct relay_config {
	char *map_path, *sasl_path;
	struct file_stamp map_stamp, sasl_stamp;
	struct relay_map map, sasl;
	char *default_host;
	char *relay_host;
	unsigned int relay_port;
	char *user, *password;
};

int
relay_parse_host(const char *spec, unsigned int default_port, char *host,
    unsigned long hostsize, unsigned int *port_r)
{
	const char *h = spec, *end, *colon;
	unsigned long long port = default_port;
	size_t n;

	if (*h == '[') {
		end = strchr(h, ']');
		if (end == NULL)
			return -1;
		h++;
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] != '\0' && colon == NULL)
			return -1;
	} else {
		colon = strrchr(h, ':');
		end = colon != NULL ? colon : h + strlen(h);
	}
	n = (size_t)(end - h);
	if (n == 0 || n >= hostsize)
		return -1;
	if (colon != NULL && (str_to_ullong(colon + 1, &port) < 0 ||
	    port == 0 || port > 65535))
		return -1;
	memcpy(host, h, n);
	host[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (host[i] <= ' ' || host[i] == '/' || host[i] == 0x7f)
			return -1;
	str_lower(host);
	*port_r = (unsigned int)port;
	return 0;
}

static void
map_free(struct relay_map *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->e[i].key);
		str_wipe(m->e[i].value, strlen(m->e[i].value));
		free(m->e[i].value);
	}
	free(m->e);
	memset(m, 0, sizeof(*m));
}

static int
map_load(const char *path, struct relay_map *m, char **error_r)
{
	char *data = NULL;
	size_t len;
	char **lines;
	size_t nl;

	memset(m, 0, sizeof(*m));
	if (file_read_all(path, RELAY_MAX_FILE, &data, &len) < 0) {
		if (errno == ENOENT)
			return 0;
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	lines = str_split(data, "\n", &nl);
	for (size_t i = 0; i < nl; i++) {
		char *line = str_trim(lines[i]);
		char *sp;

		if (line[0] == '\0' || line[0] == '#')
			continue;
		sp = line + strcspn(line, " \t");
		m->e = xreallocarray(m->e, m->n + 1, sizeof(*m->e));
		m->e[m->n].key = str_lower(xstrndup(line, (size_t)(sp - line)));
		m->e[m->n].value = xstrdup(str_trim(sp));
		m->n++;
	}
	for (size_t i = 0; i < nl; i++)
		str_wipe(lines[i], strlen(lines[i]));
	str_array_free(lines);
	str_wipe(data, len);
	free(data);
	return 0;
}

static const char *
map_get(const struct relay_map *m, const char *key)
{
	for (size_t i = 0; i < m->n; i++)
		if (strcasecmp(m->e[i].key, key) == 0)
			return m->e[i].value;
	return NULL;
}

struct relay_config *
relay_config_load(const struct relay_settings *set, char **error_r)
{
	struct relay_config *rc = xcalloc(1, sizeof(*rc));

	rc->map_path = xasprintf("%s/postfix-relaymap.cf", set->config_dir);
	rc->sasl_path = xasprintf("%s/postfix-sasl-password.cf",
	    set->config_dir);
	file_stamp_get(rc->map_path, &rc->map_stamp);
	file_stamp_get(rc->sasl_path, &rc->sasl_stamp);
	if (map_load(rc->map_path, &rc->map, error_r) < 0 ||
	    map_load(rc->sasl_path, &rc->sasl, error_r) < 0) {
		relay_config_free(&rc);
		return NULL;
	}
	if (set->default_relay_host != NULL && set->default_relay_host[0])
		rc->default_host = xstrdup(set->default_relay_host);
	if (set->relay_host != NULL && set->relay_host[0] != '\0')
		rc->relay_host = xstrdup(set->relay_host);
	rc->relay_port = set->relay_port != 0 ? set->relay_port : 25;
	if (set->relay_user != NULL && set->relay_user[0] != '\0')
		rc->user = xstrdup(set->relay_user);
	if (set->relay_password != NULL)
		rc->password = xstrdup(set->relay_password);
	return rc;
}

void
relay_config_free(struct relay_config **rcp)
{
	struct relay_config *rc = *rcp;

	if (rc == NULL)
		return;
	map_free(&rc->map);
	map_free(&rc->sasl);
	free(rc->map_path);
	free(rc->sasl_path);
	free(rc->default_host);
	free(rc->relay_host);
	free(rc->user);
	if (rc->password != NULL)
		str_wipe(rc->password, strlen(rc->password));
	free(rc->password);
	free(rc);
	*rcp = NULL;
}

bool
relay_config_changed(const struct relay_config *rc)
{
	struct file_stamp a, b;

	file_stamp_get(rc->map_path, &a);
	file_stamp_get(rc->sasl_path, &b);
	return !file_stamp_equal(&a, &rc->map_stamp) ||
	    !file_stamp_equal(&b, &rc->sasl_stamp);
}

int
relay_for_sender(const struct relay_config *rc, const char *sender,
    struct relay_target *t)
{
	const char *at = strrchr(sender, '@');
	char key[300], spec[300];
	const char *v = NULL, *cred = NULL;

	memset(t, 0, sizeof(*t));
	spec[0] = '\0';
	if (at != NULL && at[1] != '\0') {
		snprintf(key, sizeof(key), "@%s", at + 1);
		v = map_get(&rc->map, key);
		if (v != NULL && v[0] == '\0')
			return 0;		/* excluded: direct */
		if (v != NULL)
			str_copy(spec, sizeof(spec), v);
		else if (rc->relay_host != NULL)
			snprintf(spec, sizeof(spec), "[%s]:%u", rc->relay_host,
			    rc->relay_port);
		cred = map_get(&rc->sasl, key);
	}
	if (spec[0] == '\0' && rc->default_host != NULL)
		str_copy(spec, sizeof(spec), rc->default_host);
	if (spec[0] == '\0')
		return 0;
	if (relay_parse_host(spec, 25, t->host, sizeof(t->host), &t->port) < 0) {
		log_warn("event=relay_host_invalid value=\"%s\" hint=\"use "
		    "[host]:port\"", spec);
		return 0;
	}
	if (cred == NULL) {
		char hk[300];

		snprintf(hk, sizeof(hk), "[%s]:%u", t->host, t->port);
		cred = map_get(&rc->sasl, hk);
		if (cred == NULL)
			cred = map_get(&rc->sasl, t->host);
	}
	if (cred != NULL) {
		/* "user:password": the password may hold ':'. */
		const char *c = strchr(cred, ':');

		if (c != NULL && (size_t)(c - cred) < sizeof(t->user_buf)) {
			memcpy(t->user_buf, cred, (size_t)(c - cred));
			t->user_buf[c - cred] = '\0';
			t->user = t->user_buf;
			t->password = c + 1;
		}
	} else if (rc->user != NULL) {
		t->user = rc->user;
		t->password = rc->password != NULL ? rc->password : "";
	}
	return 1;
}
