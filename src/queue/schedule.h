/*
 * schedule: when to try a deferred recipient again, and when to give up.
 *
 * The first retry comes 60 s after a temporary failure; each later wait
 * doubles (1, 2, 4, 8, ... minutes) up to QUEUE_RETRY_MAX; a message older
 * than the lifetime (5 days by default, like Postfix's
 * maximal_queue_lifetime) is bounced. A small spread (up to 1/8 of the wait,
 * from a value the caller supplies) keeps a thousand messages deferred at
 * the same moment from coming back at the same moment.
 */
#ifndef TEGAMI_QUEUE_SCHEDULE_H
#define TEGAMI_QUEUE_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define QUEUE_RETRY_FIRST 60
#define QUEUE_RETRY_MAX (4 * 3600)
#define QUEUE_LIFETIME_DEFAULT (5 * 24 * 3600)
#define QUEUE_DELAY_WARNING_DEFAULT (4 * 3600)

/*
 * The time of the next attempt after `attempts` failed ones (attempts >= 1)
 * that ended at `now`. jitter: any value; it only spreads the result.
 */
time_t queue_next_attempt(unsigned int attempts, time_t now, uint32_t jitter);
/* The same with another first wait (TEGAMI_QUEUE_RETRY_FIRST; tests). */
time_t queue_next_attempt_from(unsigned int attempts, time_t now,
    uint32_t jitter, time_t first);

/* Has a message created at `created` outlived `lifetime` seconds at `now`? */
bool queue_expired(time_t created, time_t now, time_t lifetime);

#endif
