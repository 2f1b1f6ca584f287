/*
 * dsn: delivery status notifications (RFC 3464), the bounce a sender gets
 * when mail cannot be delivered, or a warning when it is late.
 *
 * The report is multipart/report (RFC 6522): a plain-text part a person
 * can read first, the machine-readable message/delivery-status part, and
 * the original message's header (text/rfc822-headers). It is sent from the
 * null sender, so it can never itself bounce; the caller never sends one
 * for a message whose sender was already null (dsn_wanted()).
 */
#ifndef TEGAMI_QUEUE_DSN_H
#define TEGAMI_QUEUE_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct dsn_rcpt {
	const char *address;		/* Final-Recipient */
	const char *orcpt;		/* Original-Recipient ("rfc822;x") or NULL */
	const char *status;		/* "5.1.1"; see dsn_status_from_reply */
	const char *remote_mta;		/* host that answered, or NULL */
	const char *diagnostic;		/* the remote reply or our reason */
	time_t last_attempt;		/* 0 = none */
};

struct dsn_params {
	const char *hostname;		/* Reporting-MTA, From: MAILER-DAEMON@ */
	const char *queue_id;
	const char *sender;		/* the original sender, the DSN's To: */
	time_t arrival;
	time_t now;
	bool delayed;			/* a warning (Action: delayed), not a bounce */
	const struct dsn_rcpt *rcpts;
	size_t rcpt_count;
	/* The original message; only its header block is quoted. */
	const char *original;
	size_t original_len;
	/* A warning: when the queue gives up (Will-Retry-Until); 0 = none. */
	time_t retry_until;
};

/* May a DSN be sent for a message from this sender ("" = null sender)? */
bool dsn_wanted(const char *sender);

/*
 * The whole DSN message, CRLF line ends, ready for the queue (malloc'd,
 * *len_r bytes). Recipient and reply texts are folded and stripped of
 * control characters, so a hostile reply cannot inject headers or parts.
 */
char *dsn_format(const struct dsn_params *p, size_t *len_r);

/*
 * The RFC 3463 status of an SMTP reply: its enhanced code when it carries
 * a valid one whose class matches the reply code, else "5.0.0"/"4.0.0".
 * out must hold 16 bytes.
 */
void dsn_status_from_reply(const char *reply, char out[16]);

/* Length of the header block of msg (up to and including the blank line). */
size_t dsn_header_length(const char *msg, size_t len);

#endif
