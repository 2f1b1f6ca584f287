/*
 * msgauth/check: SPF, DKIM and DMARC for one received message in one
 * call, with what the SMTP server needs out of them: the header fields to
 * add (Received-SPF, Authentication-Results) and the action (accept,
 * quarantine to Junk, or reject with 550 5.7.1), as OpenDMARC with
 * RejectFailures and IgnoreAuthenticatedClients does in docker-mailserver.
 *
 * Synchronous (DNS through the msgauth_dns table): run on a pool thread
 * at the end of DATA. Reentrant.
 */
#ifndef TEGAMI_MSGAUTH_CHECK_H
#define TEGAMI_MSGAUTH_CHECK_H

#include "msgauth/dkim_verify.h"
#include "msgauth/dmarc.h"
#include "msgauth/psl.h"
#include "msgauth/spf.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct msgauth_check_request {
	struct spf_request spf;		/* client address, MAIL FROM, HELO,
					   our host name (also the authserv-id),
					   now */
	const char *message;		/* header and body, CRLF or LF */
	size_t message_len;
	/* SMTP AUTH was used: nothing is checked (a submission) */
	bool authenticated;
	bool check_spf;			/* ENABLE_POLICYD_SPF */
	bool check_dkim;		/* ENABLE_OPENDKIM */
	bool check_dmarc;		/* ENABLE_OPENDMARC */
	/* The MAIL FROM result, when it was already evaluated at RCPT (the
	   reject policy, greylisting): used as is instead of asking again. */
	const struct spf_outcome *spf_done;
	/* pct= sampling (NULL: never sampled out) */
	unsigned int (*random_pct)(void *ctx);
	void *random_ctx;
};

enum msgauth_action {
	MSGAUTH_ACCEPT,
	MSGAUTH_QUARANTINE,	/* deliver to Junk */
	MSGAUTH_REJECT,		/* 550 5.7.1 at the end of DATA */
};

struct msgauth_check_result {
	struct spf_outcome spf;		/* the MAIL FROM (or HELO) identity */
	struct dkim_verify_result dkim;
	struct dmarc_outcome dmarc;
	char from_domain[MSGAUTH_DNS_NAME_MAX];	/* "" if none was found */
	enum msgauth_action action;
	char reply[160];	/* for REJECT: "5.7.1 ..." text without code */
	char *received_spf;	/* "Received-SPF: ..." or NULL (malloc'd) */
	char *authentication_results;	/* "Authentication-Results: ..." */
};

/* Runs the checks; psl is needed for DMARC. Always fills *result (free
 * with msgauth_check_result_free). Header fields use eol for folding. */
void msgauth_check_message(const struct msgauth_dns *dns,
    const struct psl *psl, const struct msgauth_check_request *req,
    const char *eol, struct msgauth_check_result *result);
void msgauth_check_result_free(struct msgauth_check_result *result);

#endif
