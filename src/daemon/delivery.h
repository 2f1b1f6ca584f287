/*
 * delivery: one incoming message on its way to disk: a Maildir copy for
 * every local account it goes to (one written file, hard-linked) and an
 * outbound queue entry for its remote recipients. Nothing is acknowledged
 * before delivery_commit() returned 0.
 */
#ifndef TEGAMI_DELIVERY_H
#define TEGAMI_DELIVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct delivery;
struct spool;

struct delivery_params {
	const char *hostname;
	struct spool *spool;		/* the outbound queue (shared) */
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
};

/*
 * Opens the files and writes the trace headers (Return-Path, Delivered-To
 * when there is exactly one local target, Received). NULL and *error_r.
 */
struct delivery *delivery_begin(const struct delivery_params *p,
    char **error_r);
/* Body bytes as received (CRLF line ends). -1 on a write error. */
int delivery_write(struct delivery *dl, const unsigned char *data, size_t len);
/*
 * BLOCKING (pool thread): makes every copy durable. 0 = all of them are;
 * -1 = none is visible (*error_r, static or owned by dl).
 */
int delivery_commit(struct delivery *dl, const char **error_r);
/* The queue id (also in the 250 reply and the logs). */
const char *delivery_id(const struct delivery *dl);
uint64_t delivery_size(const struct delivery *dl);
/* Discards everything not committed and frees dl. */
void delivery_abort(struct delivery *dl);
/* Frees a committed delivery. */
void delivery_free(struct delivery *dl);

#endif
