/* rspamd /checkv2 client. */
#include "filter/rspamd.h"

#include "filter/netclient.h"
#include "lib/buf.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define JSON_DEPTH_MAX 32
#define HEADER_VALUE_MAX 512

const char *
rspamd_action_name(enum rspamd_action a)
{
	switch (a) {
	case RSPAMD_NO_ACTION: return "no action";
	case RSPAMD_GREYLIST: return "greylist";
	case RSPAMD_ADD_HEADER: return "add header";
	case RSPAMD_REWRITE_SUBJECT: return "rewrite subject";
	case RSPAMD_SOFT_REJECT: return "soft reject";
	case RSPAMD_REJECT: return "reject";
	}
	return "no action";
}

/* ------------------------------------------------------------------ */
/* A JSON reader for the top level of one object.                      */

struct json {
	const char *p;
	size_t len;
	size_t pos;
};

static void
json_ws(struct json *j)
{
	while (j->pos < j->len && (j->p[j->pos] == ' ' || j->p[j->pos] == '\t' ||
	    j->p[j->pos] == '\r' || j->p[j->pos] == '\n'))
		j->pos++;
}

static int
hex4(const char *p, unsigned int *v_r)
{
	unsigned int v = 0;

	for (int i = 0; i < 4; i++) {
		int c = tolower((unsigned char)p[i]);

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned int)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned int)(c - 'a' + 10);
		else
			return -1;
	}
	*v_r = v;
	return 0;
}

static void
put_utf8(struct buf *out, unsigned int cp)
{
	if (cp < 0x80) {
		buf_append_c(out, (char)cp);
	} else if (cp < 0x800) {
		buf_append_c(out, (char)(0xc0 | cp >> 6));
		buf_append_c(out, (char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		buf_append_c(out, (char)(0xe0 | cp >> 12));
		buf_append_c(out, (char)(0x80 | (cp >> 6 & 0x3f)));
		buf_append_c(out, (char)(0x80 | (cp & 0x3f)));
	} else {
		buf_append_c(out, (char)(0xf0 | cp >> 18));
		buf_append_c(out, (char)(0x80 | (cp >> 12 & 0x3f)));
		buf_append_c(out, (char)(0x80 | (cp >> 6 & 0x3f)));
		buf_append_c(out, (char)(0x80 | (cp & 0x3f)));
	}
}

/* A string at pos (on its '"'); decoded into out when out != NULL. */
static int
json_string(struct json *j, struct buf *out)
{
	if (j->pos >= j->len || j->p[j->pos] != '"')
		return -1;
	j->pos++;
	while (j->pos < j->len) {
		unsigned char c = (unsigned char)j->p[j->pos++];

		if (c == '"')
			return 0;
		if (c < 0x20)
			return -1;
		if (c != '\\') {
			if (out != NULL)
				buf_append_c(out, (char)c);
			continue;
		}
		if (j->pos >= j->len)
			return -1;
		c = (unsigned char)j->p[j->pos++];
		if (c == 'u') {
			unsigned int cp, lo;

			if (j->len - j->pos < 4 || hex4(j->p + j->pos, &cp) < 0)
				return -1;
			j->pos += 4;
			if (cp >= 0xd800 && cp <= 0xdbff && j->len - j->pos >= 6 &&
			    j->p[j->pos] == '\\' && j->p[j->pos + 1] == 'u' &&
			    hex4(j->p + j->pos + 2, &lo) == 0 &&
			    lo >= 0xdc00 && lo <= 0xdfff) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				j->pos += 6;
			} else if (cp >= 0xd800 && cp <= 0xdfff) {
				cp = 0xfffd;	/* a lone surrogate */
			}
			if (out != NULL)
				put_utf8(out, cp);
			continue;
		}
		switch (c) {
		case '"': case '\\': case '/': break;
		case 'b': c = '\b'; break;
		case 'f': c = '\f'; break;
		case 'n': c = '\n'; break;
		case 'r': c = '\r'; break;
		case 't': c = '\t'; break;
		default: return -1;
		}
		if (out != NULL)
			buf_append_c(out, (char)c);
	}
	return -1;
}

/* Skips any value (bounded nesting). */
static int
json_skip(struct json *j, int depth)
{
	json_ws(j);
	if (j->pos >= j->len || depth > JSON_DEPTH_MAX)
		return -1;
	switch (j->p[j->pos]) {
	case '"':
		return json_string(j, NULL);
	case '{':
	case '[': {
		char close = j->p[j->pos] == '{' ? '}' : ']';

		j->pos++;
		json_ws(j);
		if (j->pos < j->len && j->p[j->pos] == close) {
			j->pos++;
			return 0;
		}
		for (;;) {
			if (close == '}') {
				json_ws(j);
				if (json_string(j, NULL) < 0)
					return -1;
				json_ws(j);
				if (j->pos >= j->len || j->p[j->pos++] != ':')
					return -1;
			}
			if (json_skip(j, depth + 1) < 0)
				return -1;
			json_ws(j);
			if (j->pos >= j->len)
				return -1;
			if (j->p[j->pos] == ',') {
				j->pos++;
				continue;
			}
			if (j->p[j->pos] == close) {
				j->pos++;
				return 0;
			}
			return -1;
		}
	}
	default: {
		size_t start = j->pos;

		/* numbers, true, false, null */
		while (j->pos < j->len && (isalnum((unsigned char)j->p[j->pos]) ||
		    strchr("+-.", j->p[j->pos]) != NULL))
			j->pos++;
		return j->pos > start ? 0 : -1;
	}
	}
}

static bool
parse_action(const char *s, enum rspamd_action *a_r)
{
	static const enum rspamd_action all[] = {
		RSPAMD_NO_ACTION, RSPAMD_GREYLIST, RSPAMD_ADD_HEADER,
		RSPAMD_REWRITE_SUBJECT, RSPAMD_SOFT_REJECT, RSPAMD_REJECT,
	};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (strcasecmp(s, rspamd_action_name(all[i])) == 0) {
			*a_r = all[i];
			return true;
		}
	}
	return false;
}

