/*
 * convert.h - term <-> PyObject conversion (to_py.c, to_term.c).
 *
 * Both directions run on a context's worker thread with the GIL held.  A
 * conversion that fails sets a Python exception (TypeError, ValueError,
 * OverflowError) and returns NULL / -1, so that it reaches the caller through
 * the same {error, {Name, Message}} path as any Python error.
 */
#ifndef PY_CONVERT_H
#define PY_CONVERT_H

#include "core/nif.h"

/* The context a conversion runs for (PyRefs made keep it alive): opaque
 * here, an enif resource of context/; NULL off the context threads. */
struct context;

/* New reference, or NULL with a Python exception set. */
PyObject *to_py(ErlNifEnv *env, struct context *ctx, ERL_NIF_TERM term);

/* 0 and *out set, or -1 with a Python exception set. */
int to_term(ErlNifEnv *env, struct context *ctx, PyObject *obj, ERL_NIF_TERM *out);

/* to_term for a reply: dicts of more than 32 keys may be left as bigmap
 * placeholders, and *deferred is set when one was (py_nif:finish/1 then
 * completes the term on the caller's scheduler). */
int to_term_reply(ErlNifEnv *env, struct context *ctx, PyObject *obj, ERL_NIF_TERM *out,
                  int *deferred);

/* An atom from UTF-8 text, creating it only within the atom cap.
 * 0 and *out set, or -1 with a Python exception set. */
int atom_from_utf8(ErlNifEnv *env, const char *s, size_t len, ERL_NIF_TERM *out);

/* Resources of the layers above (py_buffer, channels, shared dicts) as
 * Python objects and back; registered at load by pymod/ (data_py.c).
 * to_py: a new reference, or NULL with no exception when term is not one
 * of them.  to_term: 1 and *out set, 0 when obj is not one of them, -1
 * with an exception set. */
typedef PyObject *(*resource_to_py_fn)(ErlNifEnv *env, ERL_NIF_TERM term);
typedef int (*resource_to_term_fn)(ErlNifEnv *env, PyObject *obj, ERL_NIF_TERM *out);
void to_py_set_resource_hook(resource_to_py_fn fn);
void to_term_set_resource_hook(resource_to_term_fn fn);

/* UTF-8 text as a binary term. */
ERL_NIF_TERM make_binary(ErlNifEnv *env, const char *data, size_t len);

#endif
