/*
 * errors.c - Python exception -> {error, {Name, Message}}.
 * Runs with the GIL held, on the worker thread that saw the exception.
 */
#include "context/errors.h"
#include "convert/convert.h"
#include "runtime/runtime.h"
#include "core/pyerr.h"

/* A Python str as an Erlang string (a list of code points). */
static ERL_NIF_TERM unicode_to_charlist(ErlNifEnv *env, PyObject *s)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    ERL_NIF_TERM list = enif_make_list(env, 0);
    for (Py_ssize_t i = n; i > 0; i--)
        list = enif_make_list_cell(env, enif_make_uint(env, PyUnicode_READ_CHAR(s, i - 1)),
                                   list);
    return list;
}

/* The name Erlang sees: the class's `__erlang_name__` when it sets one (the
 * sandbox's errors are RuntimeError and ModuleNotFoundError to Erlang, as
 * documented), else its own name. */
static ERL_NIF_TERM exception_name(ErlNifEnv *env, PyObject *exc)
{
    const char *tp = Py_TYPE(exc)->tp_name;
    const char *dot = strrchr(tp, '.');
    const char *name = dot ? dot + 1 : tp;
    PyObject *alias = PyObject_GetAttrString((PyObject *)Py_TYPE(exc), "__erlang_name__");
    if (alias && PyUnicode_Check(alias))
        name = PyUnicode_AsUTF8(alias);
    if (!name) {
        PyErr_Clear();
        name = "PythonError";
    }
    PyErr_Clear();
    ERL_NIF_TERM name_term;
    if (atom_from_utf8(env, name, strlen(name), &name_term) < 0) {
        PyErr_Clear();
        name_term = ATOM(PythonError);
    }
    Py_XDECREF(alias);
    return name_term;
}

ERL_NIF_TERM errors_describe(ErlNifEnv *env, PyObject *exc)
{
    ERL_NIF_TERM name_term = exception_name(env, exc);
    PyObject *msg = PyObject_Str(exc);
    ERL_NIF_TERM msg_term;
    if (msg) {
        msg_term = unicode_to_charlist(env, msg);
    } else {
        PyErr_Clear();
        msg_term = enif_make_list(env, 0);
    }
    Py_XDECREF(msg);
    return enif_make_tuple2(env, name_term, msg_term);
}

ERL_NIF_TERM errors_from_python(ErlNifEnv *env, context_t *ctx, const ErlNifPid *pid)
{
    PyObject *exc = pyerr_take();
    if (!exc)
        return make_error(env, ATOM(PythonError));
    ERL_NIF_TERM reason = errors_describe(env, exc);
    if (ctx && pid)
        context_set_last_exception(ctx, pid, exc);
    Py_DECREF(exc);
    return make_error(env, reason);
}
