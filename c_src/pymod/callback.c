/*
 * callback.c - erlang.call() and the published set of registered names.
 *
 * Threads: callback_call runs on any Python thread with the GIL held and
 * waits with it released (a worker parks in worker_park and keeps serving
 * its queue; another thread sleeps on cb_cond).  callback_reply_nif runs on
 * a scheduler and never takes the GIL.
 *
 * Locks: cb_lock guards the pending slots and next_id; names_lock (a
 * rwlock) the published names.  Neither is held while taking the GIL or a
 * context's lock.
 *
 * Ownership: a slot lives on the waiting thread's stack; it is in the
 * pending list until a reply or the waiter removes it, both under cb_lock.
 * The reply is copied into the slot's own environment before `done` is set.
 */
#include "pymod/callback.h"
#include "context/context.h"
#include "convert/convert.h"
#include "runtime/runtime.h"
#include "shared/notifier.h"

typedef struct cb_slot {
    struct cb_slot *next;
    uint64_t id;
    int done;
    ErlNifEnv *env;
    ERL_NIF_TERM result;
    context_t *ctx; /* the parked worker's context, or NULL */
    notifier_t *nt; /* an async call's (erlang.async_call): signalled, kept */
    uint64_t token;
} cb_slot_t;

static ErlNifMutex *cb_lock;
static ErlNifCond *cb_cond;
static cb_slot_t *pending;
static uint64_t next_id;

static ErlNifRWLock *names_lock;
static ErlNifBinary *names;
static unsigned n_names;

int callback_init(ErlNifEnv *env)
{
    UNUSED(env);
    cb_lock = enif_mutex_create("py.callback");
    cb_cond = enif_cond_create("py.callback");
    names_lock = enif_rwlock_create("py.callback.names");
    return cb_lock && cb_cond && names_lock ? 0 : -1;
}

/* ------------------------------------------------------------------ slots */

static void slot_add(cb_slot_t *slot)
{
    enif_mutex_lock(cb_lock);
    slot->id = ++next_id;
    slot->next = pending;
    pending = slot;
    enif_mutex_unlock(cb_lock);
}

/* cb_lock held.  Unlink slot with this id; NULL when not pending. */
static cb_slot_t *slot_take(uint64_t id)
{
    for (cb_slot_t **pp = &pending; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            cb_slot_t *s = *pp;
            *pp = s->next;
            return s;
        }
    }
    return NULL;
}

/* The call goes to the waiting caller of a sync request (or to its
 * callback helper, py_context.erl); from anywhere else (an async request,
 * a thread, cleanup code) to py_callback, which runs it in a new process. */
static int send_request(ErlNifEnv *msg_env, context_t *worker_ctx, request_t *req,
                        cb_slot_t *slot, ERL_NIF_TERM name, ERL_NIF_TERM args)
{
    ERL_NIF_TERM id = enif_make_uint64(msg_env, slot->id);
    if (req && req->tag == ATOM(py_reply)) {
        if (worker_send_callback(worker_ctx, req, msg_env, id, name, args) == 0)
            return 0;
        if (req->cancelled)
            worker_raise_interrupted(worker_ctx);
        else
            PyErr_SetString(PyExc_RuntimeError, "the Erlang caller is gone");
        return -1;
    }
    ErlNifPid to;
    if (!enif_whereis_pid(NULL, ATOM(py_callback), &to)) {
        PyErr_SetString(PyExc_RuntimeError, "erlang_python is not running");
        return -1;
    }
    ERL_NIF_TERM msg = enif_make_tuple5(msg_env, ATOM(py_callback), ATOM(none), id, name, args);
    if (enif_send(NULL, &to, msg_env, msg))
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "erlang_python is not running");
    return -1;
}

/* Wait for the reply: 0 when it came, -1 (exception set) otherwise. */
static int wait_reply(context_t *ctx, request_t *req, cb_slot_t *slot)
{
    if (req) {
        if (worker_park(ctx, req, &slot->done) == 0)
            return 0;
        if (req->cancelled)
            worker_raise_interrupted(ctx);
        else
            PyErr_SetString(PyExc_RuntimeError, "the context stopped");
        return -1;
    }
    Py_BEGIN_ALLOW_THREADS
    enif_mutex_lock(cb_lock);
    while (!slot->done)
        enif_cond_wait(cb_cond, cb_lock);
    enif_mutex_unlock(cb_lock);
    Py_END_ALLOW_THREADS
    return 0;
}

