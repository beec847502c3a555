/*
 * context.c - the Context resource and its worker thread.
 *
 * Hot path (DESIGN.md): the caller runs submit on a normal scheduler, which
 * copies the request into its own environment and enqueues it; the worker
 * thread takes it with the GIL held, runs it (exec.c), and enif_sends
 * {Tag, Ref, Result} straight to the caller.  No Erlang process in between,
 * no dirty scheduler held while Python runs.
 *
 * Threads: one "py_context" thread per context, with its own PyThreadState
 * on the main interpreter.  It keeps the GIL while requests are queued
 * (batching: one acquisition serves many requests; CPython's switch interval
 * still hands the GIL to other contexts), then releases it, spins for
 * spin_us (a caller that sends its next request at once finds the thread
 * awake), and sleeps on the condition variable.
 *
 * Locks: ctx->lock guards the queue, current, state and the side lists
 * (dead pids, deferred decrefs).  It is never held while taking the GIL and
 * never while running Python.  Lock order: GIL, then ctx->lock.
 *
 * Ownership: the worker keeps the resource alive until it exits.  Each
 * request owns its environment; the queue owns queued requests, the worker
 * the current one.  Namespaces (globals per caller pid) live in a dict only
 * the worker touches; a monitor on the caller drops them when it dies.
 */
#include "context.h"
#include "runtime.h"
#include "exec.h"
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

enum { CTX_RUNNING, CTX_STOPPING, CTX_STOPPED };

typedef struct pid_node {
    struct pid_node *next;
    ErlNifPid pid;
} pid_node_t;

typedef struct obj_node {
    struct obj_node *next;
    PyObject *obj;
} obj_node_t;

struct context {
    ErlNifMutex *lock;
    ErlNifCond *cond;
    request_t *head, *tail;
    unsigned long depth;
    request_t *current;
    int state;
    int sleeping;
    int joined;
    pid_node_t *dead;
    obj_node_t *decrefs;
    ErlNifTid tid;
    ErlNifPid owner;
    ErlNifMonitor owner_mon;
    uint64_t generation;
    uint64_t next_id;
    unsigned spin_us;
    /* worker thread only (GIL held) */
    unsigned long py_ident;
    PyThreadState *ts;
    PyObject *namespaces;   /* pid key -> globals dict */
    PyObject *last_exc;     /* pid key -> exception */
    int init_ok;
};

static ErlNifResourceType *context_type;

/* ------------------------------------------------------- resource callbacks */

static void context_dtor(ErlNifEnv *env, void *obj)
{
    UNUSED(env);
    context_t *ctx = obj;
    /* The worker holds a reference while it runs, so it is gone by now. */
    if (ctx->lock)
        enif_mutex_destroy(ctx->lock);
    if (ctx->cond)
        enif_cond_destroy(ctx->cond);
}

static void request_free(request_t *req)
{
    enif_free_env(req->env);
    enif_free(req);
}

/* Drop queued requests of a dead caller (not casts: they outlive it). */
static void drop_queued_of(context_t *ctx, const ErlNifPid *pid)
{
    request_t **pp = &ctx->head, *prev = NULL;
    while (*pp) {
        request_t *r = *pp;
        if (!r->noreply && enif_compare_pids(&r->caller, pid) == 0) {
            *pp = r->next;
            if (ctx->tail == r)
                ctx->tail = prev;
            ctx->depth--;
            request_free(r);
        } else {
            prev = r;
            pp = &r->next;
        }
    }
}

static void context_down(ErlNifEnv *env, void *obj, ErlNifPid *pid, ErlNifMonitor *mon)
{
    UNUSED(env);
    context_t *ctx = obj;
    enif_mutex_lock(ctx->lock);
    if (enif_compare_monitors(mon, &ctx->owner_mon) == 0) {
        if (ctx->state == CTX_RUNNING)
            ctx->state = CTX_STOPPING;
    } else {
        pid_node_t *n = enif_alloc(sizeof *n);
        if (n) {
            n->pid = *pid;
            n->next = ctx->dead;
            ctx->dead = n;
        }
        drop_queued_of(ctx, pid);
        request_t *cur = ctx->current;
        if (cur && !cur->noreply && !cur->cancelled &&
            enif_compare_pids(&cur->caller, pid) == 0) {
            cur->cancelled = 1;
            runtime_request_interrupt(ctx, cur->id);
        }
    }
    enif_cond_signal(ctx->cond);
    enif_mutex_unlock(ctx->lock);
}

