/*
 * imap/urlpart: what an IMAP URL (imap/url.h) names in an account: the
 * message, or its section (as BODY[section] gives it), or that section
 * decoded (as BINARY[section]), then cut to the URL's partial range; and
 * the part's BODYSTRUCTURE for URLFETCH (RFC 5524). Used by CATENATE and
 * URLFETCH, which both read the store directly (the URL's mailbox need
 * not be the selected one).
 */
#ifndef TEGAMI_IMAP_URLPART_H
#define TEGAMI_IMAP_URLPART_H

#include "imap/url.h"
#include "lib/buf.h"
#include "store/mailbox.h"

#include <stdbool.h>

struct imap_urlpart {
	struct buf body;	/* BODY: CRLF line ends */
	struct buf binary;	/* BINARY (want_binary) */
	bool binary_ok;		/* false: an unknown encoding (NIL) */
	char *bodystructure;	/* want_structure, malloc'd */
};

/*
 * Resolves u in acct. -1 with a static *error_r when the URL names
 * nothing there (no such mailbox, UIDVALIDITY changed, no such UID or
 * part, a section that is not valid). Free r with imap_urlpart_free().
 */
int imap_urlpart_get(struct store_account *acct, const struct imap_url *u,
    bool want_binary, bool want_structure, struct imap_urlpart *r,
    const char **error_r);
void imap_urlpart_free(struct imap_urlpart *r);

#endif
