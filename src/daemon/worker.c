#include "daemon/worker.h"
#include "daemon/tlsconf.h"
#include "ipc/msg.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>

#include <event2/event.h>

extern char **environ;

const struct listener_info listener_info[LISTENER_KIND_COUNT] = {
	[LISTENER_SMTP] = { "LISTEN_SMTP", "smtp", "smtp" },
	[LISTENER_SUBMISSION] = { "LISTEN_SUBMISSION", "submission", "smtp" },
	[LISTENER_SUBMISSIONS] = { "LISTEN_SUBMISSIONS", "submissions", "smtp" },
	[LISTENER_IMAP] = { "LISTEN_IMAP", "imap", "imap" },
	[LISTENER_IMAPS] = { "LISTEN_IMAPS", "imaps", "imap" },
	[LISTENER_POP3] = { "LISTEN_POP3", "pop3", "imap" },
	[LISTENER_POP3S] = { "LISTEN_POP3S", "pop3s", "imap" },
};

#define STOP_DEADLINE_SECS 30

static void
drop_privileges(const struct settings *s)
{
	uid_t uid;
	gid_t gid;

	if (geteuid() != 0)
		return;		/* development: run as whoever started us */
	uid = (uid_t)config_num(s->cfg, "DMS_VMAIL_UID");
	gid = (gid_t)config_num(s->cfg, "DMS_VMAIL_GID");
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0)
		fatal("event=drop_privileges uid=%u gid=%u error=\"%s\" "
		    "hint=\"check DMS_VMAIL_UID and DMS_VMAIL_GID\"",
		    (unsigned)uid, (unsigned)gid, strerror(errno));
	if (setuid(0) == 0)
		panic("privileges not dropped: setuid(0) succeeded");
	/* Allow core dumps of the unprivileged worker for post-mortems. */
	prctl(PR_SET_DUMPABLE, 1);
}

void
worker_send(struct worker *w, uint32_t type, const void *data, size_t len)
{
	if (ipc_send(w->ipc_fd, type, data, len) < 0)
		log_warn("event=ipc_send_failed type=%u error=\"%s\"", type,
		    strerror(errno));
}

static void
send_status(struct worker *w)
{
	char line[512], extra[400] = "";

	if (w->status != NULL)
		w->status(w, extra, sizeof(extra));
	snprintf(line, sizeof(line), "worker=%s pid=%ld %s%s", w->kind,
	    (long)getpid(), extra, w->stopping ? " stopping=yes" : "");
	if (ipc_send(w->ipc_fd, IPC_STATUS, line, strlen(line)) < 0 &&
	    errno != EAGAIN)
		log_debug("event=ipc_send_failed error=\"%s\"", strerror(errno));
}

static void
status_cb(evutil_socket_t fd, short what, void *arg)
{
	send_status(arg);
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;

	log_warn("event=stop_deadline seconds=%d hint=\"sessions still open "
	    "are cut off\"", STOP_DEADLINE_SECS);
	worker_exit(w);
}

static void
worker_stop(struct worker *w)
{
	struct timeval tv = { STOP_DEADLINE_SECS, 0 };

	if (w->stopping)
		return;
	w->stopping = true;
	log_info("event=stopping");
	w->stop_deadline_ev = evtimer_new(w->base, deadline_cb, w);
	evtimer_add(w->stop_deadline_ev, &tv);
	send_status(w);
	if (w->stop != NULL)
		w->stop(w);
	else
		worker_exit(w);
}

void
worker_exit(struct worker *w)
{
	event_base_loopexit(w->base, NULL);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct worker *w = arg;

	if (sig == SIGHUP)
		return;		/* the master replaces workers on reload */
	worker_stop(w);
}

static void
apply_tls(struct worker *w, const char *data, size_t len)
{
	struct tls_pair *pairs;
	size_t count;
	char *err = NULL;
	SSL_CTX *ctx;
	enum tls_level level;

	if (tlsconf_unpack(data, len, &pairs, &count) < 0) {
		log_error("event=tls_update_failed error=\"malformed message\"");
		return;
	}
	level = strcmp(config_str(w->settings->cfg, "TLS_LEVEL"),
	    "intermediate") == 0 ? TLS_LEVEL_INTERMEDIATE : TLS_LEVEL_MODERN;
	ctx = tls_server_ctx_new(pairs, count, level, &err);
	for (size_t i = 0; i < count; i++)
		tls_pair_clear(&pairs[i]);
	free(pairs);
	if (ctx == NULL) {
		log_error("event=tls_update_failed error=\"%s\"", err);
		free(err);
		return;
	}
	/* Connections in progress hold their own references. */
	if (w->tls != NULL)
		SSL_CTX_free(w->tls);
	w->tls = ctx;
	log_info("event=tls_loaded certificates=%zu", count);
	if (w->tls_changed != NULL)
		w->tls_changed(w);
}

