#include "lib/str.h"
#include "lib/test.h"
#include "lib/xalloc.h"
#include "msgauth/check.h"
#include "msgauth/dkim_key.h"
#include "msgauth/dkim_sign.h"
#include "msgauth/test_fake_dns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char plain[] =
    "From: Joe <joe@example.com>\r\n"
    "To: ann@ours.example\r\n"
    "Subject: hello\r\n"
    "\r\n"
    "Hi Ann\r\n";

static char *
sign(struct dkim_key *key, const char *msg)
{
	struct dkim_signer *s = dkim_signer_new(1700000000);
	char *fields = NULL, *err = NULL, *out;

	dkim_signer_update(s, msg, strlen(msg));
	if (dkim_signer_finish(s, &key, 1, &fields, &err) < 0) {
		free(err);
		dkim_signer_free(&s);
		return xstrdup(msg);
	}
	dkim_signer_free(&s);
	out = xasprintf("%s%s", fields, msg);
	free(fields);
	return out;
}

static char *
replace_from(const char *msg)
{
	const char *p = strstr(msg, "joe@example.com");

	return xasprintf("%.*sjoe@q.example%s", (int)(p - msg), msg, p + 15);
}

static void
run(const struct msgauth_dns *dns, const struct psl *psl, const char *ip,
    const char *msg, bool authenticated, struct msgauth_check_result *r)
{
	struct msgauth_check_request req = {
		.spf = { .sender = "joe@example.com", .helo = "mail.example.com",
		    .receiver = "mx.ours.example", .now = 1700000100 },
		.message = msg, .message_len = strlen(msg),
		.authenticated = authenticated,
		.check_spf = true, .check_dkim = true, .check_dmarc = true,
	};

	msgauth_ip_parse(ip, &req.spf.ip);
	msgauth_check_message(dns, psl, &req, "\r\n", r);
}

static void
test_msgauth_check(void)
{
	struct dkim_key *key = NULL;
	char *pem = NULL, *rec, *signed_msg, *m, *err = NULL;
	const char *cerr;
	struct psl *psl = NULL;
	struct msgauth_check_result r;
	struct msgauth_dns dns;

	test_begin("msgauth check: SPF + DKIM + DMARC, headers and action");
	test_assert(dkim_key_generate(DKIM_KEY_ED25519, 0, &pem, &cerr) == 0);
	test_assert(dkim_key_from_pem(pem, strlen(pem), "example.com", "ed", &key,
	    &err) == 0);
	free(pem);
	test_assert(psl_load(PSL_DEFAULT_PATH, &psl, &err) == 0);
	if (key == NULL || psl == NULL) {
		test_end();
		return;
	}
	rec = dkim_key_dns_record(key);
	{
		struct fake_rr rows[] = {
			{ "example.com", "TXT", "v=spf1 ip4:192.0.2.0/24 -all" },
			{ "_dmarc.example.com", "TXT", "v=DMARC1; p=reject" },
			{ "ed._domainkey.example.com", "TXT", rec },
			{ "_dmarc.q.example", "TXT", "v=DMARC1; p=quarantine" },
		};
		struct fake_zone z = { rows, 4, NULL, 0, 0 };

		fake_dns_init(&dns, &z);
		signed_msg = sign(key, plain);

		run(&dns, psl, "192.0.2.1", signed_msg, false, &r);
		test_assert(r.action == MSGAUTH_ACCEPT);
		test_assert(r.spf.result == SPF_RESULT_PASS);
		test_assert(r.dkim.count == 1 && r.dkim.sig[0].result == DKIM_RESULT_PASS);
		test_assert(r.dmarc.result == DMARC_RESULT_PASS);
		test_assert_str(r.from_domain, "example.com");
		test_assert(r.authentication_results != NULL &&
		    strstr(r.authentication_results, "Authentication-Results: "
		    "mx.ours.example;\r\n\tspf=pass smtp.mailfrom=joe@example.com;\r\n"
		    "\tdkim=pass header.d=example.com") != NULL);
		test_assert(strstr(r.authentication_results,
		    "dmarc=pass (p=reject dis=none) header.from=example.com") != NULL);
		test_assert(r.received_spf != NULL &&
		    str_has_prefix(r.received_spf, "Received-SPF: pass"));
		msgauth_check_result_free(&r);

		/* forged: wrong server, no signature -> DMARC reject */
		run(&dns, psl, "198.51.100.1", plain, false, &r);
		test_assert(r.action == MSGAUTH_REJECT);
		test_assert(strstr(r.reply, "5.7.1") == r.reply);
		test_assert(strstr(r.authentication_results, "dkim=none") != NULL);
		test_assert(strstr(r.authentication_results, "dmarc=fail") != NULL);
		msgauth_check_result_free(&r);

		/* body changed in transit, wrong server -> reject */
		m = xasprintf("%.*sHi Eve\r\n", (int)(strlen(signed_msg) - 8),
		    signed_msg);
		run(&dns, psl, "198.51.100.1", m, false, &r);
		test_assert(r.dkim.sig[0].result == DKIM_RESULT_FAIL);
		test_assert(r.action == MSGAUTH_REJECT);
		msgauth_check_result_free(&r);
		free(m);

		/* forwarded: SPF fails, the signature carries it */
		run(&dns, psl, "198.51.100.1", signed_msg, false, &r);
		test_assert(r.spf.result == SPF_RESULT_FAIL);
		test_assert(r.dmarc.result == DMARC_RESULT_PASS);
		test_assert(r.action == MSGAUTH_ACCEPT);
		msgauth_check_result_free(&r);

		/* our own users are not checked */
		run(&dns, psl, "198.51.100.1", plain, true, &r);
		test_assert(r.action == MSGAUTH_ACCEPT && r.authentication_results == NULL);
		msgauth_check_result_free(&r);

		/* quarantine */
		m = replace_from(plain);
		run(&dns, psl, "198.51.100.1", m, false, &r);
		test_assert(r.action == MSGAUTH_QUARANTINE);
		msgauth_check_result_free(&r);
		free(m);

		/* no From at all */
		run(&dns, psl, "192.0.2.1", "Subject: x\r\n\r\nbody\r\n", false, &r);
		test_assert(r.action == MSGAUTH_ACCEPT);
		test_assert(strstr(r.authentication_results, "dmarc=permerror") != NULL);
		msgauth_check_result_free(&r);
		free(signed_msg);
	}
	free(rec);
	dkim_key_free(&key);
	psl_free(&psl);
	test_end();
}
TEST(test_msgauth_check)

