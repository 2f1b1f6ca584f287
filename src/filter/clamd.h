/*
 * filter/clamd: asks a running clamd about a message (ENABLE_CLAMAV=1),
 * with its INSTREAM command: "zINSTREAM\0", then chunks each preceded by
 * its length (4 bytes, network order), then a zero length; clamd answers
 * "stream: OK", "stream: <name> FOUND" or "... ERROR" (NUL-terminated).
 *
 * Blocking, with a timeout on every socket operation: run it on a pool
 * thread. Thread-safe (no shared state). A message larger than max_size
 * (CLAMAV_MESSAGE_SIZE_LIMIT) is not sent at all, as docker-mailserver
 * does not scan those either.
 */
#ifndef TEGAMI_FILTER_CLAMD_H
#define TEGAMI_FILTER_CLAMD_H

#include <stddef.h>

enum clamd_verdict {
	CLAMD_CLEAN,
	CLAMD_INFECTED,	/* answer 554 5.7.1 */
	CLAMD_SKIPPED,	/* larger than max_size */
	CLAMD_ERROR,	/* clamd unreachable or unhappy: the caller decides
			   (tempfail, or accept and log) */
};

struct clamd_settings {
	/* "/run/clamav/clamd.ctl", "unix:/path", or "host:port" / "[v6]:port" */
	const char *address;
	unsigned int timeout_ms;	/* per operation; 0 = 30000 */
	size_t chunk_size;		/* 0 = 64 KiB */
	size_t max_size;		/* 0 = 25 MiB */
};

const char *clamd_verdict_name(enum clamd_verdict v);

/*
 * Scans data. On CLAMD_INFECTED the signature name is in virus (cut to
 * virus_size). Returns the verdict; on CLAMD_ERROR *error_r (malloc'd)
 * says why.
 */
enum clamd_verdict clamd_scan(const struct clamd_settings *settings,
    const void *data, size_t len, char *virus, size_t virus_size,
    char **error_r);

/*
 * clamd's answer as read (reply[0..rlen), with room for one more byte; it
 * is cut at its end, and bytes outside printable ASCII become '?'): the
 * verdict, the signature name for CLAMD_INFECTED, *error_r for anything
 * else. Apart from clamd_scan() for the fuzzer.
 */
enum clamd_verdict clamd_parse_reply(char *reply, size_t rlen, char *virus,
    size_t virus_size, char **error_r);

#endif