int context_init(ErlNifEnv *env)
{
    ErlNifResourceTypeInit init = {.dtor = context_dtor, .down = context_down, .members = 3};
    context_type = enif_init_resource_type(env, "py_context", &init,
                                           ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER, NULL);
    return context_type ? 0 : -1;
}

int context_get(ErlNifEnv *env, ERL_NIF_TERM term, context_t **out)
{
    return enif_get_resource(env, term, context_type, (void **)out);
}

uint64_t context_generation(context_t *ctx)
{
    return ctx->generation;
}

void context_defer_decref(context_t *ctx, PyObject *obj)
{
    enif_mutex_lock(ctx->lock);
    if (ctx->state == CTX_RUNNING) {
        obj_node_t *n = enif_alloc(sizeof *n);
        if (n) {
            n->obj = obj;
            n->next = ctx->decrefs;
            ctx->decrefs = n;
            if (ctx->sleeping)
                enif_cond_signal(ctx->cond);
        }
        enif_mutex_unlock(ctx->lock);
        return;
    }
    enif_mutex_unlock(ctx->lock);
    runtime_defer_decref(ctx->generation, obj);
}

void context_raise_interrupt(context_t *ctx, uint64_t req_id)
{
    enif_mutex_lock(ctx->lock);
    if (ctx->current && ctx->current->id == req_id && ctx->py_ident)
        PyThreadState_SetAsyncExc(ctx->py_ident, py_types.interrupted);
    enif_mutex_unlock(ctx->lock);
}

/* --------------------------------------------------------------- namespaces */

static PyObject *pid_key(const ErlNifPid *pid)
{
    return PyLong_FromUnsignedLongLong((unsigned long long)pid->pid);
}

PyObject *context_namespace(context_t *ctx, const ErlNifPid *pid)
{
    PyObject *key = pid_key(pid);
    if (!key)
        return NULL;
    PyObject *ns = PyDict_GetItemWithError(ctx->namespaces, key);
    if (ns || PyErr_Occurred()) {
        Py_DECREF(key);
        return ns;
    }
    ns = PyDict_New();
    if (!ns || PyDict_SetItemString(ns, "__builtins__", py_types.builtins) < 0 ||
        PyDict_SetItemString(ns, "__name__", py_types.main_name) < 0 ||
        PyDict_SetItem(ctx->namespaces, key, ns) < 0) {
        Py_XDECREF(ns);
        Py_DECREF(key);
        return NULL;
    }
    Py_DECREF(ns); /* the namespaces dict holds it */
    Py_DECREF(key);
    ErlNifMonitor mon;
    if (enif_monitor_process(NULL, ctx, pid, &mon) != 0) {
        /* Already dead: drop it at the next turn of the loop. */
        enif_mutex_lock(ctx->lock);
        pid_node_t *n = enif_alloc(sizeof *n);
        if (n) {
            n->pid = *pid;
            n->next = ctx->dead;
            ctx->dead = n;
        }
        enif_mutex_unlock(ctx->lock);
    }
    return ns;
}

void context_set_last_exception(context_t *ctx, const ErlNifPid *pid, PyObject *exc)
{
    PyObject *key = pid_key(pid);
    if (key && PyDict_SetItem(ctx->last_exc, key, exc) < 0)
        PyErr_Clear();
    Py_XDECREF(key);
}

PyObject *context_last_exception(context_t *ctx, const ErlNifPid *pid)
{
    PyObject *key = pid_key(pid);
    PyObject *exc = key ? PyDict_GetItemWithError(ctx->last_exc, key) : NULL;
    Py_XDECREF(key);
    PyErr_Clear();
    return exc;
}

static void forget_pid(context_t *ctx, const ErlNifPid *pid)
{
    PyObject *key = pid_key(pid);
    if (!key) {
        PyErr_Clear();
        return;
    }
    if (PyDict_DelItem(ctx->namespaces, key) < 0)
        PyErr_Clear();
    if (PyDict_DelItem(ctx->last_exc, key) < 0)
        PyErr_Clear();
    Py_DECREF(key);
}

