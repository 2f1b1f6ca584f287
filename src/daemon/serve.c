/*
 * serve: the master process (`tegami serve`).
 *
 * open:  settings, directories, certificates, every listening socket and
 *        the control socket (as root where ports < 1024 need it);
 * spawn: one smtp and one queue worker, TEGAMI_IMAP_WORKERS imap workers
 *        (fork + exec `tegami worker <kind>`), each of which drops to
 *        DMS_VMAIL_UID/GID before it reads a network byte; the imap
 *        workers share the listening sockets and a table of session
 *        counts (daemon/sessiontab.h), a slot of it each;
 * serve: restart crashed workers with backoff, SIGHUP replaces workers
 *        with ones that read the configuration afresh, SIGTERM stops
 *        them gracefully and exits 0, certificate files are watched and
 *        a renewal is handed to the workers, `tegami status` is answered
 *        on the control socket.
 */
#include "daemon/serve.h"
#include "daemon/compat.h"
#include "daemon/sessiontab.h"
#include "daemon/settings.h"
#include "daemon/tlsconf.h"
#include "daemon/worker.h"
#include "ipc/msg.h"
#include "lib/file.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "net/listen.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

extern char **environ;

#define STOP_GRACE_SECS 35
#define MAX_BACKOFF_SECS 60
#define STABLE_SECS 60

struct bound {
	int fd;
	enum listener_kind kind;
	char addr[96];
};

struct child {
	const char *kind;
	pid_t pid;
	int ipc_fd;
	struct event *ipc_ev;
	struct event *restart_ev;
	time_t started;
	unsigned int failures;
	char status[512];
	bool retiring;		/* replaced on reload; stops on its own */
	int slot;		/* imap: its slot of the session table, or -1 */
	struct master *m;
	struct child *next;
};

struct master {
	struct settings *settings;
	struct event_base *base;
	struct bound *bound;
	size_t nbound;
	struct tlsconf tlsconf;
	char *tls_packed;
	size_t tls_packed_len;
	struct child *children;
	struct sessiontab *sessions;	/* the imap workers' counts */
	struct evconnlistener *control;
	struct event *tls_watch_ev;
	struct event *stop_ev;
	bool stopping;
	time_t started;
};

static const char *const worker_kinds[] = { "smtp", "imap", "queue" };

static void child_spawn(struct master *m, struct child *c);

/* How many workers of this kind: TEGAMI_IMAP_WORKERS imap workers (0:
 * one per CPU, at most 4), one of the others. */
static unsigned int
kind_count(const struct master *m, const char *kind)
{
	long n;

	if (strcmp(kind, "imap") != 0)
		return 1;
	n = (long)config_num(m->settings->cfg, "TEGAMI_IMAP_WORKERS");
	if (n == 0) {
		n = sysconf(_SC_NPROCESSORS_ONLN);
		if (n > 4)
			n = 4;
	}
	return n < 1 ? 1 : (unsigned int)n;
}

/*
 * Is this kind of worker started? The imap worker only when a listener is
 * bound for it (ENABLE_IMAP=1 or ENABLE_POP3=1); the others always.
 */
static bool
kind_has_listeners(const struct master *m, const char *kind)
{
	if (strcmp(kind, "imap") != 0)
		return true;
	for (size_t i = 0; i < m->nbound; i++)
		if (strcmp(listener_info[m->bound[i].kind].worker, kind) == 0)
			return true;
	return false;
}

static void
ensure_dir(const char *path, mode_t mode, bool vmail_owned,
    const struct settings *s)
{
	if (mkdir_p(path, mode) < 0)
		fatal("event=config_error path=%s error=\"%s\" hint=\"create "
		    "it or fix the permissions (MAIL_DIR / STATE_DIR)\"", path,
		    strerror(errno));
	if (vmail_owned && geteuid() == 0 &&
	    chown(path, (uid_t)config_num(s->cfg, "DMS_VMAIL_UID"),
	    (gid_t)config_num(s->cfg, "DMS_VMAIL_GID")) < 0)
		fatal("event=config_error path=%s error=\"chown: %s\"", path,
		    strerror(errno));
}

