/*
 * interp.c - which interpreter a context's thread runs: the main one
 * (worker contexts, sharing its GIL), or a sub-interpreter of its own with
 * its own GIL (own-GIL contexts, Python 3.12+), made and ended on the
 * context's own thread.
 *
 * An own-GIL sub-interpreter is made from a passing thread state of the
 * main interpreter (Py_NewInterpreterFromConfig releases the main GIL when
 * the new interpreter has its own; the thread state is dropped at once, so
 * the context never touches the main GIL again) and set up by the start
 * layer's hook
 * (sys.path, the erlang package's cached objects, the sandbox's error
 * types, the import guard of erlang._owngil).  When its context stops it is
 * kept for the next own-GIL context rather than ended: CPython 3.12.1 and
 * 3.13.0 leak some 2.5 MB of every isolated sub-interpreter they end
 * (measured with CPython's own _interpreters module: 200 made and ended
 * grow the process by 500 MB), so 100 contexts started and stopped one
 * after another would cost 250 MB; reused, they cost one interpreter.  A
 * context that takes a kept interpreter finds the modules its predecessor
 * imported, as worker contexts share the main interpreter's; namespaces
 * are the context's own.  Interpreters beyond IDLE_MAX kept are ended, and
 * the kept ones are ended before the main interpreter finalizes.  Objects
 * never leave their interpreter: PyRefs are refused elsewhere
 * (convert/to_py.c), and dropped once their context has stopped.
 *
 * Interrupts: PyThreadState_SetAsyncExc reaches only threads of the
 * interpreter of the calling thread, so for an own-GIL context the runtime
 * thread leaves the main GIL, takes the context's with a thread state of
 * its own for the moment (waiting at most the switch interval), raises,
 * and comes back.  The context lock is never held while a GIL is taken;
 * intr_users keeps the interpreter from ending meanwhile.
 *
 * Locks: ctx->lock guards interp_alive and intr_users (context.c's lock
 * order: a GIL, then the context lock).
 */
#include "context/context_int.h"
#include <pthread.h>

static context_interp_setup_fn interp_setup;
static context_interp_teardown_fn interp_teardown;

/* A sub-interpreter and its cached objects; owned by the context that
 * runs it, or by the idle list. */
typedef struct subinterp {
    struct subinterp *next;
    PyInterpreterState *interp;
    py_types_t types;
    /* While kept: the thread state its last context left in it.  The
     * interpreter never drops to no thread state at all: CPython 3.12.1
     * then reuses its first one, still marked initialized, and aborts
     * ("init_threadstate: thread state already initialized"). */
    PyThreadState *parked;
} subinterp_t;

#if PY_VERSION_HEX >= 0x030C0000
#define IDLE_MAX 64

static struct {
    pthread_mutex_t lock;
    subinterp_t *head;
    unsigned n;
} idle = {.lock = PTHREAD_MUTEX_INITIALIZER};
#endif

#if PY_VERSION_HEX >= 0x030C0000
static void end_idle(void);
#endif

void context_set_interp_hooks(context_interp_setup_fn setup, context_interp_teardown_fn teardown)
{
    interp_setup = setup;
    interp_teardown = teardown;
#if PY_VERSION_HEX >= 0x030C0000
    runtime_set_before_finalize(end_idle);
#endif
}

static int attach_main(context_t *ctx)
{
    ctx->ts = PyThreadState_New(PyInterpreterState_Main());
    if (!ctx->ts) {
        snprintf(ctx->start_error, sizeof ctx->start_error, "cannot make a thread state");
        return -1;
    }
    PyEval_RestoreThread(ctx->ts);
    py_types_bind(&py_types_main);
    return 0;
}

#if PY_VERSION_HEX >= 0x030C0000
static subinterp_t *idle_take(void)
{
    pthread_mutex_lock(&idle.lock);
    subinterp_t *sub = idle.head;
    if (sub) {
        idle.head = sub->next;
        idle.n--;
    }
    pthread_mutex_unlock(&idle.lock);
    return sub;
}

