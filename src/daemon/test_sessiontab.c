#include "daemon/sessiontab.h"
#include "lib/test.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Two workers' views of one master table, as the fds they inherit. */
static void
two_workers(struct sessiontab **master, struct sessiontab **a,
    struct sessiontab **b)
{
	char *err = NULL;

	*master = sessiontab_create(&err);
	test_assert(*master != NULL);
	*a = sessiontab_attach(dup(sessiontab_fd(*master)), 0, &err);
	*b = sessiontab_attach(dup(sessiontab_fd(*master)), 3, &err);
	test_assert(*a != NULL && *b != NULL);
}

static void
test_sessiontab_counts(void)
{
	struct sessiontab *m, *a, *b;
	uint64_t ip = sessiontab_key("ip", "192.0.2.1", NULL);
	uint64_t user = sessiontab_key("user", "u@example.test", NULL);

	test_begin("sessiontab: counts add up over the workers, a dead one's go");
	two_workers(&m, &a, &b);
	test_assert_int(sessiontab_workers(a), 2);
	/* the kinds and the parts are kept apart */
	test_assert(ip != sessiontab_key("user", "192.0.2.1", NULL));
	test_assert(sessiontab_key("userip", "ab", "c") !=
	    sessiontab_key("userip", "a", "bc"));
	sessiontab_add(a, ip, 1);
	sessiontab_add(a, ip, 1);
	sessiontab_add(b, ip, 1);
	sessiontab_add(b, user, 1);
	test_assert_int(sessiontab_count(a, ip), 3);
	test_assert_int(sessiontab_count(b, ip), 3);
	test_assert_int(sessiontab_count(a, user), 1);
	test_assert_int(sessiontab_count(a,
	    sessiontab_key("ip", "192.0.2.2", NULL)), 0);
	sessiontab_add(a, ip, -1);
	test_assert_int(sessiontab_count(b, ip), 2);
	/* never below zero, and a key never counted stays uncounted */
	sessiontab_add(b, user, -1);
	sessiontab_add(b, user, -1);
	test_assert_int(sessiontab_count(a, user), 0);
	sessiontab_add(b, sessiontab_key("ip", "198.51.100.9", NULL), -1);
	test_assert_int(sessiontab_count(a,
	    sessiontab_key("ip", "198.51.100.9", NULL)), 0);
	/* b's process is gone: the master clears its slot */
	sessiontab_release(m, 3);
	test_assert_int(sessiontab_count(a, ip), 1);
	test_assert_int(sessiontab_workers(a), 1);
	sessiontab_free(&b);
	sessiontab_free(&a);
	sessiontab_free(&m);
	test_end();
}

static void
test_sessiontab_churn(void)
{
	struct sessiontab *m, *a, *b;
	char ip[64];

	test_begin("sessiontab: many addresses come and go, the counts still open stay");
	two_workers(&m, &a, &b);
	sessiontab_add(a, sessiontab_key("user", "stays@example.test", NULL), 1);
	sessiontab_add(a, sessiontab_key("user", "stays@example.test", NULL), 1);
	/* each comes and goes, but every hundredth stays */
	for (unsigned int i = 0; i < 50000; i++) {
		snprintf(ip, sizeof(ip), "10.%u.%u.%u", i >> 16, (i >> 8) & 255,
		    i & 255);
		sessiontab_add(a, sessiontab_key("ip", ip, NULL), 1);
		if (i % 100 != 0)
			sessiontab_add(a, sessiontab_key("ip", ip, NULL), -1);
	}
	test_assert_int(sessiontab_count(b,
	    sessiontab_key("user", "stays@example.test", NULL)), 2);
	/* every hundredth address still has its session */
	test_assert_int(sessiontab_count(b,
	    sessiontab_key("ip", "10.0.0.0", NULL)), 1);
	snprintf(ip, sizeof(ip), "10.%u.%u.%u", 40000u >> 16,
	    (40000u >> 8) & 255, 40000u & 255);
	test_assert_int(sessiontab_count(b, sessiontab_key("ip", ip, NULL)), 1);
	test_assert_int(sessiontab_count(b,
	    sessiontab_key("ip", "10.0.0.1", NULL)), 0);
	sessiontab_free(&b);
	sessiontab_free(&a);
	sessiontab_free(&m);
	test_end();
}

static void
test_sessiontab_balance(void)
{
	struct sessiontab *m, *a, *b, *p;
	char *err = NULL;

	test_begin("sessiontab: the busier worker yields, not to one that stops");
	two_workers(&m, &a, &b);
	sessiontab_set_sessions(a, 5);
	sessiontab_set_sessions(b, 3);
	test_assert(sessiontab_should_yield(a, 1));
	test_assert(!sessiontab_should_yield(b, 1));
	test_assert(!sessiontab_should_yield(a, 2));
	/* b stops accepting: a takes everything again */
	sessiontab_set_accepting(b, false);
	test_assert(!sessiontab_should_yield(a, 1));
	sessiontab_set_accepting(b, true);
	/* b is gone */
	sessiontab_release(m, 3);
	test_assert(!sessiontab_should_yield(a, 1));
	sessiontab_free(&b);
	sessiontab_free(&a);
	sessiontab_free(&m);
	/* without a master: a table of one, never yields */
	p = sessiontab_attach(-1, -1, &err);
	test_assert(p != NULL);
	sessiontab_set_sessions(p, 100);
	test_assert(!sessiontab_should_yield(p, 0));
	sessiontab_add(p, 42, 1);
	test_assert_int(sessiontab_count(p, 42), 1);
	test_assert_int(sessiontab_workers(p), 1);
	sessiontab_free(&p);
	test_end();
}
TEST(test_sessiontab_counts)
TEST(test_sessiontab_churn)
TEST(test_sessiontab_balance)
