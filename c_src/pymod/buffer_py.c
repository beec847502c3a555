/*
 * buffer_py.c - `erlang.PyBuffer': a py_buffer resource (shared/buffer.h)
 * as a read-only binary file, with the buffer protocol.
 *
 * Reads copy out under the buffer's lock; a read that must wait releases
 * the GIL (data_block: inside a request a cancel still ends it).  The read
 * position is the resource's, shared by every PyBuffer of it.  A
 * memoryview covers the bytes not read yet when it is taken; while one is
 * held the block does not move (the writer cannot grow it).
 *
 * Threads: any Python thread, GIL held (released while waiting).
 */
#include "pymod/data_py.h"
#include "runtime/types.h"
#include "shared/buffer.h"
#include "shared/channel.h"

#include <string.h> /* memmem: Python.h defines _GNU_SOURCE */

typedef struct {
    PyObject_HEAD
    buffer_t *b; /* kept */
} pybuf_t;

void *buffer_py_resource(PyObject *o)
{
    if (py_types.buffer_type && Py_TYPE(o) == (PyTypeObject *)py_types.buffer_type)
        return ((pybuf_t *)o)->b;
    return NULL;
}

PyObject *buffer_py_new(void *buffer)
{
    PyTypeObject *tp = (PyTypeObject *)py_types.buffer_type;
    pybuf_t *self = (pybuf_t *)tp->tp_alloc(tp, 0);
    if (self) {
        buffer_keep(buffer);
        self->b = buffer;
    }
    return (PyObject *)self;
}

static void pybuf_dealloc(PyObject *o)
{
    PyTypeObject *tp = Py_TYPE(o);
    buffer_release(((pybuf_t *)o)->b);
    tp->tp_free(o);
    Py_DECREF(tp);
}

/* ------------------------------------------------------------------ waits */

typedef struct {
    buffer_t *b;
    Py_ssize_t need;  /* bytes wanted (-1: up to EOF) */
    int line;         /* until a newline */
    size_t scanned;   /* bytes already searched for a newline */
} want_t;

/* Lock held: what `want' asks for is there (EOF is checked by the caller). */
static int wanted(buffer_t *b, void *arg)
{
    want_t *w = arg;
    size_t avail = b->len - b->pos;
    if (w->line) {
        size_t from = w->scanned > b->pos ? w->scanned : b->pos;
        if (memchr(b->data + from, '\n', b->len - from))
            return 1;
        w->scanned = b->len;
        return w->need >= 0 && avail >= (size_t)w->need;
    }
    if (w->need < 0)
        return 0;
    return avail > 0 || w->need == 0;
}

static int ready_step(void *arg, int64_t until)
{
    want_t *w = arg;
    pthread_mutex_lock(&w->b->lock);
    int r = buffer_wait(w->b, wanted, w, until);
    pthread_mutex_unlock(&w->b->lock);
    return r;
}

/* Wait until `want' holds or EOF: 0, or -1 with an exception set. */
static int wait_for(want_t *w)
{
    pthread_mutex_lock(&w->b->lock);
    int now = w->b->eof || wanted(w->b, w);
    pthread_mutex_unlock(&w->b->lock);
    return now ? 0 : data_block(ready_step, w, -1) < 0 ? -1 : 0;
}

static int check_open(pybuf_t *self)
{
    if (!self->b->closed)
        return 0;
    PyErr_SetString(PyExc_ValueError, "I/O operation on closed buffer");
    return -1;
}

/* Lock held: take up to n bytes (n < 0: all) at the read position. */
static PyObject *take_locked(buffer_t *b, Py_ssize_t n)
{
    size_t avail = b->len - b->pos;
    size_t k = n < 0 || (size_t)n > avail ? avail : (size_t)n;
    PyObject *r = PyBytes_FromStringAndSize(b->data + b->pos, k);
    if (r)
        b->pos += k;
    return r;
}

static PyObject *take(buffer_t *b, Py_ssize_t n)
{
    pthread_mutex_lock(&b->lock);
    PyObject *r = take_locked(b, n);
    pthread_mutex_unlock(&b->lock);
    return r;
}

