#include "queue/schedule.h"

time_t
queue_next_attempt(unsigned int attempts, time_t now, uint32_t jitter)
{
	return queue_next_attempt_from(attempts, now, jitter, QUEUE_RETRY_FIRST);
}

time_t
queue_next_attempt_from(unsigned int attempts, time_t now, uint32_t jitter,
    time_t first)
{
	time_t wait = first > 0 ? first : QUEUE_RETRY_FIRST;

	for (unsigned int i = 1; i < attempts && wait < QUEUE_RETRY_MAX; i++)
		wait *= 2;
	if (wait > QUEUE_RETRY_MAX)
		wait = QUEUE_RETRY_MAX;
	/* Spread by up to an eighth, never past the first-retry promise. */
	if (attempts > 1)
		wait += (time_t)(jitter % (uint32_t)(wait / 8 + 1));
	return now + wait;
}

bool
queue_expired(time_t created, time_t now, time_t lifetime)
{
	return now - created >= lifetime;
}
