/*
 * context.c - the Context resource: creation, stop, the monitors on its
 * owner and on the processes it serves, and their namespaces.
 *
 * Threads: the NIFs here run on schedulers (new/stop on dirty IO, since they
 * wait for the worker thread); the namespace functions run on the worker
 * with the GIL held; the down callback runs on any scheduler and only queues
 * work for the worker (it never takes the GIL).
 *
 * Locks: ctx->lock guards the queue, the request stack, state and the side
 * lists (dead pids, deferred decrefs).  It is never held while taking the GIL
 * and never while running Python.  Lock order: GIL, then ctx->lock, then the
 * runtime's lock.
 *
 * Ownership: the worker keeps the resource alive until it exits.
 * Namespaces (globals per caller pid) live in a dict only the worker touches;
 * a monitor on the caller drops them when it dies.
 */
#include "context/context_int.h"
#include "runtime/runtime.h"
#include "context/deadline.h"
#include "convert/pyref.h"
#include "sandbox/sandbox.h"

static ErlNifResourceType *context_type;

/* ------------------------------------------------------- resource callbacks */

static void context_dtor(ErlNifEnv *env, void *obj)
{
    UNUSED(env);
    context_t *ctx = obj;
    /* The worker holds a reference while it runs, so it is gone by now. */
    while (ctx->spare) {
        request_t *r = ctx->spare;
        ctx->spare = r->next;
        enif_free_env(r->env);
        enif_free(r);
    }
    callers_free(&ctx->callers);
    if (ctx->lock)
        enif_mutex_destroy(ctx->lock);
    if (ctx->cond)
        enif_cond_destroy(ctx->cond);
}

/* Requests (each with its environment) are recycled per context: an
 * environment costs more to allocate than the whole rest of a call's
 * transport.  At most REQUEST_SPARES are kept. */
#define REQUEST_SPARES 64

request_t *request_take(context_t *ctx)
{
    enif_mutex_lock(ctx->lock);
    request_t *req = ctx->spare;
    if (req) {
        ctx->spare = req->next;
        ctx->n_spare--;
    }
    enif_mutex_unlock(ctx->lock);
    if (!req) {
        req = enif_alloc(sizeof *req);
        req->env = enif_alloc_env();
    }
    return req;
}

void request_put_locked(context_t *ctx, request_t *req)
{
    if (ctx->n_spare >= REQUEST_SPARES) {
        enif_free_env(req->env);
        enif_free(req);
        return;
    }
    enif_clear_env(req->env);
    req->next = ctx->spare;
    ctx->spare = req;
    ctx->n_spare++;
}

void request_put(context_t *ctx, request_t *req)
{
    enif_mutex_lock(ctx->lock);
    request_put_locked(ctx, req);
    enif_mutex_unlock(ctx->lock);
}

/* Drop queued requests of a dead caller (not casts: they outlive it). */
static void drop_queued_of(context_t *ctx, const ErlNifPid *pid)
{
    request_t **pp = &ctx->head, *prev = NULL;
    while (*pp) {
        request_t *r = *pp;
        if (!r->noreply && enif_compare_pids(&r->caller, pid) == 0) {
            queue_unlink(ctx, pp, prev);
            request_put_locked(ctx, r);
        } else {
            prev = r;
            pp = &r->next;
        }
    }
}

/* ctx->lock held: pid's state (namespace, last exception) is dropped at
 * the worker's next turn. */
static void forget_later(context_t *ctx, const ErlNifPid *pid)
{
    pid_node_t *n = enif_alloc(sizeof *n);
    if (n) {
        n->pid = *pid;
        n->next = ctx->dead;
        ctx->dead = n;
    }
}

caller_t *context_caller(ErlNifEnv *env, context_t *ctx, const ErlNifPid *pid)
{
    caller_t *c = callers_find(&ctx->callers, pid);
    if (c)
        return c;
    c = callers_add(&ctx->callers, pid);
    if (c && enif_monitor_process(env, ctx, pid, &c->mon) != 0) {
        /* Not alive: it cannot be waiting for anything. */
        enif_free(callers_take(&ctx->callers, pid));
        c = NULL;
    }
    return c;
}

