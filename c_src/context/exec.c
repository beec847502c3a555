/*
 * exec.c - the one switch over request kinds (a new kind is a case here and
 * nowhere else).
 *
 * Runs on the context's worker thread with the GIL held.  Every Python error,
 * conversion errors included, leaves through errors_from_python, so a caller
 * always gets {error, {Name, Message}} and never waits forever.
 */
#include "context/exec.h"
#include "convert/convert.h"
#include "context/errors.h"
#include "runtime/runtime.h"
#include "convert/pyref.h"

#define CODE_CACHE_MAX 512

typedef struct {
    context_t *ctx;
    request_t *req;
    ErlNifEnv *env;
    int defer_maps; /* the reply goes to py_context, which finishes big maps */
    int deferred;   /* the result holds bigmap placeholders */
} job_t;

/* Objects whose release waits until the reply is sent: freeing a large
 * argument or result (100k ints, 10 MiB) is work the caller need not wait
 * for.  Per thread; a nested request's exec_release frees its outer's too,
 * which is only earlier. */
#define DEFERRED_MAX 16
static __thread PyObject *deferred[DEFERRED_MAX];
static __thread int n_deferred;

static void release_later(PyObject *obj)
{
    if (n_deferred < DEFERRED_MAX)
        deferred[n_deferred++] = obj;
    else
        Py_DECREF(obj);
}

void exec_release(void)
{
    while (n_deferred > 0)
        Py_DECREF(deferred[--n_deferred]);
}

static ERL_NIF_TERM fail(job_t *j)
{
    return errors_from_python(j->env, j->ctx, &j->req->ns);
}

static PyObject *binary_str(job_t *j, ERL_NIF_TERM t)
{
    ErlNifBinary bin;
    if (!enif_inspect_binary(j->env, t, &bin)) {
        PyErr_SetString(PyExc_TypeError, "expected a UTF-8 binary");
        return NULL;
    }
    return PyUnicode_DecodeUTF8((const char *)bin.data, bin.size, "strict");
}

/* Return modes list and {stream, Credit} hand the result to erlang._stream. */
static PyObject *iterate(job_t *j, PyObject *result, ERL_NIF_TERM mode, int *streamed)
{
    int arity, credit;
    const ERL_NIF_TERM *e;
    const char *helper = "collect";
    ErlNifPid owner;
    if (enif_get_tuple(j->env, mode, &arity, &e) && (arity == 2 || arity == 3) &&
        e[0] == ATOM(stream) && enif_get_int(j->env, e[1], &credit)) {
        /* {stream, Credit, Owner}: the items and the end go to Owner */
        if (arity == 3 && enif_get_local_pid(j->env, e[2], &owner))
            worker_redirect(j->ctx, j->req, &owner);
        __atomic_store_n(&j->req->credit, credit, __ATOMIC_RELEASE);
        helper = "pump";
        *streamed = 1;
    }
    PyObject *mod = PyImport_ImportModule("erlang._stream");
    PyObject *r = mod ? PyObject_CallMethod(mod, helper, "O", result) : NULL;
    Py_XDECREF(mod);
    Py_DECREF(result);
    return r;
}

/* A module or function name: an atom (its str is cached: atoms are never
 * collected, so the term is a stable key) or a UTF-8 binary. */
static PyObject *name_str(job_t *j, ERL_NIF_TERM t)
{
    if (!enif_is_atom(j->env, t))
        return binary_str(j, t);
    PyObject *s = atom_cache_get(&py_types.names, t);
    if (s)
        return Py_NewRef(s);
    char buf[1024];
    int n = enif_get_atom(j->env, t, buf, sizeof buf, ERL_NIF_LATIN1);
    s = n > 0 ? PyUnicode_DecodeLatin1(buf, n - 1, NULL) : NULL;
    if (!s && !PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "names must be Latin-1 atoms or UTF-8 binaries");
    if (s) {
        PyUnicode_InternInPlace(&s);
        atom_cache_put(&py_types.names, t, s);
    }
    return s;
}

static ERL_NIF_TERM ok_result(job_t *j, PyObject *result, ERL_NIF_TERM mode)
{
    ERL_NIF_TERM value;
    int streamed = 0;
    if (result && mode != ATOM(term) && mode != ATOM(ref))
        result = iterate(j, result, mode, &streamed);
    if (!result)
        return fail(j);
    if (streamed) {
        Py_DECREF(result);
        return ATOM(done);
    }
    int rc = 0;
    if (mode == ATOM(ref))
        value = pyref_make(j->env, j->ctx, result);
    else
        rc = j->defer_maps ? to_term_reply(j->env, j->ctx, result, &value, &j->deferred)
                           : to_term(j->env, j->ctx, result, &value);
    release_later(result);
    return rc < 0 ? fail(j) : make_ok(j->env, value);
}