static int size_arg(PyObject *const *args, Py_ssize_t n, Py_ssize_t *out)
{
    *out = -1;
    if (n > 1) {
        PyErr_SetString(PyExc_TypeError, "expected at most one argument: size");
        return -1;
    }
    if (n == 1 && args[0] != Py_None) {
        *out = PyNumber_AsSsize_t(args[0], PyExc_OverflowError);
        if (*out == -1 && PyErr_Occurred())
            return -1;
    }
    return 0;
}

/* read(size=-1): up to size bytes, waiting for at least one (size < 0:
 * everything up to EOF); b'' at EOF */
static PyObject *pybuf_read(PyObject *o, PyObject *const *args, Py_ssize_t n)
{
    pybuf_t *self = (pybuf_t *)o;
    Py_ssize_t size;
    if (size_arg(args, n, &size) < 0 || check_open(self) < 0)
        return NULL;
    want_t w = {.b = self->b, .need = size};
    return wait_for(&w) < 0 ? NULL : take(self->b, size);
}

/* read_nonblock(size=-1): what is there, up to size, without waiting */
static PyObject *pybuf_read_nonblock(PyObject *o, PyObject *const *args, Py_ssize_t n)
{
    pybuf_t *self = (pybuf_t *)o;
    Py_ssize_t size;
    if (size_arg(args, n, &size) < 0 || check_open(self) < 0)
        return NULL;
    return take(self->b, size);
}

/* readline(size=-1): up to and including a newline, or size bytes, or to EOF */
static PyObject *pybuf_readline(PyObject *o, PyObject *const *args, Py_ssize_t n)
{
    pybuf_t *self = (pybuf_t *)o;
    Py_ssize_t size;
    if (size_arg(args, n, &size) < 0 || check_open(self) < 0)
        return NULL;
    want_t w = {.b = self->b, .need = size, .line = 1};
    if (wait_for(&w) < 0)
        return NULL;
    buffer_t *b = self->b;
    pthread_mutex_lock(&b->lock);
    size_t avail = b->len - b->pos;
    const char *nl = memchr(b->data + b->pos, '\n', avail);
    size_t k = nl ? (size_t)(nl - (b->data + b->pos)) + 1 : avail;
    if (size >= 0 && (size_t)size < k)
        k = (size_t)size;
    PyObject *r = take_locked(b, (Py_ssize_t)k);
    pthread_mutex_unlock(&b->lock);
    return r;
}

static PyObject *pybuf_iternext(PyObject *o)
{
    PyObject *line = pybuf_readline(o, NULL, 0);
    if (line && PyBytes_GET_SIZE(line) == 0) {
        Py_DECREF(line);
        return NULL; /* StopIteration */
    }
    return line;
}

/* readlines(hint=-1): the lines to EOF, or until hint bytes have been read */
static PyObject *pybuf_readlines(PyObject *o, PyObject *const *args, Py_ssize_t n)
{
    Py_ssize_t hint, total = 0;
    if (size_arg(args, n, &hint) < 0)
        return NULL;
    PyObject *list = PyList_New(0), *line;
    while (list && (line = pybuf_iternext(o))) {
        total += PyBytes_GET_SIZE(line);
        int rc = PyList_Append(list, line);
        Py_DECREF(line);
        if (rc < 0)
            Py_CLEAR(list);
        else if (hint > 0 && total >= hint)
            break;
    }
    if (PyErr_Occurred())
        Py_CLEAR(list);
    return list;
}

/* seek(offset, whence=0) -> the new position; within what is written,
 * from the end only after EOF */
