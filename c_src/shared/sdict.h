/*
 * sdict.h - the shared dict: a hash table of Erlang terms (key -> value),
 * readable and writable from Erlang (py:shared_dict_*), from every context,
 * own-GIL interpreters included, and from any Python thread
 * (pymod/sdict_py.c).  Values are kept as terms, never as Python objects,
 * so no object crosses interpreters; they convert on each read.
 *
 * An entry keeps its key and value in an environment of its own; a write
 * copies them into a spare environment first, outside the lock, and only
 * swaps it in under the write lock.  Reads copy the value out under the
 * read lock.  So no lock is held while a term is converted or Python runs.
 *
 * Lifetime: owned by the process that made it (a monitor destroys it when
 * that process dies), or destroyed explicitly; then every operation fails
 * with SD_DESTROYED.
 */
#ifndef PY_SDICT_H
#define PY_SDICT_H

#include "core/nif.h"

typedef struct sdict sdict_t;

enum { SD_OK = 0, SD_MISSING, SD_DESTROYED };

int sdict_init(ErlNifEnv *env);
void sdict_unload(void);

int sdict_get_resource(ErlNifEnv *env, ERL_NIF_TERM term, sdict_t **out);
ERL_NIF_TERM sdict_term(ErlNifEnv *env, sdict_t *d);
void sdict_keep(sdict_t *d);
void sdict_release(sdict_t *d);

/* Copy the value of key into `into`. */
int sdict_lookup(sdict_t *d, ErlNifEnv *env, ERL_NIF_TERM key, ErlNifEnv *into,
                 ERL_NIF_TERM *out);
/* Store copies of key and value (both terms of env). */
int sdict_store(sdict_t *d, ErlNifEnv *env, ERL_NIF_TERM key, ERL_NIF_TERM value);
int sdict_remove(sdict_t *d, ErlNifEnv *env, ERL_NIF_TERM key);
/* Every key, as a list built in `into`. */
int sdict_keys(sdict_t *d, ErlNifEnv *into, ERL_NIF_TERM *out);
int sdict_size(sdict_t *d, size_t *out);
int sdict_destroy(sdict_t *d);

NIF(sdict_new_nif);
NIF(sdict_get_nif);
NIF(sdict_set_nif);
NIF(sdict_del_nif);
NIF(sdict_keys_nif);
NIF(sdict_destroy_nif);

#endif
