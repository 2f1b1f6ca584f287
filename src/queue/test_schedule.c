#include "queue/schedule.h"
#include "lib/test.h"

static void
test_schedule_backoff(void)
{
	time_t now = 1000000;

	test_begin("schedule: first retry within 60 s, doubling, capped at 4 h");
	/* due a second early: the once-a-second scan may take one more */
	test_assert_int(queue_next_attempt(1, now, 12345) - now, 59);
	for (uint32_t j = 0; j < 1000; j += 97) {
		time_t w2 = queue_next_attempt(2, now, j) - now;
		time_t w20 = queue_next_attempt(20, now, j) - now;

		test_assert(w2 >= 119 && w2 <= 119 + 15);
		test_assert(w20 >= QUEUE_RETRY_MAX - 1 &&
		    w20 <= QUEUE_RETRY_MAX - 1 + QUEUE_RETRY_MAX / 8);
	}
	test_assert_int(queue_next_attempt(3, now, 0) - now, 239);
	test_assert_int(queue_next_attempt(9, now, 0) - now, QUEUE_RETRY_MAX - 1);
	/* a retry count that would overflow a shift stays capped */
	test_assert_int(queue_next_attempt(4000000000u, now, 0) - now,
	    QUEUE_RETRY_MAX - 1);
	test_end();

	test_begin("schedule: lifetime");
	test_assert(!queue_expired(now, now + QUEUE_LIFETIME_DEFAULT - 1,
	    QUEUE_LIFETIME_DEFAULT));
	test_assert(queue_expired(now, now + QUEUE_LIFETIME_DEFAULT,
	    QUEUE_LIFETIME_DEFAULT));
	test_end();
}
TEST(test_schedule_backoff)
