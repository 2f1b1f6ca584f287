/*
 * store/dbmem: an allocator of SQLite's own, so that the memory of an
 * index connection closed while its account is idle goes back to the
 * system instead of staying between other long-lived allocations.
 *
 * store_dbmem_install() must run before the process's first SQLite call
 * (the imap worker calls it at start); afterwards it fails with -1 and
 * SQLite keeps the general heap. Thread-safe.
 */
#ifndef TEGAMI_STORE_DBMEM_H
#define TEGAMI_STORE_DBMEM_H

int store_dbmem_install(void);
/* Gives back the pages of the empty slabs kept for reuse (from a timer). */
void store_dbmem_trim(void);
/* Slabs mapped now (for tests). */
unsigned int store_dbmem_slabs(void);
/* The allocator's functions, for its unit test (sqlite3_mem_methods). */
struct sqlite3_mem_methods;
const struct sqlite3_mem_methods *store_dbmem_methods(void);

#endif
