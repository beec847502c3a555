/*
 * runtime.c - start and stop the embedded CPython, and the runtime thread.
 *
 * Threads: one "py_runtime" thread per start.  It runs the start hook (the
 * start across the layers, ../start.c, which calls Py_InitializeFromConfig),
 * keeps the main thread state, and waits (GIL released) for three kinds of
 * work: interrupts of running requests (PyThreadState_SetAsyncExc needs the
 * GIL, which the interrupted request holds, so a scheduler may never wait
 * for it), decrefs of objects whose context has stopped, and the final stop,
 * where it calls Py_FinalizeEx.  Init and finalize run on this thread, never
 * on a scheduler.
 *
 * Locks: rt.lock guards state, the interrupt and decref queues and the atom
 * counter.  It is never held while taking the GIL.
 *
 * Ownership: the interrupt queue keeps each interrupt's resource (a
 * context) alive (enif_keep_resource) until the interrupt has been handled.
 */
#include "runtime/runtime.h"
#include "runtime/pyalloc.h"

runtime_limits_t runtime_limits = {.max_depth = 1000, .atom_cap = 10000};

typedef enum { RT_DOWN, RT_STARTING, RT_RUNNING, RT_STOPPING } rt_state_t;

typedef struct interrupt {
    struct interrupt *next;
    runtime_interrupt_fn fn;
    void *resource;
    uint64_t req_id;
} interrupt_t;

/* A context thread that ended with no one to join it (its owner died). */
typedef struct join_node {
    struct join_node *next;
    ErlNifTid tid;
} join_node_t;

static struct {
    ErlNifMutex *lock;
    ErlNifCond *cond;
    rt_state_t state;
    uint64_t generation;
    ErlNifTid tid;
    interrupt_t *interrupts;
    decref_node_t *decrefs;
    join_node_t *joins;
    long atoms_made;
    int init_ok;
    int finalized;  /* Py_FinalizeEx ran: no second interpreter here */
    char init_error[512];
    /* start options, owned by the starting NIF until the thread is ready */
    char *executable;
    char **paths;
    unsigned npaths;
    runtime_start_fn start; /* the start hook, set at load */
} rt;

static runtime_finalize_fn before_finalize;

void runtime_set_before_finalize(runtime_finalize_fn fn)
{
    before_finalize = fn;
}

void runtime_set_start(runtime_start_fn start)
{
    rt.start = start;
}

int runtime_init(ErlNifEnv *env)
{
    UNUSED(env);
    rt.lock = enif_mutex_create("py.runtime");
    rt.cond = enif_cond_create("py.runtime");
    rt.state = RT_DOWN;
    return rt.lock && rt.cond ? 0 : -1;
}

static void stop_thread(void)
{
    enif_mutex_lock(rt.lock);
    int running = rt.state == RT_RUNNING;
    if (running) {
        rt.state = RT_STOPPING;
        enif_cond_broadcast(rt.cond);
    }
    enif_mutex_unlock(rt.lock);
    if (running)
        enif_thread_join(rt.tid, NULL);
}

void runtime_unload(void)
{
    /* The module is purged: an interpreter still running is finalized now
     * (its contexts are gone with the application). */
    stop_thread();
    enif_cond_destroy(rt.cond);
    enif_mutex_destroy(rt.lock);
}

uint64_t runtime_generation(void)
{
    return __atomic_load_n(&rt.generation, __ATOMIC_ACQUIRE);
}

int runtime_is_running(uint64_t generation)
{
    enif_mutex_lock(rt.lock);
    int ok = rt.state == RT_RUNNING && rt.generation == generation;
    enif_mutex_unlock(rt.lock);
    return ok;
}

int runtime_take_atom_slot(void)
{
    enif_mutex_lock(rt.lock);
    int ok = rt.atoms_made < runtime_limits.atom_cap;
    if (ok)
        rt.atoms_made++;
    enif_mutex_unlock(rt.lock);
    return ok;
}

void runtime_request_interrupt(runtime_interrupt_fn fn, void *resource, uint64_t req_id)
{
    interrupt_t *it = enif_alloc(sizeof *it);
    if (!it)
        return;
    enif_keep_resource(resource);
    it->fn = fn;
    it->resource = resource;
    it->req_id = req_id;
    enif_mutex_lock(rt.lock);
    it->next = rt.interrupts;
    rt.interrupts = it;
    enif_cond_signal(rt.cond);
    enif_mutex_unlock(rt.lock);
}

void runtime_request_join(ErlNifTid tid)
{
    join_node_t *j = enif_alloc(sizeof *j);
    if (!j)
        return;
    j->tid = tid;
    enif_mutex_lock(rt.lock);
    j->next = rt.joins;
    rt.joins = j;
    enif_cond_signal(rt.cond);
    enif_mutex_unlock(rt.lock);
}

