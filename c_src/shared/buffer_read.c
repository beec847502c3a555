/*
 * buffer_read.c - Erlang's reads of a py_buffer (buffer.h): what an
 * isolated context's child does to a buffer runs in the VM, through
 * src/py_bridge.erl, with these NIFs.
 *
 * They share the resource with erlang.PyBuffer (pymod/buffer_py.c): one
 * read position, one reader-closed flag, one lock.  None blocks: a take
 * that cannot be served yet registers the calling process, which gets
 * {py_buffer_ready, Ref} at the next write or at the writer's close
 * (buffer_wake, from buffer.c's write and close NIFs).
 *
 * Threads: normal schedulers (a take copies at most what the caller asks,
 * which py_bridge keeps to 1 MiB).  Lock: b->lock, a leaf but for
 * enif_send to the waiters.
 */
#include "shared/buffer.h"

#include <string.h> /* memmem, memrchr */

/* A waiting Erlang process: told {py_buffer_ready, Ref} once. */
typedef struct buf_waiter {
    struct buf_waiter *next;
    ErlNifPid pid;
    ErlNifEnv *env;
    ERL_NIF_TERM ref;
} buf_waiter_t;

static void free_waiter(buf_waiter_t *w)
{
    enif_free_env(w->env);
    enif_free(w);
}

void buffer_free_waiters(buffer_t *b)
{
    for (buf_waiter_t *w = b->waiters, *next; w; w = next) {
        next = w->next;
        free_waiter(w);
    }
    b->waiters = NULL;
}

void buffer_wake(buffer_t *b, ErlNifEnv *caller_env)
{
    buf_waiter_t *w = b->waiters;
    b->waiters = NULL;
    while (w) {
        buf_waiter_t *next = w->next;
        ErlNifEnv *msg_env = enif_alloc_env();
        ERL_NIF_TERM msg = enif_make_tuple2(msg_env, ATOM(py_buffer_ready),
                                            enif_make_copy(msg_env, w->ref));
        enif_send(caller_env, &w->pid, msg_env, msg);
        enif_free_env(msg_env);
        free_waiter(w);
        w = next;
    }
}

/* Lock held: drop the waiters whose process has died (killed while it
 * waited, so it never cancelled), then add the caller with Ref. */
static void add_waiter(ErlNifEnv *env, buffer_t *b, ERL_NIF_TERM ref)
{
    for (buf_waiter_t **pp = &b->waiters; *pp;) {
        buf_waiter_t *x = *pp;
        if (!enif_is_process_alive(env, &x->pid)) {
            *pp = x->next;
            free_waiter(x);
        } else {
            pp = &x->next;
        }
    }
    buf_waiter_t *w = enif_alloc(sizeof *w);
    enif_self(env, &w->pid);
    w->env = enif_alloc_env();
    w->ref = enif_make_copy(w->env, ref);
    w->next = b->waiters;
    b->waiters = w;
}

enum take_mode { TAKE_ANY, TAKE_LINE, TAKE_LINES, TAKE_FULL };

static int get_mode(ERL_NIF_TERM t, enum take_mode *out)
{
    if (t == ATOM(any))
        *out = TAKE_ANY;
    else if (t == ATOM(line))
        *out = TAKE_LINE;
    else if (t == ATOM(lines))
        *out = TAKE_LINES;
    else if (t == ATOM(full))
        *out = TAKE_FULL;
    else
        return 0;
    return 1;
}

/* Lock held: how many bytes from the read position a take of `mode' with
 * at most `max' bytes gets now, or -1 when it must wait for more (never
 * after the writer's close):
 *   any   - at least one byte (none when max is 0);
 *   line  - through the first newline, or max bytes;
 *   lines - through the last newline within max bytes, or as `line';
 *   full  - max bytes;
 * and what is left, after the writer's close. */
static long long takeable(const buffer_t *b, size_t max, enum take_mode mode)
{
    size_t avail = b->len - b->pos;
    size_t span = avail < max ? avail : max;
    const char *at = b->data + b->pos;
    const char *nl = NULL;
    switch (mode) {
    case TAKE_ANY:
        return span > 0 || max == 0 || b->eof ? (long long)span : -1;
    case TAKE_LINE:
        nl = span ? memchr(at, '\n', span) : NULL;
        break;
    case TAKE_LINES:
        nl = span ? memrchr(at, '\n', span) : NULL;
        break;
    case TAKE_FULL:
        break;
    }
    if (nl)
        return (long long)(nl - at) + 1;
    return avail >= max || b->eof ? (long long)span : -1;
}

/* (Buf, Max, Mode, Wait :: false | reference()) ->
 *     {ok, Bin} | eof | empty | closed          (Wait = false: take it)
 *   | ready | wait | closed                     (Wait = Ref: only look)
 * Mode: any | line | lines | full (takeable above).  eof: the writer closed
 * it and nothing is left; closed: the reader's side is closed.  With a Ref,
 * ready says a take would be served now (nothing is taken); wait that the
 * caller gets {py_buffer_ready, Ref} at the next write or close. */
