/*
 * callback.h - erlang.call(): Python calls a function registered in Erlang.
 *
 * Inside a request the call goes to the waiting caller process as
 * {py_callback, Ref, CallId, Name, Args}; the worker parks (GIL released,
 * still serving its queue) until py_nif:callback_reply/2 delivers the result.
 * From any other thread it goes to the py_callback process, and that thread
 * waits with the GIL released.
 */
#ifndef PY_CALLBACK_H
#define PY_CALLBACK_H

#include "core/nif.h"

int callback_init(ErlNifEnv *env);

/* GIL held.  New reference, or NULL with a Python exception set. */
PyObject *callback_call(PyObject *name, PyObject *args);

struct notifier;
/* GIL held: start an erlang.call whose reply signals nt with token instead
 * of being waited for: an _erlang.AsyncCall (new reference), or NULL with
 * an exception set. */
PyObject *callback_call_async(PyObject *name, PyObject *args, struct notifier *nt,
                              uint64_t token);
/* _erlang's exec: the AsyncCall type. */
int callback_py_exec(PyObject *m);

/* Whether name is registered (no Erlang round trip: a published copy). */
int callback_is_registered(const char *name, size_t len);

/* GIL held.  The registered names, as a new list of str. */
PyObject *callback_names(void);

/* (CallId, Result) -> ok | {error, not_found} */
NIF(callback_reply_nif);
/* (Names :: [binary()]) -> ok: the set of registered names */
NIF(callback_publish_nif);

#endif
