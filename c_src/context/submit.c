/*
 * submit.c - the caller's side of a context: submitting a request, spinning
 * for its reply, cancelling it, and granting stream credit.
 *
 * Threads: these NIFs run on the caller's scheduler (a large payload's
 * submit on a dirty CPU scheduler); they touch a context only under its
 * lock, apart from reply_wait's atomic loads.  The worker side is worker.c.
 */
#include "context/context_int.h"
#include "context/deadline.h"

/* Cells a term may have for its copy to stay well under ~100 us. */
#define SUBMIT_CELL_BUDGET 4096

static long term_cells(ErlNifEnv *env, ERL_NIF_TERM t, long budget)
{
    if (budget <= 0)
        return budget;
    budget--;
    int arity;
    const ERL_NIF_TERM *elems;
    ERL_NIF_TERM head, tail;
    size_t size;
    switch (enif_term_type(env, t)) {
    case ERL_NIF_TERM_TYPE_TUPLE:
        enif_get_tuple(env, t, &arity, &elems);
        for (int i = 0; i < arity && budget > 0; i++)
            budget = term_cells(env, elems[i], budget);
        break;
    case ERL_NIF_TERM_TYPE_LIST:
        for (tail = t; budget > 0 && enif_get_list_cell(env, tail, &head, &tail);)
            budget = term_cells(env, head, budget - 1);
        break;
    case ERL_NIF_TERM_TYPE_MAP:
        if (enif_get_map_size(env, t, &size) && size > 0) {
            ErlNifMapIterator it;
            ERL_NIF_TERM k, v;
            enif_map_iterator_create(env, t, &it, ERL_NIF_MAP_ITERATOR_FIRST);
            while (budget > 0 && enif_map_iterator_get_pair(env, &it, &k, &v)) {
                budget = term_cells(env, v, term_cells(env, k, budget - 1));
                enif_map_iterator_next(env, &it);
            }
            enif_map_iterator_destroy(env, &it);
        }
        break;
    default: /* atoms, numbers, binaries, pids, ...: one cell */
        break;
    }
    return budget;
}

/* The deadline of a timeout of argv[4] (ms, or infinity) from now, or 0
 * when bad. */
static int64_t deadline_of(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[], int64_t now)
{
    if (argc < 5 || enif_is_identical(argv[4], ATOM(infinity)))
        return DEADLINE_NONE;
    ErlNifUInt64 ms;
    if (enif_get_uint64(env, argv[4], &ms)) {
        return ms < (ErlNifUInt64)((DEADLINE_NONE - now) / 1000000) ? now + (int64_t)ms * 1000000
                                                                     : DEADLINE_NONE;
    }
    ERL_NIF_TERM big = enif_make_uint64(env, UINT64_MAX);
    /* An integer beyond 2^64 ms is no deadline; anything else is bad. */
    return enif_term_type(env, argv[4]) == ERL_NIF_TERM_TYPE_INTEGER &&
                   enif_compare(argv[4], big) > 0
               ? DEADLINE_NONE
               : 0;
}

static ERL_NIF_TERM submit(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[],
                           context_t *ctx)
{
    int64_t now = deadline_now();
    int64_t deadline = deadline_of(env, argc, argv, now);
    if (!deadline)
        return enif_make_badarg(env);
    request_t *req = request_take(ctx);
    req->submitted = now;
    req->tag = enif_make_copy(req->env, argv[1]);
    req->ref = enif_make_copy(req->env, argv[2]);
    req->payload = enif_make_copy(req->env, argv[3]);
    req->noreply = enif_is_identical(argv[1], ATOM(none));
    req->cancelled = 0;
    req->credit = 0;
    req->sent = 0;
    req->parked = 0;
    req->interrupted = 0;
    req->deadline = req->noreply ? DEADLINE_NONE : deadline;
    req->outer = NULL;
    req->next = NULL;
    enif_self(env, &req->caller);
    enif_mutex_lock(ctx->lock);
    caller_t *c = ctx->state == CTX_RUNNING ? context_caller(env, ctx, &req->caller) : NULL;
    if (!c) {
        int running = ctx->state == CTX_RUNNING;
        request_put_locked(ctx, req);
        enif_mutex_unlock(ctx->lock);
        return make_error(env, running ? ATOM(enomem) : ATOM(closed));
    }
    req->ns = (c->flags & CALLER_NS_OF) ? c->ns_of : req->caller;
    req->id = ++ctx->next_id;
    if (ctx->tail)
        ctx->tail->next = req;
    else
        ctx->head = req;
    ctx->tail = req;
    ctx->depth++;
    if (ctx->sleeping)
        enif_cond_broadcast(ctx->cond);
    if (req->deadline != DEADLINE_NONE)
        deadline_armed(req->deadline);
    uint64_t id = req->id;
    enif_mutex_unlock(ctx->lock);
    /* submit/5 (a sync request) answers its id, for reply_wait/2. */
    return argc == 5 ? enif_make_uint64(env, id) : ATOM(ok);
}

static NIF(context_submit_dirty)
{
    UNUSED(argc);
    context_t *ctx;
    if (!context_get(env, argv[0], &ctx))
        return enif_make_badarg(env);
    return submit(env, argc, argv, ctx);
}

/* (Ctx, Tag :: atom(), Ref, Payload[, Timeout]) -> ok | {error, closed}.
 * Tag none means no reply.  With Timeout (ms or infinity) the request ends
 * at its deadline with the reply {error, timeout} (deadline.h).  A payload
 * too large to copy quickly is copied on a dirty CPU scheduler instead. */
