/*
 * bigmap.h - maps of more than 32 keys built on a scheduler, not on the
 * context thread.
 *
 * enif_make_map_from_arrays with more than 32 keys crashes the emulator off a
 * scheduler on OTP 25.2 (erlang/otp#8208), and enif_make_map_put is O(log n)
 * with path copying (10 ms for a 10,000-key dict).  So a reply's large dicts
 * leave the context thread as placeholders {Tag, Keys, Values, Nested} (Tag a
 * reference no user term can hold; Nested whether Values hold placeholders) and the caller's py_nif:finish/1 builds
 * the maps on its own (dirty) scheduler in one enif_make_map_from_arrays.
 */
#ifndef PY_BIGMAP_H
#define PY_BIGMAP_H

#include "core/nif.h"

int bigmap_init(ErlNifEnv *env);
void bigmap_unload(void);

/* A placeholder for the map keys[i] => vals[i], i < n (any thread); nested
 * when some vals[i] holds a placeholder (keys never do: a dict is not
 * hashable). */
ERL_NIF_TERM bigmap_placeholder(ErlNifEnv *env, ERL_NIF_TERM *keys, ERL_NIF_TERM *vals,
                                size_t n, int nested);

/* (Term) -> Term with its placeholders made maps | {error, {'ValueError', Msg}}.
 * Dirty CPU. */
NIF(bigmap_finish_nif);

#endif
