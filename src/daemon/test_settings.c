#include "daemon/settings.h"
#include "lib/test.h"
#include "lib/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/*
 * Every variable docker-mailserver reads (its mailserver.env template,
 * variables-stack.sh and docs/content/config/environment.md at c9b015ddc,
 * plus the two renamed ones it still recognises). Each must be declared,
 * implemented or reported: DESIGN.md §5, never silently ignored.
 */
static const char *const dms_variables[] = {
	"ACCOUNT_PROVISIONER",
	"AMAVIS_LOGLEVEL",
	"CLAMAV_MESSAGE_SIZE_LIMIT",
	"DEFAULT_RELAY_HOST",
	"DMS_CONFIG_POLL",
	"DMS_VMAIL_GID",
	"DMS_VMAIL_UID",
	"DOVECOT_AUTH_BIND",
	"DOVECOT_BASE",
	"DOVECOT_DEFAULT_PASS_SCHEME",
	"DOVECOT_DN",
	"DOVECOT_DNPASS",
	"DOVECOT_INET_PROTOCOLS",
	"DOVECOT_LDAP_VERSION",
	"DOVECOT_MAILBOX_FORMAT",
	"DOVECOT_PASS_ATTRS",
	"DOVECOT_PASS_FILTER",
	"DOVECOT_TLS",
	"DOVECOT_URIS",
	"DOVECOT_USER_ATTRS",
	"DOVECOT_USER_FILTER",
	"ENABLE_AMAVIS",
	"ENABLE_CLAMAV",
	"ENABLE_DNSBL",
	"ENABLE_FAIL2BAN",
	"ENABLE_FETCHMAIL",
	"ENABLE_GETMAIL",
	"ENABLE_IMAP",
	"ENABLE_LDAP",
	"ENABLE_MANAGESIEVE",
	"ENABLE_MTA_STS",
	"ENABLE_OAUTH2",
	"ENABLE_OPENDKIM",
	"ENABLE_OPENDMARC",
	"ENABLE_POLICYD_SPF",
	"ENABLE_POP3",
	"ENABLE_POSTGREY",
	"ENABLE_QUOTAS",
	"ENABLE_RSPAMD",
	"ENABLE_RSPAMD_REDIS",
	"ENABLE_SASLAUTHD",
	"ENABLE_SPAMASSASSIN",
	"ENABLE_SPAMASSASSIN_KAM",
	"ENABLE_SRS",
	"ENABLE_UPDATE_CHECK",
	"FAIL2BAN_BLOCKTYPE",
	"FETCHMAIL_PARALLEL",
	"FETCHMAIL_POLL",
	"GETMAIL_POLL",
	"LDAP_BIND_DN",
	"LDAP_BIND_PW",
	"LDAP_QUERY_FILTER_ALIAS",
	"LDAP_QUERY_FILTER_DOMAIN",
	"LDAP_QUERY_FILTER_GROUP",
	"LDAP_QUERY_FILTER_SENDERS",
	"LDAP_QUERY_FILTER_USER",
	"LDAP_SEARCH_BASE",
	"LDAP_SERVER_HOST",
	"LDAP_START_TLS",
	"LOGROTATE_COUNT",
	"LOGROTATE_INTERVAL",
	"LOGWATCH_INTERVAL",
	"LOGWATCH_RECIPIENT",
	"LOGWATCH_SENDER",
	"LOG_LEVEL",
	"MARK_SPAM_AS_READ",
	"MOVE_SPAM_TO_JUNK",
	"NETWORK_INTERFACE",
	"OAUTH2_INTROSPECTION_URL",
	"OVERRIDE_HOSTNAME",
	"PERMIT_DOCKER",
	"PFLOGSUMM_RECIPIENT",
	"PFLOGSUMM_SENDER",
	"PFLOGSUMM_TRIGGER",
	"POSTFIX_DAGENT",
	"POSTFIX_INET_PROTOCOLS",
	"POSTFIX_MAILBOX_SIZE_LIMIT",
	"POSTFIX_MESSAGE_SIZE_LIMIT",
	"POSTFIX_REJECT_UNKNOWN_CLIENT_HOSTNAME",
	"POSTGREY_AUTO_WHITELIST_CLIENTS",
	"POSTGREY_DELAY",
	"POSTGREY_MAX_AGE",
	"POSTGREY_TEXT",
	"POSTMASTER_ADDRESS",
	"POSTSCREEN_ACTION",
	"RELAY_HOST",
	"RELAY_PASSWORD",
	"RELAY_PORT",
	"RELAY_USER",
	"REPORT_RECIPIENT",
	"REPORT_SENDER",
	"RSPAMD_CHECK_AUTHENTICATED",
	"RSPAMD_GREYLISTING",
	"RSPAMD_HFILTER",
	"RSPAMD_HFILTER_HOSTNAME_UNKNOWN_SCORE",
	"RSPAMD_LEARN",
	"RSPAMD_NEURAL",
	"SASLAUTHD_LDAP_AUTH_METHOD",
	"SASLAUTHD_LDAP_BIND_DN",
	"SASLAUTHD_LDAP_FILTER",
	"SASLAUTHD_LDAP_MECH",
	"SASLAUTHD_LDAP_PASSWORD",
	"SASLAUTHD_LDAP_PASSWORD_ATTR",
	"SASLAUTHD_LDAP_SEARCH_BASE",
	"SASLAUTHD_LDAP_SERVER",
	"SASLAUTHD_LDAP_START_TLS",
	"SASLAUTHD_LDAP_TLS_CACERT_DIR",
	"SASLAUTHD_LDAP_TLS_CACERT_FILE",
	"SASLAUTHD_LDAP_TLS_CHECK_PEER",
	"SASLAUTHD_MECHANISMS",
	"SASLAUTHD_MECH_OPTIONS",
	"SA_KILL",
	"SA_SHORTCIRCUIT_BAYES_HAM",
	"SA_SHORTCIRCUIT_BAYES_SPAM",
	"SA_SPAM_SUBJECT",
	"SA_TAG",
	"SA_TAG2",
	"SMTP_ONLY",
	"SPAMASSASSIN_SPAM_TO_INBOX",
	"SPAM_SUBJECT",
	"SPOOF_PROTECTION",
	"SRS_DOMAINNAME",
	"SRS_EXCLUDE_DOMAINS",
	"SRS_SECRET",
	"SRS_SENDER_CLASSES",
	"SSL_ALT_CERT_PATH",
	"SSL_ALT_KEY_PATH",
	"SSL_CERT_PATH",
	"SSL_KEY_PATH",
	"SSL_TYPE",
	"SUPERVISOR_LOGLEVEL",
	"TLS_LEVEL",
	"TZ",
	"UPDATE_CHECK_INTERVAL",
	"VIRUSMAILS_DELETE_DELAY",
};

