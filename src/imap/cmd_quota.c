/*
 * QUOTA (RFC 9208, with the RFC 2087 forms clients still send):
 * GETQUOTA, GETQUOTAROOT, SETQUOTA (refused: quotas are the operator's,
 * in dovecot-quotas.cf), and the check APPEND and COPY make.
 *
 * One quota root per account, named "User quota" as docker-mailserver's
 * Dovecot names it, holding every folder; one resource, STORAGE, in units
 * of 1024 octets (usage rounded up). The limit comes from the glue (the
 * quota hook: dovecot-quotas.cf, else POSTFIX_MAILBOX_SIZE_LIMIT); the
 * usage from store/quota.h, the figure the smtp worker refuses with.
 * Like docker-mailserver, Trash may go 50 MiB over the limit, so that
 * deleting to Trash still works on a full mailbox.
 */
#include "imap/session-private.h"

#include "imap/bodystructure.h"
#include "lib/log.h"
#include "lib/xalloc.h"
#include "store/quota.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define QUOTA_ROOT "User quota"
#define TRASH_EXTRA (50ull * 1024 * 1024)

uint64_t
imap_quota_limit(struct imap_session *s)
{
	if (!s->set.quota || s->hooks->quota == NULL)
		return 0;
	return s->hooks->quota(s, s->ctx);
}

int
imap_quota_check(struct imap_session *s, const char *mailbox, uint64_t adding)
{
	uint64_t limit = imap_quota_limit(s);
	struct store_usage u;
	char *err = NULL;

	if (limit == 0 || adding == 0)
		return 0;
	if (mailbox != NULL && strcmp(mailbox, "Trash") == 0)
		limit += TRASH_EXTRA;
	if (store_account_usage(s->acct, &u, &err) < 0) {
		/* the usage cannot be read: let the store decide */
		log_warn("sid=%s event=imap_quota_usage_failed error=\"%s\"",
		    s->sid, err);
		free(err);
		return 0;
	}
	if (u.bytes + adding <= limit)
		return 0;
	log_info("sid=%s event=imap_over_quota user=%s used=%llu adding=%llu "
	    "quota=%llu", s->sid, s->user, (unsigned long long)u.bytes,
	    (unsigned long long)adding, (unsigned long long)limit);
	return -1;
}

/* "* QUOTA "User quota" (STORAGE used limit)" */
static int
write_quota(struct imap_session *s, uint64_t limit)
{
	struct store_usage u;
	char *err = NULL;

	if (store_account_usage(s->acct, &u, &err) < 0) {
		imap_tagged(s, "NO", "[SERVERBUG] Cannot count the mailbox usage");
		log_error("sid=%s event=imap_quota_usage_failed error=\"%s\"",
		    s->sid, err);
		free(err);
		return -1;
	}
	imap_printf(s, "* QUOTA \"" QUOTA_ROOT "\" (STORAGE %llu %llu)\r\n",
	    (unsigned long long)((u.bytes + 1023) / 1024),
	    (unsigned long long)(limit / 1024));
	return 0;
}

void
imap_cmd_getquotaroot(struct imap_session *s, const struct imap_arg *a,
    unsigned int n, bool uid)
{
	const char *name = n == 1 ? imap_arg_astring(&a[0]) : NULL;
	uint64_t limit = imap_quota_limit(s);
	struct store_mailbox *box;
	char *err = NULL;
	struct buf b;

	if (name == NULL) {
		imap_tagged(s, "BAD", "GETQUOTAROOT needs a mailbox");
		return;
	}
	if (store_mailbox_open(s->acct, name, true, &box, &err) < 0) {
		imap_tagged(s, "NO", "%s", err);
		free(err);
		return;
	}
	store_mailbox_close(&box);
	buf_init(&b, BUF_UNLIMITED);
	buf_append_str(&b, "* QUOTAROOT ");
	imap_append_mailbox(s, &b, name);
	/* no limit: the mailbox is under no quota root */
	if (limit > 0)
		buf_append_str(&b, " \"" QUOTA_ROOT "\"");
	buf_append_str(&b, "\r\n");
	imap_write(s, b.data, b.len);
	buf_free(&b);
	if (limit > 0 && write_quota(s, limit) < 0)
		return;
	imap_tagged(s, "OK", "Getquotaroot completed.");
}

void
imap_cmd_getquota(struct imap_session *s, const struct imap_arg *a,
    unsigned int n, bool uid)
{
	const char *root = n == 1 ? imap_arg_astring(&a[0]) : NULL;
	uint64_t limit = imap_quota_limit(s);

	if (root == NULL) {
		imap_tagged(s, "BAD", "GETQUOTA needs a quota root");
		return;
	}
	if (limit == 0 || strcmp(root, QUOTA_ROOT) != 0) {
		imap_tagged(s, "NO", "[NONEXISTENT] No such quota root");
		return;
	}
	if (write_quota(s, limit) < 0)
		return;
	imap_tagged(s, "OK", "Getquota completed.");
}

void
imap_cmd_setquota(struct imap_session *s, const struct imap_arg *a,
    unsigned int n, bool uid)
{
	imap_tagged(s, "NO", "[NOPERM] Quotas are set by the administrator");
}
