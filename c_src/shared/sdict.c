/*
 * sdict.c - the shared dict resource (sdict.h).
 *
 * Threads: NIFs on schedulers, Python threads through pymod/sdict_py.c.
 * Lock: d->lock, an rwlock (a leaf).  Nothing slow runs under it: terms are
 * copied in and out (a value is copied once more on every read, which is
 * what makes reads safe from any thread and any interpreter).
 *
 * Ownership: the table owns its entries, an entry its environment.  Each
 * thread keeps one spare environment (a write's copy is made in it, then
 * swapped with the entry's, whose old environment becomes the spare).
 */
#include "shared/sdict.h"

#include <pthread.h>

typedef struct entry {
    struct entry *next;
    ErlNifUInt64 hash;
    ErlNifEnv *env;
    ERL_NIF_TERM key, value;
} entry_t;

struct sdict {
    pthread_rwlock_t lock;
    entry_t **buckets;
    size_t nbuckets, size;
    int destroyed;
    ErlNifPid owner;
    ErlNifMonitor mon;
};

static ErlNifResourceType *sdict_rt;
static pthread_key_t spare_key;

/* This thread's spare environment (freed with the thread). */
static ErlNifEnv *spare_env(void)
{
    ErlNifEnv *e = pthread_getspecific(spare_key);
    if (!e) {
        e = enif_alloc_env();
        pthread_setspecific(spare_key, e);
    }
    return e;
}

static void free_spare(void *e)
{
    enif_free_env(e);
}

/* Write lock held (or the last reference gone): free every entry. */
static void clear_all(sdict_t *d)
{
    for (size_t i = 0; i < d->nbuckets; i++) {
        for (entry_t *e = d->buckets[i], *next; e; e = next) {
            next = e->next;
            enif_free_env(e->env);
            enif_free(e);
        }
    }
    if (d->buckets)
        enif_free(d->buckets);
    d->buckets = NULL;
    d->nbuckets = d->size = 0;
}

static void sdict_dtor(ErlNifEnv *env, void *obj)
{
    UNUSED(env);
    sdict_t *d = obj;
    clear_all(d);
    pthread_rwlock_destroy(&d->lock);
}

/* The owner died: the dict goes with it (as in erlang_python 4.x). */
static void sdict_down(ErlNifEnv *env, void *obj, ErlNifPid *pid, ErlNifMonitor *mon)
{
    UNUSED(env);
    UNUSED(pid);
    UNUSED(mon);
    sdict_destroy(obj);
}

int sdict_init(ErlNifEnv *env)
{
    ErlNifResourceTypeInit init = {.dtor = sdict_dtor, .down = sdict_down, .members = 3};
    sdict_rt = enif_init_resource_type(env, "py_shared_dict", &init,
                                     ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER, NULL);
    if (!sdict_rt || pthread_key_create(&spare_key, free_spare) != 0)
        return -1;
    return 0;
}

void sdict_unload(void)
{
    /* No destructor may point into an unloaded library: the spare
     * environments of threads still running are leaked instead. */
    pthread_key_delete(spare_key);
}

int sdict_get_resource(ErlNifEnv *env, ERL_NIF_TERM term, sdict_t **out)
{
    return enif_get_resource(env, term, sdict_rt, (void **)out);
}

ERL_NIF_TERM sdict_term(ErlNifEnv *env, sdict_t *d)
{
    return enif_make_resource(env, d);
}

void sdict_keep(sdict_t *d)
{
    enif_keep_resource(d);
}

void sdict_release(sdict_t *d)
{
    enif_release_resource(d);
}

static ErlNifUInt64 hash_of(ERL_NIF_TERM key)
{
    return enif_hash(ERL_NIF_INTERNAL_HASH, key, 0x9e3779b9);
}