static void
bind_listeners(struct master *m)
{
	const struct settings *s = m->settings;

	for (int k = 0; k < LISTENER_KIND_COUNT; k++) {
		const char *key = listener_info[k].key;
		const char *spec = config_str(s->cfg, key);
		struct listen_addr *addrs;
		size_t n;
		char *err;

		if ((k == LISTENER_IMAP || k == LISTENER_IMAPS) &&
		    !config_bool(s->cfg, "ENABLE_IMAP"))
			continue;
		if ((k == LISTENER_POP3 || k == LISTENER_POP3S) &&
		    !config_bool(s->cfg, "ENABLE_POP3"))
			continue;
		if (listen_parse(spec, &addrs, &n, &err) < 0)
			fatal("event=config_error key=%s source=%s error=\"%s\"",
			    key, config_source(s->cfg, key), err);
		for (size_t i = 0; i < n; i++) {
			int fd;

			if (!settings_listen_family(s, listener_info[k].key,
			    k <= LISTENER_SUBMISSIONS, addrs[i].ss.ss_family)) {
				log_info("event=listen_skipped key=%s addr=%s "
				    "reason=\"%s\"", key, addrs[i].text,
				    k <= LISTENER_SUBMISSIONS ?
				    "POSTFIX_INET_PROTOCOLS" :
				    "DOVECOT_INET_PROTOCOLS");
				continue;
			}
			fd = listen_bind(&addrs[i], 1024);

			if (fd < 0 && errno == EAFNOSUPPORT &&
			    addrs[i].ss.ss_family == AF_INET6) {
				log_warn("event=listen_skipped key=%s addr=%s "
				    "reason=\"no IPv6 on this host\"", key,
				    addrs[i].text);
				continue;
			}
			if (fd < 0)
				fatal("event=config_error key=%s addr=%s "
				    "error=\"%s\" hint=\"stop what holds the port "
				    "(ss -ltnp) or change %s\"", key,
				    addrs[i].text, strerror(errno), key);
			m->bound = xreallocarray(m->bound, m->nbound + 1,
			    sizeof(*m->bound));
			m->bound[m->nbound].fd = fd;
			m->bound[m->nbound].kind = (enum listener_kind)k;
			str_copy(m->bound[m->nbound].addr,
			    sizeof(m->bound[m->nbound].addr), addrs[i].text);
			m->nbound++;
			log_info("event=listening service=%s addr=%s",
			    listener_info[k].name, addrs[i].text);
		}
		free(addrs);
	}
}

static int
load_tls(struct master *m, char **error_r)
{
	struct tls_pair *pairs;
	size_t count;
	SSL_CTX *ctx;

	if (tlsconf_read(&m->tlsconf, &pairs, &count, error_r) < 0)
		return -1;
	/* Build a context once here so a bad certificate fails now. */
	ctx = tls_server_ctx_new(pairs, count, TLS_LEVEL_MODERN, error_r);
	if (ctx == NULL) {
		for (size_t i = 0; i < count; i++)
			tls_pair_clear(&pairs[i]);
		free(pairs);
		return -1;
	}
	SSL_CTX_free(ctx);
	for (size_t i = 0; i < count; i++) {
		int days = tls_pair_days_left(&pairs[i]);

		log_info("event=tls_certificate source=\"%s\" days_left=%d%s",
		    pairs[i].source, days, tls_pair_matches(&pairs[i],
		    m->settings->hostname) ? "" : " warning=\"does not name "
		    "the host name\"");
		if (days < 14)
			log_warn("event=tls_expiring source=\"%s\" days_left=%d",
			    pairs[i].source, days);
	}
	if (m->tls_packed != NULL) {
		str_wipe(m->tls_packed, m->tls_packed_len);
		free(m->tls_packed);
	}
	m->tls_packed = tlsconf_pack(pairs, count, &m->tls_packed_len);
	for (size_t i = 0; i < count; i++)
		tls_pair_clear(&pairs[i]);
	free(pairs);
	return 0;
}

static void
send_tls(struct master *m, struct child *c)
{
	if (c->ipc_fd >= 0 && m->tls_packed != NULL &&
	    ipc_send(c->ipc_fd, IPC_TLS, m->tls_packed, m->tls_packed_len) < 0)
		log_error("event=ipc_send_failed worker=%s pid=%ld error=\"%s\"",
		    c->kind, (long)c->pid, strerror(errno));
}

