#include "cli/dbfile.h"
#include "lib/file.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

struct dbline {
	char *text;
	bool cr;	/* the line ended in "\r\n": kept as it was */
};

struct dbfile {
	char *path;
	enum dbfile_delim delim;
	mode_t new_mode;
	gid_t new_gid;
	bool exists;
	bool final_nl;	/* the last line ends in a newline */
	bool changed;
	struct stat st;
	struct dbline *lines;
	size_t count, cap;
};

static void
push_line(struct dbfile *f, const char *text, size_t len, bool cr)
{
	if (f->count == f->cap) {
		f->cap = f->cap == 0 ? 16 : f->cap * 2;
		f->lines = xreallocarray(f->lines, f->cap, sizeof(*f->lines));
	}
	f->lines[f->count].text = xstrndup(text, len);
	f->lines[f->count].cr = cr;
	f->count++;
}

int
dbfile_open(const char *path, enum dbfile_delim delim, mode_t new_mode,
    struct dbfile **f_r, char **error_r)
{
	struct dbfile *f = xcalloc(1, sizeof(*f));
	char *data = NULL;
	size_t len = 0;

	f->path = xstrdup(path);
	f->delim = delim;
	f->new_mode = new_mode;
	f->new_gid = (gid_t)-1;
	f->final_nl = true;
	if (file_read_all(path, DBFILE_MAX_SIZE, &data, &len) < 0) {
		if (errno != ENOENT) {
			*error_r = xasprintf("cannot read %s: %s", path,
			    strerror(errno));
			dbfile_free(&f);
			return -1;
		}
	} else {
		f->exists = true;
		if (stat(path, &f->st) < 0)
			memset(&f->st, 0, sizeof(f->st));
		for (size_t start = 0; start < len;) {
			const char *nl = memchr(data + start, '\n', len - start);
			size_t end = nl != NULL ? (size_t)(nl - data) : len;
			bool cr = end > start && data[end - 1] == '\r';

			push_line(f, data + start, end - start - (cr ? 1 : 0), cr);
			if (nl == NULL)
				f->final_nl = false;
			start = end + 1;
		}
		free(data);
	}
	*f_r = f;
	return 0;
}

void
dbfile_free(struct dbfile **fp)
{
	struct dbfile *f = *fp;

	if (f == NULL)
		return;
	for (size_t i = 0; i < f->count; i++)
		free(f->lines[i].text);
	free(f->lines);
	free(f->path);
	free(f);
	*fp = NULL;
}

void
dbfile_set_new_group(struct dbfile *f, gid_t gid)
{
	f->new_gid = gid;
}

bool
dbfile_exists(const struct dbfile *f)
{
	return f->exists;
}

size_t
dbfile_count(const struct dbfile *f)
{
	return f->count;
}

const char *
dbfile_line(const struct dbfile *f, size_t i)
{
	return f->lines[i].text;
}

bool
dbfile_is_entry(const struct dbfile *f, size_t i)
{
	const char *p = f->lines[i].text;

	while (*p == ' ' || *p == '\t')
		p++;
	return *p != '\0' && *p != '#';
}

static size_t
key_len(const struct dbfile *f, const char *line)
{
	switch (f->delim) {
	case DBFILE_DELIM_PIPE:
		return strcspn(line, "|");
	case DBFILE_DELIM_COLON:
		return strcspn(line, ":");
	case DBFILE_DELIM_SPACE:
		return strcspn(line, " \t");
	}
	return strlen(line);
}

bool
dbfile_key(const struct dbfile *f, size_t i, char *buf, size_t size)
{
	const char *line = f->lines[i].text;
	size_t n = key_len(f, line);

	if (!dbfile_is_entry(f, i) || n >= size)
		return false;
	memcpy(buf, line, n);
	buf[n] = '\0';
	return true;
}

const char *
dbfile_value(const struct dbfile *f, size_t i)
{
	const char *p = f->lines[i].text;

	p += key_len(f, p);
	if (*p != '\0')
		p++;
	if (f->delim == DBFILE_DELIM_SPACE)
		p += strspn(p, " \t");
	return p;
}

long
dbfile_find(const struct dbfile *f, const char *key, size_t from)
{
	size_t klen = strlen(key);

	for (size_t i = from; i < f->count; i++) {
		const char *line = f->lines[i].text;

		if (dbfile_is_entry(f, i) && key_len(f, line) == klen &&
		    strncasecmp(line, key, klen) == 0)
			return (long)i;
	}
	return -1;
}

void
dbfile_set(struct dbfile *f, size_t i, const char *text)
{
	if (strcmp(f->lines[i].text, text) == 0)
		return;
	free(f->lines[i].text);
	f->lines[i].text = xstrdup(text);
	f->changed = true;
}

