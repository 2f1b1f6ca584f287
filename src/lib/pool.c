#include "lib/pool.h"
#include "lib/log.h"
#include "lib/xalloc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include <event2/event.h>

#define POOL_STACK_SIZE (256 * 1024)

struct pool_job {
	struct pool_job *next;
	pool_work_fn *work;
	pool_done_fn *done;
	void *arg;
};

struct pool {
	struct event_base *base;
	struct event *wake_ev;
	int wake_fd;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pool_job *todo, **todo_tail;
	struct pool_job *finished, **finished_tail;
	unsigned int max_threads, threads, idle;
	unsigned int pending;
	bool stopping;
	pthread_t *tids;
};

static void *
pool_thread(void *ctx)
{
	struct pool *pool = ctx;
	uint64_t one = 1;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		struct pool_job *job;
		bool wake;

		while (pool->todo == NULL && !pool->stopping) {
			pool->idle++;
			pthread_cond_wait(&pool->cond, &pool->lock);
			pool->idle--;
		}
		if (pool->todo == NULL)
			break;
		job = pool->todo;
		pool->todo = job->next;
		if (pool->todo == NULL)
			pool->todo_tail = &pool->todo;
		pthread_mutex_unlock(&pool->lock);

		job->work(job->arg);

		pthread_mutex_lock(&pool->lock);
		job->next = NULL;
		wake = pool->finished == NULL;
		*pool->finished_tail = job;
		pool->finished_tail = &job->next;
		if (wake) {
			/* whoever makes the list non-empty wakes the loop,
			   outside the lock: the loop takes the lock at once */
			pthread_mutex_unlock(&pool->lock);
			if (write(pool->wake_fd, &one, sizeof(one)) < 0 &&
			    errno != EAGAIN)
				panic("pool: eventfd write: %s",
				    strerror(errno));
			pthread_mutex_lock(&pool->lock);
		}
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

static void
pool_run_finished(struct pool *pool)
{
	struct pool_job *list;

	pthread_mutex_lock(&pool->lock);
	list = pool->finished;
	pool->finished = NULL;
	pool->finished_tail = &pool->finished;
	pthread_mutex_unlock(&pool->lock);
	while (list != NULL) {
		struct pool_job *job = list;

		list = job->next;
		pool->pending--;
		if (job->done != NULL)
			job->done(job->arg);
		free(job);
	}
}

static void
pool_wake_cb(evutil_socket_t fd, short what, void *ctx)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		panic("pool: eventfd read: %s", strerror(errno));
	pool_run_finished(ctx);
}

struct pool *
pool_create(struct event_base *base, unsigned int max_threads)
{
	struct pool *pool = xcalloc(1, sizeof(*pool));

	pool->base = base;
	pool->max_threads = max_threads == 0 ? 1 : max_threads;
	pool->tids = xcalloc(pool->max_threads, sizeof(*pool->tids));
	pool->todo_tail = &pool->todo;
	pool->finished_tail = &pool->finished;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->cond, NULL);
	pool->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (pool->wake_fd < 0)
		fatal("eventfd: %s", strerror(errno));
	pool->wake_ev = event_new(base, pool->wake_fd, EV_READ | EV_PERSIST,
	    pool_wake_cb, pool);
	event_add(pool->wake_ev, NULL);
	return pool;
}

void
pool_submit(struct pool *pool, pool_work_fn *work, pool_done_fn *done,
    void *arg)
{
	struct pool_job *job = xcalloc(1, sizeof(*job));
	bool wake;

	job->work = work;
	job->done = done;
	job->arg = arg;
	pthread_mutex_lock(&pool->lock);
	*pool->todo_tail = job;
	pool->todo_tail = &job->next;
	pool->pending++;
	if (pool->idle == 0 && pool->threads < pool->max_threads) {
		pthread_attr_t attr;

		pthread_attr_init(&attr);
		pthread_attr_setstacksize(&attr, POOL_STACK_SIZE);
		if (pthread_create(&pool->tids[pool->threads], &attr,
		    pool_thread, pool) == 0)
			pool->threads++;
		else if (pool->threads == 0)
			panic("pool: cannot create a thread");
		pthread_attr_destroy(&attr);
	}
	wake = pool->idle > 0;
	pthread_mutex_unlock(&pool->lock);
	/* after the unlock: a thread woken under the lock would only block
	   on it again */
	if (wake)
		pthread_cond_signal(&pool->cond);
}

unsigned int
pool_pending(const struct pool *pool)
{
	return pool->pending;
}

void
pool_destroy(struct pool **poolp)
{
	struct pool *pool = *poolp;

	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
	for (unsigned int i = 0; i < pool->threads; i++)
		pthread_join(pool->tids[i], NULL);
	pool_run_finished(pool);
	event_free(pool->wake_ev);
	close(pool->wake_fd);
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->cond);
	free(pool->tids);
	free(pool);
	*poolp = NULL;
}