/* The result the RCPT stage computed is used, not asked for again. */
static void
test_msgauth_check_spf_done(void)
{
	struct psl *psl = NULL;
	struct msgauth_check_result r;
	struct msgauth_dns dns;
	struct spf_outcome done;
	char *err = NULL;
	struct fake_rr rows[] = {
		{ "example.com", "TXT", "v=spf1 -all" },
		{ "_dmarc.example.com", "TXT", "v=DMARC1; p=reject" },
	};
	struct fake_zone z = { rows, 2, NULL, 0, 0 };
	struct msgauth_check_request req = {
		.spf = { .sender = "joe@example.com", .helo = "mail.example.com",
		    .receiver = "mx.ours.example", .now = 1700000100 },
		.message = plain, .message_len = strlen(plain),
		.check_spf = true, .check_dmarc = true, .spf_done = &done,
	};

	test_begin("msgauth check: a MAIL FROM result from RCPT is reused");
	test_assert(psl_load(PSL_DEFAULT_PATH, &psl, &err) == 0);
	fake_dns_init(&dns, &z);
	msgauth_ip_parse("192.0.2.1", &req.spf.ip);
	memset(&done, 0, sizeof(done));
	done.result = SPF_RESULT_PASS;
	done.identity = SPF_IDENTITY_MAILFROM;
	str_copy(done.domain, sizeof(done.domain), "example.com");
	done.explanation = xstrdup("kept");
	msgauth_check_message(&dns, psl, &req, "\r\n", &r);
	/* only the DMARC record was asked for; the zone's -all never was */
	test_assert_int(z.queries, 1);
	test_assert(r.spf.result == SPF_RESULT_PASS);
	test_assert(r.spf.explanation != NULL && r.spf.explanation != done.explanation);
	test_assert(r.dmarc.result == DMARC_RESULT_PASS);
	test_assert(r.action == MSGAUTH_ACCEPT);
	test_assert(r.received_spf != NULL &&
	    str_has_prefix(r.received_spf, "Received-SPF: pass"));
	msgauth_check_result_free(&r);
	spf_outcome_free(&done);
	psl_free(&psl);
	test_end();
}
TEST(test_msgauth_check_spf_done)
