/*
 * runtime.h - the embedded CPython runtime: start, stop, and the runtime
 * thread that owns the main thread state (init, finalize, interrupts,
 * decrefs whose context is gone).
 */
#ifndef PY_RUNTIME_H
#define PY_RUNTIME_H

#include "core/nif.h"
#include "runtime/atom_cache.h"

struct context;

/* Python objects cached at start; valid while the runtime runs (GIL held). */
typedef struct {
    PyObject *atom_type;       /* erlang._types.Atom */
    PyObject *pid_type;        /* erlang._types.Pid */
    PyObject *ref_type;        /* erlang._types.Ref */
    PyObject *term_type;       /* erlang._types.Term */
    PyObject *interrupted;     /* erlang._types.CallInterrupted */
    atom_cache_t atoms;        /* atom term -> erlang.Atom */
    atom_cache_t names;        /* atom term -> interned str (module/function names) */
    atom_cache_t modules;      /* module name atom -> the module last resolved by it */
    PyObject *str_etf;         /* "_etf" */
    PyObject *builtins;        /* the builtins module */
    PyObject *main_name;       /* "__main__" */
    PyObject *traceback_format;/* traceback.format_exception */
    PyObject *code_cache;      /* (mode, source) -> code object */
} py_types_t;

extern py_types_t py_types;

/* Limits, set from Erlang options at start (policy lives in py_opts). */
typedef struct {
    int max_depth;
    long atom_cap;
} runtime_limits_t;

extern runtime_limits_t runtime_limits;

/* A list of objects waiting for a decref under the GIL (destructors never
 * take it).  Pushed under the owner's lock; drained by decref_drain. */
typedef struct decref_node {
    struct decref_node *next;
    PyObject *obj;
} decref_node_t;

/* GIL held: decref and free every node of the list. */
void decref_drain(decref_node_t *list);

int runtime_init(ErlNifEnv *env);
void runtime_unload(void);

/* Current generation (bumped at each start) and whether it is running. */
uint64_t runtime_generation(void);
int runtime_is_running(uint64_t generation);

/* Ask the runtime thread to raise CallInterrupted in ctx's request req_id. */
void runtime_request_interrupt(struct context *ctx, uint64_t req_id);

/* Hand an object to the runtime thread for a decref under the GIL. */
void runtime_defer_decref(uint64_t generation, PyObject *obj);

/* Have the runtime thread join a context thread that has ended (or is about
 * to) with no one else to join it: its owner died without stopping it. */
void runtime_request_join(ErlNifTid tid);

/* One more atom created from Python, if under the cap (1) or not (0). */
int runtime_take_atom_slot(void);

NIF(runtime_start_nif);
NIF(runtime_stop_nif);
NIF(runtime_status_nif);

#endif
