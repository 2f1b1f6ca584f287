/*
 * spool: the outbound queue on disk.
 *
 * Layout, under STATE_DIR/tegami/queue/ (directories mode 0700, files 0600):
 *   tmp/           files being written; anything here is garbage after a crash
 *   msg/<id>       the message exactly as it will be sent: CRLF line ends,
 *                  our Received header on top, dot-stuffing NOT applied
 *   env/<id>       the envelope (below)
 *
 * An entry exists exactly when env/<id> exists. msg/<id> without env/<id>
 * is what a crash between the two renames leaves, or a removal that was
 * cut short: spool_cleanup() deletes it once it is an hour old.
 *
 * Ids: 24 lower-case hex digits, 8 of time (seconds since the epoch, so
 * ids sort roughly by age) and 16 of getrandom(2); unique by chance and
 * by O_EXCL on tmp/<id>.
 *
 * Commit order (spool_msg_commit): write msg to tmp/<id>, fdatasync,
 * rename to msg/<id>; write the envelope to tmp/<id>.env, fdatasync,
 * rename to env/<id>; fsync msg/ then env/. Only then may the caller
 * answer 250. A crash before the end leaves no env/<id>, or an env/<id>
 * whose directory entry was not yet synced; the client was not told 250
 * and will retry.
 *
 * Envelope format, text, one field per line, "key value":
 *
 *   tegami-queue 1
 *   id 5f3a9c1e0123456789abcdef
 *   created 1764270000
 *   from alice@example.com          reverse-path; "-" for the null sender <>
 *   auth alice@example.com          SASL login; "-" when none
 *   body 8bitmime                   7bit | 8bitmime | binarymime
 *   smtputf8 0                      0 | 1
 *   size 12345                      bytes of msg/<id>
 *   envid -                         DSN ENVID (RFC 3461), "-" when none
 *   ret -                           DSN RET: full | hdrs | -
 *   hold 0                          1 = held by the operator
 *   warned 1                        the delay warning DSN was sent (optional
 *                                   key, written only when 1; absent = 0)
 *   rcpt addr=bob@example.org state=pending attempts=0 next=0 notify=- orcpt=- reply=-
 *
 * One "rcpt" line per recipient, fields "name=value" in any order:
 * state = pending | sent | failed | bounced (failed and the DSN queued),
 * attempts = delivery attempts so far, next = time of the next attempt
 * (seconds since the epoch, 0 = now), notify = DSN NOTIFY as given
 * ("-" none), orcpt = DSN ORCPT ("-" none), reply = the last SMTP reply
 * or error ("-" none).
 *
 * Escaping: every value is written with bytes <= 0x20, 0x7f, '%' and '='
 * as %XX (upper-case hex); an empty value is written "-" and a value that
 * is exactly "-" is written "%2D". So no value can hold a newline, space
 * or '=', and a hostile address cannot forge a line or a field. UTF-8 is
 * kept as is. Unknown keys and unknown rcpt fields are ignored (newer
 * versions may add some); a missing required key is an error.
 *
 * Threads: a struct spool is read-only after spool_open and may be used by
 * any thread; each call works on its own files. One writer per entry: the
 * queue worker owns env/<id> after the commit (the smtp worker never
 * touches it again).
 */
#ifndef TEGAMI_SPOOL_H
#define TEGAMI_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SPOOL_ID_LEN 24
/* Bound on an envelope file and on its recipients. */
#define SPOOL_MAX_ENVELOPE (4u * 1024 * 1024)
#define SPOOL_MAX_RCPTS 10000
/* Age after which garbage in tmp/ and msg/ without env/ is removed. */
#define SPOOL_GARBAGE_AGE 3600

enum spool_body {
	SPOOL_BODY_7BIT,
	SPOOL_BODY_8BITMIME,
	SPOOL_BODY_BINARYMIME,
};

enum spool_rcpt_state {
	SPOOL_RCPT_PENDING,
	SPOOL_RCPT_SENT,
	SPOOL_RCPT_FAILED,
	SPOOL_RCPT_BOUNCED,
};

struct spool_rcpt {
	char *address;
	enum spool_rcpt_state state;
	unsigned int attempts;
	time_t next_attempt;
	char *notify;		/* NULL = none */
	char *orcpt;		/* NULL = none */
	char *last_reply;	/* NULL = none */
};

