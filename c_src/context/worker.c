/*
 * worker.c - the context's thread and its one request queue.
 *
 * Hot path (docs/architecture.md, "A synchronous call"): the caller runs submit (submit.c) on a normal
 * scheduler, which copies the request into its own environment and
 * enqueues it; the worker thread takes it with the GIL held, runs it
 * (exec.c), and enif_sends {Tag, Ref, Result} straight to the caller.  No
 * Erlang process in between, no dirty scheduler held while Python runs.
 *
 * The thread keeps the GIL while requests are queued (batching: one
 * acquisition serves many requests; CPython's switch interval still hands
 * the GIL to other contexts), then releases it, spins for spin_us (a caller
 * that sends its next request at once finds the thread awake), and sleeps
 * on ctx->cond.
 *
 * Reentrancy: a request that calls Erlang (erlang.call) parks in worker_park
 * with the GIL released and keeps serving the queue, so a callback that calls
 * back into Python on this context is a nested request.  Running requests
 * form a stack (ctx->current, ->outer); an interrupt or a caller's death
 * marks any of them cancelled.
 *
 * Locks: see context.c.
 */
#include "context/context_int.h"
#include "runtime/runtime.h"
#include "context/exec.h"
#include "convert/convert.h"
#include "context/deadline.h"
#include <sched.h>
#include <time.h>


/* ------------------------------------------------------------ worker thread */

static void reply(request_t *req, ERL_NIF_TERM result)
{
    ERL_NIF_TERM msg = enif_make_tuple3(req->env, req->tag, req->ref, result);
    enif_send(NULL, &req->caller, req->env, msg);
}

/* The innermost request this thread runs (erlang.call and erlang.self need it). */
static __thread request_t *tls_request;
static __thread context_t *tls_context;

request_t *worker_current(context_t **ctx)
{
    *ctx = tls_context;
    return tls_request;
}

/* A context thread keeps two environments for its erlang.call callbacks
 * (the message and the reply) instead of allocating them for every call:
 * it makes them often and lives long.  Freed when the thread exits.  Other
 * threads allocate as they go. */
static __thread ErlNifEnv *env_cache[2];

ErlNifEnv *worker_env_take(int i, int cached)
{
    ErlNifEnv *e = cached ? env_cache[i] : NULL;
    if (!e)
        return enif_alloc_env();
    env_cache[i] = NULL;
    return e;
}

void worker_env_give(int i, ErlNifEnv *e, int cached)
{
    if (cached && !env_cache[i]) {
        enif_clear_env(e);
        env_cache[i] = e;
    } else {
        enif_free_env(e);
    }
}

static void env_cache_free(void)
{
    for (int i = 0; i < 2; i++) {
        if (env_cache[i])
            enif_free_env(env_cache[i]);
        env_cache[i] = NULL;
    }
}

/* req is already ctx->current (take_work pushed it on the stack). */
static void run_one(context_t *ctx, request_t *req, int stopping)
{
    request_t *outer_tls = tls_request;
    tls_request = req;
    tls_context = ctx;
    ERL_NIF_TERM result = stopping ? make_error(req->env, ATOM(closed))
                                   : exec_run(ctx, req);
    tls_request = outer_tls;
    enif_mutex_lock(ctx->lock);
    int cancelled = req->cancelled;
    int interrupted = req->interrupted;
    ctx->current = req->outer;
    enif_mutex_unlock(ctx->lock);
    /* An interrupt that lost the race must not hit the next request (the
     * runtime thread sets `interrupted` whenever it raises one). */
    if (interrupted)
        PyThreadState_SetAsyncExc(ctx->py_ident, NULL);
    if (!cancelled && !req->noreply)
        reply(req, result);
    __atomic_store_n(&ctx->replied_id, req->id, __ATOMIC_RELEASE);
    exec_release();
    request_put(ctx, req);
}

/* Take the next request (made current) and the side lists, under the lock. */
static request_t *take_work(context_t *ctx, pid_node_t **dead, decref_node_t **decrefs,
                            int *stopping)
{
    enif_mutex_lock(ctx->lock);
    request_t *req = ctx->head;
    if (req) {
        ctx->head = req->next;
        if (!ctx->head)
            ctx->tail = NULL;
        ctx->depth--;
        req->outer = ctx->current;
        ctx->current = req;
    }
    *dead = ctx->dead;
    *decrefs = ctx->decrefs;
    ctx->dead = NULL;
    ctx->decrefs = NULL;
    *stopping = ctx->state != CTX_RUNNING;
    enif_mutex_unlock(ctx->lock);
    return req;
}

