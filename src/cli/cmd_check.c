/*
 * check: the other half of `tegami dns`. Looks at what is published (with
 * the resolver the server uses), at the certificate the server would
 * serve, and at the network, and says per check OK / WARN / FAIL, with
 * what to publish or do for everything that is not OK. Exit 1 when a
 * check FAILs, so it can run from cron.
 *
 * The DNS checks are dnscheck.c's; this file gathers the inputs (settings,
 * keys on disk, accounts), and does the TLS and TCP checks.
 */
#include "auth/accounts.h"
#include "cli/check.h"
#include "cli/cli_int.h"
#include "cli/dnscheck.h"
#include "daemon/tlsconf.h"
#include "dns/dns.h"
#include "lib/log.h"
#include "lib/str.h"
#include "lib/xalloc.h"
#include "msgauth/dns_resolver.h"
#include "msgauth/psl.h"
#include "net/listen.h"
#include "net/tls.h"
#include "queue/relay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <openssl/x509v3.h>

/* A certificate this close to its end is a warning (certbot renews at 30). */
#define CERT_WARN_DAYS 14
/* Mail hosts tried per address family for the port 25 check. */
#define PORT25_TRIES 2

struct check {
	struct cli *cli;
	const struct settings *set;
	struct dnscheck_report *rep;
	struct msgauth_dns dns;
	struct dnscheck_host host;
	struct accounts *acc;
	int timeout_ms;
};

/* ------------------------------------------------------------------ */
/* TCP.                                                                */

/*
 * Connects to sa within timeout_ms and closes again. 0 when connected,
 * else the errno (ETIMEDOUT when nothing answered in time). *ms_r: how
 * long it took.
 */
static int
probe(const struct sockaddr *sa, socklen_t len, int timeout_ms, long *ms_r)
{
	struct timespec t0, t1;
	struct pollfd pfd;
	socklen_t elen = sizeof(int);
	int fd, err = 0, r;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	if (connect(fd, sa, len) < 0) {
		if (errno != EINPROGRESS) {
			err = errno;
			goto out;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		do
			r = poll(&pfd, 1, timeout_ms);
		while (r < 0 && errno == EINTR);
		if (r == 0) {
			err = ETIMEDOUT;
			goto out;
		}
		if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err,
		    &elen) < 0)
			err = errno;
	}
out:
	close(fd);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	*ms_r = (t1.tv_sec - t0.tv_sec) * 1000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000000;
	return err;
}

static socklen_t
ip_sockaddr(const struct msgauth_ip *ip, unsigned int port,
    struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (ip->family == 4) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		memcpy(&sin->sin_addr, ip->addr, 4);
		return sizeof(*sin);
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons((uint16_t)port);
	memcpy(&sin6->sin6_addr, ip->addr, 16);
	return sizeof(*sin6);
}

/* How a failed connection reads to an operator. */
static const char *
probe_error(int err)
{
	switch (err) {
	case ETIMEDOUT: return "timed out";
	case ECONNREFUSED: return "refused (TCP reset)";
	case ENETUNREACH: return "network unreachable";
	case EHOSTUNREACH: return "host unreachable";
	case EACCES: case EPERM: return "forbidden by a local firewall rule";
	default: return strerror(err);
	}
}

/* ------------------------------------------------------------------ */
/* Port 25 to the world.                                               */

struct target {
	char host[MSGAUTH_DNS_NAME_MAX];
	struct msgauth_ip ip;
};

/* Up to max addresses of family, one per mail host of domain, MX order. */
static size_t
mail_targets(const struct msgauth_dns *dns, const char *domain, int family,
    struct target *t, size_t max, enum msgauth_dns_rc *rc_r)
{
	struct msgauth_dns_names *mx = xcalloc(1, sizeof(*mx));
	struct msgauth_dns_addrs a;
	size_t n = 0, order[MSGAUTH_DNS_MAX_RR], nmx = 0;