/* A caller died: its state goes, its queued requests are dropped and its
 * running ones interrupted (casts excepted: they outlive their sender). */
static void caller_down(context_t *ctx, const ErlNifPid *pid)
{
    caller_t *c = callers_take(&ctx->callers, pid);
    int wake = 0;
    if (c) {
        if (c->flags & CALLER_NS_OF) /* a callback helper */
            callers_drop_helper(&ctx->callers, pid);
        if (c->flags & CALLER_STATE) {
            forget_later(ctx, pid);
            wake = 1;
        }
        enif_free(c);
    }
    unsigned long depth = ctx->depth;
    drop_queued_of(ctx, pid);
    wake |= depth != ctx->depth;
    for (request_t *r = ctx->current; r; r = r->outer) {
        if (!r->noreply && !r->cancelled && enif_compare_pids(&r->caller, pid) == 0) {
            context_cancel(ctx, r);
            wake = 1;
        }
    }
    if (wake)
        enif_cond_broadcast(ctx->cond);
}

static void context_down(ErlNifEnv *env, void *obj, ErlNifPid *pid, ErlNifMonitor *mon)
{
    UNUSED(env);
    context_t *ctx = obj;
    enif_mutex_lock(ctx->lock);
    if (enif_compare_monitors(mon, &ctx->owner_mon) == 0) {
        if (ctx->state == CTX_RUNNING)
            ctx->state = CTX_STOPPING;
        enif_cond_broadcast(ctx->cond);
    } else {
        caller_down(ctx, pid);
    }
    enif_mutex_unlock(ctx->lock);
}

/* The sandbox's caller hook: the pid of the request this thread runs. */
static int current_caller(ErlNifPid *out)
{
    context_t *ctx;
    request_t *req = worker_current(&ctx); /* NULL off the context threads */
    if (!req)
        return 0;
    *out = req->caller;
    return 1;
}

static void raise_interrupt(void *resource, uint64_t req_id);

/* Also registers the hooks through which the layers below reach this one:
 * a PyRef's owner ops (convert/pyref.h) and the sandbox's caller. */
int context_init(ErlNifEnv *env)
{
    ErlNifResourceTypeInit init = {.dtor = context_dtor, .down = context_down, .members = 3};
    context_type = enif_init_resource_type(env, "py_context", &init,
                                           ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER, NULL);
    static const pyref_owner_ops_t owner_ops = {
        .generation = context_generation,
        .defer_decref = context_defer_decref,
    };
    pyref_set_owner_ops(&owner_ops);
    sandbox_set_caller_hook(current_caller);
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
        decref_node_t *n = enif_alloc(sizeof *n);
        if (n) {
            n->obj = obj;
            n->next = ctx->decrefs;
            ctx->decrefs = n;
            if (ctx->sleeping) /* broadcast: context_new may wait on it too */
                enif_cond_broadcast(ctx->cond);
        }
        enif_mutex_unlock(ctx->lock);
        return;
    }
    enif_mutex_unlock(ctx->lock);
    /* An own-GIL context's interpreter has ended (or is ending) with its
     * objects; a worker context's live on in the main one. */
    if (!ctx->owngil)
        runtime_defer_decref(ctx->generation, obj);
}

void context_cancel(context_t *ctx, request_t *req)
{
    if (req->cancelled)
        return;
    req->cancelled = 1;
    /* A parked request sees the flag itself and raises CallInterrupted where
     * it waits; an asynchronous one would land later, in its cleanup code. */
    if (req == ctx->current && !req->parked)
        runtime_request_interrupt(raise_interrupt, ctx, req->id);
    enif_cond_broadcast(ctx->cond); /* a parked request wakes up */
}

/* Timeouts sent by one pass of context_expire; more wait for the next pass. */
#define EXPIRE_BATCH 32