/* Join the threads of the list (they have ended or are about to). */
static void join_all(join_node_t *js)
{
    while (js) {
        join_node_t *next = js->next;
        enif_thread_join(js->tid, NULL);
        enif_free(js);
        js = next;
    }
}

void runtime_defer_decref(uint64_t generation, PyObject *obj)
{
    enif_mutex_lock(rt.lock);
    if (rt.state != RT_RUNNING || rt.generation != generation) {
        /* The interpreter that owned obj is gone: nothing to release. */
        enif_mutex_unlock(rt.lock);
        return;
    }
    decref_node_t *d = enif_alloc(sizeof *d);
    if (d) {
        d->obj = obj;
        d->next = rt.decrefs;
        rt.decrefs = d;
        enif_cond_signal(rt.cond);
    }
    enif_mutex_unlock(rt.lock);
}

/* --------------------------------------------------------------- the loop */

void decref_drain(decref_node_t *list)
{
    while (list) {
        decref_node_t *next = list->next;
        Py_DECREF(list->obj);
        enif_free(list);
        list = next;
    }
}

static void serve(interrupt_t *its, decref_node_t *drs)
{
    decref_drain(drs);
    while (its) {
        interrupt_t *next = its->next;
        its->fn(its->resource, its->req_id);
        enif_release_resource(its->resource);
        enif_free(its);
        its = next;
    }
}

static void *runtime_thread(void *arg)
{
    UNUSED(arg);
    int ok = 0;
    if (!rt.start)
        snprintf(rt.init_error, sizeof rt.init_error, "no start hook registered");
    else
        ok = rt.start(rt.executable, rt.paths, rt.npaths, rt.init_error,
                      sizeof rt.init_error) == 0;
    PyThreadState *main_ts = ok ? PyEval_SaveThread() : NULL;

    enif_mutex_lock(rt.lock);
    rt.init_ok = ok;
    rt.state = ok ? RT_RUNNING : RT_DOWN;
    enif_cond_broadcast(rt.cond);
    while (ok) {
        while (!rt.interrupts && !rt.decrefs && !rt.joins && rt.state == RT_RUNNING)
            enif_cond_wait(rt.cond, rt.lock);
        interrupt_t *its = rt.interrupts;
        decref_node_t *drs = rt.decrefs;
        join_node_t *js = rt.joins;
        rt.interrupts = NULL;
        rt.decrefs = NULL;
        rt.joins = NULL;
        int stopping = rt.state == RT_STOPPING;
        enif_mutex_unlock(rt.lock);
        join_all(js); /* without the GIL: the ending thread gave it up */

        PyEval_RestoreThread(main_ts);
        serve(its, drs);
        if (stopping) {
            /* Finalizing runs atexit handlers and thread cleanups that may
             * still convert terms: the cached types stay valid until it is
             * over, and are then forgotten (their memory went with it). */
            if (before_finalize)
                before_finalize();
            Py_FinalizeEx();
            memset(&py_types_main, 0, sizeof py_types_main);
            rt.finalized = 1;
            enif_mutex_lock(rt.lock);
            break;
        }
        main_ts = PyEval_SaveThread();
        enif_mutex_lock(rt.lock);
    }
    if (ok) {
        rt.state = RT_DOWN;
        enif_cond_broadcast(rt.cond);
    }
    join_node_t *js = rt.joins;
    rt.joins = NULL;
    enif_mutex_unlock(rt.lock);
    join_all(js);
    return NULL;
}

/* ------------------------------------------------------------------- NIFs */

static void free_opts(void)
{
    enif_free(rt.executable);
    for (unsigned i = 0; i < rt.npaths; i++)
        enif_free(rt.paths[i]);
    enif_free(rt.paths);
    rt.executable = NULL;
    rt.paths = NULL;
    rt.npaths = 0;
}

static char *dup_binary(ErlNifEnv *env, ERL_NIF_TERM t)
{
    ErlNifBinary bin;
    if (!enif_inspect_binary(env, t, &bin) || memchr(bin.data, 0, bin.size))
        return NULL;
    char *s = enif_alloc(bin.size + 1);
    memcpy(s, bin.data, bin.size);
    s[bin.size] = 0;
    return s;
}