	*rc_r = dns->mx(dns->ctx, domain, mx);
	if (*rc_r == MSGAUTH_DNS_NODATA) {
		/* Implicit MX: the domain itself. */
		str_copy(mx->name[0], MSGAUTH_DNS_NAME_MAX, domain);
		mx->count = 1;
		*rc_r = MSGAUTH_DNS_FOUND;
	}
	for (size_t i = 0; *rc_r == MSGAUTH_DNS_FOUND && i < mx->count; i++) {
		size_t k = nmx;

		if (mx->name[i][0] == '\0')
			continue;
		/* insertion sort by preference, stable */
		while (k > 0 && mx->pref[order[k - 1]] > mx->pref[i]) {
			order[k] = order[k - 1];
			k--;
		}
		order[k] = i;
		nmx++;
	}
	for (size_t k = 0; k < nmx && n < max; k++) {
		const char *name = mx->name[order[k]];

		memset(&a, 0, sizeof(a));
		if ((family == 4 ? dns->a(dns->ctx, name, &a) :
		    dns->aaaa(dns->ctx, name, &a)) != MSGAUTH_DNS_FOUND ||
		    a.count == 0)
			continue;
		str_copy(t[n].host, sizeof(t[n].host), name);
		t[n].ip = a.ip[0];
		n++;
	}
	free(mx);
	return n;
}

/* Where outbound mail goes instead of port 25 of the destination. */
#define RELAYS_MAX 8
struct relays {
	struct relay_target t[RELAYS_MAX];	/* distinct host:port */
	size_t n;
	bool domains;	/* every local domain's mail goes through one */
	bool bounces;	/* and mail from the null sender (DSNs) too */
};

static void
relays_add(struct relays *r, const struct relay_target *t)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->t[i].host, t->host) == 0 && r->t[i].port == t->port)
			return;
	if (r->n < RELAYS_MAX)
		r->t[r->n++] = *t;
}

/* The queue worker's own choice (queue/relay.c), per sender domain. */
static void
find_relays(struct check *c, char *const *domains, struct relays *r)
{
	struct relay_config *rc;
	struct relay_target t;
	char *err = NULL;

	memset(r, 0, sizeof(*r));
	if ((rc = settings_relay_config(c->set, &err)) == NULL) {
		struct dnscheck_item *it = dnscheck_add(c->rep, DNSCHECK_FAIL,
		    "relay hosts", "%s", err);

		dnscheck_fix(it, "correct the file; the queue worker does not "
		    "start like this");
		free(err);
		return;
	}
	r->domains = true;
	for (size_t i = 0; domains[i] != NULL; i++) {
		char *sender = xasprintf("postmaster@%s", domains[i]);

		if (relay_for_sender(rc, sender, &t) == 1)
			relays_add(r, &t);
		else
			r->domains = false;
		free(sender);
	}
	if ((r->bounces = relay_for_sender(rc, "", &t) == 1))
		relays_add(r, &t);
	relay_config_free(&rc);
}

static void
check_port25_family(struct check *c, const char *domain, int family,
    const struct relays *relays)
{
	struct target t[PORT25_TRIES];
	struct dnscheck_item *it;
	enum msgauth_dns_rc rc;
	enum dnscheck_level level = DNSCHECK_FAIL;
	const char *but = "";
	char title[32], ip[64];
	int errs[PORT25_TRIES];
	long ms[PORT25_TRIES];
	size_t n;

	snprintf(title, sizeof(title), "port 25 out%s", family == 6 ?
	    " (IPv6)" : "");
	n = mail_targets(&c->dns, domain, family, t, PORT25_TRIES, &rc);
	if (n == 0) {
		it = dnscheck_add(c->rep, DNSCHECK_WARN, title, "could not find "
		    "an IPv%d mail host of %s to try%s", family, domain,
		    rc == MSGAUTH_DNS_TEMPFAIL ? " (DNS temporary failure)" : "");
		dnscheck_fix(it, "set TEGAMI_CHECK_PORT25_DOMAIN to a domain "
		    "whose mail hosts answer on port 25");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct sockaddr_storage ss;
		socklen_t len = ip_sockaddr(&t[i].ip, 25, &ss);

		errs[i] = probe((struct sockaddr *)&ss, len, c->timeout_ms, &ms[i]);
		if (errs[i] == 0) {
			msgauth_ip_format(&t[i].ip, ip, sizeof(ip));
			dnscheck_add(c->rep, DNSCHECK_OK, title, "connected to %s "
			    "(%s) port 25, a mail host of %s, in %ld ms",
			    t[i].host, ip, domain, ms[i]);
			return;
		}
	}
	if (relays->domains && relays->bounces) {
		level = DNSCHECK_WARN;
		but = ", but outbound mail goes through a relay host";
	} else if (relays->domains) {
		but = "; your domains' mail goes through a relay host, but "
		    "bounces go out directly (set DEFAULT_RELAY_HOST too)";
	}
	if (errs[0] == ETIMEDOUT)
		it = dnscheck_add(c->rep, level, title, "timed out: no answer "
		    "from port 25 of %s's mail hosts within %d s; the usual sign "
		    "of a provider that blocks outbound port 25%s", domain,
		    c->timeout_ms / 1000, but);
	else if (errs[0] == ECONNREFUSED)
		it = dnscheck_add(c->rep, level, title, "refused: %s's mail "
		    "hosts answered port 25 with a TCP reset, which they do not "
		    "do; a firewall on the way (your provider's?) rejects port "
		    "25%s", domain, but);
	else
		it = dnscheck_add(c->rep, level, title, "%s: no connection to "
		    "%s's mail hosts on port 25%s", probe_error(errs[0]), domain,
		    but);
	for (size_t i = 0; i < n; i++) {
		msgauth_ip_format(&t[i].ip, ip, sizeof(ip));
		dnscheck_detail(it, "tried:", "%s (%s) port 25: %s after %ld ms",
		    t[i].host, ip, probe_error(errs[i]), ms[i]);
	}
	dnscheck_expected(it, "a TCP connection to port 25 of other mail "
	    "servers, or a relay host");
	if (level == DNSCHECK_FAIL)
		dnscheck_fix(it, "ask your provider to open outbound port 25 "
		    "(many do on request), or send through a relay host: "
		    "DEFAULT_RELAY_HOST=[smtp.example.net]:587 with RELAY_USER "
		    "and RELAY_PASSWORD");
}