/* 1 when sub was kept, 0 when the list is full. */
static int idle_put(subinterp_t *sub)
{
    pthread_mutex_lock(&idle.lock);
    int kept = idle.n < IDLE_MAX;
    if (kept) {
        sub->next = idle.head;
        idle.head = sub;
        idle.n++;
    }
    pthread_mutex_unlock(&idle.lock);
    return kept;
}

/* main current (its GIL held): drop it; nothing current after. */
static void drop_main(PyThreadState *main)
{
    PyThreadState_Clear(main);
    PyThreadState_DeleteCurrent();
}

/* No thread state: a new sub-interpreter, current with its own GIL and set
 * up (ctx->ts), or NULL with nothing current. */
static subinterp_t *make_subinterp(context_t *ctx)
{
    subinterp_t *sub = enif_alloc(sizeof *sub);
    PyThreadState *main = sub ? PyThreadState_New(PyInterpreterState_Main()) : NULL;
    if (!main) {
        enif_free(sub);
        snprintf(ctx->start_error, sizeof ctx->start_error, "out of memory");
        return NULL;
    }
    memset(sub, 0, sizeof *sub);
    PyEval_RestoreThread(main);
    PyInterpreterConfig cfg = {
        .use_main_obmalloc = 0,
        .allow_fork = 0,
        .allow_exec = 0,
        .allow_threads = 1,
        .allow_daemon_threads = 0,
        .check_multi_interp_extensions = 1,
        .gil = PyInterpreterConfig_OWN_GIL,
    };
    PyThreadState *ts = NULL;
    PyStatus st = Py_NewInterpreterFromConfig(&ts, &cfg);
    if (PyStatus_Exception(st) || !ts) {
        snprintf(ctx->start_error, sizeof ctx->start_error, "%s",
                 st.err_msg ? st.err_msg : "Py_NewInterpreterFromConfig failed");
        PyThreadState_Swap(main);
        drop_main(main);
        enif_free(sub);
        return NULL;
    }
    /* Back on the main GIL for a moment, to drop its thread state. */
    PyEval_SaveThread();
    PyEval_RestoreThread(main);
    drop_main(main);
    PyEval_RestoreThread(ts);
    sub->interp = PyThreadState_GetInterpreter(ts);
    if (interp_setup(&sub->types, ctx->start_error, sizeof ctx->start_error) < 0) {
        Py_EndInterpreter(ts);
        enif_free(sub);
        return NULL;
    }
    ctx->ts = ts;
    return sub;
}

/* sub's GIL held: drop the thread state its last context left. */
static void unpark(subinterp_t *sub)
{
    if (sub->parked) {
        PyThreadState_Clear(sub->parked);
        PyThreadState_Delete(sub->parked);
        sub->parked = NULL;
    }
}

/* ts current (sub's GIL held): end sub; nothing current after. */
static void end_subinterp(subinterp_t *sub, PyThreadState *ts)
{
    if (interp_teardown)
        interp_teardown(&sub->types);
    Py_EndInterpreter(ts); /* waits for its non-daemon threads */
    enif_free(sub);
}

static int attach_owngil(context_t *ctx)
{
    if (!interp_setup) {
        snprintf(ctx->start_error, sizeof ctx->start_error, "no sub-interpreter set-up");
        return -1;
    }
    subinterp_t *sub = idle_take();
    if (sub) { /* a kept one: this thread gets a thread state of its own there */
        ctx->ts = PyThreadState_New(sub->interp);
        if (!ctx->ts) {
            idle_put(sub);
            snprintf(ctx->start_error, sizeof ctx->start_error, "cannot make a thread state");
            return -1;
        }
        PyEval_RestoreThread(ctx->ts);
        unpark(sub);
        py_types_bind(&sub->types);
    } else if (!(sub = make_subinterp(ctx))) {
        return -1;
    }
    ctx->sub = sub;
    enif_mutex_lock(ctx->lock);
    ctx->interp_alive = 1;
    enif_mutex_unlock(ctx->lock);
    return 0;
}

/* Runtime thread, main GIL held, before Py_FinalizeEx: end the kept
 * sub-interpreters. */
