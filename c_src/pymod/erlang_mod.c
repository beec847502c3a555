/*
 * erlang_mod.c - the `_erlang` extension module, the C half of the Python
 * `erlang` package (priv/python/erlang/__init__.py builds the public API on
 * it; _erlang.pyi types it).
 *
 * Threads: any Python thread, GIL held.  call() waits with the GIL released
 * (callback.c); send() and self() never block.
 */
#include "pymod/erlang_mod.h"
#include "pymod/callback.h"
#include "pymod/data_py.h"
#include "shared/notifier.h"
#include "context/context.h"
#include "convert/convert.h"
#include "runtime/pyalloc.h"
#include "runtime/runtime.h"

/* call(name, args: tuple) -> (status, payload) as the Erlang side answered */
static PyObject *mod_call(PyObject *self, PyObject *const *args, Py_ssize_t n)
{
    UNUSED(self);
    if (n != 2 || !PyUnicode_Check(args[0]) || !PyTuple_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "call(name: str, args: tuple)");
        return NULL;
    }
    return callback_call(args[0], args[1]);
}

static PyObject *mod_is_registered(PyObject *self, PyObject *name)
{
    UNUSED(self);
    Py_ssize_t len;
    const char *s = PyUnicode_Check(name) ? PyUnicode_AsUTF8AndSize(name, &len) : NULL;
    if (!s)
        return PyErr_Occurred() ? NULL : Py_NewRef(Py_False);
    return PyBool_FromLong(callback_is_registered(s, len));
}

static PyObject *mod_registered(PyObject *self, PyObject *unused)
{
    UNUSED(self);
    UNUSED(unused);
    return callback_names();
}

/* Send through the py_callback process: remote pids, {Name, Node}. */
static int send_via_erlang(ErlNifEnv *env, ERL_NIF_TERM dest, ERL_NIF_TERM msg)
{
    ErlNifPid router;
    if (!enif_whereis_pid(NULL, ATOM(py_callback), &router)) {
        PyErr_SetString(PyExc_RuntimeError, "erlang_python is not running");
        return -1;
    }
    return enif_send(NULL, &router, env, enif_make_tuple3(env, ATOM(py_send), dest, msg)) ? 0
                                                                                      : -1;
}

/* send(dest, msg): dest is a Pid, a registered name, or (name, node). */
static PyObject *mod_send(PyObject *self, PyObject *const *args, Py_ssize_t n)
{
    UNUSED(self);
    if (n != 2) {
        PyErr_SetString(PyExc_TypeError, "send(dest, msg)");
        return NULL;
    }
    context_t *ctx = NULL;
    worker_current(&ctx);
    ErlNifEnv *env = enif_alloc_env();
    ERL_NIF_TERM dest, msg;
    int rc = to_term(env, ctx, args[0], &dest);
    if (rc == 0)
        rc = to_term(env, ctx, args[1], &msg);
    ErlNifPid pid;
    if (rc == 0) {
        if (enif_is_atom(env, dest) && !enif_whereis_pid(NULL, dest, &pid)) {
            PyErr_Format(PyExc_LookupError, "no process is registered as %R", args[0]);
            rc = -1;
        } else if (enif_is_atom(env, dest)) {
            enif_send(NULL, &pid, env, msg); /* it may have died meanwhile: dropped */
        } else if (enif_get_local_pid(env, dest, &pid)) {
            if (!enif_send(NULL, &pid, env, msg)) { /* as erlang_python 4.x */
                PyErr_SetString(py_types.process_error,
                                "Failed to send message: process may not exist");
                rc = -1;
            }
        } else if (enif_is_pid(env, dest) || enif_is_tuple(env, dest)) {
            rc = send_via_erlang(env, dest, msg);
        } else {
            PyErr_Format(PyExc_TypeError, "cannot send to %R: use a Pid, an Atom name "
                                          "or a (name, node) tuple", args[0]);
            rc = -1;
        }
    }
    enif_free_env(env);
    return rc == 0 ? Py_NewRef(Py_None) : NULL;
}

