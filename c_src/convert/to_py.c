/*
 * to_py.c - Erlang term -> Python object (docs/architecture.md,
 * "Conversion limits").
 *
 * One static function per term kind.  Runs on a worker thread with the GIL
 * held; the term lives in the request's environment.  Nesting is bounded by
 * runtime_limits.max_depth (an error, not a crash).
 */
#include "convert/convert.h"
#include "runtime/runtime.h"
#include "convert/pyref.h"

#define ETF_VERSION 131
#define ETF_SMALL_BIG 110
#define ETF_LARGE_BIG 111
#define ETF_ATOM_UTF8 118
#define ETF_SMALL_ATOM_UTF8 119

typedef struct {
    ErlNifEnv *env;
    struct context *ctx;
    int depth;
} conv_t;

static PyObject *conv(conv_t *c, ERL_NIF_TERM t);

/* A term kept whole in external term format, as Pid/Ref/Term. */
static PyObject *wrap_etf(conv_t *c, PyObject *type, ERL_NIF_TERM t)
{
    ErlNifBinary bin;
    if (!enif_term_to_binary(c->env, t, &bin))
        return PyErr_NoMemory();
    PyObject *bytes = PyBytes_FromStringAndSize((const char *)bin.data, bin.size);
    enif_release_binary(&bin);
    if (!bytes)
        return NULL;
    /* The bytes are valid external term format: set the slot directly
     * rather than through _Opaque.__init__'s check (a Python frame, about
     * half a microsecond for every pid and reference converted). */
    PyTypeObject *tp = (PyTypeObject *)type;
    PyObject *obj = tp->tp_alloc(tp, 0);
    if (obj && PyObject_SetAttr(obj, py_types.str_etf, bytes) < 0)
        Py_CLEAR(obj);
    Py_DECREF(bytes);
    return obj;
}

/* Atom text through external term format: atoms with code points > 255. */
static PyObject *atom_text_etf(conv_t *c, ERL_NIF_TERM t)
{
    ErlNifBinary bin;
    PyObject *s = NULL;
    if (!enif_term_to_binary(c->env, t, &bin))
        return PyErr_NoMemory();
    const unsigned char *d = bin.data;
    if (bin.size >= 3 && d[1] == ETF_SMALL_ATOM_UTF8)
        s = PyUnicode_DecodeUTF8((const char *)d + 3, d[2], "strict");
    else if (bin.size >= 4 && d[1] == ETF_ATOM_UTF8)
        s = PyUnicode_DecodeUTF8((const char *)d + 4, (d[2] << 8) | d[3], "strict");
    else
        PyErr_SetString(PyExc_ValueError, "unexpected atom encoding");
    enif_release_binary(&bin);
    return s;
}

static PyObject *conv_atom(conv_t *c, ERL_NIF_TERM t)
{
    if (t == ATOM(true))
        Py_RETURN_TRUE;
    if (t == ATOM(false))
        Py_RETURN_FALSE;
    if (t == ATOM(none) || t == ATOM(nil) || t == ATOM(undefined))
        Py_RETURN_NONE;
    if (t == ATOM(nan))
        return PyFloat_FromDouble(Py_NAN);
    if (t == ATOM(infinity))
        return PyFloat_FromDouble(Py_HUGE_VAL);
    if (t == ATOM(neg_infinity))
        return PyFloat_FromDouble(-Py_HUGE_VAL);
    PyObject *atom = atom_cache_get(&py_types.atoms, t);
    if (atom)
        return Py_NewRef(atom);
    char buf[256 * 4];
    int n = enif_get_atom(c->env, t, buf, sizeof buf, ERL_NIF_LATIN1);
    PyObject *text = n > 0 ? PyUnicode_DecodeLatin1(buf, n - 1, NULL) : atom_text_etf(c, t);
    atom = text ? PyObject_CallOneArg(py_types.atom_type, text) : NULL;
    Py_XDECREF(text);
    if (atom)
        atom_cache_put(&py_types.atoms, t, atom);
    return atom;
}

/* An integer outside 64 bits, read from its external format. */
static PyObject *conv_bignum(conv_t *c, ERL_NIF_TERM t)
{
    ErlNifBinary bin;
    if (!enif_term_to_binary(c->env, t, &bin))
        return PyErr_NoMemory();
    const unsigned char *d = bin.data;
    size_t n, off;
    if (d[1] == ETF_SMALL_BIG) {
        n = d[2];
        off = 3;
    } else {
        n = ((size_t)d[2] << 24) | ((size_t)d[3] << 16) | ((size_t)d[4] << 8) | d[5];
        off = 6;
    }
    int negative = d[off];
    PyObject *digits = PyBytes_FromStringAndSize((const char *)d + off + 1, n);
    enif_release_binary(&bin);
    if (!digits)
        return NULL;
    PyObject *v = PyObject_CallMethod((PyObject *)&PyLong_Type, "from_bytes", "Os", digits,
                                      "little");
    Py_DECREF(digits);
    if (v && negative) {
        PyObject *neg = PyNumber_Negative(v);
        Py_DECREF(v);
        v = neg;
    }
    return v;
}

