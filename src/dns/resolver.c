/*
 * The resolver: libunbound contexts configured once, one driven by the
 * libevent loop (asynchronous), one shared by blocking callers on pool
 * threads. Two contexts because an async context owns a worker thread and
 * a pipe read by the loop; blocking ub_resolve() calls are simplest on a
 * context of their own. The price is two caches. Blocking lookups look
 * in our own cache first (dns/cache.h says why libunbound's is not
 * enough for them).
 */
#include "dns/dns.h"
#include "dns/cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include <unbound.h>
#include <event2/event.h>

#include "lib/log.h"
#include "lib/xalloc.h"

struct dns_query {
	struct dns_resolver *resolver;
	struct dns_query *prev, *next;
	int id;
	char *name;
	enum dns_type type;
	dns_callback *callback;
	void *context;
};

struct dns_resolver {
	struct event_base *base;
	struct ub_ctx *async_ctx;
	struct event *ev;
	struct ub_ctx *sync_ctx;
	pthread_mutex_t sync_lock;	/* creation of sync_ctx */
	struct dns_config config;	/* copied */
	struct dns_query *queries;
	unsigned int pending;
	struct dns_cache *cache;	/* for dns_lookup_sync, or NULL */
};

static int
ctx_configure(struct ub_ctx *ctx, const struct dns_config *config,
    char **error_r)
{
	int ret;

	/*
	 * Reverse zones of private addresses (10.in-addr.arpa, ...) would be
	 * answered NXDOMAIN locally too; the configured resolver may know
	 * them (the test bed's does), so ask it.
	 */
	/*
	 * A resolver that stopped answering is marked down for up to
	 * infra-host-ttl (15 min) unless probed again: keep probing, so a
	 * restarted resolver is used as soon as it answers.
	 */
	if ((ret = ub_ctx_set_option(ctx, "infra-keep-probing:", "yes")) != 0) {
		*error_r = xasprintf("libunbound infra-keep-probing: %s",
		    ub_strerror(ret));
		return -1;
	}
	if ((ret = ub_ctx_set_option(ctx, "unblock-lan-zones:", "yes")) != 0 ||
	    (ret = ub_ctx_set_option(ctx, "insecure-lan-zones:", "yes")) != 0) {
		*error_r = xasprintf("libunbound lan zones: %s", ub_strerror(ret));
		return -1;
	}
	if (config->server_count == 0) {
		if ((ret = ub_ctx_resolvconf(ctx, NULL)) != 0) {
			*error_r = xasprintf("reading /etc/resolv.conf: %s (%s)",
			    ub_strerror(ret), strerror(errno));
			return -1;
		}
	}
	for (size_t i = 0; i < config->server_count; i++) {
		if ((ret = ub_ctx_set_fwd(ctx, config->servers[i])) != 0) {
			*error_r = xasprintf("DNS resolver address '%s': %s",
			    config->servers[i], ub_strerror(ret));
			return -1;
		}
	}
	/* libunbound reads the file only at the first lookup, and then fails
	 * every lookup: say it now. */
	if (config->trust_anchor_file != NULL &&
	    config->trust_anchor_file[0] != '\0' &&
	    access(config->trust_anchor_file, R_OK) < 0) {
		*error_r = xasprintf("DNSSEC trust anchor file '%s': %s",
		    config->trust_anchor_file, strerror(errno));
		return -1;
	}
	if (config->trust_anchor_file != NULL &&
	    config->trust_anchor_file[0] != '\0' &&
	    (ret = ub_ctx_add_ta_file(ctx, config->trust_anchor_file)) != 0) {
		*error_r = xasprintf("DNSSEC trust anchor file '%s': %s",
		    config->trust_anchor_file, ub_strerror(ret));
		return -1;
	}
	return 0;
}

static struct ub_ctx *
ctx_create(const struct dns_config *config, bool async, char **error_r)
{
	struct ub_ctx *ctx = ub_ctx_create();
	int ret;

	if (ctx == NULL) {
		*error_r = xstrdup("libunbound: cannot create a context");
		return NULL;
	}
	if (ctx_configure(ctx, config, error_r) < 0) {
		ub_ctx_delete(ctx);
		return NULL;
	}
	/* A thread, not a forked process, answers async queries. */
	if (async && (ret = ub_ctx_async(ctx, 1)) != 0) {
		*error_r = xasprintf("libunbound async: %s", ub_strerror(ret));
		ub_ctx_delete(ctx);
		return NULL;
	}
	/*
	 * RFC 6761 names: libunbound serves "test." as an empty local zone
	 * (NXDOMAIN for everything); the test bed needs them from the
	 * configured resolver. ub_ctx_set_option("local-zone:", "test.
	 * nodefault") returns success but has no effect in libunbound 1.17;
	 * removing the zone works. It finalizes the context: keep it last.
	 */
	if ((ret = ub_ctx_zone_remove(ctx, "test.")) != 0) {
		*error_r = xasprintf("libunbound: removing local zone test.: %s",
		    ub_strerror(ret));
		ub_ctx_delete(ctx);
		return NULL;
	}
	return ctx;
}

