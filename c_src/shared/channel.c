/*
 * channel.c - the channel resource (channel.h).
 *
 * Threads: senders are NIFs (schedulers; a large term moves to a dirty CPU
 * scheduler) and Python threads; receivers are Python threads (GIL released
 * while they wait) and NIFs (never blocking: an Erlang process waits for a
 * {py_channel_ready, Ref} message).  Lock: ch->lock, a leaf but for the
 * waiters' wake functions, which only signal (notifier.c's lock, enif_send).
 *
 * Ownership: a chunk's environment holds copies of its messages until all
 * are taken; the emptied chunk is kept for the next (one spare) or freed.
 * Waiters that hold a channel keep it (channel_keep); owned waiters (an
 * Erlang process's) are freed by the channel.
 */
#include "shared/channel.h"

#include <errno.h>
#include <pthread.h>
#include <time.h>

#define CHUNK_MSGS 64
/* A non-binary term estimated bigger than this is copied on a dirty CPU
 * scheduler (copying it holds the channel's lock). */
#define DIRTY_BYTES (64 * 1024)
#define SIZE_DEPTH 64

typedef struct chunk {
    struct chunk *next;
    ErlNifEnv *env;
    unsigned n, read;
    ERL_NIF_TERM t[CHUNK_MSGS];
    size_t sz[CHUNK_MSGS];
} chunk_t;

struct channel {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    chunk_t *head, *tail, *spare;
    size_t bytes, max_size;
    uint64_t count;
    int closed, bytes_mode, sync_waiting;
    chan_waiter_t *waiters;
};

/* A waiting Erlang process (channel_wait_nif): told {py_channel_ready, Ref}. */
typedef struct {
    chan_waiter_t w;
    ErlNifPid pid;
    ErlNifEnv *env;
    ERL_NIF_TERM ref;
} pid_waiter_t;

static ErlNifResourceType *channel_rt;

int64_t shared_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void free_chunk(chunk_t *c)
{
    enif_free_env(c->env);
    enif_free(c);
}

static void free_waiter(chan_waiter_t *w)
{
    pid_waiter_t *p = (pid_waiter_t *)w;
    enif_free_env(p->env);
    enif_free(p);
}

static void channel_dtor(ErlNifEnv *env, void *obj)
{
    UNUSED(env);
    channel_t *ch = obj;
    for (chunk_t *c = ch->head, *next; c; c = next) {
        next = c->next;
        free_chunk(c);
    }
    if (ch->spare)
        free_chunk(ch->spare);
    for (chan_waiter_t *w = ch->waiters, *next; w; w = next) {
        next = w->next;
        if (w->owned)
            free_waiter(w);
    }
    pthread_cond_destroy(&ch->cond);
    pthread_mutex_destroy(&ch->lock);
}

int channel_init(ErlNifEnv *env)
{
    ErlNifResourceTypeInit init = {.dtor = channel_dtor, .members = 1};
    channel_rt = enif_init_resource_type(env, "py_channel", &init,
                                         ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER, NULL);
    return channel_rt ? 0 : -1;
}

int channel_get(ErlNifEnv *env, ERL_NIF_TERM term, channel_t **out)
{
    return enif_get_resource(env, term, channel_rt, (void **)out);
}

ERL_NIF_TERM channel_term(ErlNifEnv *env, channel_t *ch)
{
    return enif_make_resource(env, ch);
}

void channel_keep(channel_t *ch)
{
    enif_keep_resource(ch);
}

void channel_release(channel_t *ch)
{
    enif_release_resource(ch);
}

int channel_is_bytes(channel_t *ch)
{
    return ch->bytes_mode;
}

/* ------------------------------------------------------------------ queue */

/* Wake every registered waiter once (lock held). */
static void wake_waiters(channel_t *ch, ErlNifEnv *caller_env)
{
    chan_waiter_t *w = ch->waiters;
    ch->waiters = NULL;
    while (w) {
        chan_waiter_t *next = w->next;
        w->next = NULL;
        w->wake(w, caller_env);
        if (w->owned)
            free_waiter(w);
        w = next;
    }
}