static void
tls_watch_cb(evutil_socket_t fd, short what, void *arg)
{
	struct master *m = arg;
	char *err = NULL;

	if (!tlsconf_changed(&m->tlsconf))
		return;
	/* certbot renews by replacing symlinks; give it a moment to finish. */
	if (load_tls(m, &err) < 0) {
		log_error("event=tls_reload_failed error=\"%s\" hint=\"the "
		    "previous certificate stays in use\"", err);
		free(err);
		return;
	}
	log_info("event=tls_reloaded");
	for (struct child *c = m->children; c != NULL; c = c->next)
		send_tls(m, c);
}

static void
child_ipc_cb(evutil_socket_t fd, short what, void *arg)
{
	struct child *c = arg;
	uint32_t type;
	char *data;
	size_t len;
	int r = ipc_recv(fd, &type, &data, &len);

	if (r < 0 && errno == EAGAIN)
		return;
	if (r <= 0) {
		event_del(c->ipc_ev);
		return;
	}
	if (type == IPC_STATUS)
		str_copy(c->status, sizeof(c->status), data);
	else if (type == IPC_MAILBOX_CHANGE && strcmp(c->kind, "imap") == 0)
		/* for the NOTIFY sessions of the other imap workers */
		for (struct child *o = c->m->children; o != NULL; o = o->next)
			if (o != c && o->ipc_fd >= 0 &&
			    strcmp(o->kind, "imap") == 0 &&
			    ipc_send(o->ipc_fd, IPC_MAILBOX_CHANGE, data,
			    len) < 0)
				log_warn("event=ipc_send_failed worker=%s "
				    "pid=%ld error=\"%s\"", o->kind,
				    (long)o->pid, strerror(errno));
	free(data);
}

static void
child_close_ipc(struct child *c)
{
	if (c->ipc_ev != NULL) {
		event_free(c->ipc_ev);
		c->ipc_ev = NULL;
	}
	if (c->ipc_fd >= 0) {
		close(c->ipc_fd);
		c->ipc_fd = -1;
	}
}

static void
restart_cb(evutil_socket_t fd, short what, void *arg)
{
	struct child *c = arg;

	if (!c->m->stopping)
		child_spawn(c->m, c);
}


/*
 * execs the worker. TEGAMI_WORKER_WRAPPER (a developer's knob, like
 * Postfix's debugger_command) runs workers of the kind named by
 * TEGAMI_WORKER_WRAPPER_KIND (all when unset) under a command such as
 * "valgrind --tool=callgrind": it gets this binary's real path, then
 * "worker <kind>". /proc/self/exe would name the wrapper inside it.
 */