/* The object a dotted name leads to, from start (new reference). */
static PyObject *walk_attrs(PyObject *start, PyObject *dotted)
{
    if (PyUnicode_FindChar(dotted, '.', 0, PyUnicode_GET_LENGTH(dotted), 1) < 0)
        return PyObject_GetAttr(start, dotted); /* the usual case: no dots */
    PyObject *sep = PyUnicode_FromString(".");
    PyObject *parts = sep ? PyUnicode_Split(dotted, sep, -1) : NULL;
    Py_XDECREF(sep);
    if (!parts)
        return NULL;
    PyObject *obj = start;
    Py_INCREF(obj);
    for (Py_ssize_t i = 0; obj && i < PyList_GET_SIZE(parts); i++) {
        PyObject *next = PyObject_GetAttr(obj, PyList_GET_ITEM(parts, i));
        Py_DECREF(obj);
        obj = next;
    }
    Py_DECREF(parts);
    return obj;
}

/* __main__ means the caller's own namespace, then builtins. */
static PyObject *main_lookup(job_t *j, PyObject *name)
{
    PyObject *ns = context_namespace(j->ctx, &j->req->ns);
    if (!ns)
        return NULL;
    Py_ssize_t dot = PyUnicode_FindChar(name, '.', 0, PyUnicode_GET_LENGTH(name), 1);
    PyObject *head = dot >= 0 ? PyUnicode_Substring(name, 0, dot) : Py_NewRef(name);
    if (!head)
        return NULL;
    PyObject *obj = PyDict_GetItemWithError(ns, head);
    if (obj)
        obj = Py_NewRef(obj);
    else if (!PyErr_Occurred() && !(obj = PyObject_GetAttr(py_types.builtins, head)) &&
             PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        PyErr_Format(PyExc_NameError, "name '%U' is not defined in the caller's namespace",
                     head);
    }
    Py_DECREF(head);
    if (!obj || dot < 0)
        return obj;
    PyObject *rest = PyUnicode_Substring(name, dot + 1, PyUnicode_GET_LENGTH(name));
    PyObject *r = rest ? walk_attrs(obj, rest) : NULL;
    Py_XDECREF(rest);
    Py_DECREF(obj);
    return r;
}

/* The module named by mod_t (new reference).  PyImport_GetModule checks on
 * every call that the module is not half-imported (two attribute lookups,
 * a third of resolving math.sqrt); a module met before by the same atom and
 * still the one in sys.modules was whole then and stays so, and the cache's
 * reference keeps its address from being reused. */
static PyObject *module_of(job_t *j, ERL_NIF_TERM mod_t, PyObject *mod_name)
{
    int atom = enif_is_atom(j->env, mod_t);
    PyObject *modules = PyImport_GetModuleDict();
    PyObject *cached = atom ? atom_cache_get(&py_types.modules, mod_t) : NULL;
    if (cached && PyDict_CheckExact(modules) &&
        PyDict_GetItemWithError(modules, mod_name) == cached)
        return Py_NewRef(cached);
    PyObject *mod = PyImport_GetModule(mod_name);
    if (!mod && !PyErr_Occurred())
        mod = PyImport_Import(mod_name);
    if (mod && atom && PyModule_Check(mod))
        atom_cache_put(&py_types.modules, mod_t, mod);
    return mod;
}

static PyObject *resolve(job_t *j, ERL_NIF_TERM mod_t, ERL_NIF_TERM fun_t)
{
    PyObject *mod_name = name_str(j, mod_t);
    PyObject *fun_name = mod_name ? name_str(j, fun_t) : NULL;
    PyObject *fn = NULL;
    /* Atom names are interned: the same object as py_types.main_name. */
    if (fun_name && (mod_name == py_types.main_name ||
                     (!enif_is_atom(j->env, mod_t) &&
                      PyUnicode_Compare(mod_name, py_types.main_name) == 0))) {
        fn = main_lookup(j, fun_name);
    } else if (fun_name) {
        PyObject *mod = module_of(j, mod_t, mod_name);
        fn = mod ? walk_attrs(mod, fun_name) : NULL;
        Py_XDECREF(mod);
    }
    Py_XDECREF(mod_name);
    Py_XDECREF(fun_name);
    return fn;
}

