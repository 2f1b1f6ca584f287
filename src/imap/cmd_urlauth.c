/*
 * URLAUTH (RFC 4467) and URLAUTH=BINARY (RFC 5524): GENURLAUTH, RESETKEY,
 * URLFETCH.
 *
 * A URLAUTH URL carries its own authorization: the "rump" (the URL up to
 * and including ";URLAUTH=<access>") signed with a key of the mailbox it
 * points into, as ":INTERNAL:<HMAC-SHA256 of the rump, hex>". Keys are 256
 * random bits per mailbox, made at the first GENURLAUTH, kept per account
 * in <Maildir>/tegami-urlauth-keys (mode 0600, one "mailbox TAB hex" line
 * each); RESETKEY drops them, which voids every URL made with them.
 *
 * Access identifiers honoured at URLFETCH: "authuser" (any logged-in
 * user of this server), "anonymous" (anyone; there is no anonymous login,
 * so: any logged-in user), "user+<account>" and "submit+<account>" (that
 * account only). A URL that fails any check is answered NIL, never NO, so
 * a client cannot tell a bad token from a gone message.
 *
 * The account in a URL: "imap://joe%40example.com@host/..." names
 * joe@example.com; "imap://joe@example.com/..." (a user without a domain,
 * imaptest's and some clients' form) names joe@<host>.
 */
#include "imap/session-private.h"

#include "imap/bodystructure.h"
#include "imap/url.h"
#include "imap/urlpart.h"
#include "lib/file.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define KEYS_FILE "tegami-urlauth-keys"
#define KEYS_MAX (1024 * 1024)
#define KEY_BYTES 32
#define MAX_URLS 100

/* --- keys ---------------------------------------------------------------------- */

static char *
keys_path(struct store_account *acct)
{
	return xasprintf("%s/" KEYS_FILE, store_account_root(acct));
}

/* The whole file (malloc'd, "" when missing). */
static char *
keys_read(struct store_account *acct)
{
	char *path = keys_path(acct), *data;
	size_t len;

	if (file_read_all(path, KEYS_MAX, &data, &len) < 0)
		data = xstrdup("");
	free(path);
	return data;
}

/* The hex key of mailbox in the file's data, malloc'd, or NULL. */
static char *
key_find(const char *data, const char *mailbox)
{
	size_t ml = strlen(mailbox);

	for (const char *line = data; *line != '\0';) {
		const char *eol = strchr(line, '\n');
		size_t len = eol != NULL ? (size_t)(eol - line) : strlen(line);

		if (len > ml + 1 && strncmp(line, mailbox, ml) == 0 &&
		    line[ml] == '\t')
			return xstrndup(line + ml + 1, len - ml - 1);
		line += len + (eol != NULL);
	}
	return NULL;
}

/* The file's data without mailbox's line (mailbox NULL: empty). */
static char *
key_drop(const char *data, const char *mailbox)
{
	struct buf b;
	size_t ml;

	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "");
	if (mailbox == NULL)
		return buf_steal(&b);
	ml = strlen(mailbox);
	for (const char *line = data; *line != '\0';) {
		const char *eol = strchr(line, '\n');
		size_t len = eol != NULL ? (size_t)(eol - line) : strlen(line);

		if (!(len > ml && strncmp(line, mailbox, ml) == 0 && line[ml] == '\t')) {
			buf_append(&b, line, len);
			buf_append_c(&b, '\n');
		}
		line += len + (eol != NULL);
	}
	return buf_steal(&b);
}

static int
keys_write(struct store_account *acct, const char *data)
{
	char *path = keys_path(acct);
	int r = file_write_atomic(path, data, strlen(data), 0600);

	free(path);
	return r;
}

/* The mailbox's key, made when it has none and create. NULL: none/error. */
static char *
mailbox_key(struct store_account *acct, const char *mailbox, bool create)
{
	char *data = keys_read(acct), *key = key_find(data, mailbox);
	unsigned char raw[KEY_BYTES];
	struct buf b;

	if (key != NULL || !create) {
		free(data);
		return key;
	}
	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		free(data);
		return NULL;
	}
	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, data);
	buf_printf(&b, "%s\t", mailbox);
	for (size_t i = 0; i < sizeof(raw); i++)
		buf_printf(&b, "%02x", raw[i]);
	buf_append_c(&b, '\n');
	str_wipe(raw, sizeof(raw));
	if (keys_write(acct, buf_cstr(&b)) < 0) {
		log_error("event=urlauth_key_write_failed root=%s error=\"%s\"",
		    store_account_root(acct), strerror(errno));
		buf_free(&b);
		free(data);
		return NULL;
	}
	key = key_find(buf_cstr(&b), mailbox);
	str_wipe(b.data, b.len);
	buf_free(&b);
	free(data);
	return key;
}

