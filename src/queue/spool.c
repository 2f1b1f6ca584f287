/*
 * spool: the outbound queue on disk. Layout, format and commit order are
 * documented in spool.h.
 */
#include "queue/spool.h"
#include "lib/buf.h"
#include "lib/file.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#define WRITE_BUF_SIZE (64 * 1024)
#define ENVELOPE_MAGIC "tegami-queue 1"

struct spool {
	char *dir;
	char *tmp_dir;
	char *msg_dir;
	char *env_dir;
};

struct spool_msg {
	struct spool *spool;
	int fd;
	char id[SPOOL_ID_LEN + 1];
	char *tmp_path;
	uint64_t size;
	const char *write_error;
	size_t buflen;
	char buf[WRITE_BUF_SIZE];
};

static const char *const state_names[] = {
	[SPOOL_RCPT_PENDING] = "pending",
	[SPOOL_RCPT_SENT] = "sent",
	[SPOOL_RCPT_FAILED] = "failed",
	[SPOOL_RCPT_BOUNCED] = "bounced",
};

static const char *const body_names[] = {
	[SPOOL_BODY_7BIT] = "7bit",
	[SPOOL_BODY_8BITMIME] = "8bitmime",
	[SPOOL_BODY_BINARYMIME] = "binarymime",
};

const char *
spool_rcpt_state_name(enum spool_rcpt_state state)
{
	if ((size_t)state >= sizeof(state_names) / sizeof(state_names[0]))
		panic("spool: bad recipient state %d", (int)state);
	return state_names[state];
}

bool
spool_id_valid(const char *s)
{
	size_t i;

	for (i = 0; i < SPOOL_ID_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[i] == '\0';
}

static int
make_id(char id[SPOOL_ID_LEN + 1])
{
	unsigned long long r;
	ssize_t n;

	do {
		n = getrandom(&r, sizeof(r), 0);
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(r))
		return -1;
	snprintf(id, SPOOL_ID_LEN + 1, "%08lx%016llx",
	    (unsigned long)time(NULL) & 0xffffffffUL, r);
	return 0;
}

/* ---- open ---- */

static struct spool *
spool_new(const char *state_dir)
{
	struct spool *s = xcalloc(1, sizeof(*s));

	s->dir = xasprintf("%s/tegami/queue", state_dir);
	s->tmp_dir = xasprintf("%s/tmp", s->dir);
	s->msg_dir = xasprintf("%s/msg", s->dir);
	s->env_dir = xasprintf("%s/env", s->dir);
	return s;
}

struct spool *
spool_open(const char *state_dir, char **error_r)
{
	struct spool *s = spool_new(state_dir);
	const char *const dirs[3] = { s->tmp_dir, s->msg_dir, s->env_dir };

	for (int i = 0; i < 3; i++) {
		if (mkdir_p(dirs[i], 0700) < 0) {
			*error_r = xasprintf("%s: %s", dirs[i],
			    strerror(errno));
			spool_close(&s);
			return NULL;
		}
	}
	/* The queue dirs must survive a crash that follows our first 250. */
	if (fsync_dir(s->dir) < 0 || fsync_parent(s->dir) < 0) {
		*error_r = xasprintf("fsync %s: %s", s->dir, strerror(errno));
		spool_close(&s);
		return NULL;
	}
	return s;
}

struct spool *
spool_open_existing(const char *state_dir, char **error_r)
{
	struct spool *s = spool_new(state_dir);
	struct stat st;

	if (stat(s->env_dir, &st) < 0) {
		*error_r = errno == ENOENT ? NULL :
		    xasprintf("%s: %s", s->env_dir, strerror(errno));
		spool_close(&s);
		return NULL;
	}
	if (!S_ISDIR(st.st_mode)) {
		*error_r = xasprintf("%s: not a directory", s->env_dir);
		spool_close(&s);
		return NULL;
	}
	return s;
}

void
spool_close(struct spool **sp)
{
	struct spool *s = *sp;

	if (s == NULL)
		return;
	free(s->dir);
	free(s->tmp_dir);
	free(s->msg_dir);
	free(s->env_dir);
	free(s);
	*sp = NULL;
}

const char *
spool_dir(const struct spool *spool)
{
	return spool->dir;
}

char *
spool_msg_path(const struct spool *spool, const char *id)
{
	return xasprintf("%s/%s", spool->msg_dir, id);
}

static char *
env_path(const struct spool *spool, const char *id)
{
	return xasprintf("%s/%s", spool->env_dir, id);
}

/* ---- envelope text ---- */

static void
put_value(struct buf *b, const char *v)
{
	static const char hex[] = "0123456789ABCDEF";

	if (v == NULL || *v == '\0') {
		buf_append_c(b, '-');
		return;
	}
	if (strcmp(v, "-") == 0) {
		buf_append_str(b, "%2D");
		return;
	}
	for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++) {
		if (*p <= 0x20 || *p == 0x7f || *p == '%' || *p == '=') {
			char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };

			buf_append(b, e, 3);
		} else {
			buf_append_c(b, (char)*p);
		}
	}
}