static void
dns_ub_readable(evutil_socket_t fd, short what, void *arg)
{
	struct dns_resolver *r = arg;
	int ret;

	/* Runs the callbacks of every answer that has arrived. */
	if ((ret = ub_process(r->async_ctx)) != 0)
		log_error("event=dns_process_failed error=\"%s\"", ub_strerror(ret));
}

static void
config_copy(struct dns_config *dst, const struct dns_config *src)
{
	char **servers;

	memset(dst, 0, sizeof(*dst));
	if (src == NULL)
		return;
	servers = xcalloc(src->server_count + 1, sizeof(*servers));
	for (size_t i = 0; i < src->server_count; i++)
		servers[i] = xstrdup(src->servers[i]);
	dst->servers = (const char *const *)servers;
	dst->server_count = src->server_count;
	dst->cache_bytes = src->cache_bytes;
	dst->cache_max_ttl = src->cache_max_ttl;
	dst->no_cache = src->no_cache;
	if (src->trust_anchor_file != NULL)
		dst->trust_anchor_file = xstrdup(src->trust_anchor_file);
}

static void
config_free(struct dns_config *config)
{
	for (size_t i = 0; i < config->server_count; i++)
		free((char *)config->servers[i]);
	free((void *)config->servers);
	free((char *)config->trust_anchor_file);
	memset(config, 0, sizeof(*config));
}

struct dns_resolver *
dns_resolver_create(struct event_base *base, const struct dns_config *config,
    char **error_r)
{
	struct dns_resolver *r = xcalloc(1, sizeof(*r));
	struct ub_ctx *probe;

	r->base = base;
	config_copy(&r->config, config);
	pthread_mutex_init(&r->sync_lock, NULL);
	if (!r->config.no_cache)
		r->cache = dns_cache_create(r->config.cache_bytes,
		    r->config.cache_max_ttl);
	/*
	 * Configure a context now even for sync-only use, so a bad setting
	 * fails at start, not at the first lookup.
	 */
	probe = ctx_create(&r->config, base != NULL, error_r);
	if (probe == NULL) {
		dns_resolver_destroy(&r);
		return NULL;
	}
	if (base == NULL) {
		r->sync_ctx = probe;
		return r;
	}
	r->async_ctx = probe;
	r->ev = event_new(base, ub_fd(probe), EV_READ | EV_PERSIST,
	    dns_ub_readable, r);
	if (r->ev == NULL || event_add(r->ev, NULL) < 0) {
		*error_r = xstrdup("libevent: cannot watch the libunbound fd");
		dns_resolver_destroy(&r);
		return NULL;
	}
	return r;
}

static void
query_unlink(struct dns_query *q)
{
	struct dns_resolver *r = q->resolver;

	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		r->queries = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	r->pending--;
}

void
dns_resolver_destroy(struct dns_resolver **resolverp)
{
	struct dns_resolver *r = *resolverp;

	if (r == NULL)
		return;
	while (r->queries != NULL) {
		struct dns_query *q = r->queries;

		ub_cancel(r->async_ctx, q->id);
		query_unlink(q);
		free(q->name);
		free(q);
	}
	if (r->ev != NULL)
		event_free(r->ev);
	if (r->async_ctx != NULL)
		ub_ctx_delete(r->async_ctx);
	if (r->sync_ctx != NULL)
		ub_ctx_delete(r->sync_ctx);
	pthread_mutex_destroy(&r->sync_lock);
	dns_cache_destroy(&r->cache);
	config_free(&r->config);
	free(r);
	*resolverp = NULL;
}

/* Turns libunbound's answer (or error) into our result. */
static struct dns_result *
result_make(const char *name, enum dns_type type, int err,
    struct ub_result *ub)
{
	struct dns_result *res = xcalloc(1, sizeof(*res));

