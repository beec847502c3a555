/*
 * data_py.c - `_erlang.Resource', the conversion hooks of the data plane,
 * and the shared dict's Python functions (sdict_*).
 *
 * Threads: any Python thread, GIL held; no lock of c_src/shared/ is held
 * while Python runs or a term converts (terms are copied in and out of a
 * thread's scratch environment).  Resource and PyBuffer are heap types made
 * per interpreter (own-GIL ones included) and cached in py_types.
 */
#include "pymod/data_py.h"
#include "context/context.h"
#include "convert/convert.h"
#include "runtime/types.h"
#include "shared/buffer.h"
#include "shared/channel.h"
#include "shared/sdict.h"

#include <pthread.h>

static pthread_key_t scratch_key;

static void free_scratch(void *e)
{
    enif_free_env(e);
}

ErlNifEnv *data_scratch_env(void)
{
    ErlNifEnv *e = pthread_getspecific(scratch_key);
    if (!e) {
        e = enif_alloc_env();
        pthread_setspecific(scratch_key, e);
    }
    return e;
}

int data_block(int (*ready)(void *arg, int64_t until_ns), void *arg, int64_t deadline_ns)
{
    context_t *ctx = NULL;
    request_t *req = worker_current(&ctx);
    int live = req ? worker_block(ctx, req, 1) : 1;
    int rc = 1;
    Py_BEGIN_ALLOW_THREADS
    while (live) {
        int64_t until = deadline_ns;
        if (req) {
            int64_t slice = shared_now_ns() + 2000000;
            if (until < 0 || until > slice)
                until = slice;
        }
        if (ready(arg, until)) {
            rc = 0;
            break;
        }
        if (deadline_ns >= 0 && shared_now_ns() >= deadline_ns)
            break;
        if (req)
            live = worker_live(ctx, req);
    }
    Py_END_ALLOW_THREADS
    if (req)
        live = worker_block(ctx, req, 0) && live;
    if (!live) {
        worker_raise_interrupted(ctx);
        return -1;
    }
    return rc;
}

/* --------------------------------------------------------------- Resource */

static const char *kind_name(int kind)
{
    return kind == RES_SDICT ? "shared_dict" : kind == RES_CHANNEL ? "channel" : "byte_channel";
}

static void resource_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    enif_release_resource(((resource_obj_t *)self)->ptr);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *resource_repr(PyObject *self)
{
    resource_obj_t *r = (resource_obj_t *)self;
    return PyUnicode_FromFormat("<erlang %s %p>", kind_name(r->kind), r->ptr);
}

static Py_hash_t resource_hash(PyObject *self)
{
    return _Py_HashPointer(((resource_obj_t *)self)->ptr);
}