/* hex(HMAC-SHA256(key, rump)), malloc'd. */
static char *
sign(const char *hexkey, const char *rump, size_t rump_len)
{
	unsigned char key[KEY_BYTES], mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	size_t kl = strlen(hexkey) / 2;
	struct buf b;

	if (kl > sizeof(key))
		kl = sizeof(key);
	for (size_t i = 0; i < kl; i++) {
		unsigned int v = 0;

		sscanf(hexkey + 2 * i, "%2x", &v);
		key[i] = (unsigned char)v;
	}
	HMAC(EVP_sha256(), key, (int)kl, (const unsigned char *)rump, rump_len,
	    mac, &maclen);
	str_wipe(key, sizeof(key));
	buf_init(&b, BUF_UNLIMITED);
	for (unsigned int i = 0; i < maclen; i++)
		buf_printf(&b, "%02x", mac[i]);
	return buf_steal(&b);
}

/* --- accounts in URLs ---------------------------------------------------------- */

/* The account a URL names (malloc'd, lower-case), or NULL. */
static char *
url_account(const struct imap_url *u)
{
	char *acct;

	if (u->user == NULL)
		return NULL;
	if (strchr(u->user, '@') != NULL || u->host == NULL)
		acct = xstrdup(u->user);
	else
		acct = xasprintf("%s@%s", u->user, u->host);
	return str_lower(acct);
}

bool
imap_url_names_account(const struct imap_session *s, const struct imap_url *u)
{
	char *acct = url_account(u);
	bool same = acct != NULL && s->account != NULL &&
	    strcasecmp(acct, s->account) == 0;

	free(acct);
	return same;
}

static bool
access_allows(const struct imap_session *s, const char *access)
{
	if (strcasecmp(access, "authuser") == 0 ||
	    strcasecmp(access, "anonymous") == 0)
		return true;
	if (strncasecmp(access, "user+", 5) == 0)
		return strcasecmp(access + 5, s->account) == 0;
	if (strncasecmp(access, "submit+", 7) == 0)
		return strcasecmp(access + 7, s->account) == 0;
	return false;
}

static bool
access_valid(const char *access)
{
	return strcasecmp(access, "authuser") == 0 ||
	    strcasecmp(access, "anonymous") == 0 ||
	    (strncasecmp(access, "user+", 5) == 0 && access[5] != '\0') ||
	    (strncasecmp(access, "submit+", 7) == 0 && access[7] != '\0');
}

/* --- GENURLAUTH ------------------------------------------------------------------ */

void
imap_cmd_genurlauth(struct imap_session *s, const struct imap_arg *a,
    unsigned int n, bool uid)
{
	struct buf out;

	if (n == 0 || n % 2 != 0 || n / 2 > MAX_URLS) {
		imap_tagged(s, "BAD", "GENURLAUTH needs URL and mechanism pairs");
		return;
	}
	buf_init(&out, BUF_UNLIMITED);
	buf_append_str(&out, "* GENURLAUTH");
	for (unsigned int i = 0; i < n; i += 2) {
		const char *rump = imap_arg_astring(&a[i]);
		struct imap_url u;
		struct store_mailbox *box;
		const char *err = "Invalid URL";
		char *serr = NULL, *key, *token, *full;

		if (rump == NULL || !imap_arg_is_atom(&a[i + 1], "INTERNAL")) {
			buf_free(&out);
			imap_tagged(s, "BAD", "GENURLAUTH needs a URL and INTERNAL");
			return;
		}
		if (imap_url_parse(rump, &u, &err) < 0 || u.access == NULL ||
		    u.mechanism != NULL || u.host == NULL ||
		    u.rump_len != strlen(rump)) {
			bool parsed = u.mailbox != NULL;

			imap_url_free(&u);
			buf_free(&out);
			imap_tagged(s, "BAD", "%s", parsed ? "Not a URLAUTH rump" : err);
			return;
		}
		if (!access_valid(u.access) || !imap_url_names_account(s, &u)) {
			imap_url_free(&u);
			buf_free(&out);
			imap_tagged(s, "NO", "[NOPERM] The URL must name your own "
			    "mailbox and a known access");
			return;
		}
		if (store_mailbox_open(s->acct, u.mailbox, true, &box, &serr) < 0) {
			imap_url_free(&u);
			buf_free(&out);
			imap_tagged(s, "NO", "%s", serr);
			free(serr);
			return;
		}
		key = mailbox_key(s->acct, store_mailbox_name(box), true);
		store_mailbox_close(&box);
		imap_url_free(&u);
		if (key == NULL) {
			buf_free(&out);
			imap_tagged(s, "NO", "[SERVERBUG] Cannot make a URLAUTH key");
			return;
		}
		token = sign(key, rump, strlen(rump));
		str_wipe(key, strlen(key));
		free(key);
		full = xasprintf("%s:internal:%s", rump, token);
		free(token);
		buf_append_c(&out, ' ');
		imap_append_nstr(&out, full, false);
		free(full);
	}
	buf_append_str(&out, "\r\n");
	imap_write(s, out.data, out.len);
	buf_free(&out);
	imap_tagged(s, "OK", "Genurlauth completed.");
}

