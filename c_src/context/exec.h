/*
 * exec.h - running one request on a worker thread (GIL held).
 *
 * Request payloads (built by py_context.erl):
 *   {call, Module, Function, Args, Kwargs, Return}
 *       Return: term | ref | list (iterate the result into a list) |
 *               {stream, Credit} (send items as {py_stream, Ref, {data, X}})
 *   {eval, Code, Locals, Return}
 *   {exec, Code}
 *   {getattr, PyRef, Name, Return}
 *   {call_method, PyRef, Name, Args, Kwargs, Return}
 *   {to_term, PyRef}
 *   last_traceback
 *   nop                                            the floor: no Python at all
 * Module and Function are atoms or UTF-8 binaries; Name and Code binaries.
 */
#ifndef PY_EXEC_H
#define PY_EXEC_H

#include "core/nif.h"
#include "context/context.h"

/* The result term ({ok, V} | ok | {error, R}), built in req->env. */
ERL_NIF_TERM exec_run(context_t *ctx, request_t *req);

/* GIL held, after the reply is sent: release what exec_run kept for later. */
void exec_release(void);

#endif
