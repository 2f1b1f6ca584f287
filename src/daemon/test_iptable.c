#include "daemon/iptable.h"
#include "lib/test.h"

static void
test_iptable(void)
{
	struct iptable t = { { 0 } };
	struct ip_entry *a, *b;

	test_begin("iptable: sessions per address, marks, expiry");
	a = iptable_get(&t, "192.0.2.1");
	a->sessions++;
	b = iptable_get(&t, "192.0.2.1");
	test_assert(a == b);
	b->sessions++;
	test_assert_int(a->sessions, 2);
	iptable_release(&t, a);
	test_assert_int(iptable_get(&t, "192.0.2.1")->sessions, 1);
	a->mark = 1000;
	iptable_release(&t, a);
	/* no session left, but marked: kept until it expires */
	test_assert(iptable_get(&t, "192.0.2.1") == a && a->mark == 1000);
	iptable_expire(&t, 999);
	test_assert(iptable_get(&t, "192.0.2.1") == a);
	iptable_expire(&t, 1001);
	b = iptable_get(&t, "192.0.2.1");
	test_assert(b->mark == 0 && b->sessions == 0);
	b->sessions++;
	iptable_release(&t, b);		/* no mark: gone */
	iptable_clear(&t);
	for (unsigned int i = 0; i < IPTABLE_BUCKETS; i++)
		test_assert(t.buckets[i] == NULL);
	test_end();
}
TEST(test_iptable)
