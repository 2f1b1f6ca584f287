/* file: durable file operations. */
#ifndef TEGAMI_FILE_H
#define TEGAMI_FILE_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* fsync(2) on a directory, so a rename or link in it is durable. */
int fsync_dir(const char *dir);
/* fsync on the directory that holds path. */
int fsync_parent(const char *path);
/*
 * Writes data to a temporary file beside path, fsyncs it, renames it over
 * path and fsyncs the directory: readers see the old or the new content,
 * never half, even after a crash. Returns -1 with errno set.
 */
int file_write_atomic(const char *path, const void *data, size_t len,
    mode_t mode);
/*
 * open(2) for reading, O_CLOEXEC, without an atime update where the file
 * is ours (O_NOATIME; EPERM on a file of another owner, then a plain
 * open). Under relatime, reading a message that was renamed (a flag
 * change: a new ctime) or just delivered would otherwise write its inode,
 * a journal write per read that can stall the reader behind a commit.
 */
int file_open_read(const char *path);
/* The same relative to a directory fd (openat(2)). */
int file_openat_read(int dirfd, const char *name);
/* A directory the same way (O_DIRECTORY): reading it writes nothing. */
int file_open_dir(const char *path);
/* opendir(3) on file_open_dir(). */
DIR *file_opendir(const char *path);
/*
 * Reads a whole file of at most max bytes into a malloc'd NUL-terminated
 * string. -1 with errno set (EFBIG when larger than max).
 */
int file_read_all(const char *path, size_t max, char **data_r, size_t *len_r);
/*
 * Reads at most max bytes from the start of a file (the header of a big
 * message) into a malloc'd, NUL-terminated buffer. -1 with errno.
 */
int file_read_head(const char *path, size_t max, char **data_r, size_t *len_r);
/* mkdir -p; existing directories are fine. -1 with errno set. */
int mkdir_p(const char *path, mode_t mode);
/*
 * Takes an exclusive flock(2) on a directory, waiting for it: the fd to
 * close(2) to let go, or -1 with errno set. For changes to files in it
 * that other processes make too.
 */
int file_lock_dir(const char *dir);
/* Writes all of it, retrying on EINTR and short writes. */
int write_full(int fd, const void *data, size_t len);

/* What identifies a file's content for change detection. */
struct file_stamp {
	bool exists;
	dev_t dev;
	ino_t ino;
	off_t size;
	long long mtime_ns;
};
void file_stamp_get(const char *path, struct file_stamp *st_r);
bool file_stamp_equal(const struct file_stamp *a, const struct file_stamp *b);

#endif