PyObject *callback_call(PyObject *name, PyObject *args)
{
    context_t *ctx = NULL;
    request_t *req = worker_current(&ctx);
    /* Cleanup code of a cancelled request: nobody waits for it; the call
     * goes to py_callback. */
    if (req && __atomic_load_n(&req->cancelled, __ATOMIC_ACQUIRE))
        req = NULL;
    int cached = req != NULL; /* on a context thread */
    cb_slot_t slot = {.env = worker_env_take(0, cached), .ctx = req ? ctx : NULL};
    ErlNifEnv *msg_env = worker_env_take(1, cached);
    PyObject *result = NULL;
    ERL_NIF_TERM name_t, args_t;
    PyObject *list = PySequence_List(args);
    int rc = list ? to_term(msg_env, req ? ctx : NULL, name, &name_t) : -1;
    if (rc == 0)
        rc = to_term(msg_env, req ? ctx : NULL, list, &args_t);
    Py_XDECREF(list);
    if (rc == 0) {
        slot_add(&slot);
        rc = send_request(msg_env, ctx, req, &slot, name_t, args_t);
        if (rc == 0)
            rc = wait_reply(ctx, req, &slot);
        enif_mutex_lock(cb_lock);
        slot_take(slot.id); /* still pending when interrupted */
        enif_mutex_unlock(cb_lock);
    }
    if (rc == 0)
        result = to_py(slot.env, ctx, slot.result);
    worker_env_give(1, msg_env, cached);
    worker_env_give(0, slot.env, cached);
    return result;
}

/* -------------------------------------------------------------- AsyncCall */

/* erlang.async_call: the request goes to py_callback like a thread's; the
 * reply signals the loop's notifier instead of waking a waiting thread. */
typedef struct {
    PyObject_HEAD
    cb_slot_t slot;
    int pending; /* in the pending list (cb_lock) */
} async_call_t;

static void async_call_dealloc(PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
    async_call_t *self = (async_call_t *)o;
    enif_mutex_lock(cb_lock);
    if (self->pending)
        slot_take(self->slot.id);
    enif_mutex_unlock(cb_lock);
    if (self->slot.nt)
        notifier_release(self->slot.nt);
    if (self->slot.env)
        enif_free_env(self->slot.env);
    tp->tp_free(o);
    Py_DECREF(tp);
}

/* result() -> None while Erlang has not answered, then (status, payload) */
static PyObject *async_call_result(PyObject *o, PyObject *unused)
{
    UNUSED(unused);
    async_call_t *self = (async_call_t *)o;
    if (!__atomic_load_n(&self->slot.done, __ATOMIC_ACQUIRE))
        Py_RETURN_NONE;
    return to_py(self->slot.env, NULL, self->slot.result);
}

