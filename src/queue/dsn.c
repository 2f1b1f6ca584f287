#include "queue/dsn.h"
#include "lib/buf.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define DSN_TEXT_MAX 900	/* longest quoted reply or address */
#define DSN_HEADERS_MAX (64 * 1024)

bool
dsn_wanted(const char *sender)
{
	return sender != NULL && *sender != '\0';
}

static void
rfc5322_date(time_t t, char *out, size_t outsize)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, outsize, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

/* Appends untrusted text on one line: control bytes become spaces. */
static void
append_clean(struct buf *b, const char *s)
{
	size_t n = 0;

	for (const char *p = s; *p != '\0' && n < DSN_TEXT_MAX; p++, n++) {
		unsigned char c = (unsigned char)*p;

		buf_append_c(b, c < 0x20 || c == 0x7f ? ' ' : (char)c);
	}
	if (strlen(s) > DSN_TEXT_MAX)
		buf_append_str(b, "...");
}

/* Does text start like an SMTP reply ("550 ...", "451-...")? */
static bool
is_smtp_reply(const char *text)
{
	return text[0] >= '2' && text[0] <= '5' && isdigit((unsigned char)text[1]) &&
	    isdigit((unsigned char)text[2]) && (text[3] == ' ' ||
	    text[3] == '-' || text[3] == '\0');
}

size_t
dsn_header_length(const char *msg, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (msg[i] != '\n')
			continue;
		if (i + 1 < len && msg[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && msg[i + 1] == '\r' && msg[i + 2] == '\n')
			return i + 3;
	}
	return len;
}

void
dsn_status_from_reply(const char *reply, char out[16])
{
	char cls = reply != NULL && (reply[0] == '4' || reply[0] == '5') ?
	    reply[0] : '5';
	const char *p;
	unsigned int a, b, c;
	int n = 0;

	snprintf(out, 16, "%c.0.0", cls);
	if (reply == NULL || strlen(reply) < 5)
		return;
	p = reply + 3;
	while (*p == ' ' || *p == '-')
		p++;
	if (sscanf(p, "%1u.%3u.%3u%n", &a, &b, &c, &n) == 3 && n > 0 &&
	    (p[n] == ' ' || p[n] == '\0') && (char)('0' + a) == cls)
		snprintf(out, 16, "%u.%u.%u", a, b, c);
}

