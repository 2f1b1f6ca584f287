#include "daemon/delivery.h"
#include "filter/spammark.h"
#include "lib/buf.h"
#include "lib/file.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "mail/header.h"
#include "msgauth/authres.h"
#include "queue/spool.h"
#include "store/maildir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/random.h>

/* Size of the header block looked at for forged fields (bounded work). */
#define HEADER_MAX (1024 * 1024)

struct delivery {
	char id[SPOOL_ID_LEN + 1];
	char *hostname;
	bool add_missing;
	char *incoming_dir;
	/* the body as received */
	struct buf mem;
	int fd;			/* -1 while the body is in mem */
	void *map;
	size_t map_len;
	bool write_failed;
	/* trace fields, CRLF-terminated */
	char *head_local, *head_remote;
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

	dl->fd = -1;
	buf_init(&dl->mem, BUF_UNLIMITED);
	dl->hostname = xstrdup(p->hostname);
	dl->add_missing = p->add_missing_fields;
	dl->incoming_dir = xstrdup(p->incoming_dir != NULL ? p->incoming_dir :
	    "/tmp");
	if (p->nremote > 0) {
		/* The id is the queue's: take it now for the Received field. */
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
		dl->head_remote = trace_headers(p, dl->id, false);
	} else {
		make_id(dl->id);
	}
	if (p->nlocal > 0) {
		dl->maildirs = xcalloc(p->nlocal, sizeof(*dl->maildirs));
		for (size_t i = 0; i < p->nlocal; i++)
			dl->maildirs[i] = xstrdup(p->local_maildirs[i]);
		dl->nmaildirs = p->nlocal;
		dl->head_local = trace_headers(p, dl->id, true);
	}
	return dl;
fail:
	delivery_abort(dl);
	return NULL;
}

