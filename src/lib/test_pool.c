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
