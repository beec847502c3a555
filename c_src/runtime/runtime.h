/*
 * runtime.h - the embedded CPython runtime: start, stop, and the runtime
 * thread that owns the main thread state (init, finalize, interrupts,
 * decrefs whose context is gone, joins of orphaned context threads).
 *
 * The layers above reach this one only by call; it reaches them only
 * through the hooks they give it: the start hook (runtime_set_start, from
 * ../start.c at load) and the function an interrupt runs
 * (runtime_request_interrupt, from context/).
 */
#ifndef PY_RUNTIME_H
#define PY_RUNTIME_H

#include "core/nif.h"
#include "runtime/atom_cache.h"

#include "runtime/types.h"

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

/* The start hook, run on the runtime thread: initialize the interpreter
 * with this program name and these sys.path entries (first first), and
 * fill py_types.  0, or -1 with the interpreter finalized again and err
 * (errlen bytes) saying why. */
typedef int (*runtime_start_fn)(const char *executable, char *const *paths, unsigned npaths,
                                char *err, size_t errlen);

/* At load, before any start. */
void runtime_set_start(runtime_start_fn start);

/* Run on the runtime thread, main GIL held, just before Py_FinalizeEx
 * (context/ ends the sub-interpreters it keeps for reuse). */
typedef void (*runtime_finalize_fn)(void);
void runtime_set_before_finalize(runtime_finalize_fn fn);
void runtime_unload(void);

/* Current generation (bumped at each start) and whether it is running. */
uint64_t runtime_generation(void);
int runtime_is_running(uint64_t generation);

/* What an interrupt runs: on the runtime thread, GIL held. */
typedef void (*runtime_interrupt_fn)(void *resource, uint64_t req_id);

/* Ask the runtime thread to run fn(resource, req_id) under the GIL (the
 * context layer raises CallInterrupted in a running request so).  resource,
 * an enif resource, is kept alive until fn has run. */
void runtime_request_interrupt(runtime_interrupt_fn fn, void *resource, uint64_t req_id);

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
NIF(runtime_python_version_nif);

#endif