int channel_take(channel_t *ch, ErlNifEnv *into, ERL_NIF_TERM *out)
{
    pthread_mutex_lock(&ch->lock);
    chunk_t *c = ch->head;
    if (!c || c->read == c->n) {
        int rc = ch->closed ? CH_CLOSED : CH_EMPTY;
        pthread_mutex_unlock(&ch->lock);
        return rc;
    }
    unsigned i = c->read++;
    *out = enif_make_copy(into, c->t[i]);
    ch->bytes -= c->sz[i];
    ch->count--;
    if (c->read == c->n) { /* emptied: reuse it in place, or drop it */
        if (c == ch->tail) {
            c->n = c->read = 0;
            enif_clear_env(c->env);
        } else {
            ch->head = c->next;
            c->next = NULL;
            c->n = c->read = 0;
            enif_clear_env(c->env);
            if (ch->spare)
                free_chunk(c);
            else
                ch->spare = c;
        }
    }
    pthread_mutex_unlock(&ch->lock);
    return CH_OK;
}

/* Lock held: the chunk the next message goes to, or NULL (out of memory). */
static chunk_t *writable(channel_t *ch)
{
    if (ch->tail && ch->tail->n < CHUNK_MSGS)
        return ch->tail;
    chunk_t *c = ch->spare;
    if (c) {
        ch->spare = NULL;
    } else {
        c = enif_alloc(sizeof *c);
        if (!c)
            return NULL;
        c->env = enif_alloc_env();
        c->n = c->read = 0;
    }
    c->next = NULL;
    if (ch->tail)
        ch->tail->next = c;
    else
        ch->head = c;
    ch->tail = c;
    return c;
}

static int push_sized(channel_t *ch, ErlNifEnv *caller_env, ERL_NIF_TERM t, size_t size)
{
    pthread_mutex_lock(&ch->lock);
    int rc = CH_OK;
    chunk_t *c = NULL;
    if (ch->closed)
        rc = CH_CLOSED;
    else if (ch->max_size && ch->bytes > 0 && ch->bytes + size > ch->max_size)
        rc = CH_BUSY; /* one message larger than max_size still goes into an empty queue */
    else if (!(c = writable(ch)))
        rc = CH_BUSY;
    if (rc == CH_OK) {
        c->t[c->n] = enif_make_copy(c->env, t);
        c->sz[c->n++] = size;
        ch->bytes += size;
        ch->count++;
        if (ch->sync_waiting)
            pthread_cond_signal(&ch->cond);
        if (ch->waiters)
            wake_waiters(ch, caller_env);
    }
    pthread_mutex_unlock(&ch->lock);
    return rc;
}

/* The bytes a term takes, roughly (its binaries' bytes, 8 per word). */
static size_t term_bytes(ErlNifEnv *env, ERL_NIF_TERM t, int depth)
{
    ErlNifBinary bin;
    if (depth > SIZE_DEPTH)
        return 8;
    switch (enif_term_type(env, t)) {
    case ERL_NIF_TERM_TYPE_BITSTRING:
        return enif_inspect_binary(env, t, &bin) ? bin.size : 8;
    case ERL_NIF_TERM_TYPE_TUPLE: {
        int arity;
        const ERL_NIF_TERM *e;
        enif_get_tuple(env, t, &arity, &e);
        size_t n = 8;
        for (int i = 0; i < arity; i++)
            n += term_bytes(env, e[i], depth + 1);
        return n;
    }
    case ERL_NIF_TERM_TYPE_LIST: {
        size_t n = 0;
        ERL_NIF_TERM head;
        while (enif_get_list_cell(env, t, &head, &t))
            n += 16 + term_bytes(env, head, depth + 1);
        return n + 8;
    }
    case ERL_NIF_TERM_TYPE_MAP: {
        size_t n = 16;
        ERL_NIF_TERM k, v;
        ErlNifMapIterator it;
        if (!enif_map_iterator_create(env, t, &it, ERL_NIF_MAP_ITERATOR_FIRST))
            return n;
        while (enif_map_iterator_get_pair(env, &it, &k, &v)) {
            n += term_bytes(env, k, depth + 1) + term_bytes(env, v, depth + 1);
            enif_map_iterator_next(env, &it);
        }
        enif_map_iterator_destroy(env, &it);
        return n;
    }
    default:
        return 8;
    }
}

int channel_push(channel_t *ch, ErlNifEnv *caller_env, ErlNifEnv *env, ERL_NIF_TERM t)
{
    return push_sized(ch, caller_env, t, term_bytes(env, t, 0));
}

/* Iterations a receiver spins (GIL released) before it sleeps: a sender
 * on another core usually comes within them, and a sleeping receiver costs
 * the sender a futex wake per message. */
#define SPIN_LOOPS 2000