/*
 * The values of docker-mailserver's mailserver.env template (its
 * comments left out), as an operator who copied it has them.
 */
static const char dms_template[] =
	"OVERRIDE_HOSTNAME=\n"
	"LOG_LEVEL=info\n"
	"SUPERVISOR_LOGLEVEL=\n"
	"DMS_VMAIL_UID=\n"
	"DMS_VMAIL_GID=\n"
	"ACCOUNT_PROVISIONER=\n"
	"POSTMASTER_ADDRESS=\n"
	"ENABLE_UPDATE_CHECK=1\n"
	"UPDATE_CHECK_INTERVAL=1d\n"
	"PERMIT_DOCKER=none\n"
	"TZ=\n"
	"NETWORK_INTERFACE=\n"
	"TLS_LEVEL=\n"
	"SPOOF_PROTECTION=\n"
	"ENABLE_SRS=0\n"
	"ENABLE_OPENDKIM=1\n"
	"ENABLE_OPENDMARC=1\n"
	"ENABLE_POLICYD_SPF=1\n"
	"ENABLE_POP3=\n"
	"ENABLE_IMAP=1\n"
	"ENABLE_CLAMAV=0\n"
	"SPAM_SUBJECT=\n"
	"ENABLE_RSPAMD=0\n"
	"ENABLE_RSPAMD_REDIS=\n"
	"RSPAMD_LEARN=0\n"
	"RSPAMD_CHECK_AUTHENTICATED=0\n"
	"RSPAMD_GREYLISTING=0\n"
	"RSPAMD_HFILTER=1\n"
	"RSPAMD_HFILTER_HOSTNAME_UNKNOWN_SCORE=6\n"
	"RSPAMD_NEURAL=0\n"
	"ENABLE_AMAVIS=1\n"
	"AMAVIS_LOGLEVEL=0\n"
	"ENABLE_DNSBL=0\n"
	"ENABLE_FAIL2BAN=0\n"
	"FAIL2BAN_BLOCKTYPE=drop\n"
	"ENABLE_MANAGESIEVE=\n"
	"POSTSCREEN_ACTION=enforce\n"
	"SMTP_ONLY=\n"
	"SSL_TYPE=\n"
	"SSL_CERT_PATH=\n"
	"SSL_KEY_PATH=\n"
	"SSL_ALT_CERT_PATH=\n"
	"SSL_ALT_KEY_PATH=\n"
	"VIRUSMAILS_DELETE_DELAY=\n"
	"POSTFIX_DAGENT=\n"
	"POSTFIX_MAILBOX_SIZE_LIMIT=\n"
	"ENABLE_QUOTAS=1\n"
	"POSTFIX_MESSAGE_SIZE_LIMIT=\n"
	"CLAMAV_MESSAGE_SIZE_LIMIT=\n"
	"PFLOGSUMM_TRIGGER=\n"
	"PFLOGSUMM_RECIPIENT=\n"
	"PFLOGSUMM_SENDER=\n"
	"LOGWATCH_INTERVAL=\n"
	"LOGWATCH_RECIPIENT=\n"
	"LOGWATCH_SENDER=\n"
	"REPORT_RECIPIENT=\n"
	"REPORT_SENDER=\n"
	"LOGROTATE_INTERVAL=weekly\n"
	"LOGROTATE_COUNT=4\n"
	"POSTFIX_REJECT_UNKNOWN_CLIENT_HOSTNAME=0\n"
	"POSTFIX_INET_PROTOCOLS=all\n"
	"ENABLE_MTA_STS=0\n"
	"DOVECOT_INET_PROTOCOLS=all\n"
	"ENABLE_SPAMASSASSIN=0\n"
	"ENABLE_SPAMASSASSIN_KAM=0\n"
	"SPAMASSASSIN_SPAM_TO_INBOX=1\n"
	"MOVE_SPAM_TO_JUNK=1\n"
	"MARK_SPAM_AS_READ=0\n"
	"SA_TAG=2.0\n"
	"SA_TAG2=6.31\n"
	"SA_KILL=10.0\n"
	"ENABLE_FETCHMAIL=0\n"
	"FETCHMAIL_POLL=300\n"
	"FETCHMAIL_PARALLEL=0\n"
	"ENABLE_GETMAIL=0\n"
	"GETMAIL_POLL=5\n"
	"ENABLE_OAUTH2=\n"
	"OAUTH2_INTROSPECTION_URL=\n"
	"LDAP_START_TLS=\n"
	"LDAP_SERVER_HOST=\n"
	"LDAP_SEARCH_BASE=\n"
	"LDAP_BIND_DN=\n"
	"LDAP_BIND_PW=\n"
	"LDAP_QUERY_FILTER_USER=\n"
	"LDAP_QUERY_FILTER_GROUP=\n"
	"LDAP_QUERY_FILTER_ALIAS=\n"
	"LDAP_QUERY_FILTER_DOMAIN=\n"
	"DOVECOT_TLS=\n"
	"DOVECOT_USER_FILTER=\n"
	"DOVECOT_PASS_FILTER=\n"
	"DOVECOT_MAILBOX_FORMAT=maildir\n"
	"DOVECOT_AUTH_BIND=\n"
	"ENABLE_POSTGREY=0\n"
	"POSTGREY_DELAY=300\n"
	"POSTGREY_MAX_AGE=35\n"
	"POSTGREY_TEXT=\"Delayed by Postgrey\"\n"
	"POSTGREY_AUTO_WHITELIST_CLIENTS=5\n"
	"ENABLE_SASLAUTHD=0\n"
	"SASLAUTHD_MECHANISMS=\n"
	"SASLAUTHD_MECH_OPTIONS=\n"
	"SASLAUTHD_LDAP_SERVER=\n"
	"SASLAUTHD_LDAP_BIND_DN=\n"
	"SASLAUTHD_LDAP_PASSWORD=\n"
	"SASLAUTHD_LDAP_SEARCH_BASE=\n"
	"SASLAUTHD_LDAP_FILTER=\n"
	"SASLAUTHD_LDAP_START_TLS=\n"
	"SASLAUTHD_LDAP_TLS_CHECK_PEER=\n"
	"SASLAUTHD_LDAP_TLS_CACERT_FILE=\n"
	"SASLAUTHD_LDAP_TLS_CACERT_DIR=\n"
	"SASLAUTHD_LDAP_PASSWORD_ATTR=\n"
	"SASLAUTHD_LDAP_AUTH_METHOD=\n"
	"SASLAUTHD_LDAP_MECH=\n"
	"SRS_SENDER_CLASSES=envelope_sender\n"
	"SRS_EXCLUDE_DOMAINS=\n"
	"SRS_SECRET=\n"
	"DEFAULT_RELAY_HOST=\n"
	"RELAY_HOST=\n"
	"RELAY_PORT=25\n"
	"RELAY_USER=\n"
	"RELAY_PASSWORD=\n"
	;

