/*
 * to_term.c - Python object -> Erlang term (docs/architecture.md,
 * "Conversion limits").
 *
 * One static function per Python type.  Runs on a worker thread with the GIL
 * held, building into the request's environment.  Exact types are tested
 * first (the hot path), subclasses after; an object with no mapping becomes
 * an opaque PyRef, never None, error or str(obj).
 *
 * OTP 25 trap (convert/bigmap.h): enif_make_map_from_arrays with more than 32 keys
 * on a non-scheduler thread crashes the emulator (erlang/otp#8208), so large
 * maps are built pair by pair with enif_make_map_put.
 */
#include "convert/convert.h"
#include "runtime/runtime.h"
#include "convert/pyref.h"
#include "convert/bigmap.h"

#define ETF_VERSION 131
#define ETF_LARGE_BIG 111
#define FLATMAP_MAX 32
#define ZERO_COPY_MIN 65536  /* bytes/str at least this large back a binary */

typedef struct {
    ErlNifEnv *env;
    struct context *ctx;
    int depth;
    int defer_maps;  /* large dicts may become bigmap placeholders */
    int deferred;    /* how many did */
} conv_t;

static int conv(conv_t *c, PyObject *o, ERL_NIF_TERM *out);

/* enif_make_new_binary allocates with an ordinary HAlloc on the env's
 * process: in a process-independent env it fits the binary into what is
 * left of the env's last heap fragment, or else gives it a fragment of its
 * own, exactly its size.  Once one has, so does every binary after it (a
 * malloc each, and as many fragments for the receiver's GC to free) until
 * some other term is made: a term made the usual way (alloc_heap) starts a
 * fragment with room to spare (MIN_HEAP_FRAG_SZ, 200 words).  So a 2-word
 * cons cell made first, unused, keeps that room there: of 10,000 dict keys
 * made into binaries (5 words each), some 250 fragments instead of 10,000.  Bench:
 * to_term of {'key_N': N} for 10k keys 1.14 -> 0.55 ms (thread CPU time,
 * median), and the receiver no longer frees 10,000 fragments. */
ERL_NIF_TERM make_binary(ErlNifEnv *env, const char *data, size_t len)
{
    ERL_NIF_TERM t;
    (void)enif_make_list_cell(env, ATOM(none), ATOM(none));
    memcpy(enif_make_new_binary(env, len, &t), data, len);
    return t;
}

static ERL_NIF_TERM bytes_term(conv_t *c, PyObject *owner, const char *data, size_t len)
{
    /* Only the main interpreter's objects outlive their context: an
     * own-GIL context's end with its sub-interpreter, so their bytes are
     * copied. */
    if (len >= ZERO_COPY_MIN && c->ctx && py_types.interp_id == py_types_main.interp_id)
        return pyref_make_binary(c->env, c->ctx, owner, data, len);
    return make_binary(c->env, data, len);
}

static int from_etf(ErlNifEnv *env, const unsigned char *data, size_t len, int safe,
                    ERL_NIF_TERM *out)
{
    return enif_binary_to_term(env, data, len, out, safe ? ERL_NIF_BIN2TERM_SAFE : 0) > 0;
}

#define ETF_ATOM_UTF8 118
#define ATOM_MAX_CHARS 255

static int atom_too_long(void)
{
    PyErr_SetString(PyExc_ValueError, "an atom has at most 255 characters");
    return -1;
}

/* Existing atom (safe decode), else a new one within the cap. */
static int atom_from_etf(ErlNifEnv *env, const unsigned char *buf, size_t size,
                         ERL_NIF_TERM *out)
{
    if (from_etf(env, buf, size, 1, out))
        return 0;
    if (!runtime_take_atom_slot())
        return -2;
    if (from_etf(env, buf, size, 0, out))
        return 0;
    PyErr_SetString(PyExc_ValueError, "not a valid atom");
    return -1;
}

