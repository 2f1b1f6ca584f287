/*
 * sessiontab: the session counts the imap workers share (per address, per
 * account, per account and address), so the limits hold however the
 * kernel spreads connections over the workers, and the workers can take
 * turns accepting (the one with fewest sessions goes first).
 *
 * The master makes one shared memory file (memfd) of SESSIONTAB_SLOTS
 * slots and gives every imap worker the file and a slot of its own. A
 * worker writes only its slot and reads all of them; a slot whose worker
 * is gone is cleared by the master (sessiontab_release) and by the next
 * worker that takes it. Keys are 64-bit hashes of their strings: two
 * strings sharing one would share a count, at odds of 2^-64.
 *
 * What another worker reads can be a moment old: two logins of one
 * account at the same instant in two workers may both get in at the
 * limit. The limits are there against abuse, not for exact accounting.
 *
 * Without a shared file (a worker started by hand, the unit tests) the
 * table is private: one slot, this process only.
 */
#ifndef TEGAMI_SESSIONTAB_H
#define TEGAMI_SESSIONTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SESSIONTAB_SLOTS 16
/* keys one slot holds: three per IMAP session (address, account, both);
   only the pages in use are memory (1 MiB of address space per slot) */
#define SESSIONTAB_KEYS 65280

struct sessiontab;

/* The master's file: created, mapped, its fd to hand to the workers. */
struct sessiontab *sessiontab_create(char **error_r);
int sessiontab_fd(const struct sessiontab *t);
/* A slot no child holds (-1: none), or the slot of a child gone. */
void sessiontab_release(struct sessiontab *t, int slot);

/* A worker's view: fd from the master (-1: a private table), its slot. */
struct sessiontab *sessiontab_attach(int fd, int slot, char **error_r);
void sessiontab_free(struct sessiontab **t);

/* This worker takes connections (false while it stops). */
void sessiontab_set_accepting(struct sessiontab *t, bool accepting);

/* Counting: kind is "ip", "user" or "userip"; value the string. */
uint64_t sessiontab_key(const char *kind, const char *value,
    const char *value2);
/* Adds delta (+1, -1) to the key's count in this worker's slot. */
void sessiontab_add(struct sessiontab *t, uint64_t key, int delta);
/* The key's count over every live worker, this one included. */
unsigned int sessiontab_count(const struct sessiontab *t, uint64_t key);

/* Connections open in this worker (IMAP and POP3), for the balance. */
void sessiontab_set_sessions(struct sessiontab *t, unsigned int n);
/*
 * Should this worker leave the next connection to another? Yes when some
 * other live, accepting worker has fewer than ours minus slack.
 */
bool sessiontab_should_yield(const struct sessiontab *t, unsigned int slack);
/* Workers alive in the table (this one included). */
unsigned int sessiontab_workers(const struct sessiontab *t);

#endif
