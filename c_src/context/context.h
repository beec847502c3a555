/*
 * context.h - a context: one OS thread with its own thread state, one request
 * queue, and the per-process namespaces of the Erlang processes it serves.
 */
#ifndef PY_CONTEXT_H
#define PY_CONTEXT_H

#include "core/nif.h"
#include "runtime/types.h"

/* request_t.deadline of a request that has none. */
#define DEADLINE_NONE INT64_MAX

typedef struct request {
    struct request *next;
    ErlNifEnv *env;        /* owns tag, ref, payload and, later, the reply */
    ERL_NIF_TERM tag;      /* reply is {Tag, Ref, Result} */
    ERL_NIF_TERM ref;
    ERL_NIF_TERM payload;
    ErlNifPid caller;
    ErlNifPid ns;          /* whose namespace it uses: the caller's, or for a
                            * callback helper's request, its owner's */
    uint64_t id;
    int noreply;
    int cancelled;         /* guarded by the context lock */
    struct request *outer; /* the request this one runs inside (callbacks) */
    int credit;            /* stream items it may still send (atomic) */
    int parked;            /* waiting in worker_park (context lock) */
    int interrupted;       /* CallInterrupted was raised in it (context lock) */
    int64_t deadline;      /* monotonic ns, or DEADLINE_NONE (context lock) */
    int64_t submitted;     /* monotonic ns: the router's age of a running call */
    uint64_t sent;         /* messages sent to the caller mid-request (worker) */
} request_t;

typedef struct context context_t;

int context_init(ErlNifEnv *env);

/* How an own-GIL context's sub-interpreter is set up and torn down, given
 * by the start layer (../start.c) at load: setup runs in the new
 * interpreter (current, its GIL held) and fills types (0, or -1 with err
 * saying why); teardown runs there before it ends. */
typedef int (*context_interp_setup_fn)(py_types_t *types, char *err, size_t errlen);
typedef void (*context_interp_teardown_fn)(py_types_t *types);
void context_set_interp_hooks(context_interp_setup_fn setup, context_interp_teardown_fn teardown);

/* Resource accessor: 1 and *out set when term is a context. */
int context_get(ErlNifEnv *env, ERL_NIF_TERM term, context_t **out);

/* The runtime generation ctx's worker runs in (a PyRef's owner op). */
uint64_t context_generation(context_t *ctx);

/* Queue obj for a decref on ctx's thread (or the runtime's when stopped):
 * a PyRef's owner op, from its destructor. */
void context_defer_decref(context_t *ctx, PyObject *obj);

/* Deadline thread: end the requests of ctx whose deadline is at or before
 * now (a queued one is dropped, a running one cancelled; each caller gets
 * {Tag, Ref, {error, timeout}}).  The earliest deadline still pending, or
 * DEADLINE_NONE, or now when more expired than one pass ends. */
int64_t context_expire(context_t *ctx, int64_t now);

/* Worker thread, GIL held: the globals dict of the request's caller
 * (created and monitored on first use).  Borrowed reference. */
PyObject *context_namespace(context_t *ctx, const ErlNifPid *pid);

/* Worker thread, GIL held: the context's own dict for the erlang package
 * (borrowed; NULL before the thread started).  Its "seed" entry, a dict,
 * is copied into every namespace made afterwards (the preload's globals). */
PyObject *context_data(context_t *ctx);

/* Worker thread, GIL held: remember / fetch the caller's last exception. */
void context_set_last_exception(context_t *ctx, const ErlNifPid *pid, PyObject *exc);
PyObject *context_last_exception(context_t *ctx, const ErlNifPid *pid);

/* Worker thread: the innermost running request and its context, or NULL. */
request_t *worker_current(context_t **ctx);

/* Any thread: an environment for an erlang.call (i: 0 the reply, 1 the
 * message); with cached (on a context thread, inside a request) one the
 * thread keeps is reused, else a new one.  Give it back the same way. */
ErlNifEnv *worker_env_take(int i, int cached);
void worker_env_give(int i, ErlNifEnv *e, int cached);

/* Worker thread, GIL held (released while waiting): wait until *done becomes
 * non-zero (0), or req is cancelled or the context stops (-1), serving
 * nested requests meanwhile. */
int worker_park(context_t *ctx, request_t *req, const int *done);

/* Worker thread, GIL held: raise CallInterrupted now, dropping any
 * asynchronous one still pending for this thread. */
void worker_raise_interrupted(context_t *ctx);

/* Worker thread: send msg to req's caller unless req is cancelled (0), or
 * not (-1).  An interrupt never leaves such a message behind unseen. */
int worker_send_live(context_t *ctx, request_t *req, ErlNifEnv *msg_env, ERL_NIF_TERM msg);

/* Worker thread: worker_send_live of an erlang.call request
 * {py_callback, Tag, Id, Name, Args}, to the caller's callback helper if it
 * has one (Tag {Ctx, ReqId, Sent}: what the helper spins on), else to the
 * caller (Tag: the request's reference). */
int worker_send_callback(context_t *ctx, request_t *req, ErlNifEnv *msg_env, ERL_NIF_TERM id,
                         ERL_NIF_TERM name, ERL_NIF_TERM args);

/* Worker thread, GIL held: send one stream item of the current request,
 * waiting (parked) for credit.  0, or -1 with a Python exception set. */
int worker_stream_item(PyObject *item);

/* Any thread, GIL held (released while sleeping): sleep secs; inside a
 * request, a cancel or a stop ends it with CallInterrupted (-1). */
int worker_sleep(double secs);

/* Worker thread: req starts (blocked 1) or ends (0) a wait outside Python
 * (a channel's or a buffer's): no asynchronous interrupt lands in it
 * meanwhile; whether it may go on (not cancelled, the context running). */
int worker_block(context_t *ctx, request_t *req, int blocked);

/* Any thread, no lock: whether req may go on (checked between the slices
 * of a wait). */
int worker_live(context_t *ctx, request_t *req);

/* Worker thread: req's messages and reply go to `to' from now on (a stream
 * with an owner); `to' dead, the next item interrupts it. */
void worker_redirect(context_t *ctx, request_t *req, const ErlNifPid *to);

/* Any thread: wake a parked worker to re-check its condition. */
void worker_wake(context_t *ctx);

NIF(context_new_nif);
NIF(context_stop_nif);
NIF(context_submit_nif);
NIF(context_reply_wait_nif);
NIF(context_interrupt_nif);
NIF(context_load_nif);
NIF(context_stream_credit_nif);
NIF(context_callback_helper_nif);
NIF(context_interrupt_running_nif);

#endif