int atom_from_utf8(ErlNifEnv *env, const char *s, size_t len, ERL_NIF_TERM *out)
{
    size_t chars = 0;
    int ascii = 1;
    for (size_t i = 0; i < len; i++) {
        unsigned char b = (unsigned char)s[i];
        ascii &= b < 128;
        chars += (b & 0xC0) != 0x80; /* count code points, not bytes */
    }
    if (chars > ATOM_MAX_CHARS)
        return atom_too_long();
    int rc;
    if (ascii) {
        if (enif_make_existing_atom_len(env, s, len, out, ERL_NIF_LATIN1))
            return 0;
        if (!runtime_take_atom_slot())
            goto cap;
        *out = enif_make_atom_len(env, s, len);
        return 0;
    }
    unsigned char buf[4 + ATOM_MAX_CHARS * 4];
    buf[0] = ETF_VERSION;
    buf[1] = ETF_ATOM_UTF8;
    buf[2] = (unsigned char)(len >> 8);
    buf[3] = (unsigned char)len;
    memcpy(buf + 4, s, len);
    rc = atom_from_etf(env, buf, len + 4, out);
    if (rc != -2)
        return rc;
cap:
    PyErr_Format(PyExc_ValueError,
                 "cannot create atom '%.100s': the cap of %ld atoms made from Python "
                 "is reached (app env atom_cap)", s, runtime_limits.atom_cap);
    return -1;
}

static int conv_atom(conv_t *c, PyObject *o, ERL_NIF_TERM *out)
{
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(o, &len);
    return s ? atom_from_utf8(c->env, s, len, out) : -1;
}

static int conv_bignum(conv_t *c, PyObject *o, ERL_NIF_TERM *out)
{
    int negative = PyObject_RichCompareBool(o, Py_False, Py_LT); /* o < 0 */
    PyObject *mag = PyNumber_Absolute(o);
    PyObject *bits = mag ? PyObject_CallMethod(mag, "bit_length", NULL) : NULL;
    size_t n = bits ? (PyLong_AsSize_t(bits) + 7) / 8 : 0;
    PyObject *digits = bits ? PyObject_CallMethod(mag, "to_bytes", "ns", (Py_ssize_t)n,
                                                  "little") : NULL;
    Py_XDECREF(mag);
    Py_XDECREF(bits);
    if (!digits || negative < 0)
        return -1;
    size_t size = 7 + n;
    unsigned char *buf = enif_alloc(size);
    buf[0] = ETF_VERSION;
    buf[1] = ETF_LARGE_BIG;
    buf[2] = n >> 24;
    buf[3] = n >> 16;
    buf[4] = n >> 8;
    buf[5] = n;
    buf[6] = negative;
    memcpy(buf + 7, PyBytes_AS_STRING(digits), n);
    Py_DECREF(digits);
    int ok = from_etf(c->env, buf, size, 0, out);
    enif_free(buf);
    if (ok)
        return 0;
    PyErr_SetString(PyExc_OverflowError, "integer too large for an Erlang term");
    return -1;
}

static int conv_long(conv_t *c, PyObject *o, ERL_NIF_TERM *out)
{
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (!overflow) {
        if (v == -1 && PyErr_Occurred())
            return -1;
        *out = enif_make_int64(c->env, v);
        return 0;
    }
    if (overflow > 0) {
        unsigned long long u = PyLong_AsUnsignedLongLong(o);
        if (!PyErr_Occurred()) {
            *out = enif_make_uint64(c->env, u);
            return 0;
        }
        PyErr_Clear();
    }
    return conv_bignum(c, o, out);
}

static int conv_float(conv_t *c, PyObject *o, ERL_NIF_TERM *out)
{
    double d = PyFloat_AsDouble(o);
    if (d == -1.0 && PyErr_Occurred())
        return -1;
    if (Py_IS_NAN(d))
        *out = ATOM(nan);
    else if (Py_IS_INFINITY(d))
        *out = d > 0 ? ATOM(infinity) : ATOM(neg_infinity);
    else
        *out = enif_make_double(c->env, d);
    return 0;
}

static int conv_str(conv_t *c, PyObject *o, ERL_NIF_TERM *out)
{
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(o, &len);
    if (!s)
        return -1;
    /* A compact ASCII str holds its UTF-8 bytes itself: share them. */
    *out = PyUnicode_IS_COMPACT_ASCII(o) ? bytes_term(c, o, s, len)
                                         : make_binary(c->env, s, len);
    return 0;
}

/* The value of an int of one digit (|v| < 2**30), read in place; 0 when
 * it has more.  The common int: reading it through
 * PyLong_AsLongLongAndOverflow made a 100k-int list's conversion 30%
 * slower (1.27 against 1.78 M cycles). */
static inline int compact_long(PyObject *o, long long *v)
{
#if PY_VERSION_HEX >= 0x030C0000
    if (!PyUnstable_Long_IsCompact((PyLongObject *)o))
        return 0;
    *v = PyUnstable_Long_CompactValue((PyLongObject *)o);
#else
    Py_ssize_t size = Py_SIZE(o); /* signed count of 30-bit digits */
    if (size < -1 || size > 1)
        return 0;
    *v = size * (long long)((PyLongObject *)o)->ob_digit[0];
#endif
    return 1;
}