int channel_wait(channel_t *ch, int64_t deadline_ns)
{
    for (int i = 0; i < SPIN_LOOPS; i++) {
        if (__atomic_load_n(&ch->count, __ATOMIC_ACQUIRE) ||
            __atomic_load_n(&ch->closed, __ATOMIC_ACQUIRE))
            return CH_OK;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    }
    struct timespec ts = {.tv_sec = deadline_ns / 1000000000, .tv_nsec = deadline_ns % 1000000000};
    int rc = CH_OK;
    pthread_mutex_lock(&ch->lock);
    ch->sync_waiting++;
    while (!ch->closed && ch->count == 0) {
        if (deadline_ns < 0) {
            pthread_cond_wait(&ch->cond, &ch->lock);
        } else if (pthread_cond_timedwait(&ch->cond, &ch->lock, &ts) == ETIMEDOUT) {
            rc = ch->closed || ch->count ? CH_OK : CH_TIMEOUT;
            break;
        }
    }
    ch->sync_waiting--;
    pthread_mutex_unlock(&ch->lock);
    return rc;
}

int channel_add_waiter(channel_t *ch, chan_waiter_t *w)
{
    pthread_mutex_lock(&ch->lock);
    int ready = ch->closed || ch->count > 0;
    if (!ready) {
        w->next = ch->waiters;
        ch->waiters = w;
    }
    pthread_mutex_unlock(&ch->lock);
    return !ready;
}

/* Lock held: unlink the waiter that matches (by pointer, or by pid waiter
 * ref when w is NULL); the unlinked one, or NULL. */
static chan_waiter_t *unlink_waiter(channel_t *ch, chan_waiter_t *w, ErlNifEnv *env,
                                    ERL_NIF_TERM ref)
{
    for (chan_waiter_t **pp = &ch->waiters; *pp; pp = &(*pp)->next) {
        chan_waiter_t *x = *pp;
        if (w ? x == w : x->owned && enif_is_identical(((pid_waiter_t *)x)->ref, ref)) {
            *pp = x->next;
            x->next = NULL;
            return x;
        }
    }
    UNUSED(env);
    return NULL;
}

int channel_remove_waiter(channel_t *ch, chan_waiter_t *w)
{
    pthread_mutex_lock(&ch->lock);
    int found = unlink_waiter(ch, w, NULL, 0) != NULL;
    pthread_mutex_unlock(&ch->lock);
    return found;
}

static void close_with(channel_t *ch, ErlNifEnv *caller_env)
{
    pthread_mutex_lock(&ch->lock);
    ch->closed = 1;
    pthread_cond_broadcast(&ch->cond);
    wake_waiters(ch, caller_env);
    pthread_mutex_unlock(&ch->lock);
}

void channel_close(channel_t *ch)
{
    close_with(ch, NULL);
}

void channel_stats(channel_t *ch, size_t *bytes, uint64_t *count, size_t *max, int *closed)
{
    pthread_mutex_lock(&ch->lock);
    *bytes = ch->bytes;
    *count = ch->count;
    *max = ch->max_size;
    *closed = ch->closed;
    pthread_mutex_unlock(&ch->lock);
}

/* ------------------------------------------------------------------- NIFs */

/* (MaxSize :: non_neg_integer(), Bytes :: boolean()) -> {ok, Ch}; 0: no limit */
NIF(channel_new_nif)
{
    UNUSED(argc);
    ErlNifUInt64 max;
    if (!enif_get_uint64(env, argv[0], &max) ||
        (argv[1] != ATOM(true) && argv[1] != ATOM(false)))
        return enif_make_badarg(env);
    channel_t *ch = enif_alloc_resource(channel_rt, sizeof *ch);
    memset(ch, 0, sizeof *ch);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&ch->cond, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&ch->lock, NULL);
    ch->max_size = (size_t)max;
    ch->bytes_mode = argv[1] == ATOM(true);
    ERL_NIF_TERM t = enif_make_resource(env, ch);
    enif_release_resource(ch);
    return make_ok(env, t);
}

static ERL_NIF_TERM send_result(ErlNifEnv *env, int rc)
{
    return rc == CH_OK ? ATOM(ok) : rc == CH_BUSY ? ATOM(busy) : make_error(env, ATOM(closed));
}

static NIF(channel_send_dirty)
{
    UNUSED(argc);
    channel_t *ch;
    if (!channel_get(env, argv[0], &ch))
        return enif_make_badarg(env);
    return send_result(env, channel_push(ch, env, env, argv[1]));
}