/* ------------------------------------------------------------ worker thread */

static void reply(request_t *req, ERL_NIF_TERM result)
{
    ERL_NIF_TERM msg = enif_make_tuple3(req->env, req->tag, req->ref, result);
    enif_send(NULL, &req->caller, req->env, msg);
}

static void run_one(context_t *ctx, request_t *req, int stopping)
{
    ERL_NIF_TERM result = stopping ? make_error(req->env, ATOM(closed))
                                   : exec_run(ctx, req);
    enif_mutex_lock(ctx->lock);
    int cancelled = req->cancelled;
    ctx->current = NULL;
    enif_mutex_unlock(ctx->lock);
    /* An interrupt that lost the race must not hit the next request. */
    PyThreadState_SetAsyncExc(ctx->py_ident, NULL);
    if (!cancelled && !req->noreply)
        reply(req, result);
    request_free(req);
}

/* Take the next request (made current) and the side lists, under the lock. */
static request_t *take_work(context_t *ctx, pid_node_t **dead, obj_node_t **decrefs,
                            int *stopping)
{
    enif_mutex_lock(ctx->lock);
    request_t *req = ctx->head;
    if (req) {
        ctx->head = req->next;
        if (!ctx->head)
            ctx->tail = NULL;
        ctx->depth--;
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

static void serve_side_lists(context_t *ctx, pid_node_t *dead, obj_node_t *decrefs)
{
    while (decrefs) {
        obj_node_t *n = decrefs->next;
        Py_DECREF(decrefs->obj);
        enif_free(decrefs);
        decrefs = n;
    }
    while (dead) {
        pid_node_t *n = dead->next;
        forget_pid(ctx, &dead->pid);
        enif_free(dead);
        dead = n;
    }
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int has_work(context_t *ctx)
{
    return __atomic_load_n(&ctx->head, __ATOMIC_ACQUIRE) ||
           __atomic_load_n(&ctx->dead, __ATOMIC_ACQUIRE) ||
           __atomic_load_n(&ctx->decrefs, __ATOMIC_ACQUIRE) ||
           __atomic_load_n(&ctx->state, __ATOMIC_ACQUIRE) != CTX_RUNNING;
}

/* GIL released: spin a little, then sleep until there is work. */
static void wait_for_work(context_t *ctx)
{
    if (ctx->spin_us) {
        int64_t until = now_us() + ctx->spin_us;
        for (unsigned i = 1;; i++) {
            if (has_work(ctx))
                return;
            cpu_relax();
            if ((i & 63) == 0 && now_us() > until)
                break;
        }
    }
    enif_mutex_lock(ctx->lock);
    ctx->sleeping = 1;
    while (!ctx->head && !ctx->dead && !ctx->decrefs && ctx->state == CTX_RUNNING)
        enif_cond_wait(ctx->cond, ctx->lock);
    ctx->sleeping = 0;
    enif_mutex_unlock(ctx->lock);
}

static int worker_start(context_t *ctx)
{
    ctx->ts = PyThreadState_New(PyInterpreterState_Main());
    if (!ctx->ts)
        return -1;
    PyEval_RestoreThread(ctx->ts);
    ctx->py_ident = PyThread_get_thread_ident();
    ctx->namespaces = PyDict_New();
    ctx->last_exc = PyDict_New();
    if (!ctx->namespaces || !ctx->last_exc) {
        PyErr_Clear();
        return -1;
    }
    return 0;
}

static void *worker_main(void *arg)
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
        obj_node_t *decrefs;
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
    if (ctx->ts) {
        Py_CLEAR(ctx->namespaces);
        Py_CLEAR(ctx->last_exc);
        PyThreadState_Clear(ctx->ts);
        PyThreadState_DeleteCurrent();
    }
    enif_mutex_lock(ctx->lock);
    ctx->state = CTX_STOPPED;
    ctx->py_ident = 0;
    enif_cond_broadcast(ctx->cond);
    enif_mutex_unlock(ctx->lock);
    enif_release_resource(ctx);
    return NULL;
}

/* ------------------------------------------------------------------- NIFs */

/* (Owner :: pid(), SpinUs :: non_neg_integer()) -> {ok, Ctx} | {error, R}; dirty IO */
NIF(context_new_nif)
{
    UNUSED(argc);
    ErlNifPid owner;
    unsigned spin_us;
    if (!enif_get_local_pid(env, argv[0], &owner) || !enif_get_uint(env, argv[1], &spin_us))
        return enif_make_badarg(env);
    if (!runtime_is_running(runtime_generation()))
        return make_error(env, ATOM(not_running));
    context_t *ctx = enif_alloc_resource(context_type, sizeof *ctx);
    memset(ctx, 0, sizeof *ctx);
    ctx->lock = enif_mutex_create("py.context");
    ctx->cond = enif_cond_create("py.context");
    ctx->owner = owner;
    ctx->spin_us = spin_us;
    ctx->generation = runtime_generation();
    ctx->state = CTX_STOPPING; /* until the worker says it runs */
    ERL_NIF_TERM term = enif_make_resource(env, ctx);
    enif_release_resource(ctx); /* the term holds it now */
    if (enif_monitor_process(env, ctx, &owner, &ctx->owner_mon) != 0)
        return enif_make_badarg(env);
    ErlNifThreadOpts *topts = enif_thread_opts_create("py.context.opts");
    topts->suggested_stack_size = 2048; /* kilowords: 16 MiB, deep Python */
    enif_keep_resource(ctx);            /* released by the worker at exit */
    int rc = enif_thread_create("py_context", &ctx->tid, worker_main, ctx, topts);
    enif_thread_opts_destroy(topts);
    if (rc != 0) {
        enif_release_resource(ctx);
        ctx->state = CTX_STOPPED;
        ctx->joined = 1;
        return make_error(env, ATOM(init_failed));
    }
    enif_mutex_lock(ctx->lock);
    while (ctx->state == CTX_STOPPING && !ctx->init_ok)
        enif_cond_wait(ctx->cond, ctx->lock);
    int ok = ctx->init_ok;
    enif_mutex_unlock(ctx->lock);
    if (!ok) {
        enif_thread_join(ctx->tid, NULL);
        ctx->joined = 1;
        return make_error(env, ATOM(init_failed));
    }
    return make_ok(env, term);
}

/* (Ctx) -> ok; dirty IO.  Queued requests get {error, closed}; the running
 * one is interrupted; then the thread is joined. */
NIF(context_stop_nif)
{
    UNUSED(argc);
    context_t *ctx;
    if (!context_get(env, argv[0], &ctx))
        return enif_make_badarg(env);
    enif_mutex_lock(ctx->lock);
    if (ctx->state == CTX_RUNNING)
        ctx->state = CTX_STOPPING;
    request_t *cur = ctx->current;
    if (cur && !cur->cancelled)
        runtime_request_interrupt(ctx, cur->id);
    enif_cond_signal(ctx->cond);
    int join = !ctx->joined;
    ctx->joined = 1;
    enif_mutex_unlock(ctx->lock);
    if (join)
        enif_thread_join(ctx->tid, NULL);
    return ATOM(ok);
}

/* Cells a term may have for its copy to stay well under ~100 us. */
#define SUBMIT_CELL_BUDGET 4096

static long term_cells(ErlNifEnv *env, ERL_NIF_TERM t, long budget)
{
    if (budget <= 0)
        return budget;
    budget--;
    int arity;
    const ERL_NIF_TERM *elems;
    ERL_NIF_TERM head, tail;
    if (enif_get_tuple(env, t, &arity, &elems)) {
        for (int i = 0; i < arity && budget > 0; i++)
            budget = term_cells(env, elems[i], budget);
    } else if (enif_get_list_cell(env, t, &head, &tail)) {
        do {
            budget = term_cells(env, head, budget - 1);
        } while (budget > 0 && enif_get_list_cell(env, tail, &head, &tail));
    } else if (enif_is_map(env, t)) {
        ErlNifMapIterator it;
        ERL_NIF_TERM k, v;
        enif_map_iterator_create(env, t, &it, ERL_NIF_MAP_ITERATOR_FIRST);
        while (budget > 0 && enif_map_iterator_get_pair(env, &it, &k, &v)) {
            budget = term_cells(env, v, term_cells(env, k, budget - 1));
            enif_map_iterator_next(env, &it);
        }
        enif_map_iterator_destroy(env, &it);
    }
    return budget;
}

static ERL_NIF_TERM submit(ErlNifEnv *env, const ERL_NIF_TERM argv[], context_t *ctx)
{
    request_t *req = enif_alloc(sizeof *req);
    req->env = enif_alloc_env();
    req->tag = enif_make_copy(req->env, argv[1]);
    req->ref = enif_make_copy(req->env, argv[2]);
    req->payload = enif_make_copy(req->env, argv[3]);
    req->noreply = enif_is_identical(argv[1], ATOM(none));
    req->cancelled = 0;
    req->next = NULL;
    enif_self(env, &req->caller);
    enif_mutex_lock(ctx->lock);
    if (ctx->state != CTX_RUNNING) {
        enif_mutex_unlock(ctx->lock);
        request_free(req);
        return make_error(env, ATOM(closed));
    }
    req->id = ++ctx->next_id;
    if (ctx->tail)
        ctx->tail->next = req;
    else
        ctx->head = req;
    ctx->tail = req;
    ctx->depth++;
    if (ctx->sleeping)
        enif_cond_signal(ctx->cond);
    enif_mutex_unlock(ctx->lock);
    return ATOM(ok);
}

static NIF(context_submit_dirty)
{
    UNUSED(argc);
    context_t *ctx;
    if (!context_get(env, argv[0], &ctx))
        return enif_make_badarg(env);
    return submit(env, argv, ctx);
}

/* (Ctx, Tag :: atom(), Ref, Payload) -> ok | {error, closed}.  Tag none means
 * no reply.  A payload too large to copy quickly is copied on a dirty CPU
 * scheduler instead. */
NIF(context_submit_nif)
{
    context_t *ctx;
    if (!context_get(env, argv[0], &ctx) || !enif_is_atom(env, argv[1]))
        return enif_make_badarg(env);
    if (term_cells(env, argv[3], SUBMIT_CELL_BUDGET) <= 0)
        return enif_schedule_nif(env, "submit_dirty", ERL_NIF_DIRTY_JOB_CPU_BOUND,
                                 context_submit_dirty, argc, argv);
    return submit(env, argv, ctx);
}

/* (Ctx, Ref) -> cancelled | not_found.  cancelled: no reply will come.
 * not_found: the reply has been sent or is being sent now. */
NIF(context_interrupt_nif)
{
    UNUSED(argc);
    context_t *ctx;
    if (!context_get(env, argv[0], &ctx))
        return enif_make_badarg(env);
    ERL_NIF_TERM result = ATOM(not_found);
    enif_mutex_lock(ctx->lock);
    request_t *cur = ctx->current;
    if (cur && enif_is_identical(cur->ref, argv[1])) {
        if (!cur->cancelled) {
            cur->cancelled = 1;
            runtime_request_interrupt(ctx, cur->id);
        }
        result = ATOM(cancelled);
    } else {
        request_t **pp = &ctx->head, *prev = NULL;
        for (; *pp; prev = *pp, pp = &(*pp)->next) {
            request_t *r = *pp;
            if (enif_is_identical(r->ref, argv[1])) {
                *pp = r->next;
                if (ctx->tail == r)
                    ctx->tail = prev;
                ctx->depth--;
                request_free(r);
                result = ATOM(cancelled);
                break;
            }
        }
    }
    enif_mutex_unlock(ctx->lock);
    return result;
}

/* (Ctx) -> Load :: non_neg_integer() (queued + running), or closed. */
NIF(context_load_nif)
{
    UNUSED(argc);
    context_t *ctx;
    if (!context_get(env, argv[0], &ctx))
        return enif_make_badarg(env);
    enif_mutex_lock(ctx->lock);
    unsigned long load = ctx->depth + (ctx->current ? 1 : 0);
    int running = ctx->state == CTX_RUNNING;
    enif_mutex_unlock(ctx->lock);
    return running ? enif_make_ulong(env, load) : ATOM(closed);
}
