/*
 * context_int.h - the context struct, shared by context.c (the resource,
 * namespaces, lifecycle NIFs) and worker.c (the queue and the thread).
 * Private to those two files.
 */
#ifndef PY_CONTEXT_INT_H
#define PY_CONTEXT_INT_H

#include "context/context.h"
#include "runtime/runtime.h"
#include "context/callers.h"

enum { CTX_RUNNING, CTX_STOPPING, CTX_STOPPED };

typedef struct pid_node {
    struct pid_node *next;
    ErlNifPid pid;
} pid_node_t;

struct context {
    ErlNifMutex *lock;
    ErlNifCond *cond;
    request_t *head, *tail;
    unsigned long depth;
    request_t *spare;       /* recycled requests (request_take/put) */
    unsigned n_spare;
    request_t *current;     /* innermost running request; ->outer chains */
    int state;
    int sleeping;
    int joined;
    pid_node_t *dead;       /* callers that died with state here to drop */
    callers_t callers;      /* the processes served, each monitored */
    decref_node_t *decrefs;
    ErlNifTid tid;
    ErlNifPid owner;
    ErlNifMonitor owner_mon;
    uint64_t generation;
    uint64_t next_id;
    unsigned spin_us;
    unsigned reply_spin_ns; /* reply_wait's spin; 0: none */
    /* Id of the last request answered, and of the last whose caller got a
     * message mid-request (an erlang.call) with its count so far (atomic;
     * read by callers that spin for their reply, so padded away from the
     * fields the lock guards; the resource's memory is not 64-byte aligned,
     * hence no alignment). */
    char replied_pad0[64];
    uint64_t replied_id;
    uint64_t sent_id;
    uint64_t sent_n;
    char replied_pad1[64];
    /* Own-GIL contexts (interp.c): their sub-interpreter, whether it still
     * runs and how many interrupters are inside it (context lock). */
    int owngil;
    struct subinterp *sub;  /* its sub-interpreter (interp.c) */
    int interp_alive;
    unsigned intr_users;
    char start_error[256];
    /* worker thread only (GIL held) */
    unsigned long py_ident;
    PyThreadState *ts;
    PyObject *namespaces;   /* pid key -> globals dict */
    PyObject *last_exc;     /* pid key -> exception */
    PyObject *data;         /* the context's own dict for the erlang package
                             * (_erlang.context_data): "seed" seeds new namespaces */
    int init_ok;
};

/* ctx->lock held: take *pp (whose predecessor is prev, or NULL at the head)
 * out of the queue. */
static inline void queue_unlink(context_t *ctx, request_t **pp, request_t *prev)
{
    request_t *r = *pp;
    *pp = r->next;
    if (ctx->tail == r)
        ctx->tail = prev;
    ctx->depth--;
}

/* A pause in a spin loop. */
#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

/* A request with an empty environment: recycled, or new. */
request_t *request_take(context_t *ctx);
/* Give a request back (its environment is cleared); _locked with the lock held. */
void request_put(context_t *ctx, request_t *req);
void request_put_locked(context_t *ctx, request_t *req);
/* ctx->lock held: mark a running request cancelled and interrupt it. */
void context_cancel(context_t *ctx, request_t *req);
void context_forget_pid(context_t *ctx, const ErlNifPid *pid);
/* ctx->lock held: the entry of a live caller, created and monitored on its
 * first request (env is the caller's); NULL when out of memory. */
caller_t *context_caller(ErlNifEnv *env, context_t *ctx, const ErlNifPid *pid);
void *worker_main(void *arg);

/* interp.c.  Worker thread, at its start: attach to the context's
 * interpreter (the main one, or a new own-GIL sub-interpreter), GIL held on
 * return; 0, or -1 with ctx->start_error set and no GIL held. */
int interp_attach(context_t *ctx);
/* Worker thread, GIL held, at its end: detach (ending an own-GIL
 * sub-interpreter); no GIL held on return. */
void interp_detach(context_t *ctx);
/* Runtime thread, main GIL held: raise CallInterrupted in the request
 * req_id if it still runs Python (any kind of context). */
void interp_raise_interrupt(context_t *ctx, uint64_t req_id);

#endif
