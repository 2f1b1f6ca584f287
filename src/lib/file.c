#include "lib/file.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>

int
fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r, saved;

	if (fd < 0)
		return -1;
	r = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return r;
}

int
fsync_parent(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int r;

	if (slash == NULL)
		return fsync_dir(".");
	dir = xstrndup(path, slash == path ? 1 : (size_t)(slash - path));
	r = fsync_dir(dir);
	free(dir);
	return r;
}

int
write_full(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	int fd, saved;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		goto fail;
	if (fchmod(fd, mode) < 0 || write_full(fd, data, len) < 0 ||
	    fsync(fd) < 0) {
		saved = errno;
		close(fd);
		unlink(tmp);
		errno = saved;
		goto fail;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		saved = errno;
		unlink(tmp);
		errno = saved;
		goto fail;
	}
	free(tmp);
	return fsync_parent(path);
fail:
	saved = errno;
	free(tmp);
	errno = saved;
	return -1;
}

/* openat(2) for reading with O_NOATIME, which is only for the file's
   owner (or CAP_FOWNER): on another's file, EPERM, then a plain open */
static int
openat_noatime(int dirfd, const char *name, int flags)
{
	int fd = openat(dirfd, name, flags | O_RDONLY | O_CLOEXEC | O_NOATIME);

	if (fd < 0 && errno == EPERM)
		fd = openat(dirfd, name, flags | O_RDONLY | O_CLOEXEC);
	return fd;
}

int
file_openat_read(int dirfd, const char *name)
{
	return openat_noatime(dirfd, name, 0);
}

int
file_open_read(const char *path)
{
	return openat_noatime(AT_FDCWD, path, 0);
}

int
file_open_dir(const char *path)
{
	return openat_noatime(AT_FDCWD, path, O_DIRECTORY);
}

DIR *
file_opendir(const char *path)
{
	int fd = file_open_dir(path);
	DIR *d;
	int saved;

	if (fd < 0)
		return NULL;
	if ((d = fdopendir(fd)) == NULL) {
		saved = errno;
		close(fd);
		errno = saved;
	}
	return d;
}

int
file_read_all(const char *path, size_t max, char **data_r, size_t *len_r)
{
	int fd = file_open_read(path);
	struct stat st;
	char *data;
	size_t len = 0, cap;
	int saved;

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0)
		goto fail_fd;
	if ((unsigned long long)st.st_size > max) {
		errno = EFBIG;
		goto fail_fd;
	}
	cap = (size_t)st.st_size + 1;
	data = xmalloc(cap);
	for (;;) {
		ssize_t n;

		if (len + 1 >= cap) {
			if (cap > max + 1) {
				free(data);
				errno = EFBIG;
				goto fail_fd;
			}
			cap *= 2;
			data = xrealloc(data, cap);
		}
		n = read(fd, data + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			saved = errno;
			free(data);
			errno = saved;
			goto fail_fd;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max) {
		free(data);
		errno = EFBIG;
		goto fail_fd;
	}
	close(fd);
	data[len] = '\0';
	*data_r = data;
	if (len_r != NULL)
		*len_r = len;
	return 0;
fail_fd:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

int
mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(tmp, path, len + 1);
	for (char *p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

void
file_stamp_get(const char *path, struct file_stamp *st_r)
{
	struct stat st;

	memset(st_r, 0, sizeof(*st_r));
	if (stat(path, &st) < 0)
		return;
	st_r->exists = true;
	st_r->dev = st.st_dev;
	st_r->ino = st.st_ino;
	st_r->size = st.st_size;
	st_r->mtime_ns = (long long)st.st_mtim.tv_sec * 1000000000LL +
	    st.st_mtim.tv_nsec;
}

bool
file_stamp_equal(const struct file_stamp *a, const struct file_stamp *b)
{
	return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino &&
	    a->size == b->size && a->mtime_ns == b->mtime_ns;
}

int
file_read_head(const char *path, size_t max, char **data_r, size_t *len_r)
{
	int fd = file_open_read(path);
	char *data;
	size_t len = 0;

	if (fd < 0)
		return -1;
	data = xmalloc(max + 1);
	while (len < max) {
		ssize_t n = read(fd, data + len, max - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int saved = errno;

			free(data);
			close(fd);
			errno = saved;
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	data[len] = '\0';
	*data_r = data;
	*len_r = len;
	return 0;
}

int
file_lock_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), saved;

	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX) < 0) {
		if (errno == EINTR)
			continue;
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}
