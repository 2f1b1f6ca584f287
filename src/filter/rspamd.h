/*
 * filter/rspamd: asks a running rspamd about a message (ENABLE_RSPAMD=1)
 * over its HTTP protocol (POST /checkv2, the SMTP envelope in request
 * headers, the message as the body) and reads its verdict: the action,
 * the score, and the new subject for "rewrite subject".
 *
 * Blocking with timeouts (filter/netclient): run it on a pool thread.
 * The reply is bounded (RSPAMD_REPLY_MAX) and parsed by a small JSON
 * reader that only keeps the top-level keys it needs. Thread-safe.
 */
#ifndef TEGAMI_FILTER_RSPAMD_H
#define TEGAMI_FILTER_RSPAMD_H

#include <stdbool.h>
#include <stddef.h>

#define RSPAMD_REPLY_MAX (1024 * 1024)
#define RSPAMD_SUBJECT_MAX 998

/* What the caller does (docker-mailserver's actions.conf thresholds). */
enum rspamd_action {
	RSPAMD_NO_ACTION,	/* deliver */
	RSPAMD_GREYLIST,	/* 451 4.7.1, try again later */
	RSPAMD_ADD_HEADER,	/* deliver with X-Spam: Yes (-> Junk) */
	RSPAMD_REWRITE_SUBJECT,	/* deliver with the new subject */
	RSPAMD_SOFT_REJECT,	/* 451 4.7.1 */
	RSPAMD_REJECT,		/* 554 5.7.1 */
};

const char *rspamd_action_name(enum rspamd_action a);

struct rspamd_settings {
	const char *address;		/* "127.0.0.1:11333" or a socket path */
	unsigned int timeout_ms;	/* 0 = 30000 */
	size_t max_size;		/* larger messages are not sent; 0 = 50 MiB */
	const char *password;		/* controller password, or NULL */
};

struct rspamd_request {
	const char *client_ip;
	const char *client_name;	/* verified reverse name, or NULL */
	const char *helo;
	const char *sender;		/* "" for the null sender */
	const char *const *recipients;
	size_t recipient_count;
	const char *user;		/* SMTP AUTH user, or NULL */
	const char *queue_id;		/* for rspamd's logs, or NULL */
	const void *message;
	size_t message_len;
};

struct rspamd_result {
	enum rspamd_action action;
	double score;
	double required_score;
	bool skipped;		/* too large, or rspamd said is_skipped */
	char subject[RSPAMD_SUBJECT_MAX + 1];	/* rewrite subject, else "" */
};

/* 0 with *result filled, or -1 with a malloc'd *error_r (unreachable,
 * timeout, HTTP error, unreadable reply): the caller decides. */
int rspamd_check(const struct rspamd_settings *settings,
    const struct rspamd_request *req, struct rspamd_result *result,
    char **error_r);

/* Reads the JSON body of a /checkv2 reply. -1 with a static reason if it
 * is not a JSON object or has no action. */
int rspamd_parse_reply(const char *body, size_t len,
    struct rspamd_result *result, const char **error_r);

#endif