static void
ipc_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	uint32_t type;
	char *data;
	size_t len;
	int r = ipc_recv(fd, &type, &data, &len);

	if (r < 0 && errno == EAGAIN)
		return;
	if (r <= 0) {
		/* The master is gone: nobody would restart or stop us. */
		log_warn("event=master_gone");
		event_del(w->ipc_ev);
		worker_stop(w);
		return;
	}
	switch (type) {
	case IPC_TLS:
		apply_tls(w, data, len);
		break;
	case IPC_STOP:
		worker_stop(w);
		break;
	default:
		if (w->ipc != NULL)
			w->ipc(w, type, data, len);
		else
			log_warn("event=ipc_unknown type=%u", type);
	}
	free(data);
}

static int
parse_listeners(struct worker *w)
{
	const char *spec = getenv("TEGAMI_WORKER_LISTENERS");
	char **items;
	size_t n;

	if (spec == NULL)
		return 0;
	items = str_split(spec, ",", &n);
	w->listeners = xcalloc(n + 1, sizeof(*w->listeners));
	for (size_t i = 0; i < n; i++) {
		char *sp = strchr(items[i], ' ');
		int kind = -1;

		if (sp != NULL) {
			*sp = '\0';
			for (int k = 0; k < LISTENER_KIND_COUNT; k++)
				if (strcmp(items[i], listener_info[k].name) == 0)
					kind = k;
		}
		if (kind < 0)
			panic("bad TEGAMI_WORKER_LISTENERS item %s", items[i]);
		w->listeners[i].fd = 4 + (int)i;
		w->listeners[i].kind = (enum listener_kind)kind;
		str_copy(w->listeners[i].addr, sizeof(w->listeners[i].addr),
		    sp + 1);
	}
	w->nlisteners = n;
	str_array_free(items);
	return 0;
}

int
worker_main(int argc, char **argv)
{
	struct worker w;
	char *err = NULL;
	enum log_level level;
	struct timeval sec = { 1, 0 };
	int r;

	if (argc < 2)
		fatal("usage: tegami worker <kind> (started by tegami serve)");
	memset(&w, 0, sizeof(w));
	w.kind = argv[1];
	log_set_role(w.kind);
	w.ipc_fd = 3;
	/* open: settings, inherited sockets */
	w.settings = settings_load(NULL, environ, &err);
	if (w.settings == NULL)
		fatal("%s", err);
	if (log_level_parse(config_str(w.settings->cfg, "LOG_LEVEL"), &level) == 0)
		log_set_level(level);
	parse_listeners(&w);
	signal(SIGPIPE, SIG_IGN);
	/* drop */
	drop_privileges(w.settings);
	/* serve */
	w.base = event_base_new();
	if (w.base == NULL)
		fatal("event_base_new failed");
	evutil_make_socket_nonblocking(w.ipc_fd);
	w.ipc_ev = event_new(w.base, w.ipc_fd, EV_READ | EV_PERSIST, ipc_cb, &w);
	event_add(w.ipc_ev, NULL);
	w.term_ev = evsignal_new(w.base, SIGTERM, signal_cb, &w);
	w.int_ev = evsignal_new(w.base, SIGINT, signal_cb, &w);
	w.hup_ev = evsignal_new(w.base, SIGHUP, signal_cb, &w);
	event_add(w.term_ev, NULL);
	event_add(w.int_ev, NULL);
	event_add(w.hup_ev, NULL);
	if (strcmp(w.kind, "smtp") == 0)
		r = smtpd_init(&w);
	else if (strcmp(w.kind, "imap") == 0)
		r = imapd_init(&w);
	else if (strcmp(w.kind, "queue") == 0)
		r = queued_init(&w);
	else
		fatal("unknown worker kind %s", w.kind);
	if (r < 0)
		return 1;
	w.status_ev = event_new(w.base, -1, EV_PERSIST, status_cb, &w);
	event_add(w.status_ev, &sec);
	log_info("event=worker_ready uid=%u listeners=%zu", (unsigned)getuid(),
	    w.nlisteners);
	send_status(&w);
	event_base_dispatch(w.base);
	log_info("event=worker_exit");
	return 0;
}