static void
exec_worker(const char *kind, char **argv)
{
	const char *wrap = getenv("TEGAMI_WORKER_WRAPPER");
	const char *wkind = getenv("TEGAMI_WORKER_WRAPPER_KIND");
	char self[4096], *words[64];
	ssize_t n;
	size_t nw = 0;
	char *copy, *save = NULL;

	if (wrap == NULL || *wrap == '\0' ||
	    (wkind != NULL && *wkind != '\0' && strcmp(wkind, kind) != 0)) {
		execv("/proc/self/exe", argv);
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return;
	self[n] = '\0';
	copy = xstrdup(wrap);
	for (char *w = strtok_r(copy, " ", &save); w != NULL && nw < 60;
	    w = strtok_r(NULL, " ", &save))
		words[nw++] = w;
	words[nw++] = self;
	words[nw++] = "worker";
	words[nw++] = (char *)kind;
	words[nw] = NULL;
	execvp(words[0], words);
}
static void
child_spawn(struct master *m, struct child *c)
{
	int pair[2];
	struct { char s[4096]; size_t n; } spec = { "", 0 };
	pid_t pid;

	if (ipc_pair(pair) < 0)
		fatal("socketpair: %s", strerror(errno));
	for (size_t i = 0; i < m->nbound; i++) {
		int w;

		if (strcmp(listener_info[m->bound[i].kind].worker, c->kind) != 0)
			continue;
		w = snprintf(spec.s + spec.n, sizeof(spec.s) - spec.n, "%s%s %s",
		    spec.n > 0 ? "," : "", listener_info[m->bound[i].kind].name,
		    m->bound[i].addr);
		if (w < 0 || (size_t)w >= sizeof(spec.s) - spec.n)
			fatal("too many listeners");
		spec.n += (size_t)w;
	}
	pid = fork();
	if (pid < 0) {
		log_error("event=fork_failed worker=%s error=\"%s\"", c->kind,
		    strerror(errno));
		close(pair[0]);
		close(pair[1]);
		return;
	}
	if (pid == 0) {
		/* child: ipc on fd 3, this kind's listeners on 4.. */
		int fd = 4, high[64], nhigh = 0, tfd = -1;
		char *argv[] = { "tegami", "worker", (char *)c->kind, NULL };

		/*
		 * Move everything out of the way first: a target number may
		 * be one of the sources.
		 */
		high[nhigh++] = fcntl(pair[1], F_DUPFD_CLOEXEC, 100);
		for (size_t i = 0; i < m->nbound && nhigh < 64; i++)
			if (strcmp(listener_info[m->bound[i].kind].worker,
			    c->kind) == 0)
				high[nhigh++] = fcntl(m->bound[i].fd, F_DUPFD_CLOEXEC, 100);
		if (c->slot >= 0)
			tfd = fcntl(sessiontab_fd(m->sessions), F_DUPFD_CLOEXEC,
			    100);
		if (dup2(high[0], 3) < 0)
			_exit(127);
		for (int i = 1; i < nhigh; i++) {
			if (high[i] < 0 || dup2(high[i], fd) < 0)
				_exit(127);
			fd++;
		}
		if (c->slot >= 0) {
			/* the session table after the listeners */
			char v[32];

			if (tfd < 0 || dup2(tfd, fd) < 0)
				_exit(127);
			snprintf(v, sizeof(v), "%d %d", fd, c->slot);
			setenv("TEGAMI_WORKER_SESSIONS", v, 1);
			fd++;
		} else {
			unsetenv("TEGAMI_WORKER_SESSIONS");
		}
		for (int k = 3; k < fd; k++)
			fcntl(k, F_SETFD, 0);
		setenv("TEGAMI_WORKER_LISTENERS", spec.s, 1);
		exec_worker(c->kind, argv);
		_exit(127);
	}
	close(pair[1]);
	c->pid = pid;
	c->ipc_fd = pair[0];
	c->started = time(NULL);
	c->status[0] = '\0';
	evutil_make_socket_nonblocking(c->ipc_fd);
	c->ipc_ev = event_new(m->base, c->ipc_fd, EV_READ | EV_PERSIST,
	    child_ipc_cb, c);
	event_add(c->ipc_ev, NULL);
	log_info("event=worker_started worker=%s pid=%ld", c->kind, (long)pid);
	send_tls(m, c);
}

/* A slot of the session table no child holds, or -1. */
static int
free_slot(const struct master *m)
{
	for (int i = 0; m->sessions != NULL && i < SESSIONTAB_SLOTS; i++) {
		const struct child *c;

		for (c = m->children; c != NULL; c = c->next)
			if (c->slot == i)
				break;
		if (c == NULL)
			return i;
	}
	return -1;
}

static struct child *
child_new(struct master *m, const char *kind)
{
	struct child *c = xcalloc(1, sizeof(*c));

	c->kind = kind;
	c->m = m;
	c->ipc_fd = -1;
	c->slot = -1;
	if (strcmp(kind, "imap") == 0) {
		c->slot = free_slot(m);
		if (c->slot < 0 && m->sessions != NULL)
			log_warn("event=imap_worker_unshared hint=\"no slot of "
			    "the session table is free (workers from earlier "
			    "reloads still stopping): this worker's session "
			    "limits count its own sessions only\"");
	}
	c->restart_ev = evtimer_new(m->base, restart_cb, c);
	c->next = m->children;
	m->children = c;
	return c;
}

static void
spawn_all(struct master *m)
{
	for (size_t i = 0; i < sizeof(worker_kinds) / sizeof(worker_kinds[0]); i++) {
		if (!kind_has_listeners(m, worker_kinds[i]))
			continue;
		for (unsigned int n = kind_count(m, worker_kinds[i]); n > 0; n--)
			child_spawn(m, child_new(m, worker_kinds[i]));
	}
}

static void
child_free(struct master *m, struct child *c)
{
	for (struct child **pp = &m->children; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	child_close_ipc(c);
	event_free(c->restart_ev);
	free(c);
}

static void
maybe_finish_stop(struct master *m)
{
	if (m->stopping && m->children == NULL) {
		log_info("event=stopped");
		event_base_loopexit(m->base, NULL);
	}
}

static void
reap(struct master *m)
{
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct child *c;
		char how[64];

		for (c = m->children; c != NULL; c = c->next)
			if (c->pid == pid)
				break;
		if (c == NULL)
			continue;
		if (WIFEXITED(status))
			snprintf(how, sizeof(how), "exit=%d", WEXITSTATUS(status));
		else
			snprintf(how, sizeof(how), "signal=%d",
			    WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		child_close_ipc(c);
		c->pid = 0;
		/* its counts go with it; a restarted worker starts afresh */
		sessiontab_release(m->sessions, c->slot);
		if (m->stopping || c->retiring ||
		    (WIFEXITED(status) && WEXITSTATUS(status) == 0 && m->stopping)) {
			log_info("event=worker_exited worker=%s pid=%ld %s",
			    c->kind, (long)pid, how);
			child_free(m, c);
			continue;
		}
		/* Crashed or exited by itself: restart with backoff. */
		if (time(NULL) - c->started >= STABLE_SECS)
			c->failures = 0;
		{
			unsigned int delay = c->failures >= 6 ? MAX_BACKOFF_SECS :
			    1u << c->failures;
			struct timeval tv = { delay > MAX_BACKOFF_SECS ?
			    MAX_BACKOFF_SECS : delay, 0 };

			if (c->failures == 0)
				tv.tv_sec = 0, tv.tv_usec = 200000;
			c->failures++;
			log_error("event=worker_died worker=%s pid=%ld %s "
			    "restart_in=%lds", c->kind, (long)pid, how,
			    (long)tv.tv_sec);
			evtimer_add(c->restart_ev, &tv);
		}
	}
	maybe_finish_stop(m);
}

static void
stop_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct master *m = arg;

	for (struct child *c = m->children; c != NULL; c = c->next) {
		if (c->pid > 0) {
			log_warn("event=worker_killed worker=%s pid=%ld "
			    "reason=\"did not stop in time\"", c->kind,
			    (long)c->pid);
			kill(c->pid, SIGKILL);
		}
	}
}

static void
master_stop(struct master *m)
{
	struct timeval tv = { STOP_GRACE_SECS, 0 };

	if (m->stopping)
		return;
	m->stopping = true;
	log_info("event=stopping hint=\"transactions in flight may take up to "
	    "30 s to finish\"");
	for (struct child *c = m->children, *next; c != NULL; c = next) {
		next = c->next;
		if (c->pid > 0)
			kill(c->pid, SIGTERM);
		else
			child_free(m, c);	/* waiting for a restart */
	}
	m->stop_ev = evtimer_new(m->base, stop_deadline_cb, m);
	evtimer_add(m->stop_ev, &tv);
	maybe_finish_stop(m);
}

static void
master_reload(struct master *m)
{
	char *err = NULL;
	struct settings *s = settings_load(NULL, environ, &err);
	struct child *old;

	if (s == NULL) {
		log_error("event=reload_failed error=\"%s\" hint=\"the running "
		    "configuration stays in use\"", err);
		free(err);
		return;
	}
	for (int k = 0; k < LISTENER_KIND_COUNT; k++) {
		if (strcmp(config_str(s->cfg, listener_info[k].key),
		    config_str(m->settings->cfg, listener_info[k].key)) != 0)
			log_warn("event=reload_partial key=%s hint=\"listeners "
			    "change only on a restart\"", listener_info[k].key);
	}
	settings_free(&m->settings);
	m->settings = s;
	{
		enum log_level level;

		if (log_level_parse(config_str(s->cfg, "LOG_LEVEL"), &level) == 0)
			log_set_level(level);
	}
	settings_log_ignored(s);
	{
		struct tlsconf tc;

		if (tlsconf_resolve(s, &tc, &err) < 0) {
			log_error("event=tls_reload_failed error=\"%s\"", err);
			free(err);
		} else {
			tlsconf_free(&m->tlsconf);
			m->tlsconf = tc;
			if (load_tls(m, &err) < 0) {
				log_error("event=tls_reload_failed error=\"%s\"",
				    err);
				free(err);
			}
		}
	}
	/* New workers read the new configuration; old ones finish their work
	   (marked first: the new imap workers take other session slots). */
	old = m->children;
	for (struct child *c = old; c != NULL; c = c->next)
		c->retiring = true;
	spawn_all(m);
	for (struct child *c = old; c != NULL; c = c->next)
		if (c->pid > 0)
			kill(c->pid, SIGTERM);
	/* Retired children that were waiting for a restart are just dropped. */
	for (struct child *c = m->children, *next; c != NULL; c = next) {
		next = c->next;
		if (c->retiring && c->pid == 0)
			child_free(m, c);
	}
	log_info("event=reloaded");
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct master *m = arg;

	switch (sig) {
	case SIGCHLD:
		reap(m);
		break;
	case SIGHUP:
		if (!m->stopping)
			master_reload(m);
		break;
	default:
		master_stop(m);
	}
}

/* Control socket: one request line, one answer, close. */
static void
control_read_cb(struct bufferevent *bev, void *arg)
{
	struct master *m = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer *out = bufferevent_get_output(bev);
	size_t len;
	char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);

	if (line == NULL) {
		if (evbuffer_get_length(in) > 256)
			bufferevent_free(bev);
		return;
	}
	if (strcmp(line, "status") == 0) {
		evbuffer_add_printf(out, "master pid=%ld uptime=%lds host=%s "
		    "domain=%s%s\n", (long)getpid(),
		    (long)(time(NULL) - m->started), m->settings->hostname,
		    m->settings->domain, m->stopping ? " stopping=yes" : "");
		for (size_t i = 0; i < m->nbound; i++)
			evbuffer_add_printf(out, "listener service=%s addr=%s\n",
			    listener_info[m->bound[i].kind].name,
			    m->bound[i].addr);
		for (struct child *c = m->children; c != NULL; c = c->next) {
			if (c->pid > 0 && c->status[0] != '\0')
				evbuffer_add_printf(out, "%s%s\n", c->status,
				    c->retiring ? " retiring=yes" : "");
			else if (c->pid > 0)
				evbuffer_add_printf(out, "worker=%s pid=%ld "
				    "starting=yes\n", c->kind, (long)c->pid);
			else
				evbuffer_add_printf(out, "worker=%s down=yes "
				    "restarts=%u\n", c->kind, c->failures);
		}
	} else {
		evbuffer_add_printf(out, "error unknown request\n");
	}
	free(line);
	/* close once written */
	bufferevent_disable(bev, EV_READ);
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
}