static PyObject *make_kwargs(job_t *j, ERL_NIF_TERM map)
{
    size_t n;
    if (!enif_get_map_size(j->env, map, &n) || n == 0)
        return NULL;
    PyObject *kw = to_py(j->env, j->ctx, map);
    if (!kw)
        return NULL;
    Py_ssize_t pos = 0;
    PyObject *k, *v;
    while (PyDict_Next(kw, &pos, &k, &v)) {
        if (!PyUnicode_Check(k)) {
            PyErr_Format(PyExc_TypeError, "keyword argument names must be atoms or "
                                          "UTF-8 binaries, not %R", k);
            Py_DECREF(kw);
            return NULL;
        }
    }
    return kw;
}

/* fn(*Args, **Kwargs), the arguments converted straight into a vector. */
static PyObject *call_with(job_t *j, PyObject *fn, ERL_NIF_TERM args_t, ERL_NIF_TERM kw_t)
{
    ErlNifEnv *env = j->env;
    unsigned n;
    if (!enif_get_list_length(env, args_t, &n)) {
        PyErr_SetString(PyExc_TypeError, "arguments must be a proper list");
        return NULL;
    }
    PyObject *small[8];
    PyObject **argv = n <= 8 ? small : PyMem_Malloc(sizeof(PyObject *) * n);
    if (!argv)
        return PyErr_NoMemory();
    unsigned done = 0;
    ERL_NIF_TERM head, tail = args_t;
    while (enif_get_list_cell(env, tail, &head, &tail) &&
           (argv[done] = to_py(env, j->ctx, head)) != NULL)
        done++;
    PyObject *r = NULL, *kw = NULL;
    if (done == n && (kw = make_kwargs(j, kw_t)) == NULL && !PyErr_Occurred()) {
        r = PyObject_Vectorcall(fn, argv, n, NULL);
    } else if (done == n && kw) {
        PyObject *args = PyTuple_New(n);
        for (unsigned i = 0; args && i < n; i++)
            PyTuple_SET_ITEM(args, i, Py_NewRef(argv[i]));
        r = args ? PyObject_Call(fn, args, kw) : NULL;
        Py_XDECREF(args);
    }
    Py_XDECREF(kw);
    for (unsigned i = 0; i < done; i++)
        release_later(argv[i]);
    if (argv != small)
        PyMem_Free(argv);
    return r;
}

/* {call, M, F, Args, Kwargs, Return}, or {call, M, F, Args}: no keyword
 * arguments, the result as a term (the common case travels smaller). */
static ERL_NIF_TERM run_call(job_t *j, const ERL_NIF_TERM *e, int arity)
{
    PyObject *fn = resolve(j, e[1], e[2]);
    PyObject *r = fn ? call_with(j, fn, e[3], arity == 6 ? e[4] : ATOM(none)) : NULL;
    Py_XDECREF(fn);
    return ok_result(j, r, arity == 6 ? e[5] : ATOM(term));
}

static PyObject *compiled(job_t *j, ERL_NIF_TERM code_t, int mode)
{
    PyObject *src = binary_str(j, code_t);
    if (!src)
        return NULL;
    PyObject *code_cache = py_types.code_cache;
    PyObject *key = Py_BuildValue("(iO)", mode, src);
    PyObject *code = key ? PyDict_GetItemWithError(code_cache, key) : NULL;
    if (code || PyErr_Occurred()) {
        Py_XINCREF(code);
    } else {
        const char *s = PyUnicode_AsUTF8(src);
        code = s ? Py_CompileString(s, "<erlang>", mode) : NULL;
        if (code && PyDict_GET_SIZE(code_cache) >= CODE_CACHE_MAX)
            PyDict_Clear(code_cache);
        if (code && PyDict_SetItem(code_cache, key, code) < 0)
            Py_CLEAR(code);
    }
    Py_XDECREF(key);
    Py_DECREF(src);
    return code;
}

static ERL_NIF_TERM run_eval(job_t *j, const ERL_NIF_TERM *e)
{
    PyObject *ns = context_namespace(j->ctx, &j->req->ns);
    PyObject *code = ns ? compiled(j, e[1], Py_eval_input) : NULL;
    if (!code)
        return fail(j);
    size_t n = 0;
    PyObject *globals = ns, *r = NULL;
    Py_INCREF(globals);
    if (enif_get_map_size(j->env, e[2], &n) && n > 0) {
        /* Locals join a copy of the globals, so comprehensions see them. */
        PyObject *locals = to_py(j->env, j->ctx, e[2]);
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (locals && PyDict_Next(locals, &pos, &k, &v)) {
            if (!PyUnicode_Check(k)) {
                PyErr_Format(PyExc_TypeError, "local names must be atoms or UTF-8 "
                                              "binaries, not %R", k);
                Py_CLEAR(locals);
            }
        }
        Py_SETREF(globals, locals ? PyDict_Copy(ns) : NULL);
        if (globals && PyDict_Update(globals, locals) < 0)
            Py_CLEAR(globals);
        Py_XDECREF(locals);
    }
    if (globals)
        r = PyEval_EvalCode(code, globals, globals);
    Py_XDECREF(globals);
    Py_DECREF(code);
    return ok_result(j, r, e[3]);
}