static PyObject *pybuf_seek(PyObject *o, PyObject *args)
{
    pybuf_t *self = (pybuf_t *)o;
    Py_ssize_t offset;
    int whence = 0;
    if (!PyArg_ParseTuple(args, "n|i:seek", &offset, &whence) || check_open(self) < 0)
        return NULL;
    buffer_t *b = self->b;
    pthread_mutex_lock(&b->lock);
    Py_ssize_t base = whence == 0 ? 0 : whence == 1 ? (Py_ssize_t)b->pos : (Py_ssize_t)b->len;
    Py_ssize_t to = base + offset;
    const char *err = whence < 0 || whence > 2 ? "whence must be 0, 1 or 2"
                      : whence == 2 && !b->eof  ? "seek from the end needs the writer's close"
                      : to < 0 || (size_t)to > b->len ? "seek outside the data written"
                                                       : NULL;
    if (!err)
        b->pos = (size_t)to;
    pthread_mutex_unlock(&b->lock);
    if (err) {
        PyErr_SetString(PyExc_ValueError, err);
        return NULL;
    }
    return PyLong_FromSsize_t(to);
}

static PyObject *pybuf_tell(PyObject *o, PyObject *unused)
{
    UNUSED(unused);
    buffer_t *b = ((pybuf_t *)o)->b;
    pthread_mutex_lock(&b->lock);
    size_t pos = b->pos;
    pthread_mutex_unlock(&b->lock);
    return PyLong_FromSize_t(pos);
}

/* find(sub, start=0, end=None): the index of sub in the unread bytes
 * (counted from the read position), or -1; never waits */
static PyObject *pybuf_find(PyObject *o, PyObject *args)
{
    Py_buffer sub;
    Py_ssize_t start = 0;
    PyObject *end_o = Py_None;
    if (!PyArg_ParseTuple(args, "y*|nO:find", &sub, &start, &end_o))
        return NULL;
    buffer_t *b = ((pybuf_t *)o)->b;
    Py_ssize_t end = end_o == Py_None ? PY_SSIZE_T_MAX : PyNumber_AsSsize_t(end_o, NULL);
    Py_ssize_t found = -1;
    pthread_mutex_lock(&b->lock);
    Py_ssize_t avail = (Py_ssize_t)(b->len - b->pos);
    if (end > avail)
        end = avail;
    if (start >= 0 && start <= end && sub.len <= end - start) {
        const char *base = b->data + b->pos;
        const char *hit = sub.len == 1 ? memchr(base + start, *(char *)sub.buf, end - start)
                                       : memmem(base + start, end - start, sub.buf, sub.len);
        found = hit ? hit - base : -1;
    }
    pthread_mutex_unlock(&b->lock);
    PyBuffer_Release(&sub);
    return PyErr_Occurred() ? NULL : PyLong_FromSsize_t(found);
}

static PyObject *pybuf_readable_amount(PyObject *o, PyObject *unused)
{
    UNUSED(unused);
    buffer_t *b = ((pybuf_t *)o)->b;
    pthread_mutex_lock(&b->lock);
    size_t n = b->len - b->pos;
    pthread_mutex_unlock(&b->lock);
    return PyLong_FromSize_t(n);
}

static Py_ssize_t pybuf_len(PyObject *o)
{
    buffer_t *b = ((pybuf_t *)o)->b;
    pthread_mutex_lock(&b->lock);
    size_t n = b->len - b->pos;
    pthread_mutex_unlock(&b->lock);
    return (Py_ssize_t)n;
}

/* at_eof(): the writer closed it and everything has been read */
static PyObject *pybuf_at_eof(PyObject *o, PyObject *unused)
{
    UNUSED(unused);
    buffer_t *b = ((pybuf_t *)o)->b;
    pthread_mutex_lock(&b->lock);
    int r = b->eof && b->pos == b->len;
    pthread_mutex_unlock(&b->lock);
    return PyBool_FromLong(r);
}

static PyObject *pybuf_close(PyObject *o, PyObject *unused)
{
    UNUSED(unused);
    buffer_t *b = ((pybuf_t *)o)->b;
    pthread_mutex_lock(&b->lock);
    b->closed = 1;
    pthread_mutex_unlock(&b->lock);
    Py_RETURN_NONE;
}

static PyObject *pybuf_true(PyObject *o, PyObject *unused)
{
    UNUSED(o);
    UNUSED(unused);
    Py_RETURN_TRUE;
}

static PyObject *pybuf_false(PyObject *o, PyObject *unused)
{
    UNUSED(o);
    UNUSED(unused);
    Py_RETURN_FALSE;
}