/* The body outgrew memory: move it to a file without a name. */
static int
spill(struct delivery *dl)
{
	char path[4096];

	dl->fd = open(dl->incoming_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (dl->fd < 0) {
		/* A filesystem without O_TMPFILE: create, then unlink. */
		snprintf(path, sizeof(path), "%s/body.XXXXXX", dl->incoming_dir);
		dl->fd = mkostemp(path, O_CLOEXEC);
		if (dl->fd < 0)
			return -1;
		unlink(path);
	}
	if (write_full(dl->fd, dl->mem.data, dl->mem.len) < 0)
		return -1;
	buf_free(&dl->mem);
	buf_init(&dl->mem, BUF_UNLIMITED);
	return 0;
}

int
delivery_write(struct delivery *dl, const unsigned char *data, size_t len)
{
	if (dl->write_failed)
		return -1;
	dl->size += len;
	if (dl->fd < 0) {
		if (dl->mem.len + len <= DELIVERY_MEM_MAX) {
			buf_append(&dl->mem, data, len);
			return 0;
		}
		if (spill(dl) < 0) {
			dl->write_failed = true;
			return -1;
		}
	}
	if (write_full(dl->fd, data, len) < 0) {
		dl->write_failed = true;
		return -1;
	}
	return 0;
}

int
delivery_message(struct delivery *dl, const char **msg_r, size_t *len_r,
    const char **error_r)
{
	if (dl->fd < 0) {
		*msg_r = dl->mem.data != NULL ? dl->mem.data : "";
		*len_r = dl->mem.len;
		return 0;
	}
	if (dl->map == NULL) {
		if (dl->size == 0) {
			*msg_r = "";
			*len_r = 0;
			return 0;
		}
		dl->map = mmap(NULL, dl->size, PROT_READ, MAP_SHARED, dl->fd, 0);
		if (dl->map == MAP_FAILED) {
			dl->map = NULL;
			*error_r = "cannot map the incoming message";
			return -1;
		}
		dl->map_len = dl->size;
	}
	*msg_r = dl->map;
	*len_r = dl->map_len;
	return 0;
}

/* Length of the header block including the empty line (or all of it). */
static size_t
header_len(const char *msg, size_t len)
{
	size_t max = len < HEADER_MAX ? len : HEADER_MAX;

	if (max >= 2 && msg[0] == '\r' && msg[1] == '\n')
		return 2;
	for (size_t i = 0; i + 3 < max; i++)
		if (msg[i] == '\r' && msg[i + 1] == '\n' && msg[i + 2] == '\r' &&
		    msg[i + 3] == '\n')
			return i + 4;
	/* No body, or a header block past our bound: leave it alone. */
	return 0;
}

/*
 * RFC 5322 §3.6 wants Date and asks for Message-ID; a submission server
 * may add them (RFC 6409 §8.2, §8.3). We do for authenticated
 * submissions only, at the end of the header, so the copies in Maildirs
 * and the queue (and so the DKIM signature) have them. Mail from other
 * servers is passed on as it came: adding fields to someone else's mail
 * changes what their signatures cover, and Postfix does the same by
 * default (always_add_missing_headers = no for remote clients).
 *
 * hdr is the header block with its empty line ("\r\n\r\n" at the end,
 * or just "\r\n" for a message without header fields).
 */
static void
add_missing_fields(struct buf *hdr, const char *id, const char *hostname)
{
	struct mail_header_iter it;
	struct mail_header_field f;
	bool has_id = false, has_date = false;
	char date[64];
	struct tm tm;
	time_t now = time(NULL);
	size_t at;
	struct buf out;

	mail_header_iter_init(&it, hdr->data, 0, hdr->len);
	while (mail_header_next(&it, &f) > 0) {
		if (f.name_len == 10 && strncasecmp(f.name, "Message-ID", 10) == 0)
			has_id = true;
		else if (f.name_len == 4 && strncasecmp(f.name, "Date", 4) == 0)
			has_date = true;
	}
	if (has_id && has_date)
		return;
	/* Before the empty line that ends the header. */
	at = hdr->len >= 2 ? hdr->len - 2 : 0;
	buf_init(&out, BUF_UNLIMITED);
	buf_append(&out, hdr->data, at);
	if (!has_date) {
		/* The server's local time and offset; day and month names
		 * from the C locale (nothing here calls setlocale). */
		localtime_r(&now, &tm);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
		buf_printf(&out, "Date: %s\r\n", date);
	}
	if (!has_id)
		buf_printf(&out, "Message-ID: <%s@%s>\r\n", id, hostname);
	buf_append(&out, hdr->data + at, hdr->len - at);
	buf_free(hdr);
	*hdr = out;
}

typedef int writer_fn(void *target, const void *data, size_t len,
    const char **error_r);

static int
write_spool(void *t, const void *data, size_t len, const char **error_r)
{
	return spool_msg_write(t, data, len, error_r);
}

static int
write_maildir(void *t, const void *data, size_t len, const char **error_r)
{
	return maildir_msg_write(t, data, len, error_r);
}

static int
write_copy(writer_fn *w, void *t, const char *trace,
    const struct delivery_extra *x, const struct buf *hdr, const char *rest,
    size_t rest_len, const char **error_r)
{
	if (w(t, trace, strlen(trace), error_r) < 0)
		return -1;
	for (size_t i = 0; x != NULL && i < sizeof(x->fields) /
	    sizeof(x->fields[0]); i++) {
		if (x->fields[i] == NULL)
			continue;
		if (w(t, x->fields[i], strlen(x->fields[i]), error_r) < 0 ||
		    w(t, "\r\n", 2, error_r) < 0)
			return -1;
	}
	if (hdr->len > 0 && w(t, hdr->data, hdr->len, error_r) < 0)
		return -1;
	if (rest_len > 0 && w(t, rest, rest_len, error_r) < 0)
		return -1;
	return 0;
}

int
delivery_commit(struct delivery *dl, const struct delivery_extra *x,
    const char **error_r)
{
	const char *msg, *werr;
	size_t len, hlen;
	struct buf hdr, marked;
	int ret = -1;

	if (dl->write_failed) {
		*error_r = "writing the incoming message failed";
		return -1;
	}
	if (delivery_message(dl, &msg, &len, error_r) < 0)
		return -1;
	/* The header block, cleaned; the body is copied as it is. */
	hlen = header_len(msg, len);
	buf_init(&hdr, BUF_UNLIMITED);
	if (hlen > 0 && authres_strip_ours(msg, hlen, dl->hostname, &hdr) < 0) {
		buf_reset(&hdr);
		buf_append(&hdr, msg, hlen);
	}
	if (dl->add_missing) {
		if (hlen == 0 && len < HEADER_MAX) {
			/* Header fields only, no empty line: all of it is
			 * header; it gets the empty line. */
			buf_reset(&hdr);
			buf_append(&hdr, msg, len);
			if (len > 0 && msg[len - 1] != '\n')
				buf_append_str(&hdr, "\r\n");
			buf_append_str(&hdr, "\r\n");
			hlen = len;
		}
		if (hdr.len > 0)
			add_missing_fields(&hdr, dl->id, dl->hostname);
	}
	if (x != NULL && x->mark != NULL && x->verdict != NULL && hlen > 0) {
		buf_init(&marked, BUF_UNLIMITED);
		if (spammark_rewrite(hdr.data, hdr.len, x->mark, x->verdict,
		    &marked) == 0) {
			buf_free(&hdr);
			hdr = marked;
		} else {
			buf_free(&marked);
		}
	}
	/*
	 * The queue entry first: if the Maildir step fails after it, the
	 * entry can still be taken back, so a failure leaves nothing behind
	 * and the client's retry is the only copy.
	 */
	if (dl->sm != NULL) {
		if (write_copy(write_spool, dl->sm, dl->head_remote, x, &hdr,
		    msg + hlen, len - hlen, &werr) < 0) {
			*error_r = werr;
			goto out;
		}
		if (spool_msg_commit(dl->sm, &dl->env, &dl->error) < 0) {
			*error_r = dl->error;
			goto out;
		}
	}
	if (dl->nmaildirs > 0) {
		char **targets = dl->maildirs, **junk = NULL;
		int r;

		if (x != NULL && x->folder != NULL) {
			junk = xcalloc(dl->nmaildirs, sizeof(*junk));
			for (size_t i = 0; i < dl->nmaildirs; i++) {
				size_t n = strlen(dl->maildirs[i]);

				junk[i] = xasprintf("%s%s.%s", dl->maildirs[i],
				    n > 0 && dl->maildirs[i][n - 1] == '/' ? "" :
				    "/", x->folder);
			}
			targets = junk;
		}
		dl->mm = maildir_msg_create(targets[0], &dl->error);
		r = dl->mm == NULL ? -1 : 0;
		if (r == 0 && write_copy(write_maildir, dl->mm, dl->head_local,
		    x, &hdr, msg + hlen, len - hlen, &werr) < 0) {
			free(dl->error);
			dl->error = xstrdup(werr);
			r = -1;
		}
		if (r == 0)
			r = maildir_msg_commit_flags(dl->mm,
			    (const char *const *)targets, dl->nmaildirs,
			    x != NULL && x->seen ? "S" : NULL, &dl->error);
		for (size_t i = 0; junk != NULL && i < dl->nmaildirs; i++)
			free(junk[i]);
		free(junk);
		if (r < 0) {
			if (dl->mm != NULL)
				maildir_msg_abort(&dl->mm);
			if (dl->sm != NULL) {
				char *err = NULL;

				if (spool_remove(dl->spool, dl->id, &err) < 0)
					free(err);
				spool_msg_free(&dl->sm);
			}
			*error_r = dl->error != NULL ? dl->error :
			    "maildir delivery failed";
			goto out;
		}
	}
	ret = 0;
out:
	buf_free(&hdr);
	return ret;
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
	if (dl->map != NULL)
		munmap(dl->map, dl->map_len);
	if (dl->fd >= 0)
		close(dl->fd);
	buf_free(&dl->mem);
	spool_msg_free(&dl->sm);
	spool_envelope_free(&dl->env);
	for (size_t i = 0; i < dl->nmaildirs; i++)
		free(dl->maildirs[i]);
	free(dl->maildirs);
	free(dl->head_local);
	free(dl->head_remote);
	free(dl->hostname);
	free(dl->incoming_dir);
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