typedef struct {
    ErlNifEnv *env;
    unsigned n;
    ErlNifPid to[EXPIRE_BATCH];
    ERL_NIF_TERM msg[EXPIRE_BATCH];
} expired_t;

/* ctx->lock held: r's caller gets {error, Reason} (sent after the unlock). */
static void end_one(expired_t *ex, request_t *r, ERL_NIF_TERM reason)
{
    if (!ex->env)
        ex->env = enif_alloc_env();
    ex->to[ex->n] = r->caller;
    ex->msg[ex->n] = enif_make_tuple3(ex->env, enif_make_copy(ex->env, r->tag),
                                      enif_make_copy(ex->env, r->ref), make_error(ex->env, reason));
    ex->n++;
    r->deadline = DEADLINE_NONE;
}

/* After the unlock: send the messages, each from a copy (a send
 * invalidates its environment, which is cleared for the next one). */
static void send_ended(expired_t *ex)
{
    if (!ex->env)
        return;
    ErlNifEnv *out = enif_alloc_env();
    for (unsigned i = 0; i < ex->n; i++) {
        enif_send(NULL, &ex->to[i], out, enif_make_copy(out, ex->msg[i]));
        enif_clear_env(out);
    }
    enif_free_env(out);
    enif_free_env(ex->env);
}

int64_t context_expire(context_t *ctx, int64_t now)
{
    expired_t ex = {.env = NULL, .n = 0};
    int64_t min = DEADLINE_NONE;
    enif_mutex_lock(ctx->lock);
    for (request_t *r = ctx->current; r; r = r->outer) {
        if (r->deadline > now) {
            min = r->deadline < min ? r->deadline : min;
        } else if (r->cancelled) {
            r->deadline = DEADLINE_NONE; /* its caller died, or was answered */
        } else if (ex.n < EXPIRE_BATCH) {
            context_cancel(ctx, r);
            end_one(&ex, r, ATOM(timeout));
        } else {
            min = now;
        }
    }
    request_t **pp = &ctx->head, *prev = NULL;
    while (*pp) {
        request_t *r = *pp;
        if (r->deadline > now) {
            min = r->deadline < min ? r->deadline : min;
        } else if (ex.n < EXPIRE_BATCH) {
            end_one(&ex, r, ATOM(timeout));
            queue_unlink(ctx, pp, prev);
            request_put_locked(ctx, r);
            continue;
        } else {
            min = now;
        }
        prev = r;
        pp = &r->next;
    }
    enif_mutex_unlock(ctx->lock);
    send_ended(&ex);
    return min;
}

/* Runtime thread, GIL held (what runtime_request_interrupt runs): raise
 * CallInterrupted if req_id still runs. */
static void raise_interrupt(void *resource, uint64_t req_id)
{
    interp_raise_interrupt(resource, req_id);
}

/* --------------------------------------------------------------- namespaces */

static PyObject *pid_key(const ErlNifPid *pid)
{
    return PyLong_FromUnsignedLongLong((unsigned long long)pid->pid);
}

/* pid now has state here: drop it when pid dies (or at once, if it has
 * died already: its entry is gone). */
static void keep_state_of(context_t *ctx, const ErlNifPid *pid)
{
    enif_mutex_lock(ctx->lock);
    caller_t *c = callers_find(&ctx->callers, pid);
    if (c)
        c->flags |= CALLER_STATE;
    else
        forget_later(ctx, pid);
    enif_mutex_unlock(ctx->lock);
}

PyObject *context_data(context_t *ctx)
{
    return ctx->data;
}

/* The `erlang' module is bound in every namespace, as in erlang_python 4.x:
 * py:eval(<<"erlang.my_func(1)">>) needs no import. */
