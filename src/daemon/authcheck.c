#include "daemon/authcheck.h"
#include "auth/accounts.h"
#include "lib/pool.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

struct authcheck {
	struct event_base *base;
	struct accounts *acc;
	char *login, *password;
	struct accounts_login li;
	int result;
	const char *error;
	struct event *delay_ev;
	authcheck_done_fn *done;
	void *ctx;
};

static void
authcheck_work(void *arg)
{
	struct authcheck *a = arg;

	a->result = accounts_authenticate(a->acc, a->login, a->password,
	    &a->li, &a->error);
	str_wipe(a->password, strlen(a->password));
}

static void
authcheck_finish(struct authcheck *a)
{
	struct authcheck_result r = {
		.result = a->result, .login = a->login, .user = a->li.user,
		.master = a->li.master, .error = a->error,
	};

	a->done(&r, a->ctx);
	if (a->delay_ev != NULL)
		event_free(a->delay_ev);
	accounts_login_free(&a->li);
	accounts_unref(a->acc);
	free(a->login);
	free(a->password);
	free(a);
}

static void
authcheck_delay_cb(evutil_socket_t fd, short what, void *arg)
{
	authcheck_finish(arg);
}

static void
authcheck_checked(void *arg)
{
	struct authcheck *a = arg;
	struct timeval tv = { 0, AUTHCHECK_FAIL_DELAY_MS * 1000 };

	if (a->result == 1) {
		authcheck_finish(a);
		return;
	}
	a->delay_ev = evtimer_new(a->base, authcheck_delay_cb, a);
	evtimer_add(a->delay_ev, &tv);
}

void
authcheck_start(struct pool *pool, struct event_base *base,
    struct accounts_watch *accounts, const char *login, const char *password,
    authcheck_done_fn *done, void *ctx)
{
	struct authcheck *a = xcalloc(1, sizeof(*a));

	a->base = base;
	a->acc = accounts_watch_get(accounts);
	a->login = xstrdup(login);
	a->password = xstrdup(password);
	a->done = done;
	a->ctx = ctx;
	pool_submit(pool, authcheck_work, authcheck_checked, a);
}
