#include "filter/ratelimit.h"
#include "lib/test.h"

#include <stdio.h>

static void
test_connlimit(void)
{
	struct connlimit *cl = connlimit_create(3, 2);

	test_begin("ratelimit: concurrent connections per client, bounded table");
	test_assert(connlimit_acquire(cl, "192.0.2.1") == 1);
	test_assert(connlimit_acquire(cl, "192.0.2.1") == 1);
	test_assert(connlimit_acquire(cl, "::ffff:192.0.2.1") == 1);
	test_assert(connlimit_acquire(cl, "192.0.2.1") == 0);
	test_assert(connlimit_count(cl, "192.0.2.1") == 3);
	/* one /64 is one client */
	test_assert(connlimit_acquire(cl, "2001:db8::1") == 1);
	test_assert(connlimit_acquire(cl, "2001:db8::2:3") == 1);
	test_assert(connlimit_count(cl, "2001:db8::ffff") == 2);
	/* the table holds two clients: a third is refused */
	test_assert(connlimit_acquire(cl, "198.51.100.1") == 0);
	connlimit_release(cl, "192.0.2.1");
	test_assert(connlimit_acquire(cl, "192.0.2.1") == 1);
	for (int i = 0; i < 3; i++)
		connlimit_release(cl, "192.0.2.1");
	test_assert(connlimit_count(cl, "192.0.2.1") == 0);
	test_assert(connlimit_acquire(cl, "198.51.100.1") == 1);
	test_assert(connlimit_acquire(cl, "bogus") == -1);
	connlimit_release(cl, "203.0.113.1");	/* unknown: no harm */
	connlimit_destroy(&cl);
	test_end();
}
TEST(test_connlimit)

static void
test_ratelimit(void)
{
	struct ratelimit *rl = ratelimit_create(100, 3600, 2);
	time_t t = 1700000000 - 1700000000 % 3600;	/* a window start */
	unsigned int retry;

	test_begin("ratelimit: sliding window per key");
	test_assert(ratelimit_take(rl, "joe@example.com", 60, t, &retry) == 1);
	test_assert(ratelimit_take(rl, "joe@example.com", 40, t + 10, &retry) == 1);
	test_assert(ratelimit_take(rl, "joe@example.com", 1, t + 20, &retry) == 0);
	test_assert(retry == 3600 - 20);
	/* other keys are apart */
	test_assert(ratelimit_take(rl, "ann@example.com", 100, t, NULL) == 1);
	/* half-way through the next window, half of the last one counts */
	test_assert(ratelimit_level(rl, "joe@example.com", t + 5400) > 49.9);
	test_assert(ratelimit_level(rl, "joe@example.com", t + 5400) < 50.1);
	test_assert(ratelimit_take(rl, "joe@example.com", 50, t + 5400, NULL) == 1);
	test_assert(ratelimit_take(rl, "joe@example.com", 1, t + 5400, NULL) == 0);
	/* two windows later it is all forgotten */
	test_assert(ratelimit_take(rl, "joe@example.com", 100, t + 3 * 3600, NULL) == 1);
	/* table full of busy keys: a new key passes uncounted */
	test_assert(ratelimit_take(rl, "ann@example.com", 1, t + 3 * 3600, NULL) == 1);
	test_assert(ratelimit_take(rl, "new@example.com", 1000, t + 3 * 3600, NULL) == 1);
	test_assert(ratelimit_level(rl, "new@example.com", t + 3 * 3600) == 0);
	ratelimit_destroy(&rl);
	test_end();
}
TEST(test_ratelimit)