/* --- RESETKEY -------------------------------------------------------------------- */

void
imap_cmd_resetkey(struct imap_session *s, const struct imap_arg *a,
    unsigned int n, bool uid)
{
	const char *name = n >= 1 ? imap_arg_astring(&a[0]) : NULL;
	char *data, *rest, *err = NULL;
	int r;

	for (unsigned int i = 1; i < n; i++) {
		if (!imap_arg_is_atom(&a[i], "INTERNAL")) {
			imap_tagged(s, "NO", "Unknown URLAUTH mechanism");
			return;
		}
	}
	if (name != NULL) {
		struct store_mailbox *box;

		if (store_mailbox_open(s->acct, name, true, &box, &err) < 0) {
			imap_tagged(s, "NO", "%s", err);
			free(err);
			return;
		}
		name = store_mailbox_name(box);
		data = keys_read(s->acct);
		rest = key_drop(data, name);
		store_mailbox_close(&box);
	} else if (n == 0) {
		data = keys_read(s->acct);
		rest = key_drop(data, NULL);
	} else {
		imap_tagged(s, "BAD", "RESETKEY needs a mailbox");
		return;
	}
	r = keys_write(s->acct, rest);
	str_wipe(data, strlen(data));
	free(data);
	free(rest);
	if (r < 0) {
		imap_tagged(s, "NO", "[SERVERBUG] Cannot reset the key");
		return;
	}
	imap_tagged(s, "OK", "Resetkey completed.");
}

/* --- URLFETCH -------------------------------------------------------------------- */

struct fetch_want {
	bool extended;		/* (url params...) */
	bool body, binary, structure;
};

/* The content of a literal: "~{n}" when it holds a NUL. */
static void
append_literal(struct buf *out, const struct buf *data)
{
	if (data->len > 0 && memchr(data->data, '\0', data->len) != NULL)
		buf_append_c(out, '~');
	buf_printf(out, "{%zu}\r\n", data->len);
	buf_append(out, data->data != NULL ? data->data : "", data->len);
}

/*
 * Checks a URLAUTH URL and gets what it names; -1 = answer NIL. The
 * mailbox may be another account's (opened here for the fetch).
 */
static int
urlfetch_one(struct imap_session *s, const char *url, const struct fetch_want *w,
    struct imap_urlpart *part)
{
	struct imap_url u;
	struct store_account *owner = s->acct, *other = NULL;
	const char *err = NULL;
	char *key = NULL, *token = NULL, *acct;
	int r = -1;