static void serve_side_lists(context_t *ctx, pid_node_t *dead, decref_node_t *decrefs)
{
    decref_drain(decrefs);
    while (dead) {
        pid_node_t *n = dead->next;
        context_forget_pid(ctx, &dead->pid);
        enif_free(dead);
        dead = n;
    }
}

static int64_t now_us(void)
{
    return deadline_now() / 1000;
}

/* GIL released: stay awake for up to spin_us until ready(ctx, arg) holds
 * (1 when it did), so that a caller that answers at once finds the thread
 * running (bench, quiet machine: a sleeping thread is woken in ~45 us, a
 * spinning one in ~1 us).  Only the first SPIN_HOT_US burn the core; after
 * that the thread yields it at every check: on a busy machine (two cores
 * here) a thread that spins takes the very core the caller's scheduler needs
 * to send the next request (bench under load: 62 us per call with a 50 us
 * pause-spin, 10 us when yielding). */
#define SPIN_HOT_US 10
static int spin_until(context_t *ctx, int (*ready)(context_t *, const void *), const void *arg)
{
    if (!ctx->spin_us)
        return 0;
    int64_t start = now_us(), until = start + ctx->spin_us;
    int64_t hot = start + (ctx->spin_us < SPIN_HOT_US ? ctx->spin_us : SPIN_HOT_US);
    for (unsigned i = 1;; i++) {
        if (ready(ctx, arg))
            return 1;
        if (i & 63) {
            cpu_relax();
            continue;
        }
        int64_t now = now_us();
        if (now > until)
            return 0;
        if (now > hot)
            sched_yield();
    }
}

static int has_work(context_t *ctx)
{
    return __atomic_load_n(&ctx->head, __ATOMIC_ACQUIRE) ||
           __atomic_load_n(&ctx->dead, __ATOMIC_ACQUIRE) ||
           __atomic_load_n(&ctx->decrefs, __ATOMIC_ACQUIRE) ||
           __atomic_load_n(&ctx->state, __ATOMIC_ACQUIRE) != CTX_RUNNING;
}

static int has_work_p(context_t *ctx, const void *unused)
{
    UNUSED(unused);
    return has_work(ctx);
}

/* GIL released: wait a little awake, then sleep until there is work. */
static void wait_for_work(context_t *ctx)
{
    if (spin_until(ctx, has_work_p, NULL))
        return;
    enif_mutex_lock(ctx->lock);
    ctx->sleeping++;
    while (!ctx->head && !ctx->dead && !ctx->decrefs && ctx->state == CTX_RUNNING)
        enif_cond_wait(ctx->cond, ctx->lock);
    ctx->sleeping--;
    enif_mutex_unlock(ctx->lock);
}

typedef struct {
    request_t *req;
    const int *done;
} park_t;

/* A parked request can go on: its reply came, or it must stop, or a
 * nested request waits. */
static int park_over(context_t *ctx, const void *arg)
{
    const park_t *p = arg;
    return __atomic_load_n(p->done, __ATOMIC_ACQUIRE) ||
           __atomic_load_n(&p->req->cancelled, __ATOMIC_ACQUIRE) ||
           __atomic_load_n(&ctx->head, __ATOMIC_ACQUIRE) ||
           __atomic_load_n(&ctx->state, __ATOMIC_ACQUIRE) != CTX_RUNNING;
}

/* Mark req parked (no asynchronous interrupt lands in it) or unparked;
 * returns whether it may go on. */
static int set_parked(context_t *ctx, request_t *req, int parked)
{
    enif_mutex_lock(ctx->lock);
    req->parked = parked;
    int live = !req->cancelled && ctx->state == CTX_RUNNING;
    if (!live && !parked)
        req->interrupted = 1; /* raised synchronously by the caller */
    enif_mutex_unlock(ctx->lock);
    return live;
}

int worker_park(context_t *ctx, request_t *req, const int *done)
{
    park_t p = {.req = req, .done = done};
    PyThreadState *ts = PyEval_SaveThread();
    /* Parked from here on, spinning included: a cancel must be raised here,
     * where it waits, never asynchronously into its cleanup code later. */
    set_parked(ctx, req, 1);
    int rc;
    for (;;) {
        spin_until(ctx, park_over, &p); /* a callback's reply is quick */
        enif_mutex_lock(ctx->lock);
        ctx->sleeping++;
        while (!__atomic_load_n(done, __ATOMIC_ACQUIRE) && !req->cancelled && !ctx->head &&
               ctx->state == CTX_RUNNING)
            enif_cond_wait(ctx->cond, ctx->lock);
        ctx->sleeping--;
        if (__atomic_load_n(done, __ATOMIC_ACQUIRE) || req->cancelled ||
            ctx->state != CTX_RUNNING) {
            rc = __atomic_load_n(done, __ATOMIC_ACQUIRE) ? 0 : -1;
            if (rc < 0)
                req->interrupted = 1; /* the caller raises it now, not later */
            req->parked = 0;
            enif_mutex_unlock(ctx->lock);
            break;
        }
        enif_mutex_unlock(ctx->lock);
        pid_node_t *dead;
        decref_node_t *decrefs;
        int stopping;
        PyEval_RestoreThread(ts);
        request_t *nested = take_work(ctx, &dead, &decrefs, &stopping);
        serve_side_lists(ctx, dead, decrefs);
        if (nested)
            run_one(ctx, nested, stopping);
        ts = PyEval_SaveThread();
    }
    PyEval_RestoreThread(ts);
    return rc;
}

