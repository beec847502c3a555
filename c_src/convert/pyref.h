/*
 * pyref.h - opaque references to Python objects held by Erlang terms.
 *
 * A PyRef keeps its context alive (STYLE.md convention 4) and its destructor
 * never takes the GIL: the decref is deferred to the context's worker (or to
 * the runtime thread once the context has stopped).
 */
#ifndef PY_PYREF_H
#define PY_PYREF_H

#include "core/nif.h"
#include "context/context.h"

int pyref_init(ErlNifEnv *env);

/* GIL held.  A new reference term to obj (obj is increfed). */
ERL_NIF_TERM pyref_make(ErlNifEnv *env, context_t *ctx, PyObject *obj);

/* GIL held.  A binary whose bytes are data[0..len), kept alive by owner. */
ERL_NIF_TERM pyref_make_binary(ErlNifEnv *env, context_t *ctx, PyObject *owner,
                               const char *data, size_t len);

/* 1 when term is a PyRef; *obj borrowed, *generation its runtime's. */
int pyref_get(ErlNifEnv *env, ERL_NIF_TERM term, PyObject **obj, uint64_t *generation);

/* (Ref) -> {ok, Ctx} | {error, closed}; badarg when not a PyRef. */
NIF(pyref_context_nif);
/* (Term) -> boolean() */
NIF(pyref_is_ref_nif);

#endif