/* All strings malloc'd and owned by the envelope; NULL = none. */
struct spool_envelope {
	char id[SPOOL_ID_LEN + 1];
	time_t created;
	char *from;		/* "" = null sender; never NULL once read */
	char *auth;
	enum spool_body body;
	bool smtputf8;
	uint64_t size;
	char *envid;
	char *ret;
	bool hold;
	bool delay_warned;	/* the delay warning DSN went out */
	struct spool_rcpt *rcpts;
	size_t rcpt_count;
};

/* Adds a pending recipient (address copied). */
void spool_envelope_add_rcpt(struct spool_envelope *env, const char *address);
void spool_envelope_free(struct spool_envelope *env);
/* "pending", "sent", ...; and back (-1 if unknown). */
const char *spool_rcpt_state_name(enum spool_rcpt_state state);

struct spool;

/*
 * Opens (creating with mode 0700 where missing) STATE_DIR/tegami/queue/
 * and its tmp/ msg/ env/. NULL and *error_r (malloc'd) on failure.
 */
struct spool *spool_open(const char *state_dir, char **error_r);
/*
 * For readers such as `tegami queue list`, which must not create the
 * directories (run as root they would be root's, and the workers could not
 * use them): NULL with *error_r NULL when there is no queue yet, NULL with
 * *error_r set when it cannot be looked at.
 */
struct spool *spool_open_existing(const char *state_dir, char **error_r);
void spool_close(struct spool **spool);
/* The queue directory (…/tegami/queue). */
const char *spool_dir(const struct spool *spool);

struct spool_msg;

/*
 * Starts a new message: tmp/<new id>, O_EXCL, 0600. Cheap (one open).
 * NULL and *error_r (malloc'd) on failure.
 */
struct spool_msg *spool_msg_create(struct spool *spool, char **error_r);
const char *spool_msg_id(const struct spool_msg *m);
/*
 * Appends bytes exactly as given (the caller passes CRLF line ends),
 * buffered. -1 once a write failed (*error_r static); later calls and the
 * commit fail too.
 */
int spool_msg_write(struct spool_msg *m, const void *data, size_t len,
    const char **error_r);
uint64_t spool_msg_size(const struct spool_msg *m);
/*
 * Makes the entry durable with envelope env (its id, created and size
 * are filled in here; at least one recipient). BLOCKING: pool thread.
 * 0 = durable (answer 250); -1 = nothing queued (*error_r malloc'd; the
 * files are removed). Free m with spool_msg_free() either way.
 */
int spool_msg_commit(struct spool_msg *m, struct spool_envelope *env,
    char **error_r);
/* Drops an uncommitted message; frees m. NULL is fine. */
void spool_msg_free(struct spool_msg **m);

/*
 * The ids of every entry (env/<id> with a valid id name), sorted, as a
 * NULL-terminated malloc'd array (free with str_array_free). -1 and
 * *error_r (malloc'd) if env/ cannot be read.
 */
int spool_list(struct spool *spool, char ***ids_r, size_t *count_r,
    char **error_r);
/* The path of msg/<id>, malloc'd, for the sender to open. */
char *spool_msg_path(const struct spool *spool, const char *id);
/*
 * Reads env/<id>. 1 = read, 0 = no such entry, -1 = unreadable or
 * malformed (*error_r malloc'd, naming the line). Free with
 * spool_envelope_free. A malformed envelope is the operator's to look at:
 * it is never deleted automatically.
 */
int spool_read_envelope(struct spool *spool, const char *id,
    struct spool_envelope *env_r, char **error_r);
/*
 * Rewrites env/<env->id> atomically (tmp, fdatasync, rename, fsync env/).
 * BLOCKING. -1 with *error_r (malloc'd).
 */
int spool_update_envelope(struct spool *spool,
    const struct spool_envelope *env, char **error_r);
/*
 * Removes an entry: env/<id> first (the entry is gone), then msg/<id>,
 * then fsync env/. 0 also when it did not exist. BLOCKING.
 */
int spool_remove(struct spool *spool, const char *id, char **error_r);
/*
 * Deletes garbage older than SPOOL_GARBAGE_AGE seconds before now: files
 * in tmp/ and msg/<id> without env/<id>. Returns how many were removed.
 * For the queue worker, at start and now and then.
 */
unsigned int spool_cleanup(struct spool *spool, time_t now);

/* Envelope text <-> struct, for the tests and the fuzzer. */
char *spool_envelope_format(const struct spool_envelope *env, size_t *len_r);
int spool_envelope_parse(const char *data, size_t len,
    struct spool_envelope *env_r, char **error_r);
/* Is s a well-formed id (SPOOL_ID_LEN lower-case hex digits)? */
bool spool_id_valid(const char *s);

#endif
