/*
 * callers.c - the table of processes a context serves (callers.h): a hash
 * table with chained buckets, keyed by the pid term, grown by doubling.
 *
 * Threads and locks: the owning context's lock is held by every caller.
 */
#include "context/callers.h"

#define CALLERS_MIN_BUCKETS 16

static unsigned bucket_of(const callers_t *t, const ErlNifPid *pid)
{
    uint64_t h = (uint64_t)pid->pid * 0x9E3779B97F4A7C15ull;
    return (unsigned)(h >> 32) & t->mask;
}

caller_t *callers_find(callers_t *t, const ErlNifPid *pid)
{
    if (!t->buckets)
        return NULL;
    for (caller_t *c = t->buckets[bucket_of(t, pid)]; c; c = c->next)
        if (enif_compare_pids(&c->pid, pid) == 0)
            return c;
    return NULL;
}

/* Double the buckets (or make the first ones); 0, or -1 out of memory. */
static int grow(callers_t *t)
{
    unsigned old = t->buckets ? t->mask + 1 : 0;
    unsigned size = old ? 2 * old : CALLERS_MIN_BUCKETS;
    caller_t **b = enif_alloc(size * sizeof *b);
    if (!b)
        return -1;
    memset(b, 0, size * sizeof *b);
    caller_t **from = t->buckets;
    t->buckets = b;
    t->mask = size - 1;
    for (unsigned i = 0; i < old; i++) {
        for (caller_t *c = from[i], *next; c; c = next) {
            next = c->next;
            unsigned k = bucket_of(t, &c->pid);
            c->next = b[k];
            b[k] = c;
        }
    }
    enif_free(from);
    return 0;
}

caller_t *callers_add(callers_t *t, const ErlNifPid *pid)
{
    if ((!t->buckets || t->n >= 2 * (t->mask + 1)) && grow(t) < 0 && !t->buckets)
        return NULL;
    caller_t *c = enif_alloc(sizeof *c);
    if (!c)
        return NULL;
    memset(c, 0, sizeof *c);
    c->pid = *pid;
    unsigned k = bucket_of(t, pid);
    c->next = t->buckets[k];
    t->buckets[k] = c;
    t->n++;
    return c;
}

caller_t *callers_take(callers_t *t, const ErlNifPid *pid)
{
    if (!t->buckets)
        return NULL;
    for (caller_t **pp = &t->buckets[bucket_of(t, pid)]; *pp; pp = &(*pp)->next) {
        caller_t *c = *pp;
        if (enif_compare_pids(&c->pid, pid) == 0) {
            *pp = c->next;
            t->n--;
            return c;
        }
    }
    return NULL;
}

void callers_drop_helper(callers_t *t, const ErlNifPid *pid)
{
    for (unsigned i = 0; t->buckets && i <= t->mask; i++)
        for (caller_t *c = t->buckets[i]; c; c = c->next)
            if ((c->flags & CALLER_HELPER) && enif_compare_pids(&c->helper, pid) == 0)
                c->flags &= ~CALLER_HELPER;
}

void callers_free(callers_t *t)
{
    for (unsigned i = 0; t->buckets && i <= t->mask; i++) {
        for (caller_t *c = t->buckets[i], *next; c; c = next) {
            next = c->next;
            enif_free(c);
        }
    }
    enif_free(t->buckets);
    t->buckets = NULL;
    t->mask = 0;
    t->n = 0;
}