void worker_raise_interrupted(context_t *ctx)
{
    /* An asynchronous one may have been set before this request reached a
     * point where it raises CallInterrupted itself: drop it, or it would
     * fire again inside the cleanup code (a generator's finally, say). */
    PyThreadState_SetAsyncExc(ctx->py_ident, NULL);
    PyErr_SetNone(py_types.interrupted);
}

/* ctx->lock held: send msg to `to' for req unless req is cancelled (0),
 * or not (-1).  Under the lock, so that an interrupt either sees the
 * message already sent (the caller flushes it) or stops it from being sent
 * at all. */
static int send_live_locked(context_t *ctx, request_t *req, const ErlNifPid *to,
                            ErlNifEnv *msg_env, ERL_NIF_TERM msg)
{
    int live = !req->cancelled && ctx->state == CTX_RUNNING;
    if (live)
        live = enif_send(NULL, to, msg_env, msg);
    else
        req->interrupted = 1; /* the caller raises CallInterrupted now */
    /* For reply_wait, the count first, then whose: a caller spinning for
     * its reply stops at a callback (its helper's included: that one may
     * need the caller's scheduler), a helper at the next callback. */
    if (live) {
        __atomic_store_n(&ctx->sent_n, ++req->sent, __ATOMIC_RELEASE);
        __atomic_store_n(&ctx->sent_id, req->id, __ATOMIC_RELEASE);
    }
    return live ? 0 : -1;
}

int worker_send_live(context_t *ctx, request_t *req, ErlNifEnv *msg_env, ERL_NIF_TERM msg)
{
    enif_mutex_lock(ctx->lock);
    int rc = send_live_locked(ctx, req, &req->caller, msg_env, msg);
    enif_mutex_unlock(ctx->lock);
    return rc;
}

int worker_send_callback(context_t *ctx, request_t *req, ErlNifEnv *msg_env, ERL_NIF_TERM id,
                         ERL_NIF_TERM name, ERL_NIF_TERM args)
{
    enif_mutex_lock(ctx->lock);
    caller_t *c = callers_find(&ctx->callers, &req->caller);
    const ErlNifPid *to = &req->caller;
    ERL_NIF_TERM tag;
    if (c && (c->flags & CALLER_HELPER)) {
        /* What the helper needs to spin for the request's next callback
         * (py_nif:reply_wait/3) after answering this one. */
        to = &c->helper;
        tag = enif_make_tuple3(msg_env, enif_make_resource(msg_env, ctx),
                               enif_make_uint64(msg_env, req->id),
                               enif_make_uint64(msg_env, req->sent + 1));
    } else {
        tag = enif_make_copy(msg_env, req->ref);
    }
    ERL_NIF_TERM msg = enif_make_tuple5(msg_env, ATOM(py_callback), tag, id, name, args);
    int rc = send_live_locked(ctx, req, to, msg_env, msg);
    enif_mutex_unlock(ctx->lock);
    return rc;
}

int worker_stream_item(PyObject *item)
{
    context_t *ctx;
    request_t *req = worker_current(&ctx);
    if (!req) {
        PyErr_SetString(PyExc_RuntimeError, "stream items are sent only inside a request");
        return -1;
    }
    ErlNifEnv *env = enif_alloc_env();
    ERL_NIF_TERM term;
    int rc = to_term(env, ctx, item, &term);
    while (rc == 0 && __atomic_load_n(&req->credit, __ATOMIC_ACQUIRE) <= 0) {
        if (worker_park(ctx, req, &req->credit) < 0) {
            worker_raise_interrupted(ctx);
            rc = -1;
        }
    }
    if (rc == 0) {
        __atomic_sub_fetch(&req->credit, 1, __ATOMIC_ACQ_REL);
        ERL_NIF_TERM msg = enif_make_tuple3(env, ATOM(py_stream), enif_make_copy(env, req->ref),
                                            enif_make_tuple2(env, ATOM(data), term));
        if (worker_send_live(ctx, req, env, msg) < 0) {
            worker_raise_interrupted(ctx);
            rc = -1;
        }
    }
    enif_free_env(env);
    return rc;
}

