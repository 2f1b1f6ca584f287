#include "daemon/iptable.h"
#include "lib/str.h"
#include "lib/xalloc.h"

#include <stdlib.h>
#include <string.h>

static unsigned int
ip_hash(const char *ip)
{
	unsigned int h = 5381;

	for (const char *p = ip; *p != '\0'; p++)
		h = h * 33 + (unsigned char)*p;
	return h % IPTABLE_BUCKETS;
}

struct ip_entry *
iptable_get(struct iptable *t, const char *ip)
{
	unsigned int h = ip_hash(ip);
	struct ip_entry *e;

	for (e = t->buckets[h]; e != NULL; e = e->next)
		if (strcmp(e->ip, ip) == 0)
			return e;
	e = xcalloc(1, sizeof(*e));
	str_copy(e->ip, sizeof(e->ip), ip);
	e->next = t->buckets[h];
	t->buckets[h] = e;
	return e;
}

void
iptable_release(struct iptable *t, struct ip_entry *e)
{
	if (e->sessions > 0)
		e->sessions--;
	if (e->sessions > 0 || e->mark != 0)
		return;
	for (struct ip_entry **pp = &t->buckets[ip_hash(e->ip)]; *pp != NULL;
	    pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			free(e);
			return;
		}
	}
}

void
iptable_expire(struct iptable *t, time_t before)
{
	for (unsigned int h = 0; h < IPTABLE_BUCKETS; h++) {
		for (struct ip_entry **pp = &t->buckets[h]; *pp != NULL;) {
			struct ip_entry *e = *pp;

			if (e->sessions == 0 && e->mark < before) {
				*pp = e->next;
				free(e);
			} else {
				pp = &e->next;
			}
		}
	}
}

void
iptable_clear(struct iptable *t)
{
	iptable_expire(t, (time_t)1 << 62);
}
