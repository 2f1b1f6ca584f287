/*
 * iptable: what a worker knows about each client address: its sessions
 * open now (for the per-address limits) and one time mark (the smtp
 * worker's "passed the early-talker test at"). Owned by one event loop.
 */
#ifndef TEGAMI_IPTABLE_H
#define TEGAMI_IPTABLE_H

#include <time.h>

#define IPTABLE_BUCKETS 1024

struct ip_entry {
	char ip[64];
	unsigned int sessions;
	time_t mark;		/* 0 = none */
	struct ip_entry *next;
};

struct iptable {
	struct ip_entry *buckets[IPTABLE_BUCKETS];
};

/* The entry for ip, made (with no session) when there is none. */
struct ip_entry *iptable_get(struct iptable *t, const char *ip);
/* One session less; the entry goes when none is left and it has no mark. */
void iptable_release(struct iptable *t, struct ip_entry *e);
/* Forgets entries without sessions whose mark is older than before. */
void iptable_expire(struct iptable *t, time_t before);
void iptable_clear(struct iptable *t);

#endif
