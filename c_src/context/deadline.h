/*
 * deadline.h - the deadlines of sync requests, kept in C.
 *
 * A caller of py:call waits in a plain `receive' (no timer of its own: an
 * Erlang receive timer costs 150-200 ns per call, a sixth of the whole
 * transport).  A request submitted with a timeout carries its deadline;
 * one "py_deadline" thread ends every request whose deadline has passed
 * (context_expire): a queued one is dropped, a running one interrupted, and
 * {Tag, Ref, {error, timeout}} is sent in place of its reply.  Exactly one
 * reply per request: the worker's reply and the expiry are decided under
 * the context's lock.
 */
#ifndef PY_DEADLINE_H
#define PY_DEADLINE_H

#include <stdint.h>
#include "context/context.h" /* request_t, DEADLINE_NONE */

/* Load / unload of the library: the thread starts with the first context. */
int deadline_init(void);
void deadline_unload(void);

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t deadline_now(void);

/* A context's worker runs / has ended: its requests are scanned / not. */
int deadline_track(context_t *ctx);
void deadline_untrack(context_t *ctx);

/* ctx->lock held, just after a request with deadline d was queued: make
 * sure the thread looks at it by d. */
void deadline_armed(int64_t d);

#endif
