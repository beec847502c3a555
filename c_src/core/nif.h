/*
 * nif.h - common includes and helpers for every C file of py_nif.
 *
 * Python.h comes first, as CPython asks.  Nothing here owns state; each
 * concern (runtime, context, pyref, conversion) has its own file and header.
 */
#ifndef PY_NIF_H
#define PY_NIF_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <erl_nif.h>
#include <stdint.h>
#include <string.h>

#include "core/atoms.h"

#define NIF(name) \
    ERL_NIF_TERM name(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[])

#define UNUSED(x) (void)(x)

static inline ERL_NIF_TERM make_ok(ErlNifEnv *env, ERL_NIF_TERM value)
{
    return enif_make_tuple2(env, ATOM(ok), value);
}

static inline ERL_NIF_TERM make_error(ErlNifEnv *env, ERL_NIF_TERM reason)
{
    return enif_make_tuple2(env, ATOM(error), reason);
}

#endif