void
dbfile_delete(struct dbfile *f, size_t i)
{
	free(f->lines[i].text);
	memmove(&f->lines[i], &f->lines[i + 1],
	    (f->count - i - 1) * sizeof(f->lines[0]));
	f->count--;
	f->changed = true;
}

void
dbfile_append(struct dbfile *f, const char *text)
{
	push_line(f, text, strlen(text), false);
	/* The old last line gets its missing newline, as docker-mailserver does. */
	f->final_nl = true;
	f->changed = true;
}

bool
dbfile_changed(const struct dbfile *f)
{
	return f->changed;
}

/* Write to a temporary file beside target, then rename it into place. */
static int
write_replace(const char *target, const char *data, size_t len, mode_t mode,
    const struct stat *old, gid_t new_gid, char **error_r)
{
	const char *slash = strrchr(target, '/');
	char *tmp = slash != NULL ?
	    xasprintf("%.*s/.%s.tegami-tmp.%ld", (int)(slash - target), target,
		slash + 1, (long)getpid()) :
	    xasprintf(".%s.tegami-tmp.%ld", target, (long)getpid());
	int fd, saved;
	const char *step = "create";

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd < 0)
		goto fail;
	step = "write";
	if (write_full(fd, data, len) < 0)
		goto fail_fd;
	/* Keep the old owner and group; only root can give a file away. */
	if (old != NULL && geteuid() == 0 &&
	    fchown(fd, old->st_uid, old->st_gid) < 0)
		goto fail_fd;
	if (old == NULL && new_gid != (gid_t)-1 && geteuid() == 0 &&
	    fchown(fd, (uid_t)-1, new_gid) < 0)
		goto fail_fd;
	if (fchmod(fd, mode) < 0)
		goto fail_fd;
	step = "fsync";
	if (fsync(fd) < 0)
		goto fail_fd;
	if (close(fd) < 0) {
		fd = -1;
		goto fail_fd;
	}
	step = "rename";
	if (rename(tmp, target) < 0) {
		fd = -1;
		goto fail_fd;
	}
	free(tmp);
	if (fsync_parent(target) < 0) {
		*error_r = xasprintf("cannot fsync the directory of %s: %s",
		    target, strerror(errno));
		return -1;
	}
	return 0;
fail_fd:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = saved;
fail:
	*error_r = xasprintf("cannot write %s (%s %s): %s", target, step, tmp,
	    strerror(errno));
	free(tmp);
	return -1;
}

int
dbfile_commit(struct dbfile *f, char **error_r)
{
	char *data, *p, *target = NULL;
	size_t len = 0;
	struct stat lst;
	int r;

	if (!f->changed)
		return 0;
	for (size_t i = 0; i < f->count; i++)
		len += strlen(f->lines[i].text) + 2;
	data = p = xmalloc(len + 1);
	for (size_t i = 0; i < f->count; i++) {
		size_t n = strlen(f->lines[i].text);

		memcpy(p, f->lines[i].text, n);
		p += n;
		if (f->lines[i].cr)
			*p++ = '\r';
		if (i + 1 < f->count || f->final_nl)
			*p++ = '\n';
	}
	/* A symlinked file is edited where it points, and stays a symlink. */
	if (lstat(f->path, &lst) == 0 && S_ISLNK(lst.st_mode))
		target = realpath(f->path, NULL);
	r = write_replace(target != NULL ? target : f->path, data,
	    (size_t)(p - data),
	    f->exists ? (f->st.st_mode & 07777) : f->new_mode,
	    f->exists ? &f->st : NULL, f->new_gid, error_r);
	free(target);
	free(data);
	if (r == 0)
		f->changed = false;
	return r;
}

int
cli_lock(const char *config_dir, int timeout_ms, char **error_r)
{
	char *path = xasprintf("%s/.tegami.lock", config_dir);
	int fd, waited = 0;

	if (mkdir_p(config_dir, 0755) < 0) {
		*error_r = xasprintf("cannot create the config dir %s: %s",
		    config_dir, strerror(errno));
		free(path);
		return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		*error_r = xasprintf("cannot open the lock file %s: %s", path,
		    strerror(errno));
		free(path);
		return -1;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		if (errno != EWOULDBLOCK && errno != EINTR) {
			*error_r = xasprintf("cannot lock %s: %s", path,
			    strerror(errno));
			goto fail;
		}
		if (waited >= timeout_ms) {
			*error_r = xasprintf("another command holds the lock "
			    "%s; try again", path);
			goto fail;
		}
		nanosleep(&ts, NULL);
		waited += 10;
	}
	free(path);
	return fd;
fail:
	close(fd);
	free(path);
	return -1;
}