static void
test_settings_table(void)
{
	size_t n = 0;

	test_begin("settings: no key twice, every docker-mailserver variable declared");
	while (settings_defs[n].name != NULL)
		n++;
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (strcmp(settings_defs[i].name, settings_defs[j].name) == 0)
				test_assert_str(settings_defs[j].name, "(declared once)");
	for (size_t v = 0; v < sizeof(dms_variables) / sizeof(dms_variables[0]); v++) {
		bool found = false;

		for (size_t i = 0; i < n && !found; i++)
			found = strcmp(settings_defs[i].name, dms_variables[v]) == 0;
		if (!found)
			test_assert_str(dms_variables[v], "(declared)");
	}
	/* an unsupported key says what tegami does instead, and its
	   condition names a declared key */
	for (size_t i = 0; i < n; i++) {
		const struct config_def *d = &settings_defs[i];
		bool found = false;
		size_t len;

		if (d->type != CONFIG_UNSUPPORTED)
			continue;
		test_assert(d->help != NULL && *d->help != '\0');
		if (d->def == NULL)
			continue;
		len = strcspn(d->def, "=");
		for (size_t j = 0; j < n && !found; j++)
			found = strlen(settings_defs[j].name) == len &&
			    strncmp(settings_defs[j].name, d->def, len) == 0;
		if (!found)
			test_assert_str(d->def, "(a declared key)");
	}
	test_end();
}
TEST(test_settings_table)