/* A relay host the queue worker would use: can we reach it? */
static void
check_relay(struct check *c, const struct relay_target *rt)
{
	char ip[64], title[300];
	struct msgauth_ip addr;
	struct msgauth_dns_addrs a;
	struct dnscheck_item *it;
	struct sockaddr_storage ss;
	socklen_t len;
	long ms;
	int err;

	snprintf(title, sizeof(title), "relay %s:%u", rt->host, rt->port);
	memset(&a, 0, sizeof(a));
	if (msgauth_ip_parse(rt->host, &addr) == 0) {
		a.ip[0] = addr;
		a.count = 1;
	} else if (c->dns.a(c->dns.ctx, rt->host, &a) != MSGAUTH_DNS_FOUND &&
	    c->dns.aaaa(c->dns.ctx, rt->host, &a) != MSGAUTH_DNS_FOUND) {
		it = dnscheck_add(c->rep, DNSCHECK_FAIL, title, "%s has no "
		    "address in DNS", rt->host);
		dnscheck_fix(it, "check the relay host's name (DEFAULT_RELAY_HOST, "
		    "RELAY_HOST or postfix-relaymap.cf)");
		return;
	}
	len = ip_sockaddr(&a.ip[0], rt->port, &ss);
	msgauth_ip_format(&a.ip[0], ip, sizeof(ip));
	err = probe((struct sockaddr *)&ss, len, c->timeout_ms, &ms);
	if (err == 0) {
		dnscheck_add(c->rep, DNSCHECK_OK, title, "connected to %s (%s) "
		    "port %u in %ld ms", rt->host, ip, rt->port, ms);
		return;
	}
	it = dnscheck_add(c->rep, DNSCHECK_FAIL, title, "%s: no connection to "
	    "%s (%s) port %u, and outbound mail goes there", probe_error(err),
	    rt->host, ip, rt->port);
	dnscheck_fix(it, "check the relay host's name and port, and that your "
	    "provider lets the server reach that port");
}

/* ------------------------------------------------------------------ */
/* The listeners of this server.                                       */

static const struct {
	const char *key;
	const char *name;
	bool needed;	/* off is a warning: no mail arrives */
} listeners[] = {
	{ "LISTEN_SMTP", "smtp", true },
	{ "LISTEN_SUBMISSION", "submission", false },
	{ "LISTEN_SUBMISSIONS", "submissions", false },
	{ "LISTEN_IMAPS", "imaps", false },
};