static ERL_NIF_TERM run_exec(job_t *j, const ERL_NIF_TERM *e)
{
    PyObject *ns = context_namespace(j->ctx, &j->req->ns);
    PyObject *code = ns ? compiled(j, e[1], Py_file_input) : NULL;
    PyObject *r = code ? PyEval_EvalCode(code, ns, ns) : NULL;
    Py_XDECREF(code);
    if (!r)
        return fail(j);
    Py_DECREF(r);
    return ATOM(ok);
}

static ERL_NIF_TERM run_on_ref(job_t *j, const ERL_NIF_TERM *e, int arity)
{
    PyObject *obj = to_py(j->env, j->ctx, e[1]);
    if (!obj)
        return fail(j);
    if (e[0] == ATOM(to_term)) {
        ERL_NIF_TERM v;
        int rc = j->defer_maps ? to_term_reply(j->env, j->ctx, obj, &v, &j->deferred)
                               : to_term(j->env, j->ctx, obj, &v);
        Py_DECREF(obj);
        return rc < 0 ? fail(j) : make_ok(j->env, v);
    }
    PyObject *name = binary_str(j, e[2]);
    PyObject *attr = name ? PyObject_GetAttr(obj, name) : NULL;
    Py_XDECREF(name);
    Py_DECREF(obj);
    if (e[0] == ATOM(getattr))
        return ok_result(j, attr, e[3]);
    PyObject *r = attr && arity == 6 ? call_with(j, attr, e[3], e[4]) : NULL;
    Py_XDECREF(attr);
    return ok_result(j, r, e[5]);
}

static ERL_NIF_TERM run_last_traceback(job_t *j)
{
    PyObject *exc = context_last_exception(j->ctx, &j->req->ns);
    if (!exc)
        return make_ok(j->env, ATOM(none));
    PyObject *lines = PyObject_CallOneArg(py_types.traceback_format, exc);
    PyObject *empty = lines ? PyUnicode_FromString("") : NULL;
    PyObject *text = empty ? PyUnicode_Join(empty, lines) : NULL;
    Py_XDECREF(lines);
    Py_XDECREF(empty);
    return ok_result(j, text, ATOM(term));
}

static ERL_NIF_TERM dispatch(job_t *j);

ERL_NIF_TERM exec_run(context_t *ctx, request_t *req)
{
    /* Only replies that py_context receives itself may carry placeholders;
     * {py_response, Ref, Result} (py:spawn_call) is read by user code. */
    job_t j = {.ctx = ctx, .req = req, .env = req->env,
               .defer_maps = req->tag == ATOM(py_reply) || req->tag == ATOM(py_parallel)};
    ERL_NIF_TERM result = dispatch(&j);
    /* Large dicts are finished by the caller (convert/bigmap.h). */
    return j.deferred ? enif_make_tuple2(req->env, ATOM(py_fixup), result) : result;
}

static ERL_NIF_TERM dispatch(job_t *j)
{
    request_t *req = j->req;
    int arity = 0;
    const ERL_NIF_TERM *e = NULL;
    ERL_NIF_TERM kind = req->payload;
    if (enif_get_tuple(req->env, req->payload, &arity, &e) && arity > 0)
        kind = e[0];
    if (kind == ATOM(call) && (arity == 6 || arity == 4))
        return run_call(j, e, arity);
    if (kind == ATOM(eval) && arity == 4)
        return run_eval(j, e);
    if (kind == ATOM(exec) && arity == 2)
        return run_exec(j, e);
    if ((kind == ATOM(getattr) && arity == 4) || (kind == ATOM(call_method) && arity == 6) ||
        (kind == ATOM(to_term) && arity == 2))
        return run_on_ref(j, e, arity);
    if (kind == ATOM(last_traceback))
        return run_last_traceback(j);
    if (kind == ATOM(nop))
        return ATOM(ok);
    return make_error(req->env, enif_make_tuple2(req->env, ATOM(bad_request), req->payload));
}
