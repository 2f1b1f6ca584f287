/*
 * dbfile: the docker-mailserver "database" files (postfix-accounts.cf,
 * postfix-virtual.cf, dovecot-quotas.cf, ...) edited line by line.
 *
 * A file is read whole into lines; callers find entries by key, change,
 * delete or append lines, and dbfile_commit() writes the result to a
 * temporary file beside it, fsyncs it, renames it over the old one and
 * fsyncs the directory. Lines that are not touched (comments, blank lines,
 * lines tegami does not understand, CR at line ends) are written back byte
 * for byte; a missing final newline is added only when a line is appended.
 * The rewritten file keeps the old file's mode, owner and group.
 *
 * Edits are serialised by cli_lock (one lock per config dir): every command
 * that writes takes it before reading the files it will change.
 */
#ifndef TEGAMI_CLI_DBFILE_H
#define TEGAMI_CLI_DBFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Largest file we edit: these are hand-sized tables. */
#define DBFILE_MAX_SIZE (64 * 1024 * 1024)

/* How a line's key ends. */
enum dbfile_delim {
	DBFILE_DELIM_PIPE,	/* accounts, masters: key|value */
	DBFILE_DELIM_COLON,	/* quotas: key:value */
	DBFILE_DELIM_SPACE,	/* virtual, relaymap, sasl-password, access: key<ws>value */
};

struct dbfile;

/*
 * Reads path; a missing file is an empty one (it is created on commit with
 * new_mode). -1 with a malloc'd message naming the file on failure.
 */
int dbfile_open(const char *path, enum dbfile_delim delim, mode_t new_mode,
    struct dbfile **f_r, char **error_r);
void dbfile_free(struct dbfile **f);

/*
 * When the file is created new by root: give it this group (the mail
 * user's, so workers that dropped privileges can read a 0640 file).
 */
void dbfile_set_new_group(struct dbfile *f, gid_t gid);

bool dbfile_exists(const struct dbfile *f);
size_t dbfile_count(const struct dbfile *f);
/* Line i without its "\n" (a trailing "\r" is dropped too). */
const char *dbfile_line(const struct dbfile *f, size_t i);
/* Is line i an entry (not blank, not a # comment)? */
bool dbfile_is_entry(const struct dbfile *f, size_t i);
/*
 * The key of entry i (text up to the delimiter) into buf, NUL-terminated;
 * false if line i is not an entry or the key does not fit.
 */
bool dbfile_key(const struct dbfile *f, size_t i, char *buf, size_t size);
/* The value of entry i: the text after the delimiter (and any white space). */
const char *dbfile_value(const struct dbfile *f, size_t i);
/*
 * Index of the first entry whose key equals key case-insensitively, from
 * line `from` on; -1 if none.
 */
long dbfile_find(const struct dbfile *f, const char *key, size_t from);

/* Replaces line i (a trailing CR of the old line is kept). */
void dbfile_set(struct dbfile *f, size_t i, const char *text);
void dbfile_delete(struct dbfile *f, size_t i);
void dbfile_append(struct dbfile *f, const char *text);
bool dbfile_changed(const struct dbfile *f);

/*
 * Writes the file durably if anything changed (a no-op otherwise).
 * -1 with a malloc'd message naming the file on failure; the old file is
 * then untouched.
 */
int dbfile_commit(struct dbfile *f, char **error_r);

/*
 * The config-dir lock: CONFIG_DIR/.tegami.lock, flock(LOCK_EX), waited for
 * up to timeout_ms. Creates config_dir if missing. Returns the fd (close it
 * to unlock) or -1 with a malloc'd message.
 */
int cli_lock(const char *config_dir, int timeout_ms, char **error_r);

#endif
