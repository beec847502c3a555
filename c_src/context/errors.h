/*
 * errors.h - the one place a Python exception becomes an Erlang term.
 *
 * Vocabulary (the same in Erlang and C): a Python exception is
 * {error, {ExceptionName :: atom(), Message :: string()}}; the exception
 * object is kept per caller so that py:last_traceback/0 can format it.
 */
#ifndef PY_ERRORS_H
#define PY_ERRORS_H

#include "core/nif.h"
#include "context/context.h"

/* Consume the raised exception into {error, {Name, Message}} and remember it
 * as pid's last exception on ctx (pid may be NULL). */
ERL_NIF_TERM errors_from_python(ErlNifEnv *env, context_t *ctx, const ErlNifPid *pid);

/* {Name, Message} for an exception object. */
ERL_NIF_TERM errors_describe(ErlNifEnv *env, PyObject *exc);

#endif
