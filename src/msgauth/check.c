/* SPF + DKIM + DMARC for one message. */
#include "msgauth/check.h"

#include "lib/str.h"
#include "lib/xalloc.h"
#include "msgauth/authres.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
msgauth_check_result_free(struct msgauth_check_result *r)
{
	spf_outcome_free(&r->spf);
	x_free(&r->received_spf);
	x_free(&r->authentication_results);
}

/* The domain SPF vouched for, as DMARC wants it (RFC 7489 §3.1.2). */
static const char *
spf_domain(const struct spf_request *req)
{
	const char *s = req->sender;

	if (s == NULL || s[0] == '\0')
		return req->helo;
	return strrchr(s, '@') != NULL ? strrchr(s, '@') + 1 : s;
}

void
msgauth_check_message(const struct msgauth_dns *dns, const struct psl *psl,
    const struct msgauth_check_request *req, const char *eol,
    struct msgauth_check_result *r)
{
	const char *id = req->spf.receiver != NULL && req->spf.receiver[0] != '\0' ?
	    req->spf.receiver : "localhost";
	struct authres ar;
	const char *err = "no From domain";

	memset(r, 0, sizeof(*r));
	r->action = MSGAUTH_ACCEPT;
	if (req->authenticated)
		return;	/* our own users' submissions */

	authres_init(&ar, id);
	if (req->check_spf) {
		if (req->spf_done != NULL)
			spf_outcome_copy(&r->spf, req->spf_done);
		else
			spf_check_mailfrom(dns, &req->spf, &r->spf);
		r->received_spf = spf_received_spf(&req->spf, &r->spf);
		authres_add_spf(&ar, &r->spf, &req->spf);
	}
	if (req->check_dkim) {
		dkim_verify(dns, req->message, req->message_len, req->spf.now,
		    &r->dkim);
		if (r->dkim.count == 0)
			authres_add_dkim(&ar, NULL);
		for (size_t i = 0; i < r->dkim.count; i++)
			authres_add_dkim(&ar, &r->dkim.sig[i]);
	}
	if (dmarc_from_domain(req->message, req->message_len, r->from_domain,
	    sizeof(r->from_domain), &err) < 0)
		r->from_domain[0] = '\0';

	if (req->check_dmarc && r->from_domain[0] != '\0') {
		struct dmarc_dkim_sig sigs[DKIM_VERIFY_MAX_SIGS];
		struct dmarc_input in = {
			.from_domain = r->from_domain,
			.spf_result = req->check_spf ? r->spf.result : SPF_RESULT_NONE,
			.spf_domain = spf_domain(&req->spf),
			.dkim = sigs,
			.dkim_count = r->dkim.count,
			.random_pct = req->random_pct,
			.random_ctx = req->random_ctx,
		};

		for (size_t i = 0; i < r->dkim.count; i++) {
			sigs[i].domain = r->dkim.sig[i].domain;
			sigs[i].pass = r->dkim.sig[i].result == DKIM_RESULT_PASS;
		}
		dmarc_evaluate(dns, psl, &in, &r->dmarc);
		authres_add_dmarc(&ar, &r->dmarc, r->from_domain);
		if (r->dmarc.disposition == DMARC_DISP_REJECT) {
			r->action = MSGAUTH_REJECT;
			snprintf(r->reply, sizeof(r->reply), "5.7.1 Rejected by the "
			    "DMARC policy of %.100s", r->from_domain);
		} else if (r->dmarc.disposition == DMARC_DISP_QUARANTINE) {
			r->action = MSGAUTH_QUARANTINE;
		}
	} else if (req->check_dmarc) {
		/* no usable From: nothing to align with (RFC 7489 §6.6.1) */
		authres_add(&ar, "dmarc", "permerror", err, (const char *)NULL);
	}
	r->authentication_results = authres_finish(&ar, eol);
}
