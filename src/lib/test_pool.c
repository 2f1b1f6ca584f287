#include "lib/pool.h"
#include "lib/test.h"

#include <unistd.h>
#include <event2/event.h>

struct job {
	int value;
	int *done_count;
	struct event_base *base;
	int total;
};

static void
work(void *arg)
{
	struct job *j = arg;

	usleep(1000);
	j->value *= 2;
}

static void
done(void *arg)
{
	struct job *j = arg;

	if (++*j->done_count == j->total)
		event_base_loopbreak(j->base);
}

static void
test_pool_runs_jobs(void)
{
	struct event_base *base = event_base_new();
	struct pool *pool = pool_create(base, 4);
	struct job jobs[50];
	int done_count = 0, ok = 1;

	test_begin("pool: every job's work runs, then its done on the loop");
	for (int i = 0; i < 50; i++) {
		jobs[i] = (struct job){ i, &done_count, base, 50 };
		pool_submit(pool, work, done, &jobs[i]);
	}
	event_base_dispatch(base);
	test_assert_int(done_count, 50);
	for (int i = 0; i < 50; i++)
		if (jobs[i].value != 2 * i)
			ok = 0;
	test_assert(ok);
	test_assert_int(pool_pending(pool), 0);
	pool_destroy(&pool);
	event_base_free(base);
	test_end();
}
TEST(test_pool_runs_jobs)

struct chain {
	struct pool *pool;
	struct event_base *base;
	int left, *running;
};

static void
chain_work(void *arg)
{
	struct chain *c = arg;

	c->left--;
}

static void
chain_done(void *arg)
{
	struct chain *c = arg;

	if (c->left > 0)
		pool_submit(c->pool, chain_work, chain_done, c);
	else if (--*c->running == 0)
		event_base_loopbreak(c->base);
}

/*
 * Jobs handed in one at a time, each from the last one's done: the
 * threads fall idle between them and must be woken every time, and the
 * loop must hear of every finished job, however they race.
 */
static void
test_pool_wakes_idle_threads(void)
{
	struct event_base *base = event_base_new();
	struct pool *pool = pool_create(base, 3);
	struct chain chains[4];
	struct timeval limit = { 20, 0 };
	int running = 4, ok = 1;

	test_begin("pool: jobs handed in one by one from done() all finish");
	for (int i = 0; i < 4; i++) {
		chains[i] = (struct chain){ pool, base, 5000, &running };
		pool_submit(pool, chain_work, chain_done, &chains[i]);
	}
	event_base_loopexit(base, &limit);
	event_base_dispatch(base);
	test_assert_int(running, 0);
	for (int i = 0; i < 4; i++)
		if (chains[i].left != 0)
			ok = 0;
	test_assert(ok);
	test_assert_int(pool_pending(pool), 0);
	pool_destroy(&pool);
	event_base_free(base);
	test_end();
}
TEST(test_pool_wakes_idle_threads)