struct reported {
	char names[1024];
};

static void
collect(const char *name, const char *source, const char *instead, void *ctx)
{
	struct reported *r = ctx;

	if (r->names[0] != '\0')
		strncat(r->names, " ", sizeof(r->names) - strlen(r->names) - 1);
	strncat(r->names, name, sizeof(r->names) - strlen(r->names) - 1);
}

static struct settings *
load_text(const char *text, char *const *env, char **err_r)
{
	char *file = xasprintf("%s/mailserver.env", test_tmpdir());
	FILE *fp = fopen(file, "w");
	struct settings *s;

	fputs(text, fp);
	fclose(fp);
	*err_r = NULL;
	s = settings_load(file, env, err_r);
	free(file);
	return s;
}

static void
test_settings_dms_template(void)
{
	char *env[] = { "CONFIG_DIR=/nonexistent/config", "MAIL_DIR=/nonexistent/mail",
	    "OVERRIDE_HOSTNAME=mail.example.test", NULL };
	struct reported r;
	struct settings *s;
	char *err, *text;

	test_begin("settings: docker-mailserver's mailserver.env loads unchanged");
	s = load_text(dms_template, env, &err);
	test_assert(s != NULL);
	if (s == NULL) {
		test_assert_str(err, "(no error)");
		free(err);
	} else {
		/* the empty keys are docker-mailserver's defaults */
		test_assert_int(config_num(s->cfg, "DMS_VMAIL_UID"), 5000);
		test_assert_int(config_num(s->cfg, "POSTFIX_MESSAGE_SIZE_LIMIT"), 10240000);
		test_assert_int(config_num(s->cfg, "CLAMAV_MESSAGE_SIZE_LIMIT"), 25 << 20);
		test_assert_str(config_str(s->cfg, "TLS_LEVEL"), "modern");
		test_assert_str(config_str(s->cfg, "ACCOUNT_PROVISIONER"), "FILE");
		test_assert_str(config_str(s->cfg, "POSTGREY_TEXT"), "Delayed by Postgrey");
		test_assert(config_bool(s->cfg, "ENABLE_IMAP"));
		test_assert(!config_bool(s->cfg, "ENABLE_POP3"));
		test_assert(config_bool(s->cfg, "ENABLE_QUOTAS"));
		test_assert_str(config_str(s->cfg, "POSTMASTER_ADDRESS"),
		    "postmaster@example.test");
		/* reported: only what the template turns on and tegami lacks */
		memset(&r, 0, sizeof(r));
		config_foreach_ignored(s->cfg, collect, &r);
		test_assert_str(r.names, "ENABLE_AMAVIS ENABLE_UPDATE_CHECK");
		settings_free(&s);
	}
	test_end();

	test_begin("settings: what the template's switches turn on is reported");
	text = xasprintf("%sENABLE_SPAMASSASSIN=1\nENABLE_FETCHMAIL=1\n"
	    "ENABLE_SRS=1\nSRS_SECRET=x\nENABLE_FAIL2BAN=1\nLDAP_BIND_PW=x\n",
	    dms_template);
	s = load_text(text, env, &err);
	free(text);
	test_assert(s != NULL);
	if (s != NULL) {
		memset(&r, 0, sizeof(r));
		config_foreach_ignored(s->cfg, collect, &r);
		/* table order; the LDAP key stays quiet (FILE provisioner) */
		test_assert_str(r.names, "ENABLE_AMAVIS ENABLE_SPAMASSASSIN "
		    "SPAMASSASSIN_SPAM_TO_INBOX SA_TAG SA_TAG2 SA_KILL "
		    "FAIL2BAN_BLOCKTYPE ENABLE_FETCHMAIL FETCHMAIL_POLL "
		    "FETCHMAIL_PARALLEL ENABLE_SRS SRS_SENDER_CLASSES SRS_SECRET "
		    "ENABLE_UPDATE_CHECK");
		settings_free(&s);
	} else {
		free(err);
	}
	test_end();

	test_begin("settings: SMTP_ONLY, SA_SPAM_SUBJECT, POSTMASTER_ADDRESS");
	s = load_text("SMTP_ONLY=1\nENABLE_POP3=1\nSA_SPAM_SUBJECT=[SPAM] \n"
	    "POSTMASTER_ADDRESS=admin@example.test\n", env, &err);
	test_assert(s != NULL);
	if (s != NULL) {
		test_assert(!config_bool(s->cfg, "ENABLE_IMAP"));
		test_assert(!config_bool(s->cfg, "ENABLE_POP3"));
		test_assert(!config_bool(s->cfg, "ENABLE_QUOTAS"));
		test_assert_str(config_str(s->cfg, "SPAM_SUBJECT"), "[SPAM]");
		test_assert_str(config_str(s->cfg, "POSTMASTER_ADDRESS"),
		    "admin@example.test");
		settings_free(&s);
	} else {
		free(err);
	}
	/* quotas asked for explicitly stay on, as in docker-mailserver */
	s = load_text("SMTP_ONLY=1\nENABLE_QUOTAS=1\nSPAM_SUBJECT=***\n"
	    "SA_SPAM_SUBJECT=old\n", env, &err);
	test_assert(s != NULL);
	if (s != NULL) {
		test_assert(config_bool(s->cfg, "ENABLE_QUOTAS"));
		test_assert_str(config_str(s->cfg, "SPAM_SUBJECT"), "***");
		settings_free(&s);
	} else {
		free(err);
	}
	test_end();
}
TEST(test_settings_dms_template)

