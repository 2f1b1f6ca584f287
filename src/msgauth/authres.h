/*
 * Authentication-Results (RFC 8601): writing our own header field, and
 * finding the ones a sender forged with our authserv-id so they can be
 * removed before delivery (§5).
 *
 *   struct authres ar;
 *   authres_init(&ar, "mx.example.org");
 *   authres_add_spf(&ar, &spf_outcome, &spf_request);
 *   authres_add(&ar, "dkim", "pass", NULL, "header.d", "example.com",
 *       "header.s", "sel1", NULL);
 *   authres_add_dmarc(&ar, &dmarc_outcome, "example.com");
 *   char *field = authres_finish(&ar, "\r\n");
 */
#ifndef TEGAMI_MSGAUTH_AUTHRES_H
#define TEGAMI_MSGAUTH_AUTHRES_H

#include "lib/buf.h"
#include "msgauth/dkim_verify.h"
#include "msgauth/dmarc.h"
#include "msgauth/spf.h"

#include <stdbool.h>
#include <stddef.h>

#define AUTHRES_MAX 8192	/* the whole field; further results are dropped */

struct authres {
	struct buf b;
	size_t count;
	bool overflow;
};

/* Starts a field for authserv_id (our host name). */
void authres_init(struct authres *ar, const char *authserv_id);
/*
 * Adds one result: method=result, an optional reason (NULL for none;
 * quoted), then pairs of "ptype.property", value, ended by NULL. Values
 * are written bare when they are tokens or addresses, else quoted, with
 * control bytes replaced. A result that would pass AUTHRES_MAX is
 * dropped (ar->overflow is set).
 */
void authres_add(struct authres *ar, const char *method, const char *result,
    const char *reason, ...) __attribute__((sentinel));
/* spf=<result> smtp.mailfrom=<sender> or smtp.helo=<helo>. */
void authres_add_spf(struct authres *ar, const struct spf_outcome *o,
    const struct spf_request *req);
/* dkim=<result> [reason] header.d= header.s= header.i= header.a= header.b=
 * for one verified signature; "dkim=none" when r is NULL. */
void authres_add_dkim(struct authres *ar, const struct dkim_sig_result *r);
/* dmarc=<result> (p=<policy> dis=<disposition>) header.from=<domain>. */
void authres_add_dmarc(struct authres *ar, const struct dmarc_outcome *o,
    const char *from_domain);
/*
 * Returns the field, malloc'd: "Authentication-Results: id; r1;<eol>\tr2"
 * (each result on its own folded line, "none" when there were none),
 * without a final line ending. Frees the builder.
 */
char *authres_finish(struct authres *ar, const char *eol);
/* Frees the builder without producing a field. */
void authres_free(struct authres *ar);

/*
 * The authserv-id of an Authentication-Results field body (what follows
 * the colon, unfolded or not), comments skipped, into out. -1 if there is
 * none or it does not fit.
 */
int authres_authserv_id(const char *body, size_t len, char *out,
    size_t outsize);

/*
 * Copies a header block (lines ending in LF or CRLF, folded lines
 * included; it may end with the empty line and the body, which are
 * copied as they are) to out, leaving out every Authentication-Results
 * field whose authserv-id equals ours (case-insensitive). Returns the
 * number of fields removed, or -1 if out's limit was hit.
 */
int authres_strip_ours(const char *hdr, size_t len, const char *authserv_id,
    struct buf *out);

#endif