static int read_opts(ErlNifEnv *env, ERL_NIF_TERM exe, ERL_NIF_TERM paths)
{
    unsigned n;
    if (!enif_get_list_length(env, paths, &n))
        return -1;
    rt.executable = dup_binary(env, exe);
    rt.paths = enif_alloc(sizeof(char *) * (n ? n : 1));
    ERL_NIF_TERM head, tail = paths;
    while (enif_get_list_cell(env, tail, &head, &tail)) {
        char *p = dup_binary(env, head);
        if (!p)
            return -1;
        rt.paths[rt.npaths++] = p;
    }
    return rt.executable ? 0 : -1;
}

/* MaxDepth, AtomCap and AllocCache: set at every start, fresh or reused. */
static int set_limits(ErlNifEnv *env, const ERL_NIF_TERM argv[])
{
    int depth;
    long cap;
    ErlNifUInt64 cache;
    if (!enif_get_int(env, argv[2], &depth) || depth < 1 ||
        !enif_get_long(env, argv[3], &cap) || cap < 0 || !enif_get_uint64(env, argv[4], &cache))
        return -1;
    runtime_limits.max_depth = depth;
    runtime_limits.atom_cap = cap;
    pyalloc_set_cache(cache > SIZE_MAX ? SIZE_MAX : (size_t)cache);
    return 0;
}

/* (Executable, Paths, MaxDepth, AtomCap, AllocCache) -> ok | {error, Reason};
 * dirty IO.  When the interpreter already runs (the application was stopped
 * without finalizing it) it is reused: only the limits are updated. */
NIF(runtime_start_nif)
{
    UNUSED(argc);
    enif_mutex_lock(rt.lock);
    if (set_limits(env, argv) < 0) {
        enif_mutex_unlock(rt.lock);
        return enif_make_badarg(env);
    }
    if (rt.state == RT_RUNNING) {
        enif_mutex_unlock(rt.lock);
        return ATOM(ok);
    }
    if (rt.state != RT_DOWN) {
        enif_mutex_unlock(rt.lock);
        return make_error(env, ATOM(already_running));
    }
    if (rt.finalized) {
        /* CPython does not come back reliably in the same OS process: on
         * 3.12 a second interpreter crashes in _ssl/_hashlib/_decimal. */
        enif_mutex_unlock(rt.lock);
        return make_error(env, ATOM(finalized));
    }
    if (read_opts(env, argv[0], argv[1]) < 0) {
        free_opts();
        enif_mutex_unlock(rt.lock);
        return enif_make_badarg(env);
    }
    rt.state = RT_STARTING;
    rt.atoms_made = 0;
    __atomic_add_fetch(&rt.generation, 1, __ATOMIC_RELEASE);
    ErlNifThreadOpts *topts = enif_thread_opts_create("py.runtime.opts");
    topts->suggested_stack_size = 2048; /* kilowords: 16 MiB on 64-bit */
    int rc = enif_thread_create("py_runtime", &rt.tid, runtime_thread, NULL, topts);
    enif_thread_opts_destroy(topts);
    if (rc != 0) {
        rt.state = RT_DOWN;
        free_opts();
        enif_mutex_unlock(rt.lock);
        return make_error(env, ATOM(init_failed));
    }
    while (rt.state == RT_STARTING)
        enif_cond_wait(rt.cond, rt.lock);
    int ok = rt.init_ok;
    free_opts();
    enif_mutex_unlock(rt.lock);
    if (ok)
        return ATOM(ok);
    enif_thread_join(rt.tid, NULL);
    ERL_NIF_TERM msg;
    size_t len = strlen(rt.init_error);
    memcpy(enif_make_new_binary(env, len, &msg), rt.init_error, len);
    return make_error(env, enif_make_tuple2(env, ATOM(init_failed), msg));
}

/* () -> ok | {error, not_running}; dirty IO.  Contexts are stopped first. */
NIF(runtime_stop_nif)
{
    UNUSED(argc);
    UNUSED(argv);
    if (runtime_status_nif(env, 0, argv) != ATOM(running))
        return make_error(env, ATOM(not_running));
    stop_thread();
    return ATOM(ok);
}

/* () -> running | stopped */
/* () -> {Major, Minor, Micro}: the version of the libpython loaded (its
 * Py_Version), known without starting it. */
NIF(runtime_python_version_nif)
{
    UNUSED(argc);
    UNUSED(argv);
    return enif_make_tuple3(env, enif_make_uint(env, (Py_Version >> 24) & 0xff),
                            enif_make_uint(env, (Py_Version >> 16) & 0xff),
                            enif_make_uint(env, (Py_Version >> 8) & 0xff));
}

NIF(runtime_status_nif)
{
    UNUSED(argc);
    UNUSED(argv);
    enif_mutex_lock(rt.lock);
    int running = rt.state == RT_RUNNING;
    enif_mutex_unlock(rt.lock);
    return running ? ATOM(running) : ATOM(stopped);
}