static void
control_write_cb(struct bufferevent *bev, void *arg)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0 &&
	    !(bufferevent_get_enabled(bev) & EV_READ))
		bufferevent_free(bev);
}

static void
control_event_cb(struct bufferevent *bev, short what, void *arg)
{
	bufferevent_free(bev);
}

static void
control_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct master *m = arg;
	struct bufferevent *bev = bufferevent_socket_new(m->base, fd,
	    BEV_OPT_CLOSE_ON_FREE);
	struct timeval tv = { 5, 0 };

	bufferevent_setcb(bev, control_read_cb, control_write_cb,
	    control_event_cb, m);
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void
open_control(struct master *m)
{
	const char *path = m->settings->control_path;
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (str_copy(sun.sun_path, sizeof(sun.sun_path), path) < 0)
		fatal("event=config_error error=\"control socket path too long: "
		    "%s\" hint=\"use a shorter STATE_DIR or TEGAMI_CONTROL_SOCKET\"",
		    path);
	/* A live server answers on it: refuse to start a second one. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
		fatal("event=config_error error=\"another tegami is running "
		    "(%s answers)\" hint=\"stop it first\"", path);
	if (fd >= 0)
		close(fd);
	unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    chmod(path, 0600) < 0 || listen(fd, 16) < 0)
		fatal("event=config_error path=%s error=\"control socket: %s\"",
		    path, strerror(errno));
	m->control = evconnlistener_new(m->base, control_accept_cb, m,
	    LEV_OPT_CLOSE_ON_FREE, -1, fd);
}

/*
 * Started as root, the workers run as DMS_VMAIL_UID/GID. Check now, as that
 * user, that they can read CONFIG_DIR and write MAIL_DIR and the state
 * directory: otherwise they would only die one after the other.
 */
static void
check_worker_access(const struct settings *s)
{
	uid_t uid = (uid_t)config_num(s->cfg, "DMS_VMAIL_UID");
	gid_t gid = (gid_t)config_num(s->cfg, "DMS_VMAIL_GID");
	const struct { const char *path, *key; int mode; } need[] = {
		{ s->config_dir, "CONFIG_DIR", R_OK | X_OK },
		{ s->mail_dir, "MAIL_DIR", R_OK | W_OK | X_OK },
		{ s->tegami_state, "STATE_DIR", R_OK | W_OK | X_OK },
	};
	int fds[2], status;
	char bad = 0;
	pid_t pid;

	if (geteuid() != 0)
		return;
	if (pipe(fds) < 0)
		fatal("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		fatal("fork: %s", strerror(errno));
	if (pid == 0) {
		char r = 0;

		close(fds[0]);
		if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
		    setresuid(uid, uid, uid) < 0)
			r = 'u';
		for (size_t i = 0; r == 0 && i < 3; i++)
			if (access(need[i].path, need[i].mode) < 0)
				r = (char)('0' + i);
		if (write(fds[1], &r, 1) != 1)
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	if (read(fds[0], &bad, 1) != 1)
		bad = 'u';
	close(fds[0]);
	waitpid(pid, &status, 0);
	if (bad == 'u')
		fatal("event=config_error error=\"cannot switch to uid %u gid %u\" "
		    "hint=\"check DMS_VMAIL_UID and DMS_VMAIL_GID\"", (unsigned)uid,
		    (unsigned)gid);
	if (bad >= '0' && bad <= '2') {
		int i = bad - '0';

		fatal("event=config_error key=%s path=%s error=\"the workers run "
		    "as uid %u gid %u (DMS_VMAIL_UID/GID) and cannot %s it\" "
		    "hint=\"make the directory and every directory above it "
		    "reachable by that user (chmod o+x, or chown %u:%u), or "
		    "choose a place it can reach\"", need[i].key, need[i].path,
		    (unsigned)uid, (unsigned)gid, (need[i].mode & W_OK) ?
		    "write to" : "read", (unsigned)uid, (unsigned)gid);
	}
}

static void
check_settings(const struct settings *s)
{
	const char *pd = config_str(s->cfg, "PERMIT_DOCKER");

	if (strcmp(pd, "none") != 0)
		fatal("event=config_error key=PERMIT_DOCKER value=%s source=%s "
		    "error=\"not implemented: tegami trusts no network for "
		    "relaying\" hint=\"set PERMIT_DOCKER=none and let clients "
		    "authenticate on port 587 or 465\"", pd,
		    config_source(s->cfg, "PERMIT_DOCKER"));
}

int
serve_main(int argc, char **argv)
{
	struct master m;
	char *err = NULL;
	enum log_level level;
	struct event *sigs[5];
	const int signums[5] = { SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGQUIT };
	struct timeval two = { 2, 0 };
	int opt;

	while ((opt = getopt(argc, argv, "c:")) != -1) {
		if (opt == 'c') {
			setenv("TEGAMI_ENV_FILE", optarg, 1);
		} else {
			fprintf(stderr, "usage: tegami serve [-c mailserver.env]\n");
			return 1;
		}
	}
	memset(&m, 0, sizeof(m));
	m.started = time(NULL);
	/* open */
	m.settings = settings_load(NULL, environ, &err);
	if (m.settings == NULL)
		fatal("%s", err);
	if (log_level_parse(config_str(m.settings->cfg, "LOG_LEVEL"), &level) == 0)
		log_set_level(level);
	check_settings(m.settings);
	log_info("event=starting version=%s host=%s domain=%s config_dir=%s "
	    "mail_dir=%s state_dir=%s%s", TEGAMI_VERSION, m.settings->hostname,
	    m.settings->domain, m.settings->config_dir, m.settings->mail_dir,
	    m.settings->state_dir, m.settings->dev ? " mode=development" : "");
	settings_log_ignored(m.settings);
	compat_log_unused(m.settings);
	ensure_dir(m.settings->config_dir, 0755, false, m.settings);
	ensure_dir(m.settings->mail_dir, 0755, true, m.settings);
	ensure_dir(m.settings->state_dir, 0755, false, m.settings);
	ensure_dir(m.settings->tegami_state, 0750, true, m.settings);
	check_worker_access(m.settings);
	if (tlsconf_resolve(m.settings, &m.tlsconf, &err) < 0 ||
	    load_tls(&m, &err) < 0)
		fatal("event=config_error error=\"%s\"", err);
	bind_listeners(&m);
	if (kind_has_listeners(&m, "imap") && (m.sessions =
	    sessiontab_create(&err)) == NULL) {
		log_warn("event=imap_sessions_unshared error=\"%s\" hint=\"each "
		    "imap worker counts its own sessions only\"", err);
		free(err);
		err = NULL;
	}
	signal(SIGPIPE, SIG_IGN);
	m.base = event_base_new();
	if (m.base == NULL)
		fatal("event_base_new failed");
	open_control(&m);
	for (int i = 0; i < 5; i++) {
		sigs[i] = evsignal_new(m.base, signums[i], signal_cb, &m);
		event_add(sigs[i], NULL);
	}
	m.tls_watch_ev = event_new(m.base, -1, EV_PERSIST, tls_watch_cb, &m);
	event_add(m.tls_watch_ev, &two);
	/* spawn */
	spawn_all(&m);
	if (m.settings->dev) {
		log_info("event=development_instance smtp=%s submission=%s "
		    "submissions=%s", config_str(m.settings->cfg, "LISTEN_SMTP"),
		    config_str(m.settings->cfg, "LISTEN_SUBMISSION"),
		    config_str(m.settings->cfg, "LISTEN_SUBMISSIONS"));
		fprintf(stderr, "\n"
		    "  tegami development instance (data in ./var/, Ctrl-C stops it)\n"
		    "    SMTP         %s\n"
		    "    submission   %s  (STARTTLS, then AUTH)\n"
		    "    submissions  %s  (implicit TLS)\n"
		    "    IMAP         %s  (STARTTLS), %s (implicit TLS)\n"
		    "  add an account:  build/tegami email add you@localhost\n"
		    "  send a test:     swaks --server 127.0.0.1:2587 --tls "
		    "--auth-user you@localhost --to you@localhost\n"
		    "  read it:         ls var/mail/localhost/you/new/\n\n",
		    config_str(m.settings->cfg, "LISTEN_SMTP"),
		    config_str(m.settings->cfg, "LISTEN_SUBMISSION"),
		    config_str(m.settings->cfg, "LISTEN_SUBMISSIONS"),
		    config_str(m.settings->cfg, "LISTEN_IMAP"),
		    config_str(m.settings->cfg, "LISTEN_IMAPS"));
	}
	/* serve */
	event_base_dispatch(m.base);
	unlink(m.settings->control_path);
	for (int i = 0; i < 5; i++)
		event_free(sigs[i]);
	if (m.stop_ev != NULL)
		event_free(m.stop_ev);
	event_free(m.tls_watch_ev);
	evconnlistener_free(m.control);
	for (size_t i = 0; i < m.nbound; i++)
		close(m.bound[i].fd);
	free(m.bound);
	if (m.tls_packed != NULL) {
		str_wipe(m.tls_packed, m.tls_packed_len);
		free(m.tls_packed);
	}
	tlsconf_free(&m.tlsconf);
	sessiontab_free(&m.sessions);
	settings_free(&m.settings);
	event_base_free(m.base);
	return 0;
}