	res->name = xstrdup(name);
	res->type = type;
	if (err != 0 || ub == NULL) {
		res->status = DNS_TEMPFAIL;
		res->rcode = 2;
		res->error = err != 0 ? ub_strerror(err) : "no answer";
		return res;
	}
	res->rcode = ub->rcode;
	res->secure = ub->secure != 0;
	res->ttl = ub->ttl < 0 ? 0 : (uint32_t)ub->ttl;
	if (ub->bogus) {
		/* A forged or broken signed answer: never act on it. */
		res->status = DNS_TEMPFAIL;
		res->error = "DNSSEC validation failed (bogus)";
		res->secure = false;
	} else if (ub->rcode == 3 || ub->nxdomain) {
		res->status = DNS_NXDOMAIN;
	} else if (ub->rcode != 0) {
		res->status = DNS_TEMPFAIL;
		res->error = ub->rcode == 2 ? "SERVFAIL or timeout" :
		    ub->rcode == 5 ? "REFUSED" : "error rcode";
	} else if (ub->havedata) {
		size_t n = 0;

		while (ub->data[n] != NULL)
			n++;
		res->status = DNS_FOUND;
		(void)dns_result_fill(res, ub->data, ub->len, n);
	} else {
		res->status = DNS_NODATA;
	}
	return res;
}

static void
dns_ub_callback(void *arg, int err, struct ub_result *ub)
{
	struct dns_query *q = arg;
	struct dns_result *res;

	res = result_make(q->name, q->type, err, ub);
	if (ub != NULL)
		ub_resolve_free(ub);
	query_unlink(q);
	log_debug("event=dns_answer name=%s type=%d status=%s secure=%d count=%zu",
	    res->name, (int)res->type, dns_status_name(res->status),
	    res->secure, res->count);
	q->callback(res, q->context);
	free(q->name);
	free(q);
}

int
dns_lookup(struct dns_resolver *r, const char *name, enum dns_type type,
    dns_callback *callback, void *context, const char **error_r)
{
	struct dns_query *q;
	int ret;

	if (r->async_ctx == NULL)
		panic("dns_lookup on a resolver without an event base");
	if (strlen(name) > 253) {
		*error_r = "name too long";
		return -1;
	}
	q = xcalloc(1, sizeof(*q));
	q->resolver = r;
	q->name = xstrdup(name);
	q->type = type;
	q->callback = callback;
	q->context = context;
	ret = ub_resolve_async(r->async_ctx, name, (int)type, 1, q,
	    dns_ub_callback, &q->id);
	if (ret != 0) {
		*error_r = ub_strerror(ret);
		free(q->name);
		free(q);
		return -1;
	}
	q->next = r->queries;
	if (q->next != NULL)
		q->next->prev = q;
	r->queries = q;
	r->pending++;
	return q->id;
}

void
dns_lookup_cancel(struct dns_resolver *r, int id)
{
	for (struct dns_query *q = r->queries; q != NULL; q = q->next) {
		if (q->id == id) {
			ub_cancel(r->async_ctx, id);
			query_unlink(q);
			free(q->name);
			free(q);
			return;
		}
	}
}

unsigned int
dns_pending(const struct dns_resolver *r)
{
	return r->pending;
}

struct dns_result *
dns_lookup_sync(struct dns_resolver *r, const char *name, enum dns_type type)
{
	struct ub_result *ub = NULL;
	struct ub_ctx *ctx;
	int err;

	if (strlen(name) > 253)
		return result_make(name, type, UB_SYNTAX, NULL);
	if (r->cache != NULL) {
		struct dns_result *hit = dns_cache_get(r->cache, name, type,
		    time(NULL));

		if (hit != NULL)
			return hit;
	}
	pthread_mutex_lock(&r->sync_lock);
	if (r->sync_ctx == NULL) {
		char *error = NULL;

		r->sync_ctx = ctx_create(&r->config, false, &error);
		if (r->sync_ctx == NULL) {
			/* It worked at creation; only resources can fail now. */
			log_error("event=dns_ctx_failed error=\"%s\"", error);
			free(error);
		}
	}
	ctx = r->sync_ctx;
	pthread_mutex_unlock(&r->sync_lock);
	if (ctx == NULL)
		return result_make(name, type, UB_NOMEM, NULL);
	/* libunbound locks the context itself: callers may run in parallel. */
	err = ub_resolve(ctx, name, (int)type, 1, &ub);
	struct dns_result *res = result_make(name, type, err, ub);
	if (ub != NULL)
		ub_resolve_free(ub);
	if (r->cache != NULL)
		dns_cache_put(r->cache, res, time(NULL));
	return res;
}

bool
dns_resolver_cache_stats(struct dns_resolver *r, struct dns_cache_stats *st)
{
	if (r->cache == NULL)
		return false;
	dns_cache_stats(r->cache, st);
	return true;
}