static PyObject *conv_integer(conv_t *c, ERL_NIF_TERM t)
{
    ErlNifSInt64 i;
    ErlNifUInt64 u;
    if (enif_get_int64(c->env, t, &i))
        return PyLong_FromLongLong(i);
    if (enif_get_uint64(c->env, t, &u))
        return PyLong_FromUnsignedLongLong(u);
    return conv_bignum(c, t);
}

enum { UTF8_INVALID, UTF8_VALID, UTF8_ASCII };

/* Whether data is ASCII, other well-formed UTF-8 (no surrogates, no
 * overlongs), or neither.  Checked here rather than by a failing decode:
 * CPython's UnicodeDecodeError would copy the whole input into the
 * exception. */
static int utf8_check(const unsigned char *p, size_t n)
{
    const unsigned char *end = p + n;
    int ascii = 1;
    while (p < end) {
        if (end - p >= 32) { /* ASCII runs, 32 bytes at a time */
            uint64_t w[4];
            memcpy(w, p, 32);
            if (!((w[0] | w[1] | w[2] | w[3]) & 0x8080808080808080ULL)) {
                p += 32;
                continue;
            }
        }
        unsigned char b = *p;
        if (b < 0x80) {
            p++;
            continue;
        }
        ascii = 0;
        size_t len = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC2 ? 2 : 0;
        if (len == 0 || b > 0xF4 || (size_t)(end - p) < len)
            return UTF8_INVALID;
        for (size_t i = 1; i < len; i++)
            if ((p[i] & 0xC0) != 0x80)
                return UTF8_INVALID;
        if ((b == 0xE0 && p[1] < 0xA0) || (b == 0xED && p[1] > 0x9F) ||
            (b == 0xF0 && p[1] < 0x90) || (b == 0xF4 && p[1] > 0x8F))
            return UTF8_INVALID;
        p += len;
    }
    return ascii ? UTF8_ASCII : UTF8_VALID;
}

/* A binary's bytes: str when valid UTF-8, else bytes. */
static PyObject *binary_to_py(const ErlNifBinary *b)
{
    ErlNifBinary bin = *b;
    switch (utf8_check(bin.data, bin.size)) {
    case UTF8_ASCII: { /* checked already: a plain copy, no second decode */
        PyObject *s = PyUnicode_New(bin.size, 127);
        if (s)
            memcpy(PyUnicode_DATA(s), bin.data, bin.size);
        return s;
    }
    case UTF8_VALID:
        return PyUnicode_DecodeUTF8((const char *)bin.data, bin.size, "strict");
    default:
        return PyBytes_FromStringAndSize((const char *)bin.data, bin.size);
    }
}

static PyObject *conv_bitstring(conv_t *c, ERL_NIF_TERM t)
{
    ErlNifBinary bin;
    if (!enif_inspect_binary(c->env, t, &bin)) /* not a whole number of bytes */
        return wrap_etf(c, py_types.term_type, t);
    return binary_to_py(&bin);
}

/* A map key; one Python cannot hash (a list or map) stays a Term. */
static PyObject *conv_key(conv_t *c, ERL_NIF_TERM k)
{
    PyObject *key = conv(c, k);
    if (key && PyObject_Hash(key) == -1) {
        Py_DECREF(key);
        if (!PyErr_ExceptionMatches(PyExc_TypeError))
            return NULL;
        PyErr_Clear();
        key = wrap_etf(c, py_types.term_type, k);
    }
    return key;
}

/* An integer inline (the common item, key and value; always hashable, and
 * no depth bookkeeping needed), else conv_key or conv. */
static PyObject *conv_item(conv_t *c, ERL_NIF_TERM t, int is_key)
{
    ErlNifSInt64 v;
    if (enif_get_int64(c->env, t, &v))
        return PyLong_FromLongLong(v);
    return is_key ? conv_key(c, t) : conv(c, t);
}

static PyObject *conv_list(conv_t *c, ERL_NIF_TERM t)
{
    unsigned n;
    if (!enif_get_list_length(c->env, t, &n)) /* improper list */
        return wrap_etf(c, py_types.term_type, t);
    PyObject *list = PyList_New(n);
    ERL_NIF_TERM head, tail = t;
    for (unsigned i = 0; list && enif_get_list_cell(c->env, tail, &head, &tail); i++) {
        PyObject *item = conv_item(c, head, 0);
        if (!item)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, i, item);
    }
    return list;
}

static PyObject *conv_tuple(conv_t *c, ERL_NIF_TERM t)
{
    int arity;
    const ERL_NIF_TERM *elems;
    enif_get_tuple(c->env, t, &arity, &elems);
    ErlNifBinary bin;
    if (arity == 2 && elems[0] == ATOM(bytes) && enif_inspect_binary(c->env, elems[1], &bin))
        return PyBytes_FromStringAndSize((const char *)bin.data, bin.size);
    PyObject *tuple = PyTuple_New(arity);
    for (int i = 0; tuple && i < arity; i++) {
        PyObject *item = conv_item(c, elems[i], 0);
        if (!item)
            Py_CLEAR(tuple);
        else
            PyTuple_SET_ITEM(tuple, i, item);
    }
    return tuple;
}