/* whereis(name) -> the Pid registered as name (str, bytes or Atom), or None */
static PyObject *mod_whereis(PyObject *self, PyObject *name)
{
    UNUSED(self);
    PyObject *latin1;
    if (PyUnicode_Check(name)) {
        /* Atoms are looked up in Latin-1 (OTP 25); other names are no atom. */
        latin1 = PyUnicode_AsLatin1String(name);
        if (!latin1) {
            PyErr_Clear();
            Py_RETURN_NONE;
        }
    } else if (PyBytes_Check(name)) {
        latin1 = Py_NewRef(name);
    } else {
        return PyErr_Format(PyExc_TypeError, "whereis() takes a str, bytes or Atom, not %.100s",
                            Py_TYPE(name)->tp_name);
    }
    ErlNifEnv *env = enif_alloc_env();
    ERL_NIF_TERM atom;
    ErlNifPid pid;
    PyObject *r;
    /* A name that is no atom yet names no process (and makes no atom). */
    if (!enif_make_existing_atom_len(env, PyBytes_AS_STRING(latin1), PyBytes_GET_SIZE(latin1),
                                     &atom, ERL_NIF_LATIN1) ||
        !enif_whereis_pid(NULL, atom, &pid))
        r = Py_NewRef(Py_None);
    else
        r = to_py(env, NULL, enif_make_pid(env, &pid));
    enif_free_env(env);
    Py_DECREF(latin1);
    return r;
}

/* call_async(name, args: tuple, notifier, token) -> AsyncCall: an erlang.call
 * whose answer signals notifier with token (erlang.async_call) */
static PyObject *mod_call_async(PyObject *self, PyObject *const *args, Py_ssize_t n)
{
    UNUSED(self);
    if (n != 4 || !PyUnicode_Check(args[0]) || !PyTuple_Check(args[1]) ||
        !PyObject_TypeCheck(args[2], (PyTypeObject *)py_types.notifier_type)) {
        PyErr_SetString(PyExc_TypeError, "call_async(name: str, args: tuple, notifier, token)");
        return NULL;
    }
    uint64_t token = PyLong_AsUnsignedLongLong(args[3]);
    if (PyErr_Occurred())
        return NULL;
    return callback_call_async(args[0], args[1], notifier_of(args[2]), token);
}

/* self() -> the Pid of the Erlang process whose request runs here */
static PyObject *mod_self(PyObject *self, PyObject *unused)
{
    UNUSED(self);
    UNUSED(unused);
    context_t *ctx;
    request_t *req = worker_current(&ctx);
    if (!req) {
        PyErr_SetString(PyExc_RuntimeError,
                        "erlang.self() is only defined inside a request from Erlang");
        return NULL;
    }
    ErlNifEnv *env = enif_alloc_env();
    PyObject *pid = to_py(env, ctx, enif_make_pid(env, &req->ns));
    enif_free_env(env);
    return pid;
}

/* context_data() -> the running context's own dict (erlang._setup keeps
 * the context's preload and the globals it seeds namespaces with there) */
static PyObject *mod_context_data(PyObject *self, PyObject *unused)
{
    UNUSED(self);
    UNUSED(unused);
    context_t *ctx;
    request_t *req = worker_current(&ctx);
    PyObject *data = req && ctx ? context_data(ctx) : NULL;
    if (!data) {
        PyErr_SetString(PyExc_RuntimeError,
                        "context_data() is only defined inside a request from Erlang");
        return NULL;
    }
    return Py_NewRef(data);
}

/* stream_item(item): send one item of the running stream request */
static PyObject *mod_stream_item(PyObject *self, PyObject *item)
{
    UNUSED(self);
    return worker_stream_item(item) == 0 ? Py_NewRef(Py_None) : NULL;
}