/* An exact int that fits 64 bits inline (the common item, key and value:
 * runs no Python); anything else through conv, holding a reference since a
 * conversion may run Python code that drops the container's. */
static int conv_item(conv_t *c, PyObject *item, ERL_NIF_TERM *out)
{
    if (PyLong_CheckExact(item)) {
        long long small;
        if (compact_long(item, &small)) {
            *out = enif_make_int64(c->env, small);
            return 0;
        }
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(item, &overflow);
        if (!overflow) {
            *out = enif_make_int64(c->env, v);
            return 0;
        }
    }
    Py_INCREF(item);
    int rc = conv(c, item, out);
    Py_DECREF(item);
    return rc;
}

static int conv_seq(conv_t *c, PyObject *o, int is_tuple, ERL_NIF_TERM *out)
{
    Py_ssize_t n = is_tuple ? PyTuple_GET_SIZE(o) : PyList_GET_SIZE(o);
    ERL_NIF_TERM small[16];
    ERL_NIF_TERM *items = n <= 16 ? small : enif_alloc(sizeof(ERL_NIF_TERM) * n);
    int rc = 0;
    for (Py_ssize_t i = 0; i < n && rc == 0; i++) {
        if (!is_tuple && i >= PyList_GET_SIZE(o)) { /* shrunk by a __del__ */
            PyErr_SetString(PyExc_RuntimeError, "list changed size during conversion");
            rc = -1;
            break;
        }
        PyObject *item = is_tuple ? PyTuple_GET_ITEM(o, i) : PyList_GET_ITEM(o, i);
        rc = conv_item(c, item, &items[i]);
    }
    if (rc == 0)
        *out = is_tuple ? enif_make_tuple_from_array(c->env, items, n)
                        : enif_make_list_from_array(c->env, items, n);
    if (items != small)
        enif_free(items);
    return rc;
}

static int key_collision(PyObject *dict)
{
    PyErr_Format(PyExc_ValueError,
                 "dict keys collide after conversion to Erlang terms "
                 "(e.g. 'a' and b'a' both become <<\"a\">>): %.200R", dict);
    return -1;
}

static int conv_dict(conv_t *c, PyObject *o, ERL_NIF_TERM *out)
{
    Py_ssize_t n = PyDict_Size(o), pos = 0, i = 0;
    ERL_NIF_TERM *keys = enif_alloc(sizeof(ERL_NIF_TERM) * 2 * (n ? n : 1));
    ERL_NIF_TERM *vals = keys + n;
    PyObject *k, *v;
    int rc = 0, deferred = c->deferred;
    while (rc == 0 && PyDict_Next(o, &pos, &k, &v)) {
        if (i >= n) {
            PyErr_SetString(PyExc_RuntimeError, "dict changed size during conversion");
            rc = -1;
            break;
        }
        Py_INCREF(v); /* converting the key may drop the dict's reference */
        if (PyUnicode_CheckExact(k) && PyUnicode_IS_COMPACT_ASCII(k) &&
            PyUnicode_GET_LENGTH(k) < ZERO_COPY_MIN) /* the common key: its bytes as they are */
            keys[i] = make_binary(c->env, (const char *)PyUnicode_1BYTE_DATA(k),
                                  PyUnicode_GET_LENGTH(k));
        else
            rc = conv_item(c, k, &keys[i]);
        if (rc == 0)
            rc = conv_item(c, v, &vals[i]);
        Py_DECREF(v);
        i++;
    }
    if (rc == 0 && i > FLATMAP_MAX && c->defer_maps) {
        *out = bigmap_placeholder(c->env, keys, vals, i, c->deferred != deferred);
        c->deferred++;
    } else if (rc == 0 && i <= FLATMAP_MAX) {
        size_t size = 0;
        if (!enif_make_map_from_arrays(c->env, keys, vals, i, out) ||
            !enif_get_map_size(c->env, *out, &size) || (Py_ssize_t)size != i)
            rc = key_collision(o);
    } else if (rc == 0) {
        ERL_NIF_TERM map = enif_make_new_map(c->env);
        for (Py_ssize_t j = 0; j < i; j++)
            enif_make_map_put(c->env, map, keys[j], vals[j], &map);
        size_t size;
        enif_get_map_size(c->env, map, &size);
        if ((Py_ssize_t)size != i)
            rc = key_collision(o);
        *out = map;
    }
    enif_free(keys);
    return rc;
}