char *
spool_envelope_format(const struct spool_envelope *env, size_t *len_r)
{
	struct buf b;

	buf_init(&b, BUF_UNLIMITED);
	buf_printf(&b, ENVELOPE_MAGIC "\nid %s\ncreated %lld\nfrom ", env->id,
	    (long long)env->created);
	put_value(&b, env->from);
	buf_append_str(&b, "\nauth ");
	put_value(&b, env->auth);
	buf_printf(&b, "\nbody %s\nsmtputf8 %d\nsize %llu\nenvid ",
	    body_names[env->body], env->smtputf8 ? 1 : 0,
	    (unsigned long long)env->size);
	put_value(&b, env->envid);
	buf_append_str(&b, "\nret ");
	put_value(&b, env->ret);
	buf_printf(&b, "\nhold %d\n", env->hold ? 1 : 0);
	/* Written only once set, so an entry that never warned stays
	 * byte-identical to what older versions wrote. */
	if (env->delay_warned)
		buf_append_str(&b, "warned 1\n");
	for (size_t i = 0; i < env->rcpt_count; i++) {
		const struct spool_rcpt *r = &env->rcpts[i];

		buf_append_str(&b, "rcpt addr=");
		put_value(&b, r->address);
		buf_printf(&b, " state=%s attempts=%u next=%lld notify=",
		    spool_rcpt_state_name(r->state), r->attempts,
		    (long long)r->next_attempt);
		put_value(&b, r->notify);
		buf_append_str(&b, " orcpt=");
		put_value(&b, r->orcpt);
		buf_append_str(&b, " reply=");
		put_value(&b, r->last_reply);
		buf_append_c(&b, '\n');
	}
	*len_r = b.len;
	return buf_steal(&b);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * Decodes a value: "-" = empty. NULL for a bad escape or %00. When
 * empty_is_null, "-" gives NULL through *v_r and 0.
 */
static int
get_value(const char *s, bool empty_is_null, char **v_r)
{
	char *out, *o;

	if (strcmp(s, "-") == 0) {
		*v_r = empty_is_null ? NULL : xstrdup("");
		return 0;
	}
	if (*s == '\0')
		return -1;
	out = o = xmalloc(strlen(s) + 1);
	for (; *s != '\0'; s++) {
		if (*s != '%') {
			*o++ = *s;
			continue;
		}
		if (hexval(s[1]) < 0 || hexval(s[2]) < 0 ||
		    (hexval(s[1]) == 0 && hexval(s[2]) == 0)) {
			free(out);
			return -1;
		}
		*o++ = (char)(hexval(s[1]) << 4 | hexval(s[2]));
		s += 2;
	}
	*o = '\0';
	*v_r = out;
	return 0;
}

static int
get_number(const char *s, unsigned long long max, unsigned long long *v_r)
{
	return str_to_ullong(s, v_r) < 0 || *v_r > max ? -1 : 0;
}

static int
parse_rcpt(char *fields, struct spool_rcpt *r)
{
	char *save = NULL;
	bool have_addr = false, have_state = false;

	memset(r, 0, sizeof(*r));
	for (char *f = strtok_r(fields, " ", &save); f != NULL;
	    f = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(f, '='), **slot = NULL;
		unsigned long long v;

		if (eq == NULL)
			return -1;
		*eq++ = '\0';
		if (strcmp(f, "addr") == 0) {
			if (have_addr)
				return -1;
			slot = &r->address;
			have_addr = true;
		} else if (strcmp(f, "notify") == 0) {
			slot = &r->notify;
		} else if (strcmp(f, "orcpt") == 0) {
			slot = &r->orcpt;
		} else if (strcmp(f, "reply") == 0) {
			slot = &r->last_reply;
		} else if (strcmp(f, "state") == 0) {
			size_t k;

			for (k = 0; k < sizeof(state_names) / sizeof(state_names[0]); k++)
				if (strcmp(eq, state_names[k]) == 0)
					break;
			if (k == sizeof(state_names) / sizeof(state_names[0]))
				return -1;
			r->state = (enum spool_rcpt_state)k;
			have_state = true;
		} else if (strcmp(f, "attempts") == 0) {
			if (get_number(eq, 1000000, &v) < 0)
				return -1;
			r->attempts = (unsigned int)v;
		} else if (strcmp(f, "next") == 0) {
			if (get_number(eq, 1ULL << 40, &v) < 0)
				return -1;
			r->next_attempt = (time_t)v;
		}
		/* unknown fields: ignored */
		if (slot != NULL) {
			free(*slot);
			*slot = NULL;
			if (get_value(eq, true, slot) < 0)
				return -1;
		}
	}
	return have_addr && r->address != NULL && have_state ? 0 : -1;
}

static void
rcpt_free(struct spool_rcpt *r)
{
	free(r->address);
	free(r->notify);
	free(r->orcpt);
	free(r->last_reply);
	memset(r, 0, sizeof(*r));
}

int
spool_envelope_parse(const char *data, size_t len,
    struct spool_envelope *env_r, char **error_r)
{
	char *copy, *p, *end;
	unsigned int lineno = 0;
	bool have_id = false, have_created = false, have_from = false;
	const char *why = NULL;

	memset(env_r, 0, sizeof(*env_r));
	if (memchr(data, '\0', len) != NULL) {
		*error_r = xstrdup("NUL byte in envelope");
		return -1;
	}
	copy = xstrndup(data, len);
	p = copy;
	end = copy + len;
	while (p < end && why == NULL) {
		char *line = p, *nl = strchr(p, '\n'), *val, **slot = NULL;
		unsigned long long v;

		if (nl != NULL)
			*nl = '\0';
		p = nl != NULL ? nl + 1 : end;
		lineno++;
		if (lineno == 1) {
			if (strcmp(line, ENVELOPE_MAGIC) != 0)
				why = "not a version 1 tegami queue envelope";
			continue;
		}
		if (*line == '\0')
			continue;
		val = strchr(line, ' ');
		if (val == NULL) {
			why = "line without value";
			break;
		}
		*val++ = '\0';
		if (strcmp(line, "id") == 0) {
			if (!spool_id_valid(val))
				why = "bad id";
			else
				memcpy(env_r->id, val, SPOOL_ID_LEN + 1);
			have_id = true;
		} else if (strcmp(line, "created") == 0) {
			if (get_number(val, 1ULL << 40, &v) < 0)
				why = "bad created time";
			else
				env_r->created = (time_t)v;
			have_created = true;
		} else if (strcmp(line, "from") == 0) {
			slot = &env_r->from;
			have_from = true;
		} else if (strcmp(line, "auth") == 0) {
			slot = &env_r->auth;
		} else if (strcmp(line, "envid") == 0) {
			slot = &env_r->envid;
		} else if (strcmp(line, "ret") == 0) {
			slot = &env_r->ret;
		} else if (strcmp(line, "body") == 0) {
			size_t k;

			for (k = 0; k < sizeof(body_names) / sizeof(body_names[0]); k++)
				if (strcmp(val, body_names[k]) == 0)
					break;
			if (k == sizeof(body_names) / sizeof(body_names[0]))
				why = "bad body type";
			else
				env_r->body = (enum spool_body)k;
		} else if (strcmp(line, "smtputf8") == 0 ||
		    strcmp(line, "hold") == 0 || strcmp(line, "warned") == 0) {
			if (strcmp(val, "0") != 0 && strcmp(val, "1") != 0)
				why = "bad flag";
			else if (line[0] == 's')
				env_r->smtputf8 = val[0] == '1';
			else if (line[0] == 'h')
				env_r->hold = val[0] == '1';
			else
				env_r->delay_warned = val[0] == '1';
		} else if (strcmp(line, "size") == 0) {
			if (get_number(val, 1ULL << 50, &v) < 0)
				why = "bad size";
			else
				env_r->size = v;
		} else if (strcmp(line, "rcpt") == 0) {
			struct spool_rcpt r;

			if (env_r->rcpt_count >= SPOOL_MAX_RCPTS) {
				why = "too many recipients";
			} else if (parse_rcpt(val, &r) < 0) {
				rcpt_free(&r);
				why = "bad recipient line";
			} else {
				env_r->rcpts = xreallocarray(env_r->rcpts,
				    env_r->rcpt_count + 1, sizeof(r));
				env_r->rcpts[env_r->rcpt_count++] = r;
			}
		}
		/* unknown keys: ignored */
		if (slot != NULL) {
			x_free(slot);
			if (get_value(val, slot != &env_r->from, slot) < 0)
				why = "bad escape in value";
		}
	}
	if (why == NULL && lineno == 0)
		why = "empty envelope";
	if (why == NULL && !(have_id && have_created && have_from))
		why = "id, created or from missing";
	free(copy);
	if (why != NULL) {
		*error_r = xasprintf("line %u: %s", lineno, why);
		spool_envelope_free(env_r);
		return -1;
	}
	return 0;
}

void
spool_envelope_add_rcpt(struct spool_envelope *env, const char *address)
{
	struct spool_rcpt *r;

	env->rcpts = xreallocarray(env->rcpts, env->rcpt_count + 1,
	    sizeof(*env->rcpts));
	r = &env->rcpts[env->rcpt_count++];
	memset(r, 0, sizeof(*r));
	r->address = xstrdup(address);
	r->state = SPOOL_RCPT_PENDING;
}

void
spool_envelope_free(struct spool_envelope *env)
{
	for (size_t i = 0; i < env->rcpt_count; i++)
		rcpt_free(&env->rcpts[i]);
	free(env->rcpts);
	free(env->from);
	free(env->auth);
	free(env->envid);
	free(env->ret);
	memset(env, 0, sizeof(*env));
}

/* ---- writing ---- */

struct spool_msg *
spool_msg_create(struct spool *spool, char **error_r)
{
	struct spool_msg *m = xmalloc(sizeof(*m));

	memset(m, 0, offsetof(struct spool_msg, buf));
	m->spool = spool;
	m->fd = -1;
	for (int tries = 0; tries < 3; tries++) {
		if (make_id(m->id) < 0) {
			*error_r = xstrdup("getrandom failed");
			free(m);
			return NULL;
		}
		free(m->tmp_path);
		m->tmp_path = xasprintf("%s/%s", spool->tmp_dir, m->id);
		m->fd = open(m->tmp_path, O_WRONLY | O_CREAT | O_EXCL |
		    O_CLOEXEC, 0600);
		if (m->fd >= 0 || errno != EEXIST)
			break;
	}
	if (m->fd < 0) {
		*error_r = xasprintf("create %s: %s", m->tmp_path, strerror(errno));
		free(m->tmp_path);
		free(m);
		return NULL;
	}
	return m;
}

const char *
spool_msg_id(const struct spool_msg *m)
{
	return m->id;
}

static int
msg_flush(struct spool_msg *m)
{
	if (m->buflen > 0 && write_full(m->fd, m->buf, m->buflen) < 0) {
		m->write_error = errno == ENOSPC ? "disk full" : "write failed";
		return -1;
	}
	m->buflen = 0;
	return 0;
}

int
spool_msg_write(struct spool_msg *m, const void *data, size_t len,
    const char **error_r)
{
	if (m->write_error != NULL || m->fd < 0) {
		*error_r = m->write_error != NULL ? m->write_error :
		    "message already committed";
		return -1;
	}
	if (m->buflen + len > sizeof(m->buf)) {
		if (msg_flush(m) < 0)
			goto fail;
		if (len >= sizeof(m->buf)) {
			if (write_full(m->fd, data, len) < 0) {
				m->write_error = errno == ENOSPC ? "disk full" :
				    "write failed";
				goto fail;
			}
			m->size += len;
			return 0;
		}
	}
	memcpy(m->buf + m->buflen, data, len);
	m->buflen += len;
	m->size += len;
	return 0;
fail:
	*error_r = m->write_error;
	return -1;
}

uint64_t
spool_msg_size(const struct spool_msg *m)
{
	return m->size;
}

/* Writes an envelope to tmp/ and renames it to env/<id>; fsyncs the file
 * (not the directory). */
static int
write_envelope(struct spool *spool, const struct spool_envelope *env,
    char **error_r)
{
	char suffix[17], *text, *tmp, *dst;
	unsigned long long r;
	size_t len;
	int fd, saved;

	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = (unsigned long long)getpid();
	snprintf(suffix, sizeof(suffix), "%016llx", r);
	tmp = xasprintf("%s/%s.env.%s", spool->tmp_dir, env->id, suffix);
	dst = env_path(spool, env->id);
	text = spool_envelope_format(env, &len);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		*error_r = xasprintf("create %s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (write_full(fd, text, len) < 0 || fdatasync(fd) < 0) {
		*error_r = xasprintf("write %s: %s", tmp, strerror(errno));
		saved = errno;
		close(fd);
		unlink(tmp);
		errno = saved;
		goto fail;
	}
	if (close(fd) < 0 || rename(tmp, dst) < 0) {
		*error_r = xasprintf("rename %s: %s", dst, strerror(errno));
		unlink(tmp);
		goto fail;
	}
	free(text);
	free(tmp);
	free(dst);
	return 0;
fail:
	free(text);
	free(tmp);
	free(dst);
	return -1;
}

int
spool_msg_commit(struct spool_msg *m, struct spool_envelope *env,
    char **error_r)
{
	struct spool *spool = m->spool;
	char *msg = NULL, *envp = NULL;

	if (m->fd < 0) {
		*error_r = xstrdup("message already committed");
		return -1;
	}
	if (env->rcpt_count == 0) {
		*error_r = xstrdup("no recipients");
		goto fail;
	}
	if (m->write_error != NULL || msg_flush(m) < 0) {
		*error_r = xasprintf("write %s: %s", m->tmp_path, m->write_error);
		goto fail;
	}
	if (fdatasync(m->fd) < 0) {
		*error_r = xasprintf("fsync %s: %s", m->tmp_path, strerror(errno));
		goto fail;
	}
	close(m->fd);
	m->fd = -1;
	memcpy(env->id, m->id, sizeof(env->id));
	env->created = time(NULL);
	env->size = m->size;
	if (env->from == NULL)
		env->from = xstrdup("");
	msg = spool_msg_path(spool, m->id);
	if (rename(m->tmp_path, msg) < 0) {
		*error_r = xasprintf("rename %s: %s", msg, strerror(errno));
		goto fail;
	}
	x_free(&m->tmp_path);
	if (write_envelope(spool, env, error_r) < 0)
		goto fail;
	envp = env_path(spool, m->id);
	if (fsync_dir(spool->msg_dir) < 0 || fsync_dir(spool->env_dir) < 0) {
		*error_r = xasprintf("fsync %s: %s", spool->dir, strerror(errno));
		goto fail;
	}
	free(msg);
	free(envp);
	return 0;
fail:
	/* Nothing half queued: the env first, so no entry points at a
	 * message that is gone. */
	if (envp == NULL)
		envp = env_path(spool, m->id);
	unlink(envp);
	if (msg != NULL)
		unlink(msg);
	if (m->fd >= 0) {
		close(m->fd);
		m->fd = -1;
	}
	if (m->tmp_path != NULL) {
		unlink(m->tmp_path);
		x_free(&m->tmp_path);
	}
	free(msg);
	free(envp);
	return -1;
}

void
spool_msg_free(struct spool_msg **mp)
{
	struct spool_msg *m = *mp;

	if (m == NULL)
		return;
	if (m->fd >= 0)
		close(m->fd);
	if (m->tmp_path != NULL) {
		unlink(m->tmp_path);
		free(m->tmp_path);
	}
	free(m);
	*mp = NULL;
}

/* ---- reading and maintenance ---- */

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
spool_list(struct spool *spool, char ***ids_r, size_t *count_r,
    char **error_r)
{
	DIR *d = opendir(spool->env_dir);
	struct dirent *e;
	char **ids = xcalloc(1, sizeof(char *));
	size_t n = 0;

	if (d == NULL) {
		*error_r = xasprintf("%s: %s", spool->env_dir, strerror(errno));
		free(ids);
		return -1;
	}
	while ((e = readdir(d)) != NULL) {
		if (!spool_id_valid(e->d_name))
			continue;
		ids = xreallocarray(ids, n + 2, sizeof(char *));
		ids[n++] = xstrdup(e->d_name);
		ids[n] = NULL;
	}
	closedir(d);
	qsort(ids, n, sizeof(char *), cmp_str);
	*ids_r = ids;
	if (count_r != NULL)
		*count_r = n;
	return 0;
}

int
spool_read_envelope(struct spool *spool, const char *id,
    struct spool_envelope *env_r, char **error_r)
{
	char *path, *data, *err = NULL;
	size_t len;
	int r;

	memset(env_r, 0, sizeof(*env_r));
	if (!spool_id_valid(id))
		return 0;
	path = env_path(spool, id);
	if (file_read_all(path, SPOOL_MAX_ENVELOPE, &data, &len) < 0) {
		r = errno == ENOENT ? 0 : -1;
		if (r < 0)
			*error_r = xasprintf("%s: %s", path, strerror(errno));
		free(path);
		return r;
	}
	if (spool_envelope_parse(data, len, env_r, &err) < 0) {
		*error_r = xasprintf("%s: %s", path, err);
		free(err);
		r = -1;
	} else if (strcmp(env_r->id, id) != 0) {
		*error_r = xasprintf("%s: id line says %s", path, env_r->id);
		spool_envelope_free(env_r);
		r = -1;
	} else {
		r = 1;
	}
	free(data);
	free(path);
	return r;
}

int
spool_update_envelope(struct spool *spool, const struct spool_envelope *env,
    char **error_r)
{
	if (!spool_id_valid(env->id)) {
		*error_r = xstrdup("bad queue id");
		return -1;
	}
	if (write_envelope(spool, env, error_r) < 0)
		return -1;
	if (fsync_dir(spool->env_dir) < 0) {
		*error_r = xasprintf("fsync %s: %s", spool->env_dir,
		    strerror(errno));
		return -1;
	}
	return 0;
}

int
spool_remove(struct spool *spool, const char *id, char **error_r)
{
	char *envp, *msg;
	int r = 0;

	if (!spool_id_valid(id)) {
		*error_r = xstrdup("bad queue id");
		return -1;
	}
	envp = env_path(spool, id);
	msg = spool_msg_path(spool, id);
	if (unlink(envp) < 0 && errno != ENOENT) {
		*error_r = xasprintf("unlink %s: %s", envp, strerror(errno));
		r = -1;
	} else if (unlink(msg) < 0 && errno != ENOENT) {
		/* the entry is gone; the file is garbage for spool_cleanup */
		log_warn("event=queue_unlink_failed path=%s error=\"%s\"", msg,
		    strerror(errno));
	}
	if (r == 0 && fsync_dir(spool->env_dir) < 0) {
		*error_r = xasprintf("fsync %s: %s", spool->env_dir,
		    strerror(errno));
		r = -1;
	}
	free(envp);
	free(msg);
	return r;
}

unsigned int
spool_cleanup(struct spool *spool, time_t now)
{
	const char *dirs[2] = { spool->tmp_dir, spool->msg_dir };
	unsigned int removed = 0;

	for (int i = 0; i < 2; i++) {
		DIR *d = opendir(dirs[i]);
		struct dirent *e;

		if (d == NULL)
			continue;
		while ((e = readdir(d)) != NULL) {
			struct stat st;

			if (e->d_name[0] == '.')
				continue;
			if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISREG(st.st_mode) ||
			    st.st_mtime > now - SPOOL_GARBAGE_AGE)
				continue;
			if (i == 1) {
				char *envp;
				bool has_env;

				if (!spool_id_valid(e->d_name))
					continue;
				envp = env_path(spool, e->d_name);
				has_env = access(envp, F_OK) == 0 || errno != ENOENT;
				free(envp);
				if (has_env)
					continue;
			}
			if (unlinkat(dirfd(d), e->d_name, 0) == 0) {
				removed++;
				log_info("event=queue_garbage_removed dir=%s file=%s",
				    i == 0 ? "tmp" : "msg", e->d_name);
			}
		}
		closedir(d);
	}
	return removed;
}
