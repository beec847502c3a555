/*
 * pyref.h - opaque references to Python objects held by Erlang terms.
 *
 * A PyRef keeps its context alive (a resource keeps alive what it points to:
 * docs/architecture.md, "Ownership and lifetimes") and its destructor
 * never takes the GIL: the decref is deferred to the context's worker (or to
 * the runtime thread once the context has stopped).
 */
#ifndef PY_PYREF_H
#define PY_PYREF_H

#include "core/nif.h"

struct context; /* opaque here: an enif resource of context/ */

int pyref_init(ErlNifEnv *env);

/* What a PyRef asks of the context that owns it; context/ registers them
 * at load (context_init), before any PyRef exists. */
typedef struct {
    /* The runtime generation ctx runs in (kept in the PyRef). */
    uint64_t (*generation)(struct context *ctx);
    /* Any thread, no GIL: queue a decref of obj for ctx's thread. */
    void (*defer_decref)(struct context *ctx, PyObject *obj);
} pyref_owner_ops_t;

void pyref_set_owner_ops(const pyref_owner_ops_t *ops);

/* GIL held.  A new reference term to obj (obj is increfed). */
ERL_NIF_TERM pyref_make(ErlNifEnv *env, struct context *ctx, PyObject *obj);

/* GIL held.  A binary whose bytes are data[0..len), kept alive by owner. */
ERL_NIF_TERM pyref_make_binary(ErlNifEnv *env, struct context *ctx, PyObject *owner,
                               const char *data, size_t len);

/* 1 when term is a PyRef; *obj borrowed, *generation its runtime's,
 * *interp_id its interpreter's (PyInterpreterState_GetID). */
int pyref_get(ErlNifEnv *env, ERL_NIF_TERM term, PyObject **obj, uint64_t *generation,
              int64_t *interp_id);

/* (Ref) -> {ok, Ctx} | {error, closed}; badarg when not a PyRef. */
NIF(pyref_context_nif);
/* (Term) -> boolean() */
NIF(pyref_is_ref_nif);

#endif
