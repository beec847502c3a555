/*
 * callers.h - the processes a context serves: one entry per live Erlang
 * process that has sent it a request, holding the context's monitor on it.
 *
 * The monitor is what makes a caller's death a signal: its queued requests
 * are dropped and its running ones interrupted at once (context.c's down
 * callback), whatever the request was (a module call keeps no namespace,
 * yet its caller is watched all the same).  An entry also says where the
 * process's erlang.call messages go (its callback helper, py_context.erl)
 * and, for a helper, whose namespace its own requests use.
 *
 * Threads: every function here is called with the context's lock held; the
 * table is the context's own (no lock of its own).
 */
#ifndef PY_CALLERS_H
#define PY_CALLERS_H

#include "core/nif.h"

enum {
    CALLER_HELPER = 1, /* helper is set: erlang.call messages go there */
    CALLER_NS_OF = 2,  /* ns_of is set: a helper, using ns_of's namespace */
    CALLER_STATE = 4,  /* has a namespace or a last exception to drop at death */
};

typedef struct caller {
    struct caller *next; /* bucket chain */
    ErlNifPid pid;
    ErlNifMonitor mon;
    ErlNifPid helper;
    ErlNifPid ns_of;
    unsigned flags;
} caller_t;

typedef struct {
    caller_t **buckets;
    unsigned mask; /* buckets - 1; 0 before the first entry */
    unsigned n;
} callers_t;

/* The entry of pid, or NULL. */
caller_t *callers_find(callers_t *t, const ErlNifPid *pid);

/* A new entry for pid (not yet in the table: see callers_find), with no
 * flags and no monitor; NULL when out of memory. */
caller_t *callers_add(callers_t *t, const ErlNifPid *pid);

/* Take pid's entry out of the table; the caller frees it (enif_free). */
caller_t *callers_take(callers_t *t, const ErlNifPid *pid);

/* Entries whose helper is pid go back to receiving their own callbacks. */
void callers_drop_helper(callers_t *t, const ErlNifPid *pid);

/* Free every entry and the buckets. */
void callers_free(callers_t *t);

#endif