NIF(buffer_take_nif)
{
    UNUSED(argc);
    buffer_t *b;
    ErlNifUInt64 max;
    enum take_mode mode;
    int look = enif_is_ref(env, argv[3]);
    if (!buffer_get(env, argv[0], &b) || !enif_get_uint64(env, argv[1], &max) ||
        !get_mode(argv[2], &mode) || (!look && argv[3] != ATOM(false)))
        return enif_make_badarg(env);
    ERL_NIF_TERM r;
    pthread_mutex_lock(&b->lock);
    long long n = b->closed ? -2 : takeable(b, (size_t)max, mode);
    if (n == -2) {
        r = ATOM(closed);
    } else if (look) {
        r = n >= 0 ? ATOM(ready) : ATOM(wait);
        if (n < 0)
            add_waiter(env, b, argv[3]);
    } else if (n < 0) {
        r = ATOM(empty);
    } else if (n == 0 && max > 0 && b->eof) {
        r = ATOM(eof);
    } else {
        ERL_NIF_TERM bin;
        unsigned char *p = enif_make_new_binary(env, (size_t)n, &bin);
        memcpy(p, b->data + b->pos, (size_t)n);
        b->pos += (size_t)n;
        r = make_ok(env, bin);
    }
    pthread_mutex_unlock(&b->lock);
    return r;
}

/* (Buf, Ref) -> ok: the wait buffer_take_nif registered is over */
NIF(buffer_cancel_wait_nif)
{
    UNUSED(argc);
    buffer_t *b;
    if (!buffer_get(env, argv[0], &b) || !enif_is_ref(env, argv[1]))
        return enif_make_badarg(env);
    buf_waiter_t *found = NULL;
    pthread_mutex_lock(&b->lock);
    for (buf_waiter_t **pp = &b->waiters; *pp; pp = &(*pp)->next) {
        if (enif_is_identical((*pp)->ref, argv[1])) {
            found = *pp;
            *pp = found->next;
            break;
        }
    }
    pthread_mutex_unlock(&b->lock);
    if (found)
        free_waiter(found);
    return ATOM(ok);
}

/* (Buf, Offset, Max) -> Bin: up to Max bytes from Offset past the read
 * position, which does not move (a copy of the unread bytes) */
NIF(buffer_peek_nif)
{
    UNUSED(argc);
    buffer_t *b;
    ErlNifUInt64 off, max;
    if (!buffer_get(env, argv[0], &b) || !enif_get_uint64(env, argv[1], &off) ||
        !enif_get_uint64(env, argv[2], &max))
        return enif_make_badarg(env);
    ERL_NIF_TERM bin;
    pthread_mutex_lock(&b->lock);
    size_t avail = b->len - b->pos;
    size_t from = off < avail ? (size_t)off : avail;
    size_t n = avail - from < max ? avail - from : (size_t)max;
    unsigned char *p = enif_make_new_binary(env, n, &bin);
    memcpy(p, b->data + b->pos + from, n);
    pthread_mutex_unlock(&b->lock);
    return bin;
}

/* (Buf, Offset, Whence :: 0..2) -> {ok, Position}
 *   | {error, closed | whence | not_eof | outside}: as PyBuffer.seek */
NIF(buffer_seek_nif)
{
    UNUSED(argc);
    buffer_t *b;
    ErlNifSInt64 offset;
    int whence;
    if (!buffer_get(env, argv[0], &b) || !enif_get_int64(env, argv[1], &offset) ||
        !enif_get_int(env, argv[2], &whence))
        return enif_make_badarg(env);
    pthread_mutex_lock(&b->lock);
    int64_t base = whence == 0 ? 0 : whence == 1 ? (int64_t)b->pos : (int64_t)b->len;
    int64_t to = offset > INT64_MAX - base ? -1 : base + offset;
    ERL_NIF_TERM err = b->closed                  ? ATOM(closed)
                       : whence < 0 || whence > 2 ? ATOM(whence)
                       : whence == 2 && !b->eof   ? ATOM(not_eof)
                       : to < 0 || (uint64_t)to > b->len ? ATOM(outside)
                                                         : 0;
    if (!err)
        b->pos = (size_t)to;
    pthread_mutex_unlock(&b->lock);
    return err ? make_error(env, err) : make_ok(env, enif_make_int64(env, to));
}

/* (Buf, Sub :: binary(), Start, End) -> Index | -1: where Sub is in the
 * unread bytes [Start, End) (from the read position), as PyBuffer.find */
NIF(buffer_find_nif)
{
    UNUSED(argc);
    buffer_t *b;
    ErlNifBinary sub;
    ErlNifSInt64 start, end;
    if (!buffer_get(env, argv[0], &b) || !enif_inspect_binary(env, argv[1], &sub) ||
        !enif_get_int64(env, argv[2], &start) || !enif_get_int64(env, argv[3], &end))
        return enif_make_badarg(env);
    int64_t found = -1;
    pthread_mutex_lock(&b->lock);
    int64_t avail = (int64_t)(b->len - b->pos);
    if (end > avail)
        end = avail;
    if (start >= 0 && start <= end && (int64_t)sub.size <= end - start) {
        const char *base = b->data + b->pos;
        const char *hit = sub.size == 1 ? memchr(base + start, sub.data[0], end - start)
                                        : memmem(base + start, end - start, sub.data, sub.size);
        found = hit ? hit - base : -1;
    }
    pthread_mutex_unlock(&b->lock);
    return enif_make_int64(env, found);
}

/* (Buf) -> ok: the reader's side is closed (PyBuffer.close) */
NIF(buffer_close_reader_nif)
{
    UNUSED(argc);
    buffer_t *b;
    if (!buffer_get(env, argv[0], &b))
        return enif_make_badarg(env);
    pthread_mutex_lock(&b->lock);
    b->closed = 1;
    pthread_mutex_unlock(&b->lock);
    return ATOM(ok);
}
