/*
 * maildir: durable in-line delivery. The contract and the on-disk names
 * are in maildir.h.
 */
#include "store/maildir.h"
#include "lib/file.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define WRITE_BUF_SIZE (64 * 1024)
#define MAX_NAME_TRIES 3

struct maildir_msg {
	int fd;
	char *maildir;		/* first maildir, no trailing '/' */
	char *tmp_path;		/* NULL once renamed or unlinked */
	char base[160];
	uint64_t size;		/* bytes stored (LF line ends) */
	uint64_t lines;		/* LFs stored: vsize = size + lines */
	bool pending_cr;
	const char *write_error;
	/* after commit: the name in new/ or cur/ per target (NULL for
	 * duplicates), and which of the two */
	char **names;
	const char *sub;
	size_t name_count;
	size_t buflen;
	char buf[WRITE_BUF_SIZE];
};

static atomic_uint_fast64_t msg_seq;
static pthread_once_t host_once = PTHREAD_ONCE_INIT;
static char host_name[128];

/* The host part of a Maildir name: '/' and ':' would break the name, so
 * they are written as \057 and \072 (the Maildir convention). */
static void
host_init(void)
{
	char raw[64], *o = host_name;

	if (gethostname(raw, sizeof(raw)) < 0 || raw[0] == '\0')
		strcpy(raw, "localhost");
	raw[sizeof(raw) - 1] = '\0';
	for (const char *p = raw; *p != '\0'; p++) {
		if (*p == '/' || *p == ':' || *p == ',') {
			o += sprintf(o, "\\%03o", (unsigned char)*p);
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
}

static void
make_base(char *base, size_t size)
{
	struct timeval tv;
	unsigned long long q = atomic_fetch_add(&msg_seq, 1);

	pthread_once(&host_once, host_init);
	gettimeofday(&tv, NULL);
	snprintf(base, size, "%lld.M%ldP%ldQ%llu.%s", (long long)tv.tv_sec,
	    (long)tv.tv_usec, (long)getpid(), q, host_name);
}

static char *
strip_slash(const char *path)
{
	size_t n = strlen(path);

	while (n > 1 && path[n - 1] == '/')
		n--;
	return xstrndup(path, n);
}

/*
 * Creates path and its missing parents (0700); the entry of every
 * directory we created, or found just created by someone else, is
 * fsync'd in its parent, so a later fsync of new/ is enough.
 */
static int
mkdir_durable(const char *path, unsigned int depth)
{
	char *parent;
	const char *slash;
	int r;

	if (mkdir(path, 0700) == 0)
		return fsync_parent(path);
	if (errno == EEXIST)
		return fsync_parent(path);
	if (errno != ENOENT || depth > 64)
		return -1;
	slash = strrchr(path, '/');
	if (slash == NULL || slash == path)
		return -1;
	parent = xstrndup(path, (size_t)(slash - path));
	r = mkdir_durable(parent, depth + 1);
	free(parent);
	if (r < 0)
		return -1;
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -1;
	return fsync_parent(path);
}

int
maildir_create(const char *maildir)
{
	static const char *const subs[] = { "tmp", "new", "cur" };
	char *root = strip_slash(maildir);
	int r = -1, saved;

	if (mkdir_durable(root, 0) < 0)
		goto out;
	for (size_t i = 0; i < 3; i++) {
		char *p = xasprintf("%s/%s", root, subs[i]);
		int rc = mkdir(p, 0700);

		free(p);
		if (rc < 0 && errno != EEXIST)
			goto out;
	}
	r = fsync_dir(root);
out:
	saved = errno;
	free(root);
	errno = saved;
	return r;
}

struct maildir_msg *
maildir_msg_create(const char *maildir, char **error_r)
{
	struct maildir_msg *m = xmalloc(sizeof(*m));

	memset(m, 0, offsetof(struct maildir_msg, buf));
	m->maildir = strip_slash(maildir);
	for (int tries = 0;; tries++) {
		make_base(m->base, sizeof(m->base));
		free(m->tmp_path);
		m->tmp_path = xasprintf("%s/tmp/%s", m->maildir, m->base);
		m->fd = open(m->tmp_path, O_RDWR | O_CREAT | O_EXCL |
		    O_CLOEXEC, 0600);
		if (m->fd >= 0)
			return m;
		if (errno == ENOENT && tries == 0) {
			if (maildir_create(m->maildir) == 0)
				continue;
		} else if (errno == EEXIST && tries < MAX_NAME_TRIES) {
			continue;
		}
		*error_r = xasprintf("create %s: %s", m->tmp_path,
		    strerror(errno));
		x_free(&m->tmp_path);
		maildir_msg_free(&m);
		return NULL;
	}
}

static int
flush_buf(struct maildir_msg *m)
{
	if (m->buflen > 0 && write_full(m->fd, m->buf, m->buflen) < 0) {
		m->write_error = errno == ENOSPC ? "disk full" :
		    errno == EDQUOT ? "disk quota exceeded" : "write failed";
		return -1;
	}
	m->buflen = 0;
	return 0;
}

static inline int
put_byte(struct maildir_msg *m, char c)
{
	if (m->buflen == sizeof(m->buf) && flush_buf(m) < 0)
		return -1;
	m->buf[m->buflen++] = c;
	m->size++;
	if (c == '\n')
		m->lines++;
	return 0;
}

int
maildir_msg_write(struct maildir_msg *m, const void *data, size_t len,
    const char **error_r)
{
	const char *p = data;

	if (m->write_error != NULL || m->tmp_path == NULL) {
		*error_r = m->write_error != NULL ? m->write_error :
		    "message already committed";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (m->pending_cr) {
			m->pending_cr = false;
			if (c != '\n' && put_byte(m, '\r') < 0)
				goto fail;
		}
		if (c == '\r') {
			m->pending_cr = true;
			continue;
		}
		if (put_byte(m, c) < 0)
			goto fail;
	}
	return 0;
fail:
	*error_r = m->write_error;
	return -1;
}

uint64_t
maildir_msg_size(const struct maildir_msg *m)
{
	return m->size + (m->pending_cr ? 1 : 0);
}

uint64_t
maildir_msg_vsize(const struct maildir_msg *m)
{
	return m->size + m->lines + (m->pending_cr ? 1 : 0);
}

/* Copies the message file into another filesystem's Maildir. */
static int
copy_into(struct maildir_msg *m, const char *root, const char *name,
    const char *dst, char **error_r)
{
	char *tmp = xasprintf("%s/tmp/%s", root, name);
	char buf[WRITE_BUF_SIZE];
	off_t off = 0;
	int fd, saved;

	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && errno == ENOENT && maildir_create(root) == 0)
		fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		*error_r = xasprintf("create %s: %s", tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	for (;;) {
		ssize_t n = pread(m->fd, buf, sizeof(buf), off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = xasprintf("read %s: %s", m->tmp_path,
			    strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		if (write_full(fd, buf, (size_t)n) < 0) {
			*error_r = xasprintf("write %s: %s", tmp, strerror(errno));
			goto fail;
		}
		off += n;
	}
	if (fdatasync(fd) < 0 || close(fd) < 0) {
		fd = -1;
		*error_r = xasprintf("fsync %s: %s", tmp, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (rename(tmp, dst) < 0) {
		*error_r = xasprintf("rename %s: %s", dst, strerror(errno));
		goto fail;
	}
	free(tmp);
	return 0;
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(tmp);
	errno = saved;
	return -1;
}

/*
 * Puts the file into root/new/ under a fresh name (link, or rename when
 * last). 0 with *name_r (malloc'd), -1 with *error_r.
 */
static int
deliver_one(struct maildir_msg *m, const char *root, bool last,
    const char *flags, char **name_r, char **error_r)
{
	bool created = false;

	for (int tries = 0; tries <= MAX_NAME_TRIES; tries++) {
		char base[sizeof(m->base)], *name, *dst;
		int rc;

		if (tries == 0)
			memcpy(base, m->base, sizeof(base));
		else
			make_base(base, sizeof(base));
		name = xasprintf("%s,S=%llu,W=%llu%s%s", base,
		    (unsigned long long)m->size,
		    (unsigned long long)(m->size + m->lines),
		    flags != NULL ? ":2," : "", flags != NULL ? flags : "");
		dst = xasprintf("%s/%s/%s", root, m->sub, name);
		if (last) {
			/* rename saves the unlink; NOREPLACE keeps it as
			 * safe as link against a name clash. */
			rc = renameat2(AT_FDCWD, m->tmp_path, AT_FDCWD, dst,
			    RENAME_NOREPLACE);
			if (rc < 0 && errno == EINVAL) {
				last = false;
				rc = link(m->tmp_path, dst);
			}
		} else {
			rc = link(m->tmp_path, dst);
		}
		if (rc == 0) {
			if (last)
				x_free(&m->tmp_path);
			free(dst);
			*name_r = name;
			return 0;
		}
		if (errno == EXDEV) {
			rc = copy_into(m, root, name, dst, error_r);
			free(dst);
			if (rc < 0) {
				free(name);
				return -1;
			}
			*name_r = name;
			return 0;
		}
		if (errno == ENOENT && !created) {
			/* rename/link say ENOENT for a missing target dir */
			created = true;
			if (maildir_create(root) < 0) {
				*error_r = xasprintf("create maildir %s: %s",
				    root, strerror(errno));
				free(dst);
				free(name);
				return -1;
			}
			tries--;
			free(dst);
			free(name);
			continue;
		}
		if (errno != EEXIST || tries == MAX_NAME_TRIES) {
			*error_r = xasprintf("%s %s: %s", last ? "rename" : "link",
			    dst, strerror(errno));
			free(dst);
			free(name);
			return -1;
		}
		free(dst);
		free(name);
	}
	*error_r = xstrdup("no unique file name");
	return -1;
}

/* Maildir info flags: the letters Dovecot and the spec know, in order. */
static bool
flags_valid(const char *flags)
{
	static const char order[] = "DFPRST";
	const char *pos = order;

	for (; *flags != '\0'; flags++) {
		const char *f = strchr(pos, *flags);

		if (f == NULL)
			return false;
		pos = f + 1;
	}
	return true;
}

int
maildir_msg_commit(struct maildir_msg *m, const char *const *maildirs,
    size_t count, char **error_r)
{
	return maildir_msg_commit_flags(m, maildirs, count, NULL, error_r);
}

int
maildir_msg_commit_flags(struct maildir_msg *m, const char *const *maildirs,
    size_t count, const char *flags, char **error_r)
{
	char **roots = xcalloc(count, sizeof(char *));
	size_t last = 0, i;
	int r = -1;

	if (flags != NULL && !flags_valid(flags)) {
		*error_r = xasprintf("invalid maildir flags: %.16s", flags);
		goto out_free;
	}
	m->sub = flags != NULL ? "cur" : "new";
	if (count == 0) {
		*error_r = xstrdup("no maildir to deliver to");
		goto fail;
	}
	if (m->tmp_path == NULL) {
		*error_r = xstrdup("message already committed");
		goto out_free;
	}
	if (m->pending_cr) {
		m->pending_cr = false;
		if (put_byte(m, '\r') < 0) {
			*error_r = xstrdup(m->write_error);
			goto fail;
		}
	}
	if (m->write_error != NULL || flush_buf(m) < 0) {
		*error_r = xasprintf("write %s: %s", m->tmp_path, m->write_error);
		goto fail;
	}
	if (fdatasync(m->fd) < 0) {
		*error_r = xasprintf("fsync %s: %s", m->tmp_path, strerror(errno));
		goto fail;
	}
	m->names = xcalloc(count, sizeof(char *));
	m->name_count = count;
	/* Duplicates are delivered once; the last unique one is renamed. */
	for (i = 0; i < count; i++) {
		roots[i] = strip_slash(maildirs[i]);
		for (size_t k = 0; k < i; k++) {
			if (roots[k] != NULL && strcmp(roots[k], roots[i]) == 0) {
				x_free(&roots[i]);
				break;
			}
		}
		if (roots[i] != NULL)
			last = i;
	}
	for (i = 0; i < count; i++) {
		if (roots[i] == NULL)
			continue;
		if (deliver_one(m, roots[i], i == last, flags, &m->names[i],
		    error_r) < 0)
			goto fail;
	}
	for (i = 0; i < count; i++) {
		char *dir;

		if (roots[i] == NULL)
			continue;
		dir = xasprintf("%s/%s", roots[i], m->sub);
		if (fsync_dir(dir) < 0) {
			*error_r = xasprintf("fsync %s: %s", dir, strerror(errno));
			free(dir);
			goto fail;
		}
		free(dir);
	}
	r = 0;
	goto out;
fail:
	/* Take back what was delivered: never half a delivery. */
	for (i = 0; m->names != NULL && i < count; i++) {
		if (m->names[i] != NULL && roots[i] != NULL) {
			char *p = xasprintf("%s/%s/%s", roots[i], m->sub,
			    m->names[i]);

			unlink(p);
			free(p);
		}
		if (m->names != NULL)
			x_free(&m->names[i]);
	}
out:
	if (m->tmp_path != NULL) {
		unlink(m->tmp_path);
		x_free(&m->tmp_path);
	}
	close(m->fd);
	m->fd = -1;
out_free:
	for (i = 0; i < count; i++)
		free(roots[i]);
	free(roots);
	return r;
}

const char *
maildir_msg_filename(const struct maildir_msg *m, size_t i)
{
	return m->names != NULL && i < m->name_count ? m->names[i] : NULL;
}

void
maildir_msg_free(struct maildir_msg **mp)
{
	struct maildir_msg *m = *mp;

	if (m == NULL)
		return;
	if (m->tmp_path != NULL) {
		unlink(m->tmp_path);
		free(m->tmp_path);
	}
	if (m->fd >= 0)
		close(m->fd);
	for (size_t i = 0; i < m->name_count; i++)
		free(m->names[i]);
	free(m->names);
	free(m->maildir);
	free(m);
	*mp = NULL;
}

void
maildir_msg_abort(struct maildir_msg **mp)
{
	maildir_msg_free(mp);
}

static int
parse_field(const char *name, const char *key, int64_t *v_r)
{
	const char *info = strchr(name, ':');
	const char *p = name;
	size_t klen = strlen(key);

	while ((p = strstr(p, key)) != NULL && (info == NULL || p < info)) {
		const char *d = p + klen;
		int64_t v = 0;

		if (*d < '0' || *d > '9') {
			p = d;
			continue;
		}
		for (; *d >= '0' && *d <= '9'; d++) {
			if (v > (INT64_MAX - 9) / 10)
				return -1;
			v = v * 10 + (*d - '0');
		}
		if (*d != '\0' && *d != ',' && *d != ':')
			return -1;
		*v_r = v;
		return 0;
	}
	return -1;
}

int
maildir_filename_sizes(const char *name, int64_t *size_r, int64_t *vsize_r)
{
	int r = 0;

	if (size_r != NULL && parse_field(name, ",S=", size_r) < 0)
		r = -1;
	if (vsize_r != NULL && parse_field(name, ",W=", vsize_r) < 0)
		r = -1;
	return r;
}

static int
usage_dir(const char *dir, uint64_t *sum)
{
	DIR *d = file_opendir(dir);
	struct dirent *e;

	if (d == NULL)
		return errno == ENOENT ? 0 : -1;
	while ((e = readdir(d)) != NULL) {
		int64_t s;
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		if (maildir_filename_sizes(e->d_name, &s, NULL) == 0) {
			*sum += (uint64_t)s;
			continue;
		}
		if (fstatat(dirfd(d), e->d_name, &st, 0) == 0 &&
		    S_ISREG(st.st_mode))
			*sum += (uint64_t)st.st_size;
	}
	closedir(d);
	return 0;
}

static int
usage_folder(const char *folder, uint64_t *sum)
{
	char *cur = xasprintf("%s/cur", folder), *new = xasprintf("%s/new", folder);
	int r = usage_dir(cur, sum) < 0 || usage_dir(new, sum) < 0 ? -1 : 0;
	int saved = errno;

	free(cur);
	free(new);
	errno = saved;
	return r;
}

int
maildir_usage(const char *maildir, uint64_t *bytes_r)
{
	char *root = strip_slash(maildir);
	uint64_t sum = 0;
	struct dirent *e;
	DIR *d;
	int r = 0;

	*bytes_r = 0;
	d = file_opendir(root);
	if (d == NULL) {
		r = errno == ENOENT ? 0 : -1;
		free(root);
		return r;
	}
	if (usage_folder(root, &sum) < 0)
		r = -1;
	while (r == 0 && (e = readdir(d)) != NULL) {
		char *sub;

		/* Maildir++ folders: ".Sent", ".Foo.Bar"; not "." or "..". */
		if (e->d_name[0] != '.' || e->d_name[1] == '\0' ||
		    (e->d_name[1] == '.' && e->d_name[2] == '\0'))
			continue;
		if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN)
			continue;
		sub = xasprintf("%s/%s", root, e->d_name);
		if (usage_folder(sub, &sum) < 0)
			r = -1;
		free(sub);
	}
	closedir(d);
	free(root);
	*bytes_r = sum;
	return r;
}