static void
test_settings_inet_protocols(void)
{
	char *env[] = { "CONFIG_DIR=/nonexistent/config",
	    "OVERRIDE_HOSTNAME=mail.example.test", NULL };
	struct settings *s;
	char *err;

	test_begin("settings: POSTFIX_/DOVECOT_INET_PROTOCOLS pick the default listeners");
	s = load_text("POSTFIX_INET_PROTOCOLS=ipv4\nDOVECOT_INET_PROTOCOLS=IPv6\n"
	    "LISTEN_SUBMISSION=[::1]:587\n", env, &err);
	test_assert(s != NULL);
	if (s != NULL) {
		test_assert(settings_listen_family(s, "LISTEN_SMTP", true, AF_INET));
		test_assert(!settings_listen_family(s, "LISTEN_SMTP", true, AF_INET6));
		/* given explicitly: bound as given */
		test_assert(settings_listen_family(s, "LISTEN_SUBMISSION", true, AF_INET6));
		test_assert(!settings_listen_family(s, "LISTEN_IMAPS", false, AF_INET));
		test_assert(settings_listen_family(s, "LISTEN_IMAPS", false, AF_INET6));
		settings_free(&s);
	} else {
		free(err);
	}
	s = load_text("POSTFIX_INET_PROTOCOLS=\n", env, &err);
	test_assert(s != NULL && settings_listen_family(s, "LISTEN_SMTP", true, AF_INET6) &&
	    settings_listen_family(s, "LISTEN_SMTP", true, AF_INET));
	settings_free(&s);
	s = load_text("POSTFIX_INET_PROTOCOLS=ipx\n", env, &err);
	test_assert(s == NULL && err != NULL && strstr(err, "all|ipv4|ipv6") != NULL);
	free(err);
	test_end();
}
TEST(test_settings_inet_protocols)
