#include "daemon/authcheck.h"
#include "auth/accounts.h"
#include "filter/ban.h"
#include "lib/pool.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

struct authcheck {
	struct event_base *base;
	struct accounts *acc;
	char *login, *password;
	struct accounts_login li;
	struct ban *ban;
	char ip[64];
	bool banned;
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

	if (a->ban != NULL && ban_is_banned(a->ban, a->ip, time(NULL), NULL)) {
		a->banned = true;
		a->result = 0;
		a->error = "banned";
	} else {
		a->result = accounts_authenticate(a->acc, a->login, a->password,
		    &a->li, &a->error);
		/* a wrong password counts; a hash we cannot check does not */
		if (a->result == 0 && a->ban != NULL) {
			time_t now = time(NULL);

			a->banned = ban_record_failure(a->ban, a->ip, now) == 1 ||
			    ban_is_banned(a->ban, a->ip, now, NULL);
		}
	}
	str_wipe(a->password, strlen(a->password));
}

static void
authcheck_finish(struct authcheck *a)
{
	struct authcheck_result r = {
		.result = a->result, .login = a->login, .user = a->li.user,
		.master = a->li.master, .error = a->error, .banned = a->banned,
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
    struct accounts_watch *accounts, struct ban *ban, const char *ip,
    const char *login, const char *password, authcheck_done_fn *done,
    void *ctx)
{
	struct authcheck *a = xcalloc(1, sizeof(*a));

	a->ban = ban;
	str_copy(a->ip, sizeof(a->ip), ip);
	a->base = base;
	a->acc = accounts_watch_get(accounts);
	a->login = xstrdup(login);
	a->password = xstrdup(password);
	a->done = done;
	a->ctx = ctx;
	pool_submit(pool, authcheck_work, authcheck_checked, a);
}