static bool
wildcard(const struct listen_addr *a)
{
	if (a->ss.ss_family == AF_INET)
		return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr ==
		    htonl(INADDR_ANY);
	return a->ss.ss_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(
	    &((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
}

/* A wildcard address is reached through the loopback of its family. */
static void
loopback_for(struct listen_addr *a)
{
	if (a->ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;

		if (sin->sin_addr.s_addr == htonl(INADDR_ANY))
			sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else if (a->ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;

		if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr))
			sin6->sin6_addr = in6addr_loopback;
	}
}

static void
check_listeners(struct check *c)
{
	for (size_t k = 0; k < sizeof(listeners) / sizeof(listeners[0]); k++) {
		const char *spec = config_str(c->set->cfg, listeners[k].key);
		struct listen_addr *addrs = NULL;
		struct dnscheck_item *it;
		char title[64], *err = NULL, *okl = xstrdup(""), *next;
		size_t n = 0, bad = 0;
		int errs[16];
		long ms;

		snprintf(title, sizeof(title), "listening %s", listeners[k].name);
		if (listen_parse(spec, &addrs, &n, &err) < 0) {
			it = dnscheck_add(c->rep, DNSCHECK_FAIL, title, "%s: %s",
			    listeners[k].key, err);
			dnscheck_fix(it, "correct %s (addr:port, comma-separated)",
			    listeners[k].key);
			free(err);
			free(okl);
			continue;
		}
		if (n == 0) {
			dnscheck_add(c->rep, listeners[k].needed ? DNSCHECK_WARN :
			    DNSCHECK_OK, title, "off (%s is empty)%s",
			    listeners[k].key, listeners[k].needed ?
			    ": no mail from other servers can arrive" : "");
			free(addrs);
			free(okl);
			continue;
		}
		if (n > 16)
			n = 16;
		for (size_t i = 0; i < n; i++) {
			struct listen_addr a = addrs[i];
			int timeout = c->timeout_ms < 2000 ? c->timeout_ms : 2000;

			loopback_for(&a);
			errs[i] = probe((struct sockaddr *)&a.ss, a.len, timeout,
			    &ms);
			if (errs[i] != 0) {
				bad++;
				continue;
			}
			next = xasprintf("%s%s%s", okl, *okl != '\0' ? ", " : "",
			    addrs[i].text);
			free(okl);
			okl = next;
		}
		if (bad == 0) {
			dnscheck_add(c->rep, DNSCHECK_OK, title, "%s (%s)", okl,
			    listeners[k].key);
		} else {
			it = dnscheck_add(c->rep, DNSCHECK_FAIL, title, "nothing "
			    "answers on %s of %s=%s: is `tegami serve` running?",
			    bad == n ? "any address" : "some addresses",
			    listeners[k].key, spec);
			for (size_t i = 0; i < n; i++)
				if (errs[i] != 0)
					dnscheck_detail(it, "tried:", "%s%s: %s",
					    addrs[i].text, wildcard(&addrs[i]) ?
					    " (through the loopback address)" : "",
					    probe_error(errs[i]));
			dnscheck_fix(it, "start the server (tegami serve) and look "
			    "at its log for the listener");
		}
		free(okl);
		free(addrs);
	}
}

/* ------------------------------------------------------------------ */
/* TLS.                                                                */

/* Where a served certificate comes from, for the messages. */
static const char *
pair_source(const struct tls_pair *pairs, size_t n, X509 *leaf)
{
	for (size_t i = 0; i < n; i++)
		if (tls_pair_is(&pairs[i], leaf))
			return pairs[i].source;
	return "?";
}

static void
cert_fix(struct check *c, struct dnscheck_item *it)
{
	char *names = xstrdup(""), *next;

	for (size_t i = 0; c->host.cert_names[i] != NULL; i++) {
		next = xasprintf("%s -d %s", names, c->host.cert_names[i]);
		free(names);
		names = next;
	}
	dnscheck_fix(it, "get a certificate for these names (e.g. `certbot "
	    "certonly --standalone%s`) and set SSL_TYPE=letsencrypt (or manual "
	    "with SSL_CERT_PATH/SSL_KEY_PATH)", names);
	free(names);
}

static void
check_tls_name(struct check *c, SSL_CTX *ctx, const struct tls_pair *pairs,
    size_t npairs, const char *name, bool sni)
{
	struct tls_cert_info info;
	struct dnscheck_item *it;
	STACK_OF(X509) *chain = NULL;
	X509 *leaf = NULL;
	char title[MSGAUTH_DNS_NAME_MAX + 32], *err = NULL;
	const char *src;

	snprintf(title, sizeof(title), "TLS %s%s", name, sni ? "" :
	    " without SNI");
	if (tls_served_chain(ctx, sni ? name : NULL, &leaf, &chain, &err) < 0) {
		it = dnscheck_add(c->rep, DNSCHECK_FAIL, title, "%s", err);
		cert_fix(c, it);
		free(err);
		return;
	}
	tls_cert_describe(leaf, chain, &info);
	src = pair_source(pairs, npairs, leaf);
	if (X509_check_host(leaf, name, 0, 0, NULL) != 1) {
		it = dnscheck_add(c->rep, sni ? DNSCHECK_FAIL : DNSCHECK_WARN,
		    title, "the certificate served%s (%s) does not name %s: "
		    "clients and servers that check it refuse it", sni ?
		    " for it" : " to clients that send no server name", src,
		    name);
		dnscheck_detail(it, "served:", "%s, by %s, until %s", info.names,
		    info.issuer, info.not_after);
		dnscheck_expected(it, "a certificate naming %s", name);
		cert_fix(c, it);
	} else if (info.days_left < 0) {
		it = dnscheck_add(c->rep, DNSCHECK_FAIL, title, "%s expired on "
		    "%s", src, info.not_after);
		dnscheck_expected(it, "a certificate valid today");
		dnscheck_fix(it, "renew it (certbot renew) and tegami picks it "
		    "up by itself");
	} else if (info.days_left < CERT_WARN_DAYS) {
		it = dnscheck_add(c->rep, DNSCHECK_WARN, title, "%s expires on "
		    "%s, in %d days", src, info.not_after, info.days_left);
		dnscheck_fix(it, "renew it (certbot renew; is its timer "
		    "running?); tegami picks the new one up by itself");
	} else if (!info.trusted) {
		it = dnscheck_add(c->rep, DNSCHECK_WARN, title, "%s names it, "
		    "valid until %s (%d days), but it is not signed by a CA "
		    "this machine trusts (%s): servers still use it for "
		    "STARTTLS, mail apps warn", src, info.not_after,
		    info.days_left, info.why);
		dnscheck_detail(it, "served:", "%s, by %s", info.names,
		    info.issuer);
		cert_fix(c, it);
	} else if (sni) {
		dnscheck_add(c->rep, DNSCHECK_OK, title, "%s names it, by %s, "
		    "valid until %s (%d days)", src, info.issuer, info.not_after,
		    info.days_left);
	}
	/* Without SNI and fine: the SNI line already said it. */
	X509_free(leaf);
	sk_X509_pop_free(chain, X509_free);
}

static void
check_tls(struct check *c)
{
	struct tlsconf tc;
	struct tls_pair *pairs = NULL;
	struct dnscheck_item *it;
	size_t npairs = 0;
	SSL_CTX *ctx = NULL;
	char *err = NULL, title[MSGAUTH_DNS_NAME_MAX + 8];
	const char *type = config_str(c->set->cfg, "SSL_TYPE");

	snprintf(title, sizeof(title), "TLS %s", c->host.name);
	if (tlsconf_find(c->set, &tc, &err) < 0) {
		it = dnscheck_add(c->rep, DNSCHECK_FAIL, title, "%s (tegami "
		    "serve does not start like this)", err);
		cert_fix(c, it);
		free(err);
		return;
	}
	if (tc.count == 0) {
		it = dnscheck_add(c->rep, DNSCHECK_WARN, title, "SSL_TYPE is "
		    "empty and there is no certificate yet: tegami serve makes "
		    "a self-signed one for %s on its first start, which mail "
		    "apps warn about", c->host.name);
		cert_fix(c, it);
		tlsconf_free(&tc);
		return;
	}
	if (tlsconf_read(&tc, &pairs, &npairs, &err) < 0 ||
	    (ctx = tls_server_ctx_new(pairs, npairs, strcmp(config_str(
	    c->set->cfg, "TLS_LEVEL"), "intermediate") == 0 ?
	    TLS_LEVEL_INTERMEDIATE : TLS_LEVEL_MODERN, &err)) == NULL) {
		it = dnscheck_add(c->rep, DNSCHECK_FAIL, title, "%s (SSL_TYPE=%s; "
		    "tegami serve does not start like this)", err, type);
		cert_fix(c, it);
		free(err);
		goto out;
	}
	for (size_t i = 0; c->host.cert_names[i] != NULL; i++)
		check_tls_name(c, ctx, pairs, npairs, c->host.cert_names[i], true);
	/* Many sending servers give no SNI: they get the first certificate. */
	if (npairs > 1)
		check_tls_name(c, ctx, pairs, npairs, c->host.name, false);
out:
	SSL_CTX_free(ctx);
	for (size_t i = 0; i < npairs; i++)
		tls_pair_clear(&pairs[i]);
	free(pairs);
	tlsconf_free(&tc);
}

/* ------------------------------------------------------------------ */
/* The command.                                                        */

static bool
address_here(void *ctx, const char *address, bool *local_r)
{
	struct check *c = ctx;
	struct accounts_resolution res;
	const char *at = strrchr(address, '@'), *err;
	int r;

	*local_r = at != NULL && accounts_is_local_domain(c->acc, at + 1);
	if (!*local_r)
		return false;
	r = accounts_resolve(c->acc, address, &res, &err);
	accounts_resolution_free(&res);
	return r == 1;
}

static void
check_domain_records(struct check *c, const char *domain, bool strict,
    const struct psl *psl)
{
	struct cli_dkim_key *keys;
	size_t n;

	dnscheck_mx(c->rep, &c->dns, domain, &c->host);
	dnscheck_spf(c->rep, &c->dns, domain, &c->host, strict);
	keys = cli_dkim_keys(c->cli, domain, &n);
	if (n == 0) {
		struct dnscheck_item *it;
		char title[MSGAUTH_DNS_NAME_MAX + 8];

		snprintf(title, sizeof(title), "DKIM %s", domain);
		it = dnscheck_add(c->rep, DNSCHECK_FAIL, title, "no key in "
		    "opendkim/keys/%s/: tegami sends the domain's mail unsigned, "
		    "and Gmail and Yahoo want a signature", domain);
		dnscheck_fix(it, "%s config dkim domain %s, then %s dns for the "
		    "record to publish", c->cli->prog, domain, c->cli->prog);
	}
	for (size_t i = 0; i < n; i++) {
		char file[600], kind[32];
		struct dnscheck_dkim_key k;

		snprintf(file, sizeof(file), "opendkim/keys/%s/%s.private",
		    domain, keys[i].selector);
		if (keys[i].type == DKIM_KEY_RSA)
			snprintf(kind, sizeof(kind), "RSA %u", keys[i].bits);
		else
			str_copy(kind, sizeof(kind), "Ed25519");
		k.selector = keys[i].selector;
		k.file = file;
		k.record = keys[i].record;
		k.kind = kind;
		dnscheck_dkim(c->rep, &c->dns, domain, &k);
	}
	cli_dkim_keys_free(keys, n);
	dnscheck_dmarc(c->rep, &c->dns, psl, domain, address_here, c);
}

static int
parse_ip(struct cli *cli, const char *key, int family, struct msgauth_ip *ip)
{
	const char *v = config_str(cli->set->cfg, key);

	memset(ip, 0, sizeof(*ip));
	if (*v == '\0')
		return 0;
	if (msgauth_ip_parse(v, ip) < 0 || ip->family != family) {
		cli_error(cli, "%s '%s' is not an IPv%d address (e.g. %s)", key, v,
		    family, family == 4 ? "203.0.113.5" : "2001:db8::5");
		return -1;
	}
	return 0;
}

int
cmd_check(struct cli *cli, int argc, char **argv)
{
	const char *only_arg = NULL, *servers, *port25;
	const char *psl_path = config_str(cli->set->cfg, "TEGAMI_PSL_FILE");
	const char *extra[2] = { cli->set->domain, NULL };
	struct accounts_settings as;
	struct dns_resolver *resolver = NULL;
	struct psl *psl = NULL;
	struct check c;
	struct relays relays;
	bool quiet = false, strict = false;
	char **domains = NULL, *err = NULL;
	unsigned int ok, warn, fail;
	int r = CLI_FAIL;

	memset(&c, 0, sizeof(c));
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quiet") == 0 || strcmp(argv[i], "-q") == 0)
			quiet = true;
		else if (strcmp(argv[i], "--strict") == 0)
			strict = true;
		else if (strcmp(argv[i], "--check") == 0 &&
		    strcmp(argv[0], "dns") == 0)
			continue;
		else if (only_arg == NULL && argv[i][0] != '-')
			only_arg = argv[i];
		else
			return cli_error(cli, "unexpected argument '%s'; usage: %s "
			    "check [--quiet] [--strict] [<DOMAIN>]", argv[i],
			    cli->prog);
	}
	c.cli = cli;
	c.set = cli->set;
	c.timeout_ms = (int)config_num(cli->set->cfg, "TEGAMI_CHECK_TIMEOUT") *
	    1000;
	c.host.name = cli->set->hostname;
	if (parse_ip(cli, "TEGAMI_PUBLIC_IPV4", 4, &c.host.conf_v4) < 0 ||
	    parse_ip(cli, "TEGAMI_PUBLIC_IPV6", 6, &c.host.conf_v6) < 0)
		return CLI_FAIL;
	if (!check_domain(c.host.name) || strchr(c.host.name, '.') == NULL)
		return cli_error(cli, "the host name '%s' is not a public DNS "
		    "name: set OVERRIDE_HOSTNAME=mail.example.com (a name in one "
		    "of your domains) and run this again", c.host.name);
	if ((domains = cli_record_domains(cli, only_arg, "check")) == NULL)
		return CLI_FAIL;
	if ((resolver = settings_dns_resolver(cli->set, NULL, NULL, &err)) == NULL) {
		cli_error(cli, "%s; check TEGAMI_DNS_SERVERS or /etc/resolv.conf",
		    err);
		free(err);
		goto out;
	}
	msgauth_dns_resolver_init(&c.dns, resolver);
	memset(&as, 0, sizeof(as));
	as.config_dir = cli->config_dir;
	as.mail_dir = cli->mail_dir;
	as.extra_domains = extra;
	if ((c.acc = accounts_load(&as, &err)) == NULL) {
		cli_error(cli, "%s", err);
		free(err);
		goto out;
	}
	c.rep = dnscheck_report_new();
	if (psl_load(psl_path, &psl, &err) < 0) {
		struct dnscheck_item *it;

		/* One rule, "*": every name's last label is the suffix. */
		char *err2 = NULL;

		if (psl_parse("*\n", 2, &psl, &err2) < 0)
			panic("psl_parse of the default rule: %s", err2);
		dnscheck_section(c.rep, "Configuration");
		it = dnscheck_add(c.rep, DNSCHECK_WARN, "TEGAMI_PSL_FILE", "%s: "
		    "organizational domains are guessed from the last two "
		    "labels", err);
		dnscheck_fix(it, "apt-get install publicsuffix, or point "
		    "TEGAMI_PSL_FILE at public_suffix_list.dat");
		free(err);
	}

	servers = config_str(cli->set->cfg, "TEGAMI_DNS_SERVERS");
	if (!quiet) {
		printf("tegami check: mail host %s, domain%s", c.host.name,
		    domains[1] != NULL ? "s" : "");
		for (size_t i = 0; domains[i] != NULL; i++)
			printf("%s%s", i == 0 ? " " : ", ", domains[i]);
		printf("\nDNS answers come from %s%s\n", *servers != '\0' ?
		    servers : "the resolvers in /etc/resolv.conf", *servers !=
		    '\0' ? " (TEGAMI_DNS_SERVERS)" : "");
	}
	dnscheck_host(c.rep, &c.dns, &c.host);
	dnscheck_ptr(c.rep, &c.dns, &c.host);
	for (size_t i = 0; domains[i] != NULL; i++)
		check_domain_records(&c, domains[i], strict, psl);

	dnscheck_section(c.rep, "TLS and network");
	check_tls(&c);
	find_relays(&c, domains, &relays);
	port25 = config_str(cli->set->cfg, "TEGAMI_CHECK_PORT25_DOMAIN");
	check_port25_family(&c, port25, 4, &relays);
	if (c.host.conf_v6.family != 0)
		check_port25_family(&c, port25, 6, &relays);
	for (size_t i = 0; i < relays.n; i++)
		check_relay(&c, &relays.t[i]);
	check_listeners(&c);

	dnscheck_print(c.rep, stdout, quiet);
	dnscheck_counts(c.rep, &ok, &warn, &fail);
	r = fail > 0 ? CLI_FAIL : CLI_OK;
out:
	fflush(stdout);
	dnscheck_report_free(&c.rep);
	dnscheck_host_free(&c.host);
	accounts_unref(c.acc);
	psl_free(&psl);
	dns_resolver_destroy(&resolver);
	str_array_free(domains);
	return r;
}