int
rspamd_parse_reply(const char *body, size_t len, struct rspamd_result *r,
    const char **error_r)
{
	struct json j = { body, len, 0 };
	bool have_action = false;

	memset(r, 0, sizeof(*r));
	json_ws(&j);
	if (j.pos >= j.len || j.p[j.pos++] != '{') {
		*error_r = "reply is not a JSON object";
		return -1;
	}
	json_ws(&j);
	if (j.pos < j.len && j.p[j.pos] == '}')
		goto done;
	for (;;) {
		struct buf key;
		int ret;

		json_ws(&j);
		buf_init(&key, 64);
		ret = json_string(&j, &key);
		json_ws(&j);
		if (ret < 0 || j.pos >= j.len || j.p[j.pos++] != ':') {
			buf_free(&key);
			*error_r = "malformed JSON object";
			return -1;
		}
		json_ws(&j);
		if (key.data != NULL && (strcmp(key.data, "action") == 0 ||
		    strcmp(key.data, "subject") == 0) && j.pos < j.len &&
		    j.p[j.pos] == '"') {
			struct buf val;

			buf_init(&val, RSPAMD_SUBJECT_MAX);
			ret = json_string(&j, &val);
			if (ret == 0 && key.data[0] == 'a') {
				have_action = parse_action(val.data != NULL ?
				    val.data : "", &r->action);
			} else if (ret == 0) {
				str_copy(r->subject, sizeof(r->subject),
				    val.data != NULL ? val.data : "");
				/* a subject is a header line: no line breaks */
				for (char *p = r->subject; *p != '\0'; p++) {
					if (*p == '\r' || *p == '\n')
						*p = ' ';
				}
			}
			buf_free(&val);
		} else if (key.data != NULL && (strcmp(key.data, "score") == 0 ||
		    strcmp(key.data, "required_score") == 0 ||
		    strcmp(key.data, "is_skipped") == 0)) {
			size_t start = j.pos;
			char num[64];

			ret = json_skip(&j, 1);
			if (ret == 0 && j.pos - start < sizeof(num)) {
				memcpy(num, j.p + start, j.pos - start);
				num[j.pos - start] = '\0';
				if (key.data[0] == 'i')
					r->skipped = strcmp(num, "true") == 0;
				else if (strcmp(key.data, "score") == 0)
					r->score = strtod(num, NULL);
				else
					r->required_score = strtod(num, NULL);
			}
		} else {
			ret = json_skip(&j, 1);
		}
		buf_free(&key);
		json_ws(&j);
		if (ret < 0 || j.pos >= j.len) {
			*error_r = "malformed JSON object";
			return -1;
		}
		if (j.p[j.pos] == ',') {
			j.pos++;
			continue;
		}
		if (j.p[j.pos] == '}')
			break;
		*error_r = "malformed JSON object";
		return -1;
	}
done:
	if (!have_action) {
		*error_r = "no action in rspamd's reply";
		return -1;
	}
	if (r->action != RSPAMD_REWRITE_SUBJECT)
		r->subject[0] = '\0';
	return 0;
}