static PyObject *resource_richcompare(PyObject *a, PyObject *b, int op)
{
    if ((op != Py_EQ && op != Py_NE) || Py_TYPE(a) != Py_TYPE(b))
        Py_RETURN_NOTIMPLEMENTED;
    int eq = ((resource_obj_t *)a)->ptr == ((resource_obj_t *)b)->ptr;
    return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

static PyObject *resource_kind(PyObject *self, void *unused)
{
    UNUSED(unused);
    return PyUnicode_FromString(kind_name(((resource_obj_t *)self)->kind));
}

static PyGetSetDef resource_getset[] = {
    {"kind", resource_kind, NULL, "'shared_dict', 'channel' or 'byte_channel'", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot resource_slots[] = {
    {Py_tp_dealloc, resource_dealloc},
    {Py_tp_repr, resource_repr},
    {Py_tp_hash, resource_hash},
    {Py_tp_richcompare, resource_richcompare},
    {Py_tp_getset, resource_getset},
    {Py_tp_doc, "An Erlang shared dict or channel, held while this object lives."},
    {0, NULL},
};

static PyType_Spec resource_spec = {
    .name = "_erlang.Resource",
    .basicsize = sizeof(resource_obj_t),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = resource_slots,
};

/* The types are made by _erlang's exec: import it once in an interpreter
 * that converts such a resource before importing it. */
static int ensure_types(void)
{
    if (py_types.resource_type)
        return 0;
    PyObject *m = PyImport_ImportModule("_erlang");
    Py_XDECREF(m);
    return py_types.resource_type ? 0 : -1;
}

static PyObject *resource_new(int kind, void *ptr)
{
    if (ensure_types() < 0)
        return NULL;
    PyTypeObject *tp = (PyTypeObject *)py_types.resource_type;
    resource_obj_t *r = (resource_obj_t *)tp->tp_alloc(tp, 0);
    if (!r)
        return NULL;
    enif_keep_resource(ptr);
    r->kind = kind;
    r->ptr = ptr;
    return (PyObject *)r;
}

void *data_resource_arg(PyObject *o, int kind, const char *what)
{
    if (py_types.resource_type && Py_TYPE(o) == (PyTypeObject *)py_types.resource_type) {
        resource_obj_t *r = (resource_obj_t *)o;
        if (r->kind == kind)
            return r->ptr;
    }
    PyErr_Format(PyExc_TypeError, "expected the handle of %s, got %.100R", what, o);
    return NULL;
}

/* convert's hooks: a resource of ours -> object, and back. */
static PyObject *hook_to_py(ErlNifEnv *env, ERL_NIF_TERM t)
{
    sdict_t *d;
    channel_t *ch;
    buffer_t *b;
    if (sdict_get_resource(env, t, &d))
        return resource_new(RES_SDICT, d);
    if (channel_get(env, t, &ch))
        return resource_new(channel_is_bytes(ch) ? RES_BYTE_CHANNEL : RES_CHANNEL, ch);
    if (buffer_get(env, t, &b))
        return ensure_types() < 0 ? NULL : buffer_py_new(b);
    return NULL;
}

static int hook_to_term(ErlNifEnv *env, PyObject *o, ERL_NIF_TERM *out)
{
    if (py_types.resource_type && Py_TYPE(o) == (PyTypeObject *)py_types.resource_type) {
        *out = enif_make_resource(env, ((resource_obj_t *)o)->ptr);
        return 1;
    }
    void *b = buffer_py_resource(o);
    if (b) {
        *out = enif_make_resource(env, b);
        return 1;
    }
    return 0;
}

void data_py_unload(void)
{
    pthread_key_delete(scratch_key); /* as sdict_unload */
}

void data_py_init(void)
{
    pthread_key_create(&scratch_key, free_scratch);
    to_py_set_resource_hook(hook_to_py);
    to_term_set_resource_hook(hook_to_term);
}

/* ------------------------------------------------------------ shared dict */

static PyObject *destroyed_error(void)
{
    PyErr_SetString(PyExc_RuntimeError, "the shared dict has been destroyed");
    return NULL;
}

/* A term of the scratch environment for a key or value (the caller's
 * context holds an object without a term form as a reference). */
static int scratch_term(ErlNifEnv *e, PyObject *o, ERL_NIF_TERM *out)
{
    context_t *ctx = NULL;
    worker_current(&ctx);
    return to_term(e, ctx, o, out);
}

/* sdict_get(handle, key) -> (value,) | None (missing) */
static PyObject *py_sdict_get(PyObject *self, PyObject *const *args, Py_ssize_t n)
{
    UNUSED(self);
    sdict_t *d = n == 2 ? data_resource_arg(args[0], RES_SDICT, "a shared dict") : NULL;
    if (!d)
        return n == 2 ? NULL : PyErr_Format(PyExc_TypeError, "sdict_get(handle, key)");
    ErlNifEnv *e = data_scratch_env();
    ERL_NIF_TERM k, v;
    PyObject *r = NULL;
    if (scratch_term(e, args[1], &k) == 0) {
        int rc = sdict_lookup(d, e, k, e, &v);
        if (rc == SD_DESTROYED)
            destroyed_error();
        else if (rc == SD_MISSING)
            r = Py_NewRef(Py_None);
        else {
            PyObject *value = to_py(e, NULL, v);
            r = value ? PyTuple_Pack(1, value) : NULL;
            Py_XDECREF(value);
        }
    }
    enif_clear_env(e);
    return r;
}

/* sdict_set(handle, key, value) */
static PyObject *py_sdict_set(PyObject *self, PyObject *const *args, Py_ssize_t n)
{
    UNUSED(self);
    sdict_t *d = n == 3 ? data_resource_arg(args[0], RES_SDICT, "a shared dict") : NULL;
    if (!d)
        return n == 3 ? NULL : PyErr_Format(PyExc_TypeError, "sdict_set(handle, key, value)");
    ErlNifEnv *e = data_scratch_env();
    ERL_NIF_TERM k, v;
    PyObject *r = NULL;
    if (scratch_term(e, args[1], &k) == 0 && scratch_term(e, args[2], &v) == 0) {
        int rc = sdict_store(d, e, k, v);
        r = rc == SD_OK ? Py_NewRef(Py_None) : rc == SD_DESTROYED ? destroyed_error()
                                                                  : PyErr_NoMemory();
    }
    enif_clear_env(e);
    return r;
}

/* sdict_del(handle, key) -> whether it was there */
static PyObject *py_sdict_del(PyObject *self, PyObject *const *args, Py_ssize_t n)
{
    UNUSED(self);
    sdict_t *d = n == 2 ? data_resource_arg(args[0], RES_SDICT, "a shared dict") : NULL;
    if (!d)
        return n == 2 ? NULL : PyErr_Format(PyExc_TypeError, "sdict_del(handle, key)");
    ErlNifEnv *e = data_scratch_env();
    ERL_NIF_TERM k;
    PyObject *r = NULL;
    if (scratch_term(e, args[1], &k) == 0) {
        int rc = sdict_remove(d, e, k);
        r = rc == SD_DESTROYED ? destroyed_error() : PyBool_FromLong(rc == SD_OK);
    }
    enif_clear_env(e);
    return r;
}

/* sdict_keys(handle) -> list */
static PyObject *py_sdict_keys(PyObject *self, PyObject *h)
{
    UNUSED(self);
    sdict_t *d = data_resource_arg(h, RES_SDICT, "a shared dict");
    if (!d)
        return NULL;
    ErlNifEnv *e = data_scratch_env();
    ERL_NIF_TERM keys;
    PyObject *r = sdict_keys(d, e, &keys) == SD_OK ? to_py(e, NULL, keys) : destroyed_error();
    enif_clear_env(e);
    return r;
}

/* sdict_len(handle) -> int */
static PyObject *py_sdict_len(PyObject *self, PyObject *h)
{
    UNUSED(self);
    sdict_t *d = data_resource_arg(h, RES_SDICT, "a shared dict");
    size_t size;
    if (!d)
        return NULL;
    return sdict_size(d, &size) == SD_OK ? PyLong_FromSize_t(size) : destroyed_error();
}

/* sdict_destroy(handle) */
static PyObject *py_sdict_destroy(PyObject *self, PyObject *h)
{
    UNUSED(self);
    sdict_t *d = data_resource_arg(h, RES_SDICT, "a shared dict");
    if (!d)
        return NULL;
    sdict_destroy(d);
    Py_RETURN_NONE;
}

static PyMethodDef sdict_methods[] = {
    {"sdict_get", (PyCFunction)(void (*)(void))py_sdict_get, METH_FASTCALL,
     "sdict_get(handle, key) -> (value,) or None when missing."},
    {"sdict_set", (PyCFunction)(void (*)(void))py_sdict_set, METH_FASTCALL,
     "sdict_set(handle, key, value)."},
    {"sdict_del", (PyCFunction)(void (*)(void))py_sdict_del, METH_FASTCALL,
     "sdict_del(handle, key) -> whether the key was there."},
    {"sdict_keys", py_sdict_keys, METH_O, "sdict_keys(handle) -> list of keys."},
    {"sdict_len", py_sdict_len, METH_O, "sdict_len(handle) -> number of keys."},
    {"sdict_destroy", py_sdict_destroy, METH_O, "sdict_destroy(handle)."},
    {NULL, NULL, 0, NULL},
};

int data_py_exec(PyObject *m)
{
    PyObject *tp = PyType_FromModuleAndSpec(m, &resource_spec, NULL);
    if (!tp || PyModule_AddObjectRef(m, "Resource", tp) < 0) {
        Py_XDECREF(tp);
        return -1;
    }
    Py_XSETREF(py_types.resource_type, tp);
    if (PyModule_AddFunctions(m, sdict_methods) < 0 || channel_py_exec(m) < 0 ||
        buffer_py_exec(m) < 0)
        return -1;
    return 0;
}