static int bind_erlang(PyObject *ns)
{
    PyObject *mod = PyImport_ImportModule("erlang");
    if (!mod) {
        PyErr_Clear(); /* no erlang package: the namespace goes without */
        return 0;
    }
    int rc = PyDict_SetItemString(ns, "erlang", mod);
    Py_DECREF(mod);
    return rc;
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
    /* The preload's globals (erlang._setup puts them in the context's data
     * as "seed"), then the names every namespace has: its own copy of
     * builtins (erlang._confine), so that a rebinding stays here. */
    PyObject *seed = ctx->data ? PyDict_GetItemString(ctx->data, "seed") : NULL;
    if (ns && seed && PyDict_Check(seed) && PyDict_Update(ns, seed) < 0)
        Py_CLEAR(ns);
    PyObject *b = ns ? PyObject_CallNoArgs(py_types.ns_builtins) : NULL;
    int bad = !b || PyDict_SetItemString(ns, "__builtins__", b) < 0;
    Py_XDECREF(b);
    if (!ns || bad ||
        PyDict_SetItemString(ns, "__name__", py_types.main_name) < 0 ||
        bind_erlang(ns) < 0 ||
        PyDict_SetItem(ctx->namespaces, key, ns) < 0) {
        Py_XDECREF(ns);
        Py_DECREF(key);
        return NULL;
    }
    Py_DECREF(ns); /* the namespaces dict holds it */
    Py_DECREF(key);
    keep_state_of(ctx, pid);
    return ns;
}

void context_set_last_exception(context_t *ctx, const ErlNifPid *pid, PyObject *exc)
{
    PyObject *key = pid_key(pid);
    if (key && PyDict_SetItem(ctx->last_exc, key, exc) < 0)
        PyErr_Clear();
    Py_XDECREF(key);
    keep_state_of(ctx, pid);
}

PyObject *context_last_exception(context_t *ctx, const ErlNifPid *pid)
{
    PyObject *key = pid_key(pid);
    PyObject *exc = key ? PyDict_GetItemWithError(ctx->last_exc, key) : NULL;
    Py_XDECREF(key);
    PyErr_Clear();
    return exc;
}

void context_forget_pid(context_t *ctx, const ErlNifPid *pid)
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

/* ------------------------------------------------------------------- NIFs */

/* Longest reply spin (reply_wait): a NIF on a normal scheduler must stay
 * far below a millisecond. */
#define REPLY_SPIN_MAX_NS 100000

/* (Owner :: pid(), SpinUs, ReplySpinNs :: non_neg_integer(), Mode) ->
 * {ok, Ctx} | {error, R}; dirty IO.  Mode: worker (the main interpreter)
 * or owngil (a sub-interpreter with its own GIL, 3.12+). */
