/*
 * pool: a small thread pool for work that would block an event loop
 * (fsync-heavy delivery, password hashing, RSA signing).
 *
 * work() runs on a pool thread and must touch nothing but its argument;
 * done() then runs on the event loop's thread, so it may use the loop and
 * any session state. Jobs run in no particular order. Many fsyncs in
 * flight at once let the filesystem commit them together (ext4/jbd2 group
 * commit), which is what makes durable delivery fast.
 */
#ifndef TEGAMI_POOL_H
#define TEGAMI_POOL_H

struct event_base;
struct pool;

typedef void pool_work_fn(void *arg);
typedef void pool_done_fn(void *arg);

/* Threads are created lazily up to max_threads, with small stacks. */
struct pool *pool_create(struct event_base *base, unsigned int max_threads);
/* Waits for queued and running jobs, runs their done(), then frees. */
void pool_destroy(struct pool **pool);
void pool_submit(struct pool *pool, pool_work_fn *work, pool_done_fn *done,
    void *arg);
/* Jobs submitted and not yet done(). */
unsigned int pool_pending(const struct pool *pool);

#endif
