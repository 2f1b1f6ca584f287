/*
 * worker: what every worker process shares. The master forks and execs
 * `tegami worker <kind>` with its control socketpair on fd 3 and its
 * listening sockets on fd 4.. (TEGAMI_WORKER_LISTENERS names their kinds);
 * the worker loads the settings, drops privileges, then serves.
 */
#ifndef TEGAMI_WORKER_H
#define TEGAMI_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

#include "daemon/settings.h"

struct event_base;
struct event;

enum listener_kind {
	LISTENER_SMTP,		/* 25 */
	LISTENER_SUBMISSION,	/* 587, STARTTLS */
	LISTENER_SUBMISSIONS,	/* 465, implicit TLS */
	LISTENER_IMAP,
	LISTENER_IMAPS,
	LISTENER_POP3,
	LISTENER_POP3S,
	LISTENER_KIND_COUNT
};

struct listener_info {
	const char *key;	/* LISTEN_SMTP */
	const char *name;	/* smtp */
	const char *worker;	/* which worker serves it */
};
extern const struct listener_info listener_info[LISTENER_KIND_COUNT];

struct worker_listener {
	int fd;
	enum listener_kind kind;
	char addr[96];
};

struct worker {
	const char *kind;		/* "smtp" */
	struct settings *settings;
	struct event_base *base;
	int ipc_fd;
	struct event *ipc_ev;
	struct event *status_ev;
	struct event *term_ev, *int_ev, *hup_ev;
	struct event *stop_deadline_ev;
	SSL_CTX *tls;			/* current server context, or NULL */
	struct worker_listener *listeners;
	size_t nlisteners;
	bool stopping;

	/* Filled in by the kind: */
	void *ctx;
	/* Stop accepting; finish what is in flight; call worker_exit_when_idle. */
	void (*stop)(struct worker *w);
	/* Text for `tegami status`: "connections=3 transactions=1". */
	void (*status)(struct worker *w, char *out, size_t outsize);
	/* A new certificate set is in w->tls. */
	void (*tls_changed)(struct worker *w);
	/* A message from the master this file does not handle itself. */
	void (*ipc)(struct worker *w, uint32_t type, const char *data,
	    size_t len);
};

/* Entry point for `tegami worker <kind>`. */
int worker_main(int argc, char **argv);
/* A message to the master (a full socket buffer drops it: logged). */
void worker_send(struct worker *w, uint32_t type, const void *data,
    size_t len);
/* Ends the loop; the worker then exits 0. */
void worker_exit(struct worker *w);

/* Per-kind entry points (daemon/smtpd.c, ...), called after privileges are dropped. */
int smtpd_init(struct worker *w);
/* The imap worker: POP3 now (ENABLE_POP3=1), IMAP later (daemon/imapd.c). */
int imapd_init(struct worker *w);
/* daemon/queued.c: the outbound queue (no listeners). */
int queued_init(struct worker *w);

#endif