	if (imap_url_parse(url, &u, &err) < 0)
		return -1;
	if (u.access == NULL || u.mechanism == NULL ||
	    strcasecmp(u.mechanism, "INTERNAL") != 0 || u.token == NULL ||
	    !access_allows(s, u.access) ||
	    (u.expire_set && u.expire <= time(NULL))) {
		err = "not authorized";
		goto out;
	}
	if (!imap_url_names_account(s, &u)) {
		char *root = NULL, *serr = NULL;

		acct = url_account(&u);
		if (acct != NULL && s->hooks->account_maildir != NULL)
			root = s->hooks->account_maildir(s, acct, s->ctx);
		free(acct);
		if (root == NULL || store_account_open(root, &other, &serr) < 0) {
			free(root);
			free(serr);
			err = "no such account";
			goto out;
		}
		free(root);
		owner = other;
	}
	{
		/* the key is the mailbox's under its stored name */
		struct store_mailbox *box;
		char *serr = NULL;

		if (store_mailbox_open(owner, u.mailbox, true, &box, &serr) < 0) {
			free(serr);
			err = "no such mailbox";
			goto out;
		}
		key = mailbox_key(owner, store_mailbox_name(box), false);
		store_mailbox_close(&box);
	}
	if (key == NULL) {
		err = "no key";
		goto out;
	}
	token = sign(key, url, u.rump_len);
	str_lower(u.token);	/* hex may come back in upper case */
	if (strlen(token) != strlen(u.token) ||
	    !str_mem_equal_ct(token, u.token, strlen(token))) {
		err = "bad token";
		goto out;
	}
	if (imap_urlpart_get(owner, &u, w->binary, w->structure, part, &err) < 0)
		goto out;
	r = 0;
out:
	if (r < 0)
		log_debug("sid=%s event=imap_urlfetch_nil error=\"%s\"", s->sid,
		    err != NULL ? err : "invalid URL");
	if (key != NULL)
		str_wipe(key, strlen(key));
	free(key);
	free(token);
	store_account_close(&other);
	imap_url_free(&u);
	return r;
}

static int
parse_want(const struct imap_arg *a, const char **url_r, struct fetch_want *w)
{
	memset(w, 0, sizeof(*w));
	if (a->type != IMAP_ARG_LIST) {
		*url_r = imap_arg_astring(a);
		w->body = true;
		return *url_r != NULL && a->type != IMAP_ARG_NIL ? 0 : -1;
	}
	if (a->count < 2 || (*url_r = imap_arg_astring(&a->list[0])) == NULL)
		return -1;
	w->extended = true;
	for (unsigned int i = 1; i < a->count; i++) {
		const struct imap_arg *p = &a->list[i];

		if (imap_arg_is_atom(p, "BODY"))
			w->body = true;
		else if (imap_arg_is_atom(p, "BINARY"))
			w->binary = true;
		else if (imap_arg_is_atom(p, "BODYPARTSTRUCTURE"))
			w->structure = true;
		else
			return -1;
	}
	/* BODY and BINARY are alternatives (RFC 5524 3) */
	return w->body && w->binary ? -1 : 0;
}

void
imap_cmd_urlfetch(struct imap_session *s, const struct imap_arg *a,
    unsigned int n, bool uid)
{
	struct buf out;

	if (n == 0 || n > MAX_URLS) {
		imap_tagged(s, "BAD", "URLFETCH needs URLs");
		return;
	}
	for (unsigned int i = 0; i < n; i++) {
		const char *url;
		struct fetch_want w;

		if (parse_want(&a[i], &url, &w) < 0) {
			imap_tagged(s, "BAD", "Invalid URLFETCH arguments");
			return;
		}
	}
	buf_init(&out, BUF_UNLIMITED);
	buf_append_str(&out, "* URLFETCH");
	for (unsigned int i = 0; i < n; i++) {
		const char *url;
		struct fetch_want w;
		struct imap_urlpart part;
		int r;

		(void)parse_want(&a[i], &url, &w);
		r = urlfetch_one(s, url, &w, &part);
		buf_append_c(&out, ' ');
		imap_append_nstr(&out, url, false);
		buf_append_c(&out, ' ');
		if (!w.extended) {
			if (r < 0)
				buf_append_str(&out, "NIL");
			else
				append_literal(&out, &part.body);
		} else if (r < 0) {
			buf_append_str(&out, "NIL");
		} else {
			bool sp = false;

			buf_append_c(&out, '(');
			if (w.structure) {
				buf_printf(&out, "BODYPARTSTRUCTURE %s",
				    part.bodystructure != NULL ?
				    part.bodystructure : "NIL");
				sp = true;
			}
			if (w.body) {
				buf_append_str(&out, sp ? " BODY " : "BODY ");
				append_literal(&out, &part.body);
			} else if (w.binary) {
				buf_append_str(&out, sp ? " BINARY " : "BINARY ");
				if (part.binary_ok)
					append_literal(&out, &part.binary);
				else
					buf_append_str(&out, "NIL");
			}
			buf_append_c(&out, ')');
		}
		if (r == 0)
			imap_urlpart_free(&part);
	}
	buf_append_str(&out, "\r\n");
	imap_write(s, out.data, out.len);
	buf_free(&out);
	imap_tagged(s, "OK", "Urlfetch completed.");
}
