/*
 * buffer.c - the py_buffer resource (buffer.h).
 *
 * Threads: write/close NIFs on schedulers (a write of more than 1 MiB on a
 * dirty CPU scheduler); reads on Python threads (pymod/buffer_py.c), which
 * wait on b->cond with the GIL released, and NIFs (buffer_read.c: an
 * isolated context's child), whose processes wait for a message that
 * write and close send them (buffer_wake).  Lock: b->lock, a leaf but for
 * enif_send.
 */
#include "shared/buffer.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#define DEFAULT_CAP (64 * 1024)
#define DIRTY_WRITE (1024 * 1024)

static ErlNifResourceType *buffer_rt;

static void buffer_dtor(ErlNifEnv *env, void *obj)
{
    UNUSED(env);
    buffer_t *b = obj;
    buffer_free_waiters(b);
    free(b->data);
    pthread_cond_destroy(&b->cond);
    pthread_mutex_destroy(&b->lock);
}

int buffer_init(ErlNifEnv *env)
{
    ErlNifResourceTypeInit init = {.dtor = buffer_dtor, .members = 1};
    buffer_rt = enif_init_resource_type(env, "py_buffer", &init,
                                        ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER, NULL);
    return buffer_rt ? 0 : -1;
}

int buffer_get(ErlNifEnv *env, ERL_NIF_TERM term, buffer_t **out)
{
    return enif_get_resource(env, term, buffer_rt, (void **)out);
}

ERL_NIF_TERM buffer_term(ErlNifEnv *env, buffer_t *b)
{
    return enif_make_resource(env, b);
}

void buffer_keep(buffer_t *b)
{
    enif_keep_resource(b);
}

void buffer_release(buffer_t *b)
{
    enif_release_resource(b);
}

int buffer_wait(buffer_t *b, int (*ready)(buffer_t *b, void *arg), void *arg,
                int64_t deadline_ns)
{
    struct timespec ts = {.tv_sec = deadline_ns / 1000000000, .tv_nsec = deadline_ns % 1000000000};
    while (!b->eof && !ready(b, arg)) {
        if (deadline_ns < 0)
            pthread_cond_wait(&b->cond, &b->lock);
        else if (pthread_cond_timedwait(&b->cond, &b->lock, &ts) == ETIMEDOUT)
            return b->eof || ready(b, arg);
    }
    return 1;
}

/* (ContentLength :: non_neg_integer() | undefined) -> {ok, Buf} */
NIF(buffer_new_nif)
{
    UNUSED(argc);
    ErlNifUInt64 n = DEFAULT_CAP;
    if (argv[0] != ATOM(undefined) && !enif_get_uint64(env, argv[0], &n))
        return enif_make_badarg(env);
    buffer_t *b = enif_alloc_resource(buffer_rt, sizeof *b);
    memset(b, 0, sizeof *b);
    b->cap = n ? (size_t)n : 1;
    b->data = malloc(b->cap);
    if (!b->data) {
        enif_release_resource(b);
        return make_error(env, ATOM(enomem));
    }
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&b->lock, NULL);
    ERL_NIF_TERM t = enif_make_resource(env, b);
    enif_release_resource(b);
    return make_ok(env, t);
}

/* Lock held: room for n more bytes; an error atom, or 0. */
static ERL_NIF_TERM make_room(buffer_t *b, size_t n)
{
    if (b->len + n <= b->cap)
        return 0;
    if (b->views)
        return ATOM(view_held);
    size_t cap = b->cap;
    while (cap < b->len + n)
        cap = cap * 2;
    char *data = realloc(b->data, cap);
    if (!data)
        return ATOM(enomem);
    b->data = data;
    b->cap = cap;
    return 0;
}

static NIF(buffer_write_dirty)
{
    UNUSED(argc);
    buffer_t *b;
    ErlNifBinary bin;
    if (!buffer_get(env, argv[0], &b) || !enif_inspect_iolist_as_binary(env, argv[1], &bin))
        return enif_make_badarg(env);
    pthread_mutex_lock(&b->lock);
    ERL_NIF_TERM err = b->eof ? ATOM(closed) : make_room(b, bin.size);
    if (!err) {
        memcpy(b->data + b->len, bin.data, bin.size);
        b->len += bin.size;
        pthread_cond_broadcast(&b->cond);
        buffer_wake(b, env);
    }
    pthread_mutex_unlock(&b->lock);
    return err ? make_error(env, err) : ATOM(ok);
}

/* (Buf, Data :: iodata()) -> ok | {error, closed | view_held | enomem} */
NIF(buffer_write_nif)
{
    ErlNifBinary bin;
    buffer_t *b;
    if (!buffer_get(env, argv[0], &b) || !enif_inspect_iolist_as_binary(env, argv[1], &bin))
        return enif_make_badarg(env);
    if (bin.size > DIRTY_WRITE)
        return enif_schedule_nif(env, "buffer_write", ERL_NIF_DIRTY_JOB_CPU_BOUND,
                                 buffer_write_dirty, argc, argv);
    return buffer_write_dirty(env, argc, argv);
}

/* (Buf) -> ok: the end of the data (readers see EOF after what is left) */
NIF(buffer_close_nif)
{
    UNUSED(argc);
    buffer_t *b;
    if (!buffer_get(env, argv[0], &b))
        return enif_make_badarg(env);
    pthread_mutex_lock(&b->lock);
    b->eof = 1;
    pthread_cond_broadcast(&b->cond);
    buffer_wake(b, env);
    pthread_mutex_unlock(&b->lock);
    return ATOM(ok);
}

/* (Buf) -> #{size, read, eof, closed} */
NIF(buffer_info_nif)
{
    UNUSED(argc);
    buffer_t *b;
    if (!buffer_get(env, argv[0], &b))
        return enif_make_badarg(env);
    pthread_mutex_lock(&b->lock);
    ERL_NIF_TERM keys[] = {ATOM(size), ATOM(read), ATOM(eof), ATOM(closed)};
    ERL_NIF_TERM vals[] = {enif_make_uint64(env, b->len), enif_make_uint64(env, b->pos),
                           b->eof ? ATOM(true) : ATOM(false),
                           b->closed ? ATOM(true) : ATOM(false)};
    pthread_mutex_unlock(&b->lock);
    ERL_NIF_TERM map;
    enif_make_map_from_arrays(env, keys, vals, 4, &map);
    return map;
}
