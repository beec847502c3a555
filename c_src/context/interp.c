/*
 * interp.c - which interpreter a context's thread runs: the main one
 * (worker contexts, sharing its GIL), or a sub-interpreter of its own with
 * its own GIL (own-GIL contexts, Python 3.12+), made and ended on the
 * context's own thread.
 *
 * An own-GIL sub-interpreter is made from a thread state of the main
 * interpreter (Py_NewInterpreterFromConfig releases the main GIL when the
 * new interpreter has its own), set up by the start layer's hook (sys.path,
 * the erlang package's cached objects, the sandbox's guards, the import
 * guard of erlang._owngil), and ended by Py_EndInterpreter on the same
 * thread, before the main interpreter can finalize (the application stops
 * its contexts first).  Its objects never leave it: its PyRefs are refused
 * elsewhere (convert/to_py.c) and dropped once it has ended.
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

static context_interp_setup_fn interp_setup;
static context_interp_teardown_fn interp_teardown;

void context_set_interp_hooks(context_interp_setup_fn setup, context_interp_teardown_fn teardown)
{
    interp_setup = setup;
    interp_teardown = teardown;
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
static int attach_owngil(context_t *ctx)
{
    if (!interp_setup) {
        snprintf(ctx->start_error, sizeof ctx->start_error, "no sub-interpreter set-up");
        return -1;
    }
    ctx->main_ts = PyThreadState_New(PyInterpreterState_Main());
    if (!ctx->main_ts) {
        snprintf(ctx->start_error, sizeof ctx->start_error, "cannot make a thread state");
        return -1;
    }
    PyEval_RestoreThread(ctx->main_ts);
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
        PyThreadState_Swap(ctx->main_ts);
        PyThreadState_Clear(ctx->main_ts);
        PyThreadState_DeleteCurrent();
        ctx->main_ts = NULL;
        return -1;
    }
    ctx->ts = ts; /* current, with its own GIL; the main GIL is released */
    ctx->interp = PyThreadState_GetInterpreter(ts);
    if (interp_setup(&ctx->types, ctx->start_error, sizeof ctx->start_error) < 0) {
        Py_EndInterpreter(ts);
        ctx->ts = NULL;
        PyEval_RestoreThread(ctx->main_ts);
        PyThreadState_Clear(ctx->main_ts);
        PyThreadState_DeleteCurrent();
        ctx->main_ts = NULL;
        return -1;
    }
    enif_mutex_lock(ctx->lock);
    ctx->interp_alive = 1;
    enif_mutex_unlock(ctx->lock);
    return 0;
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
    /* No interrupter may be inside, or come in, once it ends. */
    PyThreadState *ts = PyEval_SaveThread();
    enif_mutex_lock(ctx->lock);
    ctx->interp_alive = 0;
    while (ctx->intr_users)
        enif_cond_wait(ctx->cond, ctx->lock);
    enif_mutex_unlock(ctx->lock);
    PyEval_RestoreThread(ts);
    if (interp_teardown)
        interp_teardown(&ctx->types);
    Py_EndInterpreter(ts); /* waits for its non-daemon threads */
    ctx->ts = NULL;
    PyEval_RestoreThread(ctx->main_ts);
    PyThreadState_Clear(ctx->main_ts);
    PyThreadState_DeleteCurrent();
    ctx->main_ts = NULL;
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
    PyThreadState *ts = PyThreadState_New(ctx->interp);
    if (ts) {
        PyEval_RestoreThread(ts);
        /* With its GIL held here, the request is either in Python or
         * waiting without it (parked: it raises by itself). */
        enif_mutex_lock(ctx->lock);
        if (claim(ctx, req_id))
            PyThreadState_SetAsyncExc(ctx->py_ident, ctx->types.interrupted);
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