/* ------------------------------------------------------------------ */
/* HTTP.                                                               */

/* "Name: value\r\n", the value stripped of line breaks and cut short. */
static void
add_header(struct buf *b, const char *name, const char *value)
{
	size_t n = 0;

	if (value == NULL)
		return;
	buf_printf(b, "%s: ", name);
	for (const char *p = value; *p != '\0' && n < HEADER_VALUE_MAX; p++, n++)
		buf_append_c(b, *p == '\r' || *p == '\n' ? ' ' : *p);
	buf_append_str(b, "\r\n");
}

int
rspamd_check(const struct rspamd_settings *set, const struct rspamd_request *req,
    struct rspamd_result *r, char **error_r)
{
	unsigned int timeout = set->timeout_ms != 0 ? set->timeout_ms : 30000;
	size_t max = set->max_size != 0 ? set->max_size : 50 * 1024 * 1024;
	struct buf head, reply;
	const char *body, *err;
	char chunk[16384];
	int fd, status;

	memset(r, 0, sizeof(*r));
	if (req->message_len > max) {
		r->skipped = true;
		return 0;
	}
	if (set->address == NULL || set->address[0] == '\0') {
		*error_r = xstrdup("no rspamd address configured");
		return -1;
	}
	buf_init(&head, 64 * 1024);
	/* HTTP/1.0: rspamd closes after its answer, which ends the body */
	buf_printf(&head, "POST /checkv2 HTTP/1.0\r\nContent-Length: %zu\r\n",
	    req->message_len);
	add_header(&head, "IP", req->client_ip);
	add_header(&head, "Hostname", req->client_name);
	add_header(&head, "Helo", req->helo);
	add_header(&head, "From", req->sender);
	for (size_t i = 0; i < req->recipient_count && i < 1000; i++)
		add_header(&head, "Rcpt", req->recipients[i]);
	add_header(&head, "User", req->user);
	add_header(&head, "Queue-Id", req->queue_id);
	add_header(&head, "Password", set->password);
	buf_append_str(&head, "\r\n");

	fd = netclient_connect(set->address, timeout, "rspamd", error_r);
	if (fd < 0) {
		buf_free(&head);
		return -1;
	}
	if (netclient_send_all(fd, head.data, head.len) < 0 ||
	    netclient_send_all(fd, req->message, req->message_len) < 0) {
		*error_r = xasprintf("sending to rspamd: %m");
		buf_free(&head);
		close(fd);
		return -1;
	}
	buf_free(&head);

	buf_init(&reply, RSPAMD_REPLY_MAX);
	for (;;) {
		ssize_t n = recv(fd, chunk, sizeof(chunk), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = xasprintf("reading rspamd's reply: %m");
			goto fail;
		}
		if (n == 0)
			break;
		if (buf_append(&reply, chunk, (size_t)n) < 0) {
			*error_r = xstrdup("rspamd's reply is too long");
			goto fail;
		}
	}
	close(fd);
	fd = -1;
	if (reply.len < 12 || sscanf(reply.data, "HTTP/%*d.%*d %d", &status) != 1) {
		*error_r = xstrdup("rspamd's reply is not HTTP");
		goto fail;
	}
	body = strstr(reply.data, "\r\n\r\n");
	if (status != 200 || body == NULL) {
		*error_r = xasprintf("rspamd answered HTTP %d", status);
		goto fail;
	}
	body += 4;
	if (rspamd_parse_reply(body, reply.len - (size_t)(body - reply.data), r,
	    &err) < 0) {
		*error_r = xasprintf("rspamd: %s", err);
		goto fail;
	}
	buf_free(&reply);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	buf_free(&reply);
	return -1;
}