NIF(context_submit_nif)
{
    context_t *ctx;
    if (!context_get(env, argv[0], &ctx) || !enif_is_atom(env, argv[1]))
        return enif_make_badarg(env);
    if (term_cells(env, argv[3], SUBMIT_CELL_BUDGET) <= 0)
        return enif_schedule_nif(env, "submit_dirty", ERL_NIF_DIRTY_JOB_CPU_BOUND,
                                 context_submit_dirty, argc, argv);
    return submit(env, argc, argv, ctx);
}

/* (Ctx, Id, Seen) -> true | false: spin on the caller's scheduler, for at
 * most the context's reply spin, until request Id (or a later one) has been
 * answered, or has sent its caller more than Seen messages (erlang.call
 * requests).  A message sent while its receiver still runs is only queued;
 * one sent after it has suspended in `receive' must wake its scheduler,
 * which may have gone to sleep (a futex wake and a thread switch: 3-4 us
 * here, against a floor of under 1 us). */
NIF(context_reply_wait_nif)
{
    UNUSED(argc);
    context_t *ctx;
    ErlNifUInt64 id, seen;
    if (!context_get(env, argv[0], &ctx) || !enif_get_uint64(env, argv[1], &id) ||
        !enif_get_uint64(env, argv[2], &seen))
        return enif_make_badarg(env);
    if (!ctx->reply_spin_ns)
        return ATOM(false);
    int64_t until = deadline_now() + ctx->reply_spin_ns;
    for (unsigned i = 1;; i++) {
        if (__atomic_load_n(&ctx->replied_id, __ATOMIC_ACQUIRE) >= id ||
            (__atomic_load_n(&ctx->sent_id, __ATOMIC_ACQUIRE) == id &&
             __atomic_load_n(&ctx->sent_n, __ATOMIC_ACQUIRE) > seen))
            return ATOM(true);
        if (i % 32 == 0 && deadline_now() > until)
            return ATOM(false);
        cpu_relax();
    }
}

/* (Ctx, Ref) -> cancelled | not_found.  cancelled: no reply will come.
 * not_found: the reply has been sent or is being sent now. */
NIF(context_interrupt_nif)
{
    UNUSED(argc);
    context_t *ctx;
    if (!context_get(env, argv[0], &ctx))
        return enif_make_badarg(env);
    ERL_NIF_TERM result = ATOM(not_found);
    enif_mutex_lock(ctx->lock);
    request_t *cur = ctx->current;
    while (cur && !enif_is_identical(cur->ref, argv[1]))
        cur = cur->outer;
    if (cur) {
        context_cancel(ctx, cur);
        result = ATOM(cancelled);
    } else {
        request_t **pp = &ctx->head, *prev = NULL;
        for (; *pp; prev = *pp, pp = &(*pp)->next) {
            request_t *r = *pp;
            if (enif_is_identical(r->ref, argv[1])) {
                queue_unlink(ctx, pp, prev);
                request_put_locked(ctx, r);
                result = ATOM(cancelled);
                break;
            }
        }
    }
    enif_mutex_unlock(ctx->lock);
    return result;
}


/* (Ctx, Ref, N) -> ok | not_found: let a stream request send N more items. */
NIF(context_stream_credit_nif)
{
    UNUSED(argc);
    context_t *ctx;
    int n;
    if (!context_get(env, argv[0], &ctx) || !enif_get_int(env, argv[2], &n) || n < 1)
        return enif_make_badarg(env);
    enif_mutex_lock(ctx->lock);
    request_t *r = ctx->current;
    while (r && !enif_is_identical(r->ref, argv[1]))
        r = r->outer;
    for (request_t *q = ctx->head; !r && q; q = q->next)
        if (enif_is_identical(q->ref, argv[1]))
            r = q;
    if (r) {
        __atomic_add_fetch(&r->credit, n, __ATOMIC_ACQ_REL);
        enif_cond_broadcast(ctx->cond);
    }
    enif_mutex_unlock(ctx->lock);
    return r ? ATOM(ok) : ATOM(not_found);
}

/* (Ctx, Helper :: pid() | none) -> ok | {error, closed | noproc}: the
 * calling process's erlang.call messages go to Helper, a process that runs
 * them on its behalf (py_context.erl), and Helper's own requests use the
 * caller's namespace; none: they come to the caller itself again. */
NIF(context_callback_helper_nif)
{
    UNUSED(argc);
    context_t *ctx;
    ErlNifPid self, helper;
    int none = enif_is_identical(argv[1], ATOM(none));
    if (!context_get(env, argv[0], &ctx) || !enif_self(env, &self) ||
        (!none && (!enif_get_local_pid(env, argv[1], &helper) ||
                   enif_compare_pids(&self, &helper) == 0)))
        return enif_make_badarg(env);
    ERL_NIF_TERM result = ATOM(ok);
    enif_mutex_lock(ctx->lock);
    caller_t *c = ctx->state == CTX_RUNNING ? context_caller(env, ctx, &self) : NULL;
    caller_t *h = c && !none ? context_caller(env, ctx, &helper) : NULL;
    if (!c) {
        result = make_error(env, ctx->state == CTX_RUNNING ? ATOM(enomem) : ATOM(closed));
    } else if (none) {
        c->flags &= ~CALLER_HELPER;
    } else if (!h) {
        result = make_error(env, ATOM(noproc));
    } else {
        c->helper = helper;
        c->flags |= CALLER_HELPER;
        h->ns_of = (c->flags & CALLER_NS_OF) ? c->ns_of : self;
        h->flags |= CALLER_NS_OF;
    }
    enif_mutex_unlock(ctx->lock);
    return result;
}