static int conv_etf(conv_t *c, PyObject *o, ERL_NIF_TERM *out)
{
    PyObject *etf = PyObject_GetAttr(o, py_types.str_etf);
    if (!etf)
        return -1;
    int ok = PyBytes_Check(etf) &&
             from_etf(c->env, (const unsigned char *)PyBytes_AS_STRING(etf),
                      PyBytes_GET_SIZE(etf), 0, out);
    Py_DECREF(etf);
    if (ok)
        return 0;
    PyErr_Format(PyExc_ValueError, "%.50s does not hold a valid term", Py_TYPE(o)->tp_name);
    return -1;
}

static int conv_buffer(conv_t *c, PyObject *o, ERL_NIF_TERM *out)
{
    Py_buffer view;
    if (PyObject_GetBuffer(o, &view, PyBUF_CONTIG_RO) < 0)
        return -1;
    *out = make_binary(c->env, view.buf, view.len);
    PyBuffer_Release(&view);
    return 0;
}

static resource_to_term_fn resource_hook;

void to_term_set_resource_hook(resource_to_term_fn fn)
{
    resource_hook = fn;
}

/* An object with no mapping needs a context to live in as a reference. */
static int no_context(PyObject *o)
{
    PyErr_Format(PyExc_TypeError,
                 "%.100s has no Erlang term form, and outside a request there is no "
                 "context to hold a reference to it", Py_TYPE(o)->tp_name);
    return -1;
}

static int conv(conv_t *c, PyObject *o, ERL_NIF_TERM *out)
{
    if (++c->depth > runtime_limits.max_depth) {
        PyErr_Format(PyExc_ValueError, "value nested deeper than %d levels",
                     runtime_limits.max_depth);
        return -1;
    }
    PyTypeObject *tp = Py_TYPE(o);
    PyObject *t = (PyObject *)tp;
    int rc = 0;
    if (o == Py_None)
        *out = ATOM(none);
    else if (o == Py_True)
        *out = ATOM(true);
    else if (o == Py_False)
        *out = ATOM(false);
    else if (tp == &PyLong_Type)
        rc = conv_long(c, o, out);
    else if (tp == &PyUnicode_Type)
        rc = conv_str(c, o, out);
    else if (tp == &PyFloat_Type)
        rc = conv_float(c, o, out);
    else if (tp == &PyList_Type)
        rc = conv_seq(c, o, 0, out);
    else if (tp == &PyTuple_Type)
        rc = conv_seq(c, o, 1, out);
    else if (tp == &PyDict_Type)
        rc = conv_dict(c, o, out);
    else if (tp == &PyBytes_Type)
        *out = bytes_term(c, o, PyBytes_AS_STRING(o), PyBytes_GET_SIZE(o));
    else if (t == py_types.atom_type)
        rc = conv_atom(c, o, out);
    else if (t == py_types.pid_type || t == py_types.ref_type || t == py_types.term_type)
        rc = conv_etf(c, o, out);
    else if (PyLong_Check(o))
        rc = conv_long(c, o, out);
    else if (PyFloat_Check(o))
        rc = conv_float(c, o, out);
    else if (PyUnicode_Check(o))
        rc = conv_str(c, o, out);
    else if (PyBytes_Check(o) || PyByteArray_Check(o) || PyMemoryView_Check(o))
        rc = conv_buffer(c, o, out);
    else if (PyList_Check(o))
        rc = conv_seq(c, o, 0, out);
    else if (PyTuple_Check(o))
        rc = conv_seq(c, o, 1, out);
    else if (PyDict_Check(o))
        rc = conv_dict(c, o, out);
    else if (resource_hook && (rc = resource_hook(c->env, o, out)) != 0)
        rc = rc < 0 ? -1 : 0;
    else if (c->ctx)
        *out = pyref_make(c->env, c->ctx, o);
    else
        rc = no_context(o);
    c->depth--;
    return rc;
}

int to_term(ErlNifEnv *env, struct context *ctx, PyObject *obj, ERL_NIF_TERM *out)
{
    conv_t c = {.env = env, .ctx = ctx};
    return conv(&c, obj, out);
}

int to_term_reply(ErlNifEnv *env, struct context *ctx, PyObject *obj, ERL_NIF_TERM *out,
                  int *deferred)
{
    conv_t c = {.env = env, .ctx = ctx, .defer_maps = 1};
    int rc = conv(&c, obj, out);
    *deferred |= c.deferred != 0;
    return rc;
}