static PyObject *pybuf_closed(PyObject *o, void *unused)
{
    UNUSED(unused);
    return PyBool_FromLong(((pybuf_t *)o)->b->closed);
}

static int pybuf_getbuffer(PyObject *o, Py_buffer *view, int flags)
{
    buffer_t *b = ((pybuf_t *)o)->b;
    if (flags & PyBUF_WRITABLE) {
        PyErr_SetString(PyExc_BufferError, "a PyBuffer is read-only");
        return -1;
    }
    pthread_mutex_lock(&b->lock);
    b->views++;
    char *data = b->data + b->pos;
    Py_ssize_t len = (Py_ssize_t)(b->len - b->pos);
    pthread_mutex_unlock(&b->lock);
    return PyBuffer_FillInfo(view, o, data, len, 1, flags);
}

static void pybuf_releasebuffer(PyObject *o, Py_buffer *view)
{
    UNUSED(view);
    buffer_t *b = ((pybuf_t *)o)->b;
    pthread_mutex_lock(&b->lock);
    b->views--;
    pthread_mutex_unlock(&b->lock);
}

static PyObject *pybuf_repr(PyObject *o)
{
    buffer_t *b = ((pybuf_t *)o)->b;
    return PyUnicode_FromFormat("<erlang.PyBuffer %zu bytes written, at %zu%s>", b->len, b->pos,
                                b->eof ? ", eof" : "");
}

#define FAST(f) (PyCFunction)(void (*)(void))(f), METH_FASTCALL
static PyMethodDef pybuf_methods[] = {
    {"read", FAST(pybuf_read), "read(size=-1) -> bytes; waits for data (GIL released)."},
    {"read_nonblock", FAST(pybuf_read_nonblock), "read_nonblock(size=-1): never waits."},
    {"readline", FAST(pybuf_readline), "readline(size=-1) -> one line (with its newline)."},
    {"readlines", FAST(pybuf_readlines), "readlines(hint=-1) -> list of lines."},
    {"seek", pybuf_seek, METH_VARARGS, "seek(offset, whence=0) -> the new position."},
    {"tell", pybuf_tell, METH_NOARGS, "tell() -> the read position."},
    {"find", pybuf_find, METH_VARARGS, "find(sub, start=0, end=None) -> index or -1."},
    {"readable_amount", pybuf_readable_amount, METH_NOARGS, "Bytes readable now."},
    {"at_eof", pybuf_at_eof, METH_NOARGS, "Closed by the writer and all read."},
    {"close", pybuf_close, METH_NOARGS, "Close this reader's side."},
    {"readable", pybuf_true, METH_NOARGS, "True."},
    {"seekable", pybuf_true, METH_NOARGS, "True."},
    {"writable", pybuf_false, METH_NOARGS, "False."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef pybuf_getset[] = {
    {"closed", pybuf_closed, NULL, "Whether close() was called.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot pybuf_slots[] = {
    {Py_tp_dealloc, pybuf_dealloc},
    {Py_tp_repr, pybuf_repr},
    {Py_tp_methods, pybuf_methods},
    {Py_tp_getset, pybuf_getset},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, pybuf_iternext},
    {Py_sq_length, pybuf_len},
    {Py_bf_getbuffer, pybuf_getbuffer},
    {Py_bf_releasebuffer, pybuf_releasebuffer},
    {Py_tp_doc, "Bytes written by Erlang (py_buffer), read as a binary file."},
    {0, NULL},
};

static PyType_Spec pybuf_spec = {
    .name = "erlang.PyBuffer",
    .basicsize = sizeof(pybuf_t),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = pybuf_slots,
};

int buffer_py_exec(PyObject *m)
{
    PyObject *tp = PyType_FromModuleAndSpec(m, &pybuf_spec, NULL);
    if (!tp || PyModule_AddObjectRef(m, "PyBuffer", tp) < 0) {
        Py_XDECREF(tp);
        return -1;
    }
    Py_XSETREF(py_types.buffer_type, tp);
    return 0;
}