static void end_idle(void)
{
    PyThreadState *main = PyEval_SaveThread();
    for (subinterp_t *sub; (sub = idle_take()) != NULL;) {
        PyThreadState *ts = PyThreadState_New(sub->interp);
        if (!ts)
            continue; /* left to the finalization */
        PyEval_RestoreThread(ts);
        unpark(sub);
        end_subinterp(sub, ts);
    }
    PyEval_RestoreThread(main);
}
#endif

int interp_attach(context_t *ctx)
{
    if (!ctx->owngil)
        return attach_main(ctx);
#if PY_VERSION_HEX >= 0x030C0000
    return attach_owngil(ctx);
#else
    snprintf(ctx->start_error, sizeof ctx->start_error,
             "own-GIL sub-interpreters need Python 3.12 or later");
    return -1;
#endif
}

void interp_detach(context_t *ctx)
{
    if (!ctx->owngil) {
        PyThreadState_Clear(ctx->ts);
        PyThreadState_DeleteCurrent();
        ctx->ts = NULL;
        return;
    }
#if PY_VERSION_HEX >= 0x030C0000
    /* No interrupter may be inside, or come in, once it is let go. */
    PyThreadState *ts = PyEval_SaveThread();
    enif_mutex_lock(ctx->lock);
    ctx->interp_alive = 0;
    while (ctx->intr_users)
        enif_cond_wait(ctx->cond, ctx->lock);
    enif_mutex_unlock(ctx->lock);
    PyEval_RestoreThread(ts);
    subinterp_t *sub = ctx->sub;
    ctx->sub = NULL;
    ctx->ts = NULL;
    /* Kept only when no thread of its own is left running (no other thread
     * state): the next context starts clean. */
    if (PyInterpreterState_ThreadHead(sub->interp) == ts && PyThreadState_Next(ts) == NULL) {
        sub->parked = ts;
        PyEval_SaveThread();
        if (!idle_put(sub)) { /* full: end it after all */
            PyEval_RestoreThread(ts);
            sub->parked = NULL;
            end_subinterp(sub, ts);
        }
    } else {
        end_subinterp(sub, ts);
    }
    py_types_bind(NULL);
#endif
}

/* ctx->lock held: whether req_id runs Python now (not parked, not already
 * interrupted), marking it interrupted when it does. */
static int claim(context_t *ctx, uint64_t req_id)
{
    request_t *cur = ctx->current;
    if (cur && cur->id == req_id && !cur->parked && !cur->interrupted && ctx->py_ident) {
        cur->interrupted = 1; /* once: its cleanup code must be able to run */
        return 1;
    }
    return 0;
}

void interp_raise_interrupt(context_t *ctx, uint64_t req_id)
{
    enif_mutex_lock(ctx->lock);
    if (!ctx->owngil) {
        if (claim(ctx, req_id))
            PyThreadState_SetAsyncExc(ctx->py_ident, py_types_main.interrupted);
        enif_mutex_unlock(ctx->lock);
        return;
    }
    int go = ctx->interp_alive && ctx->current && ctx->current->id == req_id;
    if (go)
        ctx->intr_users++;
    enif_mutex_unlock(ctx->lock);
    if (!go)
        return;
    PyThreadState *main = PyEval_SaveThread();
    PyThreadState *ts = PyThreadState_New(ctx->sub->interp);
    if (ts) {
        PyEval_RestoreThread(ts);
        /* With its GIL held here, the request is either in Python or
         * waiting without it (parked: it raises by itself). */
        enif_mutex_lock(ctx->lock);
        if (claim(ctx, req_id))
            PyThreadState_SetAsyncExc(ctx->py_ident, ctx->sub->types.interrupted);
        enif_mutex_unlock(ctx->lock);
        PyThreadState_Clear(ts);
        PyThreadState_DeleteCurrent();
    }
    PyEval_RestoreThread(main);
    enif_mutex_lock(ctx->lock);
    ctx->intr_users--;
    enif_cond_broadcast(ctx->cond);
    enif_mutex_unlock(ctx->lock);
}