/* sleep(secs: float): time.sleep that a cancelled request wakes from */
static PyObject *mod_sleep(PyObject *self, PyObject *arg)
{
    UNUSED(self);
    double secs = PyFloat_AsDouble(arg);
    if (secs == -1.0 && PyErr_Occurred())
        return NULL;
    if (!(secs >= 0)) {
        PyErr_SetString(PyExc_ValueError, "sleep length must be non-negative");
        return NULL;
    }
    return worker_sleep(secs) == 0 ? Py_NewRef(Py_None) : NULL;
}

/* alloc_stats() -> dict: the large-block allocator's counters (runtime/pyalloc.c) */
static PyObject *mod_alloc_stats(PyObject *self, PyObject *unused)
{
    UNUSED(self);
    UNUSED(unused);
    pyalloc_stats_t st;
    pyalloc_stats(&st);
    return Py_BuildValue("{sOsnsnsnsnsnsKsK}", "installed", st.installed ? Py_True : Py_False,
                         "large_blocks", (Py_ssize_t)st.large_blocks,
                         "large_bytes", (Py_ssize_t)st.large_bytes,
                         "cache_blocks", (Py_ssize_t)st.cache_blocks,
                         "cache_bytes", (Py_ssize_t)st.cache_bytes,
                         "cache_max", (Py_ssize_t)st.cache_max,
                         "mapped", (unsigned long long)st.mapped,
                         "reused", (unsigned long long)st.reused);
}

/* alloc_trim(): return the cached large blocks to the system */
static PyObject *mod_alloc_trim(PyObject *self, PyObject *unused)
{
    UNUSED(self);
    UNUSED(unused);
    pyalloc_trim();
    Py_RETURN_NONE;
}

static PyMethodDef erlang_methods[] = {
    {"sleep", mod_sleep, METH_O,
     "sleep(secs): sleep; inside a request, a timeout or cancel interrupts it."},
    {"stream_item", mod_stream_item, METH_O,
     "stream_item(item): send an item of the running stream, waiting for credit."},
    {"call", (PyCFunction)(void (*)(void))mod_call, METH_FASTCALL,
     "call(name, args) -> (status, payload): run a registered Erlang function."},
    {"send", (PyCFunction)(void (*)(void))mod_send, METH_FASTCALL,
     "send(dest, msg): send msg to a Pid, a registered name or (name, node)."},
    {"self", mod_self, METH_NOARGS, "self() -> the calling Erlang process's Pid."},
    {"context_data", mod_context_data, METH_NOARGS,
     "context_data() -> dict: the running context's own data (erlang._setup)."},
    {"whereis", mod_whereis, METH_O, "whereis(name) -> the Pid registered as name, or None."},
    {"call_async", (PyCFunction)(void (*)(void))mod_call_async, METH_FASTCALL,
     "call_async(name, args, notifier, token) -> AsyncCall."},
    {"is_registered", mod_is_registered, METH_O,
     "is_registered(name) -> whether an Erlang function is registered as name."},
    {"registered", mod_registered, METH_NOARGS,
     "registered() -> the names of the registered Erlang functions."},
    {"alloc_stats", mod_alloc_stats, METH_NOARGS,
     "alloc_stats() -> dict: live large blocks and the cache of freed ones."},
    {"alloc_trim", mod_alloc_trim, METH_NOARGS,
     "alloc_trim(): unmap the cached freed large blocks."},
    {NULL, NULL, 0, NULL},
};

static int erlang_mod_exec(PyObject *m)
{
    if (PyModule_AddIntConstant(m, "embedded", 1) < 0 || data_py_exec(m) < 0 ||
        callback_py_exec(m) < 0)
        return -1;
    return 0;
}

/* Multi-phase init, and stateless: each interpreter (an own-GIL context's
 * too) gets its own instance, which only reads thread-local state. */
static PyModuleDef_Slot erlang_slots[] = {
    {Py_mod_exec, (void *)erlang_mod_exec},
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef erlang_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_erlang",
    .m_doc = "C half of the erlang package; present only inside the Erlang VM.",
    .m_size = 0,
    .m_methods = erlang_methods,
    .m_slots = erlang_slots,
};

PyObject *erlang_mod_init(void)
{
    return PyModuleDef_Init(&erlang_module);
}