NIF(context_new_nif)
{
    UNUSED(argc);
    ErlNifPid owner;
    unsigned spin_us, reply_spin_ns;
    int owngil = enif_is_identical(argv[3], ATOM(owngil));
    if (!enif_get_local_pid(env, argv[0], &owner) || !enif_get_uint(env, argv[1], &spin_us) ||
        !enif_get_uint(env, argv[2], &reply_spin_ns) || reply_spin_ns > REPLY_SPIN_MAX_NS ||
        (!owngil && !enif_is_identical(argv[3], ATOM(worker))))
        return enif_make_badarg(env);
#if PY_VERSION_HEX < 0x030C0000
    if (owngil)
        return make_error(env, ATOM(owngil_unsupported));
#endif
    if (!runtime_is_running(runtime_generation()))
        return make_error(env, ATOM(not_running));
    context_t *ctx = enif_alloc_resource(context_type, sizeof *ctx);
    memset(ctx, 0, sizeof *ctx);
    ctx->lock = enif_mutex_create("py.context");
    ctx->cond = enif_cond_create("py.context");
    ctx->owner = owner;
    ctx->spin_us = spin_us;
    ctx->reply_spin_ns = reply_spin_ns;
    ctx->generation = runtime_generation();
    ctx->owngil = owngil;
    ctx->state = CTX_STOPPING; /* until the worker says it runs */
    ERL_NIF_TERM term = enif_make_resource(env, ctx);
    enif_release_resource(ctx); /* the term holds it now */
    if (enif_monitor_process(env, ctx, &owner, &ctx->owner_mon) != 0)
        return enif_make_badarg(env);
    if (deadline_track(ctx) < 0) {
        ctx->state = CTX_STOPPED;
        ctx->joined = 1;
        return make_error(env, ATOM(init_failed));
    }
    ErlNifThreadOpts *topts = enif_thread_opts_create("py.context.opts");
    topts->suggested_stack_size = 2048; /* kilowords: 16 MiB, deep Python */
    enif_keep_resource(ctx);            /* released by the worker at exit */
    int rc = enif_thread_create("py_context", &ctx->tid, worker_main, ctx, topts);
    enif_thread_opts_destroy(topts);
    if (rc != 0) {
        deadline_untrack(ctx);
        enif_release_resource(ctx);
        ctx->state = CTX_STOPPED;
        ctx->joined = 1;
        return make_error(env, ATOM(init_failed));
    }
    enif_mutex_lock(ctx->lock);
    while (ctx->state == CTX_STOPPING && !ctx->init_ok)
        enif_cond_wait(ctx->cond, ctx->lock);
    int ok = ctx->init_ok;
    if (!ok)
        ctx->joined = 1; /* this NIF joins it, not the runtime thread */
    enif_mutex_unlock(ctx->lock);
    if (!ok) {
        enif_thread_join(ctx->tid, NULL);
        size_t n = strnlen(ctx->start_error, sizeof ctx->start_error);
        ERL_NIF_TERM why;
        memcpy(enif_make_new_binary(env, n, &why), ctx->start_error, n);
        return make_error(env, enif_make_tuple2(env, ATOM(init_failed), why));
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
    /* Interrupt, not cancel: the callers are waiting and get the error.
     * Parked requests see the state and raise where they wait. */
    if (ctx->current && !ctx->current->parked)
        runtime_request_interrupt(raise_interrupt, ctx, ctx->current->id);
    enif_cond_broadcast(ctx->cond);
    int join = !ctx->joined;
    ctx->joined = 1;
    enif_mutex_unlock(ctx->lock);
    if (join)
        enif_thread_join(ctx->tid, NULL);
    return ATOM(ok);
}

/* (Ctx) -> ok | not_running: interrupt the request that runs Python now
 * (the innermost one): it gets erlang.CallInterrupted, and its caller
 * {Tag, Ref, {error, interrupted}} as its one reply. */
NIF(context_interrupt_running_nif)
{
    UNUSED(argc);
    context_t *ctx;
    if (!context_get(env, argv[0], &ctx))
        return enif_make_badarg(env);
    expired_t ex = {.env = NULL, .n = 0};
    enif_mutex_lock(ctx->lock);
    request_t *r = ctx->current;
    while (r && r->cancelled)
        r = r->outer;
    if (r) {
        context_cancel(ctx, r);
        if (!r->noreply)
            end_one(&ex, r, ATOM(interrupted));
    }
    enif_mutex_unlock(ctx->lock);
    send_ended(&ex);
    return r ? ATOM(ok) : ATOM(not_running);
}

/* (Ctx) -> {Queued, AgeUs} | closed: the requests waiting, and how long ago
 * the oldest running one was submitted (0 when none runs). */
NIF(context_load_nif)
{
    UNUSED(argc);
    context_t *ctx;
    if (!context_get(env, argv[0], &ctx))
        return enif_make_badarg(env);
    int64_t now = deadline_now(), since = now;
    enif_mutex_lock(ctx->lock);
    unsigned long queued = ctx->depth;
    for (request_t *r = ctx->current; r; r = r->outer) /* callbacks nest */
        since = r->submitted < since ? r->submitted : since;
    int running = ctx->state == CTX_RUNNING;
    enif_mutex_unlock(ctx->lock);
    return running ? enif_make_tuple2(env, enif_make_ulong(env, queued),
                                      enif_make_int64(env, (now - since) / 1000))
                   : ATOM(closed);
}
