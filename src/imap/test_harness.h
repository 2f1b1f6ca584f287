/*
 * A whole IMAP session for unit tests: the engine on one end of a
 * bufferevent_pair, the test as the client on the other, on a real
 * Maildir in a test directory. Shared by the imap/test_*.c files.
 *
 * Logins: joe@x.test / secret opens root; ann@x.test / secret opens
 * other_root when set (URLAUTH across accounts). The quota hook answers
 * h->quota (0 = none).
 */
#ifndef TEGAMI_IMAP_TEST_HARNESS_H
#define TEGAMI_IMAP_TEST_HARNESS_H

#include "imap/session.h"
#include "lib/buf.h"

#include <stdbool.h>
#include <stdint.h>

struct harness {
	struct event_base *base;
	struct bufferevent *client;
	struct bufferevent *client_raw;	/* under the client's TLS filter */
	bool tls_up;
	struct imap_session *s;
	const char *root;
	const char *other_root;	/* ann@x.test's Maildir, or NULL */
	uint64_t quota;		/* what the quota hook says */
	struct buf in;		/* everything read by the client, not yet taken */
	bool disconnected;
	unsigned int auth_calls;
};

extern const struct imap_hooks harness_default_hooks;
/* The hooks the next harness_start uses (tests may swap them). */
extern const struct imap_hooks *harness_hooks;

void harness_on_disconnect(struct imap_session *s, void *ctx);
void harness_client_read(struct bufferevent *bev, void *arg);

void harness_start(struct harness *h, const char *root, uint64_t max_literal);
/* With STARTTLS offered (port 143: not secure until it is done). */
void harness_start_tls(struct harness *h, const char *root,
    uint64_t max_literal, struct ssl_ctx_st *ssl_ctx);
/* With settings of the test's own (hostname and secure filled if unset). */
void harness_start_set(struct harness *h, const char *root,
    const struct imap_settings *set);
void harness_stop(struct harness *h);
/* Runs the loop for ms milliseconds. */
void harness_spin(struct harness *h, unsigned int ms);
/* Runs the loop until a line starting with until arrives; returns all
   read so far (malloc'd) and forgets it. */
char *harness_wait_for(struct harness *h, const char *until);
/* The same with the length (the output may hold NULs). */
char *harness_wait_for_raw(struct harness *h, const char *until, size_t *len_r);
/* Sends text, then harness_wait_for(until). */
char *harness_cmd(struct harness *h, const char *text, const char *until);
/* Sends text, checks that the output up to until holds each of wants. */
void harness_expect(struct harness *h, const char *text, const char *until,
    const char *const *wants);
#define EXPECT(h, text, until, ...) \
	harness_expect(h, text, until, (const char *const[]){ __VA_ARGS__, NULL })
/* Writes a message into root/new/name (the way a delivery does). */
void harness_deliver(const char *root, const char *name, const char *content);

/* the short names the tests were written with */
#define spin harness_spin
#define wait_for harness_wait_for
#define cmd harness_cmd
#define deliver harness_deliver

#endif
