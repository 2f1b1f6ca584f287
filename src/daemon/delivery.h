/*
 * delivery: one incoming message on its way to disk: a Maildir copy for
 * every local account it goes to (one written file, hard-linked) and an
 * outbound queue entry for its remote recipients. Nothing is acknowledged
 * before delivery_commit() returned 0.
 *
 * The body is collected first (in memory up to DELIVERY_MEM_MAX, then in
 * an unlinked temporary file in the incoming directory), because the
 * trace header fields that go on top of the stored message
 * (Received-SPF, Authentication-Results) are known only once the whole
 * message has been checked. delivery_commit() then writes each final file
 * in one go: trace fields, then the message with forged
 * Authentication-Results fields (our authserv-id) and X-Spam fields
 * removed. A crash before the commit leaves nothing behind: the
 * temporary file has no name.
 */
#ifndef TEGAMI_DELIVERY_H
#define TEGAMI_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct delivery;
struct spool;
struct spammark_settings;
struct spammark_verdict;

/* Bodies up to this size stay in memory until the commit. */
#define DELIVERY_MEM_MAX (256 * 1024)

struct delivery_params {
	const char *hostname;		/* Received "by", and the authserv-id */
	struct spool *spool;		/* the outbound queue (shared) */
	const char *incoming_dir;	/* where big bodies wait (unlinked) */
	const char *sender;		/* reverse-path, "" for <> */
	const char *auth_login;		/* or NULL */
	/* local targets: account addresses and their Maildirs */
	const char *const *local_addrs;
	const char *const *local_maildirs;
	size_t nlocal;
	/* remote recipients (for the queue) */
	const char *const *remote;
	size_t nremote;
	const char *body_type;		/* "7BIT", "8BITMIME" or NULL */
	bool smtputf8;
	/* for the Received header */
	const char *helo;
	const char *client_ip;
	const char *protocol;		/* "ESMTPSA" ... */
	const char *tls_version, *tls_cipher;	/* or NULL */
	const char *rcpt_for;		/* the one recipient, or NULL */
	bool hide_client;		/* authenticated submission: no IP */
	/* Authenticated submission: a missing Message-ID or Date is added
	 * (never for mail from other servers; see delivery.c). */
	bool add_missing_fields;
};

/* What the checks decided, for delivery_commit(). All may be NULL/0. */
struct delivery_extra {
	/* Trace fields placed after Received, each without line end
	 * ("Received-SPF: ...", "Authentication-Results: ..."). */
	const char *fields[4];
	/* Local copies go to this Maildir++ folder ("Junk") instead of INBOX. */
	const char *folder;
	/* Delivered as read: cur/<name>:2,S (MARK_SPAM_AS_READ). */
	bool seen;
	/* Spam marking (X-Spam fields, subject); NULL = no rewriting. */
	const struct spammark_settings *mark;
	const struct spammark_verdict *verdict;
};

/*
 * Starts a delivery (cheap: no file is opened for a body that stays in
 * memory; a queue id is taken when there are remote recipients). NULL
 * and *error_r.
 */
struct delivery *delivery_begin(const struct delivery_params *p,
    char **error_r);
/* Body bytes as received (CRLF line ends). -1 on a write error. */
int delivery_write(struct delivery *dl, const unsigned char *data, size_t len);
/*
 * The message as received, contiguous (a mapping of the temporary file
 * for a big one), valid until the delivery is freed. For the checks on a
 * pool thread. -1 and *error_r (static) when the file cannot be mapped.
 */
int delivery_message(struct delivery *dl, const char **msg_r, size_t *len_r,
    const char **error_r);
/*
 * BLOCKING (pool thread): writes and makes every copy durable, with the
 * trace fields of extra (may be NULL). 0 = all of them are; -1 = none is
 * visible (*error_r, static or owned by dl).
 */
int delivery_commit(struct delivery *dl, const struct delivery_extra *extra,
    const char **error_r);
/* The queue id (also in the 250 reply and the logs). */
const char *delivery_id(const struct delivery *dl);
uint64_t delivery_size(const struct delivery *dl);
/* Discards everything not committed and frees dl. */
void delivery_abort(struct delivery *dl);
/* Frees a committed delivery. */
void delivery_free(struct delivery *dl);

#endif