/* (Ch, Term) -> ok | busy | {error, closed}; a byte channel takes binaries */
NIF(channel_send_nif)
{
    channel_t *ch;
    ErlNifBinary bin;
    if (!channel_get(env, argv[0], &ch))
        return enif_make_badarg(env);
    if (ch->bytes_mode) {
        if (!enif_inspect_binary(env, argv[1], &bin))
            return enif_make_badarg(env);
        return send_result(env, push_sized(ch, env, argv[1], bin.size));
    }
    if (enif_inspect_binary(env, argv[1], &bin))
        return send_result(env, push_sized(ch, env, argv[1], bin.size));
    size_t size = term_bytes(env, argv[1], 0);
    if (size > DIRTY_BYTES)
        return enif_schedule_nif(env, "channel_send", ERL_NIF_DIRTY_JOB_CPU_BOUND,
                                 channel_send_dirty, argc, argv);
    return send_result(env, push_sized(ch, env, argv[1], size));
}

/* (Ch) -> ok */
NIF(channel_close_nif)
{
    UNUSED(argc);
    channel_t *ch;
    if (!channel_get(env, argv[0], &ch))
        return enif_make_badarg(env);
    close_with(ch, env);
    return ATOM(ok);
}

/* (Ch) -> #{size, count, max_size, closed} */
NIF(channel_info_nif)
{
    UNUSED(argc);
    channel_t *ch;
    if (!channel_get(env, argv[0], &ch))
        return enif_make_badarg(env);
    size_t bytes, max;
    uint64_t count;
    int closed;
    channel_stats(ch, &bytes, &count, &max, &closed);
    ERL_NIF_TERM keys[] = {ATOM(size), ATOM(count), ATOM(max_size), ATOM(closed)};
    ERL_NIF_TERM vals[] = {enif_make_uint64(env, bytes), enif_make_uint64(env, count),
                           max ? enif_make_uint64(env, max) : ATOM(infinity),
                           closed ? ATOM(true) : ATOM(false)};
    ERL_NIF_TERM map;
    enif_make_map_from_arrays(env, keys, vals, 4, &map);
    return map;
}

/* (Ch) -> {ok, Term} | empty | closed */
NIF(channel_try_receive_nif)
{
    UNUSED(argc);
    channel_t *ch;
    ERL_NIF_TERM t;
    if (!channel_get(env, argv[0], &ch))
        return enif_make_badarg(env);
    switch (channel_take(ch, env, &t)) {
    case CH_OK: return make_ok(env, t);
    case CH_EMPTY: return ATOM(empty);
    default: return ATOM(closed);
    }
}

static void wake_pid(chan_waiter_t *w, ErlNifEnv *caller_env)
{
    pid_waiter_t *p = (pid_waiter_t *)w;
    ErlNifEnv *msg_env = enif_alloc_env();
    ERL_NIF_TERM msg = enif_make_tuple2(msg_env, ATOM(py_channel_ready),
                                        enif_make_copy(msg_env, p->ref));
    enif_send(caller_env, &p->pid, msg_env, msg);
    enif_free_env(msg_env);
}

/* (Ch, Ref) -> ok | ready: {py_channel_ready, Ref} comes to the caller at
 * the next message or the close (ready: one is there already) */
NIF(channel_wait_nif)
{
    UNUSED(argc);
    channel_t *ch;
    if (!channel_get(env, argv[0], &ch) || !enif_is_ref(env, argv[1]))
        return enif_make_badarg(env);
    pid_waiter_t *p = enif_alloc(sizeof *p);
    p->w.wake = wake_pid;
    p->w.owned = 1;
    p->w.next = NULL;
    enif_self(env, &p->pid);
    p->env = enif_alloc_env();
    p->ref = enif_make_copy(p->env, argv[1]);
    if (channel_add_waiter(ch, &p->w))
        return ATOM(ok);
    free_waiter(&p->w);
    return ATOM(ready);
}

/* (Ch, Ref) -> ok: the wait of channel_wait_nif is over */
NIF(channel_cancel_wait_nif)
{
    UNUSED(argc);
    channel_t *ch;
    if (!channel_get(env, argv[0], &ch) || !enif_is_ref(env, argv[1]))
        return enif_make_badarg(env);
    pthread_mutex_lock(&ch->lock);
    chan_waiter_t *w = unlink_waiter(ch, NULL, env, argv[1]);
    pthread_mutex_unlock(&ch->lock);
    if (w)
        free_waiter(w);
    return ATOM(ok);
}
