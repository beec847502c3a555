/*
 * pyref.c - the PyRef resource: an owned PyObject* plus its context.
 *
 * Threads: created on a worker (GIL held); destroyed on any thread by the
 * garbage collector, so the destructor only queues the decref.
 */
#include "convert/pyref.h"
#include "runtime/runtime.h"

typedef struct {
    PyObject *obj;
    struct context *ctx;
    uint64_t generation;
    int64_t interp_id; /* the interpreter obj belongs to */
} pyref_t;

static ErlNifResourceType *pyref_type;
static const pyref_owner_ops_t *owner_ops;

void pyref_set_owner_ops(const pyref_owner_ops_t *ops)
{
    owner_ops = ops;
}

static void pyref_dtor(ErlNifEnv *env, void *p)
{
    UNUSED(env);
    pyref_t *ref = p;
    if (ref->obj)
        owner_ops->defer_decref(ref->ctx, ref->obj); /* never take the GIL here */
    if (ref->ctx)
        enif_release_resource(ref->ctx);
}

int pyref_init(ErlNifEnv *env)
{
    ErlNifResourceTypeInit init = {.dtor = pyref_dtor, .members = 1};
    pyref_type = enif_init_resource_type(env, "py_ref", &init,
                                         ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER, NULL);
    return pyref_type ? 0 : -1;
}

static pyref_t *pyref_new(struct context *ctx, PyObject *obj)
{
    pyref_t *ref = enif_alloc_resource(pyref_type, sizeof *ref);
    Py_INCREF(obj);
    ref->obj = obj;
    ref->ctx = ctx;
    ref->generation = owner_ops->generation(ctx);
    ref->interp_id = py_types.interp_id;
    enif_keep_resource(ctx);
    return ref;
}

ERL_NIF_TERM pyref_make(ErlNifEnv *env, struct context *ctx, PyObject *obj)
{
    pyref_t *ref = pyref_new(ctx, obj);
    ERL_NIF_TERM term = enif_make_resource(env, ref);
    enif_release_resource(ref);
    return term;
}

ERL_NIF_TERM pyref_make_binary(ErlNifEnv *env, struct context *ctx, PyObject *owner,
                               const char *data, size_t len)
{
    pyref_t *ref = pyref_new(ctx, owner);
    ERL_NIF_TERM term = enif_make_resource_binary(env, ref, data, len);
    enif_release_resource(ref);
    return term;
}

int pyref_get(ErlNifEnv *env, ERL_NIF_TERM term, PyObject **obj, uint64_t *generation,
              int64_t *interp_id)
{
    pyref_t *ref;
    if (!enif_get_resource(env, term, pyref_type, (void **)&ref))
        return 0;
    *obj = ref->obj;
    *generation = ref->generation;
    *interp_id = ref->interp_id;
    return 1;
}

NIF(pyref_context_nif)
{
    UNUSED(argc);
    pyref_t *ref;
    if (!enif_get_resource(env, argv[0], pyref_type, (void **)&ref))
        return enif_make_badarg(env);
    if (!runtime_is_running(ref->generation))
        return make_error(env, ATOM(closed));
    return make_ok(env, enif_make_resource(env, ref->ctx));
}

NIF(pyref_is_ref_nif)
{
    UNUSED(argc);
    pyref_t *ref;
    return enif_get_resource(env, argv[0], pyref_type, (void **)&ref) ? ATOM(true)
                                                                       : ATOM(false);
}
