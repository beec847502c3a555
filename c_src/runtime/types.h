/*
 * types.h - the Python objects the NIF caches, one set per interpreter.
 *
 * The main interpreter's set is filled at start (../start.c); an own-GIL
 * context fills one for its sub-interpreter (objects never cross from one
 * interpreter to another).  `py_types' names the set of the interpreter
 * the current thread runs: a thread-local pointer, set by the threads that
 * serve one interpreter (the runtime thread, each context thread), and for
 * any other thread (Python's own threads) looked up once by interpreter.
 *
 * Threads: every use is by a thread attached to an interpreter (GIL held).
 */
#ifndef PY_TYPES_H
#define PY_TYPES_H

#include "core/nif.h"
#include "runtime/atom_cache.h"

typedef struct {
    PyObject *atom_type;       /* erlang._types.Atom */
    PyObject *pid_type;        /* erlang._types.Pid */
    PyObject *ref_type;        /* erlang._types.Ref */
    PyObject *term_type;       /* erlang._types.Term */
    PyObject *interrupted;     /* erlang._types.CallInterrupted */
    PyObject *process_error;   /* erlang._types.ProcessError */
    PyObject *resource_type;   /* _erlang.Resource (pymod/data_py.c) */
    PyObject *buffer_type;     /* _erlang.PyBuffer (pymod/buffer_py.c) */
    PyObject *notifier_type;   /* _erlang.Notifier (pymod/channel_py.c) */
    PyObject *waiter_type;     /* _erlang.ChannelWaiter */
    PyObject *call_type;       /* _erlang.AsyncCall (pymod/callback.c) */
    atom_cache_t atoms;        /* atom term -> erlang.Atom */
    atom_cache_t names;        /* atom term -> interned str (module/function names) */
    atom_cache_t modules;      /* module name atom -> the module last resolved by it */
    PyObject *str_etf;         /* "_etf" */
    PyObject *builtins;        /* the builtins module */
    PyObject *ns_builtins;     /* erlang._confine.namespace_builtins */
    PyObject *main_name;       /* "__main__" */
    PyObject *traceback_format;/* traceback.format_exception */
    PyObject *code_cache;      /* (mode, source) -> code object */
    int64_t interp_id;         /* PyInterpreterState_GetID of its interpreter */
} py_types_t;

/* The main interpreter's set. */
extern py_types_t py_types_main;

/* The set of the interpreter this thread serves, or NULL: unknown yet. */
extern __thread py_types_t *py_types_tls __attribute__((tls_model("initial-exec")));

/* GIL held: the set of the current interpreter (registered, or the main's),
 * remembered for this thread. */
py_types_t *py_types_find(void);

static inline py_types_t *py_types_here(void)
{
    py_types_t *t = py_types_tls;
    return t ? t : py_types_find();
}

#define py_types (*py_types_here())

/* This thread serves t's interpreter from now on (NULL: look it up). */
static inline void py_types_bind(py_types_t *t)
{
    py_types_tls = t;
}

/* GIL held: t is the set of the current (sub-)interpreter; 0, or -1 out of
 * memory.  Unregister it before the interpreter ends. */
int py_types_register(py_types_t *t);
void py_types_unregister(py_types_t *t);

#endif