/* Lock held: the link that holds key (or the empty link at its bucket's end). */
static entry_t **find(sdict_t *d, ERL_NIF_TERM key, ErlNifUInt64 h)
{
    entry_t **pp = &d->buckets[h & (d->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->hash == h && enif_is_identical((*pp)->key, key))
            return pp;
    return pp;
}

int sdict_lookup(sdict_t *d, ErlNifEnv *env, ERL_NIF_TERM key, ErlNifEnv *into,
                 ERL_NIF_TERM *out)
{
    UNUSED(env);
    ErlNifUInt64 h = hash_of(key);
    pthread_rwlock_rdlock(&d->lock);
    int rc = d->destroyed ? SD_DESTROYED : SD_MISSING;
    if (!d->destroyed && d->nbuckets) {
        entry_t *e = *find(d, key, h);
        if (e) {
            *out = enif_make_copy(into, e->value);
            rc = SD_OK;
        }
    }
    pthread_rwlock_unlock(&d->lock);
    return rc;
}

/* Write lock held: double the buckets when the table is fuller than 1. */
static void grow(sdict_t *d)
{
    size_t n = d->nbuckets ? d->nbuckets * 2 : 16;
    entry_t **b = enif_alloc(n * sizeof *b);
    if (!b)
        return; /* stay at this size: chains get longer, nothing is lost */
    memset(b, 0, n * sizeof *b);
    for (size_t i = 0; i < d->nbuckets; i++) {
        for (entry_t *e = d->buckets[i], *next; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    }
    if (d->buckets)
        enif_free(d->buckets);
    d->buckets = b;
    d->nbuckets = n;
}

int sdict_store(sdict_t *d, ErlNifEnv *env, ERL_NIF_TERM key, ERL_NIF_TERM value)
{
    UNUSED(env);
    ErlNifUInt64 h = hash_of(key);
    ErlNifEnv *spare = spare_env();
    ERL_NIF_TERM k = enif_make_copy(spare, key);
    ERL_NIF_TERM v = enif_make_copy(spare, value);
    entry_t *fresh = NULL;
    pthread_rwlock_wrlock(&d->lock);
    if (d->destroyed) {
        pthread_rwlock_unlock(&d->lock);
        enif_clear_env(spare);
        return SD_DESTROYED;
    }
    if (d->size >= d->nbuckets)
        grow(d);
    entry_t **pp = d->nbuckets ? find(d, key, h) : NULL;
    ErlNifEnv *old = NULL;
    if (pp && *pp) {
        entry_t *e = *pp;
        old = e->env;
        e->env = spare;
        e->key = k;
        e->value = v;
    } else if (pp && (fresh = enif_alloc(sizeof *fresh))) {
        fresh->hash = h;
        fresh->env = spare;
        fresh->key = k;
        fresh->value = v;
        fresh->next = NULL;
        *pp = fresh;
        d->size++;
    }
    pthread_rwlock_unlock(&d->lock);
    if (old) { /* the old entry's environment is this thread's spare now */
        enif_clear_env(old);
        pthread_setspecific(spare_key, old);
    } else if (fresh) {
        pthread_setspecific(spare_key, NULL); /* the spare went into the entry */
    } else {
        enif_clear_env(spare);
        return SD_MISSING; /* out of memory */
    }
    return SD_OK;
}

int sdict_remove(sdict_t *d, ErlNifEnv *env, ERL_NIF_TERM key)
{
    UNUSED(env);
    ErlNifUInt64 h = hash_of(key);
    entry_t *gone = NULL;
    pthread_rwlock_wrlock(&d->lock);
    int rc = d->destroyed ? SD_DESTROYED : SD_MISSING;
    if (!d->destroyed && d->nbuckets) {
        entry_t **pp = find(d, key, h);
        if ((gone = *pp)) {
            *pp = gone->next;
            d->size--;
            rc = SD_OK;
        }
    }
    pthread_rwlock_unlock(&d->lock);
    if (gone) {
        enif_free_env(gone->env);
        enif_free(gone);
    }
    return rc;
}

int sdict_keys(sdict_t *d, ErlNifEnv *into, ERL_NIF_TERM *out)
{
    pthread_rwlock_rdlock(&d->lock);
    int rc = d->destroyed ? SD_DESTROYED : SD_OK;
    ERL_NIF_TERM list = enif_make_list(into, 0);
    for (size_t i = 0; rc == SD_OK && i < d->nbuckets; i++)
        for (entry_t *e = d->buckets[i]; e; e = e->next)
            list = enif_make_list_cell(into, enif_make_copy(into, e->key), list);
    pthread_rwlock_unlock(&d->lock);
    *out = list;
    return rc;
}

int sdict_size(sdict_t *d, size_t *out)
{
    pthread_rwlock_rdlock(&d->lock);
    int rc = d->destroyed ? SD_DESTROYED : SD_OK;
    *out = d->size;
    pthread_rwlock_unlock(&d->lock);
    return rc;
}

int sdict_destroy(sdict_t *d)
{
    pthread_rwlock_wrlock(&d->lock);
    int was = d->destroyed;
    d->destroyed = 1;
    clear_all(d);
    pthread_rwlock_unlock(&d->lock);
    return was ? SD_DESTROYED : SD_OK;
}

/* ------------------------------------------------------------------- NIFs */

static ERL_NIF_TERM destroyed(ErlNifEnv *env)
{
    return make_error(env, ATOM(destroyed));
}

/* () -> {ok, Dict}: owned by the caller (destroyed when it dies) */
NIF(sdict_new_nif)
{
    UNUSED(argc);
    UNUSED(argv);
    sdict_t *d = enif_alloc_resource(sdict_rt, sizeof *d);
    memset(d, 0, sizeof *d);
    pthread_rwlock_init(&d->lock, NULL);
    enif_self(env, &d->owner);
    enif_monitor_process(env, d, &d->owner, &d->mon);
    ERL_NIF_TERM t = enif_make_resource(env, d);
    enif_release_resource(d);
    return make_ok(env, t);
}

/* (Dict, Key) -> {ok, Value} | not_found | {error, destroyed} */
NIF(sdict_get_nif)
{
    UNUSED(argc);
    sdict_t *d;
    ERL_NIF_TERM v;
    if (!sdict_get_resource(env, argv[0], &d))
        return enif_make_badarg(env);
    switch (sdict_lookup(d, env, argv[1], env, &v)) {
    case SD_OK: return make_ok(env, v);
    case SD_MISSING: return ATOM(not_found);
    default: return destroyed(env);
    }
}

/* (Dict, Key, Value) -> ok | {error, destroyed} */
NIF(sdict_set_nif)
{
    UNUSED(argc);
    sdict_t *d;
    if (!sdict_get_resource(env, argv[0], &d))
        return enif_make_badarg(env);
    switch (sdict_store(d, env, argv[1], argv[2])) {
    case SD_OK: return ATOM(ok);
    case SD_MISSING: return make_error(env, ATOM(enomem));
    default: return destroyed(env);
    }
}

/* (Dict, Key) -> ok | {error, destroyed} (ok when the key is absent) */
NIF(sdict_del_nif)
{
    UNUSED(argc);
    sdict_t *d;
    if (!sdict_get_resource(env, argv[0], &d))
        return enif_make_badarg(env);
    return sdict_remove(d, env, argv[1]) == SD_DESTROYED ? destroyed(env) : ATOM(ok);
}

/* (Dict) -> {ok, Keys} | {error, destroyed} */
NIF(sdict_keys_nif)
{
    UNUSED(argc);
    sdict_t *d;
    ERL_NIF_TERM keys;
    if (!sdict_get_resource(env, argv[0], &d))
        return enif_make_badarg(env);
    return sdict_keys(d, env, &keys) == SD_OK ? make_ok(env, keys) : destroyed(env);
}

/* (Dict) -> ok (again: ok too) */
NIF(sdict_destroy_nif)
{
    UNUSED(argc);
    sdict_t *d;
    if (!sdict_get_resource(env, argv[0], &d))
        return enif_make_badarg(env);
    sdict_destroy(d);
    enif_demonitor_process(env, d, &d->mon);
    return ATOM(ok);
}
