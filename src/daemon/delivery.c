#include "daemon/delivery.h"
#include "lib/buf.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "queue/spool.h"
#include "store/maildir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>

struct delivery {
	char id[SPOOL_ID_LEN + 1];
	struct maildir_msg *mm;
	char **maildirs;
	size_t nmaildirs;
	struct spool *spool;
	struct spool_msg *sm;
	struct spool_envelope env;
	char *error;
	uint64_t size;
};

static void
make_id(char id[SPOOL_ID_LEN + 1])
{
	unsigned char rnd[8] = { 0 };

	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		for (size_t i = 0; i < sizeof(rnd); i++)
			rnd[i] = (unsigned char)rand();
	snprintf(id, SPOOL_ID_LEN + 1, "%08lx%02x%02x%02x%02x%02x%02x%02x%02x",
	    (unsigned long)time(NULL) & 0xffffffffUL, rnd[0], rnd[1], rnd[2],
	    rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
}

/* RFC 5322 date in UTC: "Fri, 27 Nov 2026 18:50:01 +0000". */
static void
rfc5322_date(char *out, size_t outsize)
{
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(out, outsize, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

static char *
trace_headers(const struct delivery_params *p, const char *id, bool local)
{
	struct buf b;
	char date[64];

	rfc5322_date(date, sizeof(date));
	buf_init(&b, BUF_UNLIMITED);
	if (local) {
		buf_printf(&b, "Return-Path: <%s>\r\n", p->sender);
		/* One mailbox: say which. Several share one file, so none. */
		if (p->nlocal == 1)
			buf_printf(&b, "Delivered-To: %s\r\n", p->local_addrs[0]);
	}
	buf_append_str(&b, "Received: ");
	if (!p->hide_client)
		buf_printf(&b, "from %s ([%s])\r\n\t", p->helo != NULL ?
		    p->helo : "unknown", p->client_ip);
	buf_printf(&b, "by %s (tegami) with %s id %s", p->hostname, p->protocol,
	    id);
	if (p->tls_version != NULL)
		buf_printf(&b, "\r\n\t(version=%s cipher=%s)", p->tls_version,
		    p->tls_cipher != NULL ? p->tls_cipher : "unknown");
	if (p->rcpt_for != NULL)
		buf_printf(&b, "\r\n\tfor <%s>", p->rcpt_for);
	buf_printf(&b, "; %s\r\n", date);
	return buf_steal(&b);
}

struct delivery *
delivery_begin(const struct delivery_params *p, char **error_r)
{
	struct delivery *dl = xcalloc(1, sizeof(*dl));
	const char *werr;
	char *head;

	if (p->nremote > 0) {
		dl->spool = p->spool;
		dl->sm = spool_msg_create(dl->spool, error_r);
		if (dl->sm == NULL)
			goto fail;
		str_copy(dl->id, sizeof(dl->id), spool_msg_id(dl->sm));
		dl->env.from = xstrdup(p->sender);
		dl->env.auth = p->auth_login != NULL ? xstrdup(p->auth_login) : NULL;
		dl->env.body = p->body_type != NULL &&
		    strcasecmp(p->body_type, "8BITMIME") == 0 ?
		    SPOOL_BODY_8BITMIME : SPOOL_BODY_7BIT;
		dl->env.smtputf8 = p->smtputf8;
		for (size_t i = 0; i < p->nremote; i++)
			spool_envelope_add_rcpt(&dl->env, p->remote[i]);
		head = trace_headers(p, dl->id, false);
		if (spool_msg_write(dl->sm, head, strlen(head), &werr) < 0) {
			free(head);
			*error_r = xstrdup(werr);
			goto fail;
		}
		free(head);
	} else {
		make_id(dl->id);
	}
	if (p->nlocal > 0) {
		dl->mm = maildir_msg_create(p->local_maildirs[0], error_r);
		if (dl->mm == NULL)
			goto fail;
		dl->maildirs = xcalloc(p->nlocal, sizeof(*dl->maildirs));
		for (size_t i = 0; i < p->nlocal; i++)
			dl->maildirs[i] = xstrdup(p->local_maildirs[i]);
		dl->nmaildirs = p->nlocal;
		head = trace_headers(p, dl->id, true);
		if (maildir_msg_write(dl->mm, head, strlen(head), &werr) < 0) {
			free(head);
			*error_r = xstrdup(werr);
			goto fail;
		}
		free(head);
	}
	return dl;
fail:
	delivery_abort(dl);
	return NULL;
}

int
delivery_write(struct delivery *dl, const unsigned char *data, size_t len)
{
	const char *err;

	dl->size += len;
	if (dl->sm != NULL && spool_msg_write(dl->sm, data, len, &err) < 0)
		return -1;
	if (dl->mm != NULL && maildir_msg_write(dl->mm, data, len, &err) < 0)
		return -1;
	return 0;
}

int
delivery_commit(struct delivery *dl, const char **error_r)
{
	/*
	 * The queue entry first: if the Maildir step fails after it, the
	 * entry can still be taken back, so a failure leaves nothing behind
	 * and the client's retry is the only copy.
	 */
	if (dl->sm != NULL && spool_msg_commit(dl->sm, &dl->env, &dl->error) < 0) {
		*error_r = dl->error;
		return -1;
	}
	if (dl->mm != NULL && maildir_msg_commit(dl->mm,
	    (const char *const *)dl->maildirs, dl->nmaildirs, &dl->error) < 0) {
		if (dl->sm != NULL) {
			char *err = NULL;

			if (spool_remove(dl->spool, dl->id, &err) < 0)
				free(err);
			spool_msg_free(&dl->sm);
		}
		*error_r = dl->error;
		return -1;
	}
	return 0;
}

const char *
delivery_id(const struct delivery *dl)
{
	return dl->id;
}

uint64_t
delivery_size(const struct delivery *dl)
{
	return dl->size;
}

static void
delivery_destroy(struct delivery *dl, bool abort)
{
	if (dl == NULL)
		return;
	if (dl->mm != NULL) {
		if (abort)
			maildir_msg_abort(&dl->mm);
		else
			maildir_msg_free(&dl->mm);
	}
	spool_msg_free(&dl->sm);
	spool_envelope_free(&dl->env);
	for (size_t i = 0; i < dl->nmaildirs; i++)
		free(dl->maildirs[i]);
	free(dl->maildirs);
	free(dl->error);
	free(dl);
}

void
delivery_abort(struct delivery *dl)
{
	delivery_destroy(dl, true);
}

void
delivery_free(struct delivery *dl)
{
	delivery_destroy(dl, false);
}