char *
dsn_format(const struct dsn_params *p, size_t *len_r)
{
	struct buf b;
	char date[64], arrival[64], boundary[64];
	unsigned char rnd[8] = { 0 };
	size_t hlen;

	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		memset(rnd, 0x5a, sizeof(rnd));
	snprintf(boundary, sizeof(boundary),
	    "%s.%02x%02x%02x%02x%02x%02x%02x%02x/%s", p->queue_id, rnd[0],
	    rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], p->hostname);
	rfc5322_date(p->now, date, sizeof(date));
	rfc5322_date(p->arrival, arrival, sizeof(arrival));
	buf_init(&b, BUF_UNLIMITED);
	buf_printf(&b, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n",
	    p->hostname);
	buf_append_str(&b, "To: <");
	append_clean(&b, p->sender);
	buf_append_str(&b, ">\r\n");
	buf_printf(&b, "Subject: %s\r\n", p->delayed ?
	    "Delayed Mail (still being retried)" :
	    "Undelivered Mail Returned to Sender");
	buf_printf(&b, "Date: %s\r\n", date);
	buf_printf(&b, "Message-ID: <%s.%02x%02x%02x%02x.dsn@%s>\r\n",
	    p->queue_id, rnd[0], rnd[1], rnd[2], rnd[3], p->hostname);
	/* RFC 3834: an automatic reply, not to be answered automatically. */
	buf_append_str(&b, "Auto-Submitted: auto-replied\r\n");
	buf_append_str(&b, "MIME-Version: 1.0\r\n");
	buf_printf(&b, "Content-Type: multipart/report; "
	    "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n\r\n",
	    boundary);
	buf_append_str(&b, "This is a MIME-encapsulated message.\r\n\r\n");

	/* 1. for people */
	buf_printf(&b, "--%s\r\nContent-Type: text/plain; charset=utf-8\r\n"
	    "Content-Transfer-Encoding: 8bit\r\n\r\n", boundary);
	buf_printf(&b, "This is the mail system at %s.\r\n\r\n", p->hostname);
	if (p->delayed)
		buf_append_str(&b, "Your message could not be delivered yet to "
		    "the recipients below.\r\nIt stays in the queue and "
		    "delivery will be tried again; you do not\r\nneed to send it "
		    "again. You will be told if it finally fails.\r\n\r\n");
	else
		buf_append_str(&b, "Your message could not be delivered to the "
		    "recipients below.\r\nIt has been given up; the reasons "
		    "follow.\r\n\r\n");
	for (size_t i = 0; i < p->rcpt_count; i++) {
		const struct dsn_rcpt *r = &p->rcpts[i];

		buf_append_str(&b, "<");
		append_clean(&b, r->address);
		buf_append_str(&b, ">: ");
		if (r->remote_mta != NULL) {
			buf_append_str(&b, "host ");
			append_clean(&b, r->remote_mta);
			buf_append_str(&b, " said: ");
		}
		append_clean(&b, r->diagnostic != NULL ? r->diagnostic :
		    "unknown error");
		buf_append_str(&b, "\r\n");
	}
	buf_append_str(&b, "\r\n");

	/* 2. for programs (RFC 3464 section 2) */
	buf_printf(&b, "--%s\r\nContent-Type: message/delivery-status\r\n\r\n",
	    boundary);
	buf_printf(&b, "Reporting-MTA: dns; %s\r\n", p->hostname);
	buf_printf(&b, "X-Tegami-Queue-ID: %s\r\n", p->queue_id);
	buf_printf(&b, "Arrival-Date: %s\r\n", arrival);
	for (size_t i = 0; i < p->rcpt_count; i++) {
		const struct dsn_rcpt *r = &p->rcpts[i];

		buf_append_str(&b, "\r\nFinal-Recipient: rfc822; ");
		append_clean(&b, r->address);
		buf_append_str(&b, "\r\n");
		if (r->orcpt != NULL) {
			buf_append_str(&b, "Original-Recipient: ");
			append_clean(&b, r->orcpt);
			buf_append_str(&b, "\r\n");
		}
		buf_printf(&b, "Action: %s\r\n", p->delayed ? "delayed" :
		    "failed");
		buf_append_str(&b, "Status: ");
		append_clean(&b, r->status != NULL ? r->status :
		    p->delayed ? "4.0.0" : "5.0.0");
		buf_append_str(&b, "\r\n");
		if (r->remote_mta != NULL) {
			buf_append_str(&b, "Remote-MTA: dns; ");
			append_clean(&b, r->remote_mta);
			buf_append_str(&b, "\r\n");
		}
		if (r->diagnostic != NULL) {
			/* RFC 3464 2.3.6: "smtp" is for what a server
			 * replied; our own reasons (DNS, expiry, no 7-bit
			 * form) get a type of ours, as Postfix's X-Postfix. */
			buf_printf(&b, "Diagnostic-Code: %s; ",
			    is_smtp_reply(r->diagnostic) ? "smtp" : "X-Tegami");
			append_clean(&b, r->diagnostic);
			buf_append_str(&b, "\r\n");
		}
		if (r->last_attempt != 0) {
			rfc5322_date(r->last_attempt, date, sizeof(date));
			buf_printf(&b, "Last-Attempt-Date: %s\r\n", date);
		}
		if (p->delayed && p->retry_until != 0) {
			rfc5322_date(p->retry_until, date, sizeof(date));
			buf_printf(&b, "Will-Retry-Until: %s\r\n", date);
		}
	}
	buf_append_str(&b, "\r\n");

	/* 3. the original header */
	buf_printf(&b, "--%s\r\nContent-Type: text/rfc822-headers\r\n\r\n",
	    boundary);
	hlen = dsn_header_length(p->original, p->original_len);
	if (hlen > DSN_HEADERS_MAX)
		hlen = DSN_HEADERS_MAX;
	/* Quote it with CRLF line ends whatever it came with. */
	for (size_t i = 0; i < hlen; i++) {
		char c = p->original[i];

		if (c == '\n' && (i == 0 || p->original[i - 1] != '\r'))
			buf_append_c(&b, '\r');
		buf_append_c(&b, c);
	}
	if (hlen > 0 && p->original[hlen - 1] != '\n')
		buf_append_str(&b, "\r\n");
	buf_printf(&b, "\r\n--%s--\r\n", boundary);
	*len_r = b.len;
	return buf_steal(&b);
}
