/*
 * channel_py.c - channels from Python (`_erlang.ch_*'), the Notifier that
 * wakes an event loop, and the waiter of an async receive.
 *
 * A blocking receive waits on the channel with the GIL released
 * (data_block); an async one registers a ChannelWaiter, which the next
 * message or the close wakes once through the loop's Notifier (an eventfd
 * the loop watches: no polling).  priv/python/erlang/_channel.py and
 * _notify.py build the public API on these.
 *
 * Threads: any Python thread, GIL held; the waiters' wake runs on the
 * sending thread under the channel's lock and only signals the notifier.
 */
#include "pymod/data_py.h"
#include "convert/convert.h"
#include "runtime/types.h"
#include "shared/channel.h"
#include "shared/notifier.h"

/* --------------------------------------------------------------- Notifier */

typedef struct {
    PyObject_HEAD
    notifier_t *n;
} notifier_obj_t;

static PyObject *notifier_tp_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    if (PyTuple_GET_SIZE(args) || (kw && PyDict_GET_SIZE(kw))) {
        PyErr_SetString(PyExc_TypeError, "Notifier() takes no arguments");
        return NULL;
    }
    notifier_obj_t *self = (notifier_obj_t *)tp->tp_alloc(tp, 0);
    if (self && !(self->n = notifier_new())) {
        Py_DECREF(self);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return (PyObject *)self;
}

static void notifier_dealloc(PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
    notifier_obj_t *self = (notifier_obj_t *)o;
    if (self->n) {
        notifier_close(self->n);
        notifier_release(self->n);
    }
    tp->tp_free(o);
    Py_DECREF(tp);
}

notifier_t *notifier_of(PyObject *o)
{
    return ((notifier_obj_t *)o)->n;
}

static PyObject *notifier_fileno(PyObject *o, PyObject *unused)
{
    UNUSED(unused);
    return PyLong_FromLong(notifier_fd(((notifier_obj_t *)o)->n));
}

/* take() -> list of the tokens signalled since the last take */
static PyObject *notifier_take_py(PyObject *o, PyObject *unused)
{
    UNUSED(unused);
    uint64_t tokens[256];
    PyObject *list = PyList_New(0);
    size_t k;
    do {
        k = notifier_take(((notifier_obj_t *)o)->n, tokens, 256);
        for (size_t i = 0; list && i < k; i++) {
            PyObject *t = PyLong_FromUnsignedLongLong(tokens[i]);
            if (!t || PyList_Append(list, t) < 0)
                Py_CLEAR(list);
            Py_XDECREF(t);
        }
    } while (list && k == 256);
    return list;
}

static PyObject *notifier_close_py(PyObject *o, PyObject *unused)
{
    UNUSED(unused);
    notifier_close(((notifier_obj_t *)o)->n);
    Py_RETURN_NONE;
}

