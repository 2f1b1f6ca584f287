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
	/* now is a whole second and the queue worker looks for due entries
	 * once a second, so an entry due at now + wait may start up to two
	 * seconds of real time after the failure beyond wait: a second less
	 * keeps "at most wait" (60 s for the first retry) true */
	if (wait > 1)
		wait--;
	return now + wait;
}

bool
queue_expired(time_t created, time_t now, time_t lifetime)
{
	return now - created >= lifetime;
}
