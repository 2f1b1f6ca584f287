/*
 * store/pop3box: the INBOX of one Maildir as POP3 sees it (RFC 1939): a
 * numbered list of messages, fixed for the session, with sizes and
 * unique ids, and the deletions applied in one step at the end.
 *
 *   r = pop3box_open("/var/mail/example.com/alice/", &box, &err); // pool thread
 *   n = pop3box_count(box); m = pop3box_msg(box, i);
 *   fd = pop3box_message_fd(box, i);        // loop: one open(2)
 *   pop3box_expunge(box, del, &removed, &err); // pool thread, at QUIT
 *   pop3box_close(&box);                     // releases the lock
 *
 * Opening: the Maildir's new/ messages are moved to cur/ (name + ":2,"),
 * as Dovecot does when a mailbox is opened, so they are "seen by a
 * client" but not \Seen. Then cur/ is listed: every regular file whose
 * name does not start with '.'. Order: by the delivery time at the start
 * of the name (the digits before the first '.'), then by name, so the
 * numbering is stable across sessions while the set is unchanged.
 *
 * Sizes: the W= field of the name (the size with CRLF line ends, what
 * RETR sends before byte-stuffing) when present; else the file is read
 * once and every LF not preceded by CR is counted twice.
 *
 * Unique ids (UIDL): for a folder migrated from Dovecot (tegami's index
 * first saw it with a dovecot-uidlist Dovecot wrote), what Dovecot gave:
 * its default pop3_uidl_format %08Xu%08Xv (UID and UIDVALIDITY, eight hex
 * digits each, lower case as Dovecot writes them, from the index), or the
 * UIDL Dovecot kept for the message, so POP3 clients that leave mail on
 * the server do not download it again.
 * Otherwise, as tegami always did: the Maildir base name (the name up to
 * the first ':' or ','), which Maildir makes unique and which stays the
 * same when flags change. RFC 1939 wants 1..70 characters in 0x21..0x7E:
 * a base name that is longer or holds other bytes is replaced by "H" + 32
 * hex digits of its SHA-256 (stable too). The index is opened privately
 * (this runs on a pool thread) and synced first, which also moves new/
 * to cur/ and gives new mail its UID; without a usable index the base
 * names are used.
 *
 * Locking: one POP3 session per Maildir at a time, across processes, with
 * flock(2) on <maildir>/tegami-pop3.lock (also between two opens in one
 * process: the lock belongs to the open file). IMAP and delivery are not
 * locked out: a message another client removed is skipped when read
 * (-1 from pop3box_message_fd) and when expunged.
 */
#ifndef TEGAMI_POP3BOX_H
#define TEGAMI_POP3BOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POP3BOX_UIDL_MAX 70
/* Bound on the messages one session lists (RFC 1939 numbers them). */
#define POP3BOX_MAX_MESSAGES 1000000

struct pop3box_msg {
	char *name;		/* file name in cur/ */
	char uidl[POP3BOX_UIDL_MAX + 1];
	uint64_t size;		/* octets with CRLF line ends */
	uint64_t time;		/* delivery time from the name, 0 if none */
};

struct pop3box;

/*
 * Locks and lists the Maildir (path of its root, with or without a
 * trailing '/'; a missing Maildir is created empty). BLOCKING: run it on a
 * pool thread. 1 = opened (*box_r), 0 = another session holds the lock,
 * -1 = error (*error_r, malloc'd).
 */
int pop3box_open(const char *maildir, struct pop3box **box_r, char **error_r);

size_t pop3box_count(const struct pop3box *box);
/* Message i (0-based, < count). */
const struct pop3box_msg *pop3box_msg(const struct pop3box *box, size_t i);

/*
 * Opens message i for reading (O_RDONLY|O_CLOEXEC); the caller closes the
 * fd. When the file was renamed meanwhile (an IMAP client changed its
 * flags), it is found again by its base name. -1 with errno when gone.
 */
int pop3box_message_fd(const struct pop3box *box, size_t i);

/*
 * Unlinks every message i with deleted[i] true (deleted has count
 * entries), then fsyncs cur/. BLOCKING. A message already gone counts as
 * removed. 0 = all removed (*removed_r = how many), -1 = some could not
 * be removed (*error_r, malloc'd; the others are gone).
 */
int pop3box_expunge(struct pop3box *box, const bool *deleted,
    unsigned int *removed_r, char **error_r);

/* Releases the lock and frees; NULL is fine. Cheap (may run on the loop). */
void pop3box_close(struct pop3box **box);

/*
 * The UIDL for a Maildir file name (see above); out has room for
 * POP3BOX_UIDL_MAX + 1 bytes. Exposed for tests.
 */
void pop3box_uidl(const char *name, char *out);

#endif