static PyMethodDef notifier_methods[] = {
    {"fileno", notifier_fileno, METH_NOARGS, "The eventfd to watch for reading."},
    {"take", notifier_take_py, METH_NOARGS, "take() -> the tokens signalled since the last."},
    {"close", notifier_close_py, METH_NOARGS, "Queue no more signals."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot notifier_slots[] = {
    {Py_tp_new, notifier_tp_new},
    {Py_tp_dealloc, notifier_dealloc},
    {Py_tp_methods, notifier_methods},
    {Py_tp_doc, "Notifier(): an eventfd and the tokens other threads signal through it."},
    {0, NULL},
};

static PyType_Spec notifier_spec = {
    .name = "_erlang.Notifier",
    .basicsize = sizeof(notifier_obj_t),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = notifier_slots,
};


/* --------------------------------------------------------- ChannelWaiter */

typedef struct {
    PyObject_HEAD
    chan_waiter_t w;  /* linked into the channel while registered */
    channel_t *ch;    /* kept */
    notifier_t *n;    /* kept */
    uint64_t token;
} waiter_obj_t;

#define WAITER_OF(wp) ((waiter_obj_t *)((char *)(wp) - offsetof(waiter_obj_t, w)))

static void waiter_wake(chan_waiter_t *w, ErlNifEnv *caller_env)
{
    UNUSED(caller_env);
    waiter_obj_t *self = WAITER_OF(w);
    notifier_signal(self->n, self->token);
}

static void waiter_dealloc(PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
    waiter_obj_t *self = (waiter_obj_t *)o;
    if (self->ch) {
        channel_remove_waiter(self->ch, &self->w);
        channel_release(self->ch);
        notifier_release(self->n);
    }
    tp->tp_free(o);
    Py_DECREF(tp);
}

/* cancel() -> whether it was still waiting */
static PyObject *waiter_cancel(PyObject *o, PyObject *unused)
{
    UNUSED(unused);
    waiter_obj_t *self = (waiter_obj_t *)o;
    return PyBool_FromLong(self->ch && channel_remove_waiter(self->ch, &self->w));
}

static PyMethodDef waiter_methods[] = {
    {"cancel", waiter_cancel, METH_NOARGS, "cancel() -> whether it was still waiting."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot waiter_slots[] = {
    {Py_tp_dealloc, waiter_dealloc},
    {Py_tp_methods, waiter_methods},
    {Py_tp_doc, "A registered async receive of a channel (ch_wait_async)."},
    {0, NULL},
};

static PyType_Spec waiter_spec = {
    .name = "_erlang.ChannelWaiter",
    .basicsize = sizeof(waiter_obj_t),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = waiter_slots,
};


/* ----------------------------------------------------------- the channel */

static channel_t *channel_arg(PyObject *o)
{
    if (py_types.resource_type && Py_TYPE(o) == (PyTypeObject *)py_types.resource_type) {
        resource_obj_t *r = (resource_obj_t *)o;
        if (r->kind == RES_CHANNEL || r->kind == RES_BYTE_CHANNEL)
            return r->ptr;
    }
    PyErr_Format(PyExc_TypeError, "expected the handle of a channel, got %.100R", o);
    return NULL;
}

/* One taken message: (value,) (bytes for a byte channel), None when empty,
 * False when closed. */
static PyObject *take_one(channel_t *ch)
{
    ErlNifEnv *e = data_scratch_env();
    ERL_NIF_TERM t;
    int rc = channel_take(ch, e, &t);
    if (rc != CH_OK)
        return Py_NewRef(rc == CH_EMPTY ? Py_None : Py_False);
    PyObject *v;
    ErlNifBinary bin;
    if (channel_is_bytes(ch) && enif_inspect_binary(e, t, &bin))
        v = PyBytes_FromStringAndSize((const char *)bin.data, bin.size);
    else
        v = to_py(e, NULL, t);
    enif_clear_env(e);
    PyObject *r = v ? PyTuple_Pack(1, v) : NULL;
    Py_XDECREF(v);
    return r;
}

/* ch_take(handle) -> (value,) | None (empty) | False (closed and drained) */
static PyObject *py_ch_take(PyObject *self, PyObject *h)
{
    UNUSED(self);
    channel_t *ch = channel_arg(h);
    return ch ? take_one(ch) : NULL;
}

static int channel_ready(void *arg, int64_t until)
{
    return channel_wait(arg, until) == CH_OK;
}

/* ch_receive(handle, timeout_ms) -> as ch_take, None at the timeout; a
 * negative timeout waits for ever.  Waits with the GIL released. */
static PyObject *py_ch_receive(PyObject *self, PyObject *const *args, Py_ssize_t n)
{
    UNUSED(self);
    channel_t *ch = n == 2 ? channel_arg(args[0]) : NULL;
    if (!ch)
        return n == 2 ? NULL : PyErr_Format(PyExc_TypeError, "ch_receive(handle, timeout_ms)");
    double ms = PyFloat_AsDouble(args[1]);
    if (ms == -1.0 && PyErr_Occurred())
        return NULL;
    int64_t deadline = ms < 0 ? -1 : shared_now_ns() + (int64_t)(ms * 1e6);
    for (;;) {
        PyObject *r = take_one(ch);
        if (r != Py_None)
            return r;
        Py_DECREF(r);
        int rc = data_block(channel_ready, ch, deadline);
        if (rc < 0)
            return NULL;
        if (rc == 1)
            Py_RETURN_NONE;
    }
}

/* ch_send(handle, value) -> 0 ok, 1 busy, 2 closed (bytes for a byte channel) */
static PyObject *py_ch_send(PyObject *self, PyObject *const *args, Py_ssize_t n)
{
    UNUSED(self);
    channel_t *ch = n == 2 ? channel_arg(args[0]) : NULL;
    if (!ch)
        return n == 2 ? NULL : PyErr_Format(PyExc_TypeError, "ch_send(handle, value)");
    if (channel_is_bytes(ch) && !PyObject_CheckBuffer(args[1]))
        return PyErr_Format(PyExc_TypeError, "a byte channel sends bytes, not %.100s",
                            Py_TYPE(args[1])->tp_name);
    ErlNifEnv *e = data_scratch_env();
    ERL_NIF_TERM t;
    PyObject *r = NULL;
    if (to_term(e, NULL, args[1], &t) == 0) {
        int rc = channel_push(ch, NULL, e, t);
        r = PyLong_FromLong(rc == CH_OK ? 0 : rc == CH_BUSY ? 1 : 2);
    }
    enif_clear_env(e);
    return r;
}

static PyObject *py_ch_close(PyObject *self, PyObject *h)
{
    UNUSED(self);
    channel_t *ch = channel_arg(h);
    if (!ch)
        return NULL;
    channel_close(ch);
    Py_RETURN_NONE;
}

/* ch_info(handle) -> {'size', 'count', 'max_size', 'closed'} */
static PyObject *py_ch_info(PyObject *self, PyObject *h)
{
    UNUSED(self);
    channel_t *ch = channel_arg(h);
    if (!ch)
        return NULL;
    size_t bytes, max;
    uint64_t count;
    int closed;
    channel_stats(ch, &bytes, &count, &max, &closed);
    return Py_BuildValue("{snsKsOsO}", "size", (Py_ssize_t)bytes, "count",
                         (unsigned long long)count, "max_size",
                         max ? PyLong_FromSize_t(max) : Py_NewRef(Py_None), "closed",
                         closed ? Py_True : Py_False);
}

/* ch_wait_async(handle, notifier, token) -> ChannelWaiter, or None when a
 * message (or the close) is there already: the notifier gets token once,
 * at the next message or the close. */
static PyObject *py_ch_wait_async(PyObject *self, PyObject *const *args, Py_ssize_t n)
{
    UNUSED(self);
    channel_t *ch = n == 3 ? channel_arg(args[0]) : NULL;
    if (!ch)
        return n == 3 ? NULL
                      : PyErr_Format(PyExc_TypeError, "ch_wait_async(handle, notifier, token)");
    if (!PyObject_TypeCheck(args[1], (PyTypeObject *)py_types.notifier_type))
        return PyErr_Format(PyExc_TypeError, "expected a Notifier");
    uint64_t token = PyLong_AsUnsignedLongLong(args[2]);
    if (PyErr_Occurred())
        return NULL;
    PyTypeObject *tp = (PyTypeObject *)py_types.waiter_type;
    waiter_obj_t *w = (waiter_obj_t *)tp->tp_alloc(tp, 0);
    if (!w)
        return NULL;
    w->w.wake = waiter_wake;
    w->w.owned = 0;
    w->token = token;
    w->n = ((notifier_obj_t *)args[1])->n;
    notifier_keep(w->n);
    w->ch = ch;
    channel_keep(ch);
    if (channel_add_waiter(ch, &w->w))
        return (PyObject *)w;
    Py_DECREF(w);
    Py_RETURN_NONE;
}

/* ch_iter(handle) -> an iterator of the messages until the channel is
 * closed and drained: what `for msg in channel' runs, one C call a message. */
typedef struct {
    PyObject_HEAD
    channel_t *ch; /* kept */
} chiter_t;

static void chiter_dealloc(PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
    channel_release(((chiter_t *)o)->ch);
    tp->tp_free(o);
    Py_DECREF(tp);
}

static PyObject *chiter_next(PyObject *o)
{
    channel_t *ch = ((chiter_t *)o)->ch;
    for (;;) {
        PyObject *r = take_one(ch);
        if (!r || PyTuple_Check(r)) {
            PyObject *v = r ? Py_NewRef(PyTuple_GET_ITEM(r, 0)) : NULL;
            Py_XDECREF(r);
            return v;
        }
        int empty = r == Py_None;
        Py_DECREF(r);
        if (!empty || data_block(channel_ready, ch, -1) < 0)
            return NULL; /* closed: StopIteration; or the exception set */
    }
}

static PyType_Slot chiter_slots[] = {
    {Py_tp_dealloc, chiter_dealloc},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, chiter_next},
    {Py_tp_doc, "The messages of a channel until it is closed and drained."},
    {0, NULL},
};

static PyType_Spec chiter_spec = {
    .name = "_erlang.ChannelIterator",
    .basicsize = sizeof(chiter_t),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = chiter_slots,
};

static PyObject *py_ch_iter(PyObject *self, PyObject *h)
{
    channel_t *ch = channel_arg(h);
    if (!ch)
        return NULL;
    PyTypeObject *tp = (PyTypeObject *)PyObject_GetAttrString(self, "ChannelIterator");
    chiter_t *it = tp ? (chiter_t *)tp->tp_alloc(tp, 0) : NULL;
    Py_XDECREF(tp);
    if (!it)
        return NULL;
    channel_keep(ch);
    it->ch = ch;
    return (PyObject *)it;
}

static PyMethodDef channel_methods[] = {
    {"ch_iter", py_ch_iter, METH_O, "ch_iter(handle) -> iterator of the messages."},
    {"ch_take", py_ch_take, METH_O, "ch_take(handle) -> (value,) | None (empty) | False."},
    {"ch_receive", (PyCFunction)(void (*)(void))py_ch_receive, METH_FASTCALL,
     "ch_receive(handle, timeout_ms) -> (value,) | None (timeout) | False (closed)."},
    {"ch_send", (PyCFunction)(void (*)(void))py_ch_send, METH_FASTCALL,
     "ch_send(handle, value) -> 0 ok, 1 busy, 2 closed."},
    {"ch_close", py_ch_close, METH_O, "ch_close(handle)."},
    {"ch_info", py_ch_info, METH_O, "ch_info(handle) -> dict."},
    {"ch_wait_async", (PyCFunction)(void (*)(void))py_ch_wait_async, METH_FASTCALL,
     "ch_wait_async(handle, notifier, token) -> ChannelWaiter | None (ready now)."},
    {NULL, NULL, 0, NULL},
};

int channel_py_exec(PyObject *m)
{
    PyObject *nt = PyType_FromModuleAndSpec(m, &notifier_spec, NULL);
    PyObject *wt = nt ? PyType_FromModuleAndSpec(m, &waiter_spec, NULL) : NULL;
    PyObject *it = wt ? PyType_FromModuleAndSpec(m, &chiter_spec, NULL) : NULL;
    if (!it || PyModule_AddObjectRef(m, "Notifier", nt) < 0 ||
        PyModule_AddObjectRef(m, "ChannelWaiter", wt) < 0 ||
        PyModule_AddObjectRef(m, "ChannelIterator", it) < 0) {
        Py_XDECREF(nt);
        Py_XDECREF(wt);
        Py_XDECREF(it);
        return -1;
    }
    Py_DECREF(it); /* the module holds it; ch_iter finds it there */
    /* This interpreter's (py_types is a set per interpreter). */
    Py_XSETREF(py_types.notifier_type, nt);
    Py_XSETREF(py_types.waiter_type, wt);
    return PyModule_AddFunctions(m, channel_methods);
}