int worker_sleep(double secs)
{
    context_t *ctx;
    request_t *req = worker_current(&ctx);
    int64_t until = now_us() + (int64_t)(secs * 1e6);
    int live = 1;
    if (req)
        set_parked(ctx, req, 1);
    Py_BEGIN_ALLOW_THREADS
    for (int64_t left; live && (left = until - now_us()) > 0;) {
        /* In a request, wake every 2 ms to see whether it was cancelled. */
        int64_t slice = req && left > 2000 ? 2000 : left;
        struct timespec ts = {.tv_sec = slice / 1000000, .tv_nsec = (slice % 1000000) * 1000};
        nanosleep(&ts, NULL);
        live = !req || (!__atomic_load_n(&req->cancelled, __ATOMIC_ACQUIRE) &&
                        __atomic_load_n(&ctx->state, __ATOMIC_ACQUIRE) == CTX_RUNNING);
    }
    Py_END_ALLOW_THREADS
    if (req)
        live = set_parked(ctx, req, 0);
    if (live)
        return 0;
    worker_raise_interrupted(ctx);
    return -1;
}

int worker_block(context_t *ctx, request_t *req, int blocked)
{
    return set_parked(ctx, req, blocked);
}

void worker_redirect(context_t *ctx, request_t *req, const ErlNifPid *to)
{
    enif_mutex_lock(ctx->lock);
    req->caller = *to;
    enif_mutex_unlock(ctx->lock);
}

int worker_live(context_t *ctx, request_t *req)
{
    return !__atomic_load_n(&req->cancelled, __ATOMIC_ACQUIRE) &&
           __atomic_load_n(&ctx->state, __ATOMIC_ACQUIRE) == CTX_RUNNING;
}

void worker_wake(context_t *ctx)
{
    enif_mutex_lock(ctx->lock);
    enif_cond_broadcast(ctx->cond);
    enif_mutex_unlock(ctx->lock);
}

static int worker_start(context_t *ctx)
{
    if (interp_attach(ctx) < 0)
        return -1;
    ctx->py_ident = PyThread_get_thread_ident();
    ctx->namespaces = PyDict_New();
    ctx->last_exc = PyDict_New();
    ctx->data = PyDict_New();
    if (!ctx->namespaces || !ctx->last_exc || !ctx->data) {
        PyErr_Clear();
        Py_CLEAR(ctx->namespaces);
        Py_CLEAR(ctx->last_exc);
        Py_CLEAR(ctx->data);
        snprintf(ctx->start_error, sizeof ctx->start_error, "out of memory");
        interp_detach(ctx);
        return -1;
    }
    return 0;
}

void *worker_main(void *arg)
{
    context_t *ctx = arg;
    int ok = worker_start(ctx) == 0;
    enif_mutex_lock(ctx->lock);
    ctx->init_ok = ok;
    ctx->state = ok ? CTX_RUNNING : CTX_STOPPED;
    enif_cond_broadcast(ctx->cond);
    enif_mutex_unlock(ctx->lock);

    while (ok) { /* GIL held at the top of the loop */
        pid_node_t *dead;
        decref_node_t *decrefs;
        int stopping;
        request_t *req = take_work(ctx, &dead, &decrefs, &stopping);
        serve_side_lists(ctx, dead, decrefs);
        if (req) {
            run_one(ctx, req, stopping);
            continue;
        }
        if (stopping)
            break;
        PyThreadState *ts = PyEval_SaveThread();
        wait_for_work(ctx);
        PyEval_RestoreThread(ts);
    }
    if (ok) {
        Py_CLEAR(ctx->namespaces);
        Py_CLEAR(ctx->last_exc);
        Py_CLEAR(ctx->data);
        interp_detach(ctx);
    }
    env_cache_free();
    enif_mutex_lock(ctx->lock);
    ctx->state = CTX_STOPPED;
    ctx->py_ident = 0;
    /* Stopped by its owner's death, not by context_stop: no one will join
     * this thread (and its 16 MiB stack) unless the runtime thread does.
     * (When it failed to start, context_new joins it.) */
    int orphan = ok && !ctx->joined;
    ctx->joined = 1;
    enif_cond_broadcast(ctx->cond);
    enif_mutex_unlock(ctx->lock);
    deadline_untrack(ctx); /* its requests are all answered */
    if (orphan)
        runtime_request_join(enif_thread_self());
    enif_release_resource(ctx);
    return NULL;
}
