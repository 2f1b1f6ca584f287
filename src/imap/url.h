/*
 * imap/url: IMAP URLs (RFC 5092) as CATENATE (RFC 4469) and URLAUTH
 * (RFC 4467) send them:
 *
 *   imap://[user[;AUTH=type]@]host[:port]/mailbox[;UIDVALIDITY=n]
 *       /;UID=n[/;SECTION=s][/;PARTIAL=o[.l]]
 *       [;EXPIRE=date-time];URLAUTH=access[:mechanism:token]
 *
 * or the same from "/mailbox..." on (a path on this server, the form a
 * client uses for CATENATE). Keys are case-insensitive; the mailbox, the
 * section and the user are percent-decoded. The separator "/" before
 * ";SECTION", ";PARTIAL" and ";UID" may be left out, as clients (and
 * imaptest) do before ";URLAUTH". A search part ("?...") is refused: only
 * message URLs are resolved here.
 *
 * Hostile input: every length is bounded by the input; a NUL (after
 * decoding too) is refused; numbers must be nz-numbers below 2^32.
 */
#ifndef TEGAMI_IMAP_URL_H
#define TEGAMI_IMAP_URL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct imap_url {
	char *user;		/* from the authority, or NULL */
	char *auth_type;	/* ;AUTH=..., or NULL */
	char *host;		/* NULL for a "/path" URL */
	unsigned int port;	/* 0 = not given */
	char *mailbox;
	uint32_t uidvalidity;	/* 0 = not given */
	uint32_t uid;
	char *section;		/* NULL = the whole message */
	bool partial;
	uint64_t partial_offset;
	uint64_t partial_length;	/* 0 = to the end */
	/* URLAUTH */
	bool expire_set;
	time_t expire;
	char *access;		/* "authuser", "anonymous", "user+fred", ... */
	size_t rump_len;	/* bytes of the URL up to and including access */
	char *mechanism;	/* after the rump: ":INTERNAL:..." */
	char *token;
	const char *rump_start;	/* internal, while parsing */
};

/*
 * Parses url (NUL-terminated). 0 with *url_r filled (free it with
 * imap_url_free), or -1 with a static *error_r.
 */
int imap_url_parse(const char *url, struct imap_url *url_r,
    const char **error_r);
void imap_url_free(struct imap_url *url);

#endif
