/*
 * filter/ratelimit: two small in-memory limiters, so that one client or
 * one stolen password cannot take the whole server.
 *
 *   connlimit: concurrent connections per client (an IPv4 address, or the
 *   /64 of an IPv6 address). At most max_clients distinct clients are
 *   followed; past that, new clients are refused too (a bound on the
 *   whole table, hence on memory).
 *
 *   ratelimit: events per key (recipients per authenticated user, say) in
 *   a sliding window, estimated from the counts of the current and the
 *   previous fixed window (the previous one weighted by how much of it
 *   still lies in the sliding window). At most max_keys keys; when the
 *   table is full even after dropping idle keys, the event is allowed
 *   and not counted (failing open: a full table must not stop mail).
 *
 * Both are thread-safe (one mutex each) and never touch the disk.
 */
#ifndef TEGAMI_FILTER_RATELIMIT_H
#define TEGAMI_FILTER_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct connlimit;

struct connlimit *connlimit_create(unsigned int max_per_client,
    size_t max_clients);
void connlimit_destroy(struct connlimit **cl);
/* Counts a new connection: 1 = allowed, 0 = refused (over the limit or
 * the table is full), -1 = ip is not an address. */
int connlimit_acquire(struct connlimit *cl, const char *ip);
/* Ends a connection that acquire allowed. */
void connlimit_release(struct connlimit *cl, const char *ip);
unsigned int connlimit_count(struct connlimit *cl, const char *ip);

struct ratelimit;

struct ratelimit *ratelimit_create(unsigned int limit, unsigned int window,
    size_t max_keys);
void ratelimit_destroy(struct ratelimit **rl);
/*
 * Takes n events for key at now. 1 = allowed and counted; 0 = over the
 * limit, nothing counted, *retry_after_r (may be NULL) is a number of
 * seconds after which trying again makes sense.
 */
int ratelimit_take(struct ratelimit *rl, const char *key, unsigned int n,
    time_t now, unsigned int *retry_after_r);
/* The current estimate for key (for logs and tests). */
double ratelimit_level(struct ratelimit *rl, const char *key, time_t now);

#endif