static PyObject *conv_map(conv_t *c, ERL_NIF_TERM t)
{
    size_t size;
    enif_get_map_size(c->env, t, &size);
    /* Sized once: no rehash as the keys go in. */
    PyObject *dict = size > 8 ? _PyDict_NewPresized((Py_ssize_t)size) : PyDict_New();
    ErlNifMapIterator it;
    ERL_NIF_TERM k, v;
    if (!dict || !enif_map_iterator_create(c->env, t, &it, ERL_NIF_MAP_ITERATOR_FIRST)) {
        Py_XDECREF(dict);
        return dict ? PyErr_NoMemory() : NULL;
    }
    while (enif_map_iterator_get_pair(c->env, &it, &k, &v)) {
        /* A binary key (the common one after integers) straight to str or
         * bytes: both hashable, and the dict computes the hash. */
        ErlNifBinary kb;
        PyObject *key = enif_inspect_binary(c->env, k, &kb) ? binary_to_py(&kb)
                                                            : conv_item(c, k, 1);
        PyObject *val = key ? conv_item(c, v, 0) : NULL;
        int rc = val ? PyDict_SetItem(dict, key, val) : -1;
        Py_XDECREF(key);
        Py_XDECREF(val);
        if (rc < 0) {
            Py_CLEAR(dict);
            break;
        }
        enif_map_iterator_next(c->env, &it);
    }
    enif_map_iterator_destroy(c->env, &it);
    if (dict && (size_t)PyDict_GET_SIZE(dict) != size) {
        /* 1 and 1.0, ok and <<"ok">>, true and 1 are one key in Python. */
        PyErr_SetString(PyExc_ValueError,
                        "map keys collide in Python (e.g. 1 and 1.0, or ok and <<\"ok\">>)");
        Py_CLEAR(dict);
    }
    return dict;
}

static resource_to_py_fn resource_hook;

void to_py_set_resource_hook(resource_to_py_fn fn)
{
    resource_hook = fn;
}

static PyObject *conv_reference(conv_t *c, ERL_NIF_TERM t)
{
    PyObject *obj;
    uint64_t generation;
    int64_t interp_id;
    if (!pyref_get(c->env, t, &obj, &generation, &interp_id)) {
        obj = resource_hook ? resource_hook(c->env, t) : NULL;
        return obj || PyErr_Occurred() ? obj : wrap_etf(c, py_types.ref_type, t);
    }
    if (generation != runtime_generation()) {
        PyErr_SetString(PyExc_ValueError,
                        "a Python object reference from a stopped interpreter");
        return NULL;
    }
    /* An own-GIL context's objects stay in its interpreter (and die with
     * it); the main interpreter's stay out of sub-interpreters. */
    if (interp_id != py_types.interp_id) {
        PyErr_SetString(PyExc_ValueError,
                        "a Python object reference from another interpreter (an own-GIL "
                        "context's objects are used on that context, while it runs)");
        return NULL;
    }
    Py_INCREF(obj);
    return obj;
}

static PyObject *conv(conv_t *c, ERL_NIF_TERM t)
{
    if (++c->depth > runtime_limits.max_depth) {
        PyErr_Format(PyExc_ValueError, "term nested deeper than %d levels",
                     runtime_limits.max_depth);
        return NULL;
    }
    PyObject *r;
    switch (enif_term_type(c->env, t)) {
    case ERL_NIF_TERM_TYPE_ATOM: r = conv_atom(c, t); break;
    case ERL_NIF_TERM_TYPE_INTEGER: r = conv_integer(c, t); break;
    case ERL_NIF_TERM_TYPE_FLOAT: {
        double d;
        enif_get_double(c->env, t, &d);
        r = PyFloat_FromDouble(d);
        break;
    }
    case ERL_NIF_TERM_TYPE_BITSTRING: r = conv_bitstring(c, t); break;
    case ERL_NIF_TERM_TYPE_LIST: r = conv_list(c, t); break;
    case ERL_NIF_TERM_TYPE_TUPLE: r = conv_tuple(c, t); break;
    case ERL_NIF_TERM_TYPE_MAP: r = conv_map(c, t); break;
    case ERL_NIF_TERM_TYPE_PID: r = wrap_etf(c, py_types.pid_type, t); break;
    case ERL_NIF_TERM_TYPE_REFERENCE: r = conv_reference(c, t); break;
    default: r = wrap_etf(c, py_types.term_type, t); break; /* fun, port */
    }
    c->depth--;
    return r;
}

PyObject *to_py(ErlNifEnv *env, struct context *ctx, ERL_NIF_TERM term)
{
    conv_t c = {.env = env, .ctx = ctx, .depth = 0};
    return conv(&c, term);
}
