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
