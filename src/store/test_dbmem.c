#include "store/dbmem.h"
#include "lib/test.h"

#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void
test_dbmem(void)
{
	const sqlite3_mem_methods *m = store_dbmem_methods();
	unsigned int base = store_dbmem_slabs();
	enum { N = 5000 };
	void **p = calloc(N, sizeof(*p));
	bool ok = true;

	test_begin("store dbmem: blocks hold their bytes, empty slabs go back");
	for (int i = 0; i < N; i++) {
		int n = 1 + (i * 37) % 9000;	/* slab classes and large ones */

		p[i] = m->xMalloc(n);
		test_assert(p[i] != NULL);
		test_assert(m->xSize(p[i]) >= n);
		test_assert(((uintptr_t)p[i] & 7) == 0);
		memset(p[i], i & 0xff, (size_t)n);
	}
	test_assert(store_dbmem_slabs() > base);
	for (int i = 0; i < N && ok; i++) {
		int n = 1 + (i * 37) % 9000;
		const unsigned char *c = p[i];

		for (int k = 0; k < n && ok; k++)
			ok = c[k] == (i & 0xff);
	}
	test_assert(ok);
	/* realloc keeps the bytes, growing into another class */
	p[0] = m->xRealloc(p[0], 5000);
	test_assert(((unsigned char *)p[0])[0] == 0);
	test_assert(m->xSize(p[0]) >= 5000);
	test_assert(m->xRoundup(1) >= 1 && m->xRoundup(100) >= 100);
	for (int i = 0; i < N; i += 2)
		m->xFree(p[i]);
	for (int i = 1; i < N; i += 2)
		m->xFree(p[i]);
	/* at most the one kept per class remains */
	test_assert(store_dbmem_slabs() <= base + 17);
	/* and they are used again */
	p[0] = m->xMalloc(100);
	test_assert(p[0] != NULL && m->xSize(p[0]) >= 100);
	m->xFree(p[0]);
	m->xFree(NULL);
	free(p);
	test_end();
}
TEST(test_dbmem)

static void
test_dbmem_mapped(void)
{
	const sqlite3_mem_methods *m = store_dbmem_methods();
	/* below, at and above the size that gets a mapping of its own */
	static const int sizes[] = { 30000, 32 * 1024, 48000, 86000, 300000 };
	unsigned int slabs = store_dbmem_slabs();
	unsigned char *p, *q;
	bool ok = true;

	test_begin("store dbmem: large blocks, mapped or not, hold their bytes");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		int n = sizes[i];

		p = m->xMalloc(n);
		test_assert(p != NULL);
		test_assert(((uintptr_t)p & 7) == 0);
		test_assert_int(m->xSize(p), n);
		memset(p, 0x5a, (size_t)n);
		/* smaller: the same block; larger: moved, the bytes kept */
		test_assert(m->xRealloc(p, n - 100) == p);
		q = m->xRealloc(p, 2 * n);
		test_assert(q != NULL && m->xSize(q) >= 2 * n);
		for (int k = 0; k < n - 100 && ok; k++)
			ok = q[k] == 0x5a;
		test_assert(ok);
		memset(q, 0xa5, (size_t)(2 * n));
		m->xFree(q);
	}
	/* none of them took a slab */
	test_assert_int(store_dbmem_slabs(), slabs);
	test_end();
}
TEST(test_dbmem_mapped)