static PyMethodDef async_call_methods[] = {
    {"result", async_call_result, METH_NOARGS, "None, or (status, payload) as call()."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot async_call_slots[] = {
    {Py_tp_dealloc, async_call_dealloc},
    {Py_tp_methods, async_call_methods},
    {Py_tp_doc, "An erlang.async_call waiting for Erlang's answer."},
    {0, NULL},
};

static PyType_Spec async_call_spec = {
    .name = "_erlang.AsyncCall",
    .basicsize = sizeof(async_call_t),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = async_call_slots,
};

int callback_py_exec(PyObject *m)
{
    PyObject *tp = PyType_FromModuleAndSpec(m, &async_call_spec, NULL);
    if (!tp || PyModule_AddObjectRef(m, "AsyncCall", tp) < 0) {
        Py_XDECREF(tp);
        return -1;
    }
    Py_XSETREF(py_types.call_type, tp);
    return 0;
}

PyObject *callback_call_async(PyObject *name, PyObject *args, notifier_t *nt, uint64_t token)
{
    PyTypeObject *tp = (PyTypeObject *)py_types.call_type;
    async_call_t *self = (async_call_t *)tp->tp_alloc(tp, 0);
    if (!self)
        return NULL;
    self->slot.env = enif_alloc_env();
    self->slot.nt = nt;
    self->slot.token = token;
    notifier_keep(nt);
    ErlNifEnv *msg_env = enif_alloc_env();
    ERL_NIF_TERM name_t, args_t;
    PyObject *list = PySequence_List(args);
    int rc = list ? to_term(msg_env, NULL, name, &name_t) : -1;
    if (rc == 0)
        rc = to_term(msg_env, NULL, list, &args_t);
    Py_XDECREF(list);
    if (rc == 0) {
        slot_add(&self->slot);
        self->pending = 1;
        rc = send_request(msg_env, NULL, NULL, &self->slot, name_t, args_t);
    }
    enif_free_env(msg_env);
    if (rc < 0)
        Py_CLEAR(self);
    return (PyObject *)self;
}

/* (CallId, Result) -> ok | {error, not_found} */
NIF(callback_reply_nif)
{
    UNUSED(argc);
    ErlNifUInt64 id;
    if (!enif_get_uint64(env, argv[0], &id))
        return enif_make_badarg(env);
    enif_mutex_lock(cb_lock);
    cb_slot_t *slot = slot_take(id);
    if (!slot) {
        enif_mutex_unlock(cb_lock);
        return make_error(env, ATOM(not_found));
    }
    slot->result = enif_make_copy(slot->env, argv[1]);
    context_t *ctx = slot->ctx;
    if (ctx)
        enif_keep_resource(ctx);
    notifier_t *nt = slot->nt; /* an async call's slot stays while cb_lock is held */
    __atomic_store_n(&slot->done, 1, __ATOMIC_RELEASE); /* slot may vanish now */
    if (nt)
        notifier_signal(nt, slot->token);
    if (!ctx)
        enif_cond_broadcast(cb_cond);
    enif_mutex_unlock(cb_lock);
    if (ctx) {
        worker_wake(ctx);
        enif_release_resource(ctx);
    }
    return ATOM(ok);
}

/* ------------------------------------------------------------------ names */

int callback_is_registered(const char *name, size_t len)
{
    int found = 0;
    enif_rwlock_rlock(names_lock);
    for (unsigned i = 0; i < n_names && !found; i++)
        found = names[i].size == len && memcmp(names[i].data, name, len) == 0;
    enif_rwlock_runlock(names_lock);
    return found;
}

PyObject *callback_names(void)
{
    PyObject *list = PyList_New(0);
    enif_rwlock_rlock(names_lock);
    for (unsigned i = 0; list && i < n_names; i++) {
        PyObject *s = PyUnicode_DecodeUTF8((const char *)names[i].data, names[i].size, NULL);
        if (!s || PyList_Append(list, s) < 0)
            Py_CLEAR(list);
        Py_XDECREF(s);
    }
    enif_rwlock_runlock(names_lock);
    return list;
}

static void free_names(ErlNifBinary *bins, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        enif_release_binary(&bins[i]);
    enif_free(bins);
}

/* (Names :: [binary()]) -> ok */
NIF(callback_publish_nif)
{
    UNUSED(argc);
    unsigned n;
    if (!enif_get_list_length(env, argv[0], &n))
        return enif_make_badarg(env);
    ErlNifBinary *bins = enif_alloc(sizeof *bins * (n ? n : 1));
    ERL_NIF_TERM head, tail = argv[0];
    for (unsigned i = 0; enif_get_list_cell(env, tail, &head, &tail); i++) {
        ErlNifBinary b;
        if (!enif_inspect_binary(env, head, &b) || !enif_alloc_binary(b.size, &bins[i])) {
            free_names(bins, i);
            return enif_make_badarg(env);
        }
        memcpy(bins[i].data, b.data, b.size);
    }
    enif_rwlock_rwlock(names_lock);
    ErlNifBinary *old = names;
    unsigned old_n = n_names;
    names = bins;
    n_names = n;
    enif_rwlock_rwunlock(names_lock);
    if (old)
        free_names(old, old_n);
    return ATOM(ok);
}
