/*
 * start.c - the start of the embedded interpreter, in order, across the
 * layers: the _erlang module (pymod/), the sandbox (sandbox/), the allocator
 * (runtime/pyalloc.c), Py_InitializeFromConfig, sys.path, the objects of the
 * erlang package that py_types caches (runtime/runtime.h), and the package's
 * own set-up (erlang._runtime.install).
 *
 * runtime/ owns the thread that runs it and knows nothing of the layers
 * above: start_init registers start_python as its start hook at load.
 * Threads: start_python runs on the py_runtime thread, before the GIL is
 * released for the first time.
 */
#include "start.h"
#include "core/pyerr.h"
#include "runtime/runtime.h"
#include "runtime/pyalloc.h"
#include "sandbox/sandbox.h"
#include "pymod/erlang_mod.h"
#include "context/context.h"
#include <dlfcn.h>

/* Where a start's error goes: the caller's buffer, for one start on this
 * thread (the runtime's start, or an own-GIL context's). */
static __thread struct {
    char *buf;
    size_t len;
} err;

/* The start's sys.path entries, kept for the sub-interpreters of own-GIL
 * contexts (runtime thread writes them before any context starts). */
static char **kept_paths;
static unsigned kept_npaths;

static int set_error(const char *what)
{
    snprintf(err.buf, err.len, "%s", what);
    return -1;
}

static int set_python_error(const char *what)
{
    PyObject *value = pyerr_take();
    PyObject *s = value ? PyObject_Str(value) : NULL;
    const char *msg = s ? PyUnicode_AsUTF8(s) : NULL;
    snprintf(err.buf, err.len, "%s: %s", what,
             msg ? msg : "unknown error");
    PyErr_Clear();
    Py_XDECREF(s);
    Py_XDECREF(value);
    return -1;
}

static int cache_types(py_types_t *t)
{
    PyObject *mod = PyImport_ImportModule("erlang._types");
    if (!mod)
        return set_python_error("cannot import erlang._types");
    t->atom_type = PyObject_GetAttrString(mod, "Atom");
    t->pid_type = PyObject_GetAttrString(mod, "Pid");
    t->ref_type = PyObject_GetAttrString(mod, "Ref");
    t->term_type = PyObject_GetAttrString(mod, "Term");
    t->interrupted = PyObject_GetAttrString(mod, "CallInterrupted");
    t->process_error = PyObject_GetAttrString(mod, "ProcessError");
    Py_DECREF(mod);
    PyObject *tb = PyImport_ImportModule("traceback");
    t->traceback_format = tb ? PyObject_GetAttrString(tb, "format_exception") : NULL;
    Py_XDECREF(tb);
    t->code_cache = PyDict_New();
    t->str_etf = PyUnicode_InternFromString("_etf");
    t->main_name = PyUnicode_InternFromString("__main__");
    t->builtins = PyImport_ImportModule("builtins");
    PyObject *confine = PyImport_ImportModule("erlang._confine");
    t->ns_builtins = confine ? PyObject_GetAttrString(confine, "namespace_builtins") : NULL;
    Py_XDECREF(confine);
    t->interp_id = PyInterpreterState_GetID(PyInterpreterState_Get());
    if (!t->atom_type || !t->pid_type || !t->ref_type || !t->term_type || !t->interrupted ||
        !t->process_error ||
        !t->code_cache || !t->traceback_format || !t->builtins || !t->ns_builtins)
        return set_python_error("cannot load the erlang types");
    return 0;
}

/* Python-side set-up that lives in the erlang package (erlang._runtime). */
static int install_python_side(void)
{
    PyObject *mod = PyImport_ImportModule("erlang._runtime");
    PyObject *r = mod ? PyObject_CallMethod(mod, "install", NULL) : NULL;
    Py_XDECREF(mod);
    if (!r)
        return set_python_error("erlang._runtime.install() failed");
    Py_DECREF(r);
    return 0;
}

static void drop_types(py_types_t *t)
{
    Py_CLEAR(t->atom_type);
    Py_CLEAR(t->pid_type);
    Py_CLEAR(t->ref_type);
    Py_CLEAR(t->term_type);
    Py_CLEAR(t->interrupted);
    Py_CLEAR(t->process_error);
    Py_CLEAR(t->resource_type);
    Py_CLEAR(t->buffer_type);
    Py_CLEAR(t->notifier_type);
    Py_CLEAR(t->waiter_type);
    Py_CLEAR(t->call_type);
    atom_cache_clear(&t->atoms, 1);
    atom_cache_clear(&t->names, 1);
    atom_cache_clear(&t->modules, 1);
    Py_CLEAR(t->str_etf);
    Py_CLEAR(t->main_name);
    Py_CLEAR(t->builtins);
    Py_CLEAR(t->ns_builtins);
    Py_CLEAR(t->traceback_format);
    Py_CLEAR(t->code_cache);
}

/* Own-GIL sub-interpreters refuse the extension modules not known to be
 * safe there (erlang._owngil). */
static int install_import_guard(void)
{
    PyObject *mod = PyImport_ImportModule("erlang._owngil");
    PyObject *r = mod ? PyObject_CallMethod(mod, "install", NULL) : NULL;
    Py_XDECREF(mod);
    if (!r)
        return set_python_error("erlang._owngil.install() failed");
    Py_DECREF(r);
    return 0;
}

static int add_paths(char *const *paths, unsigned npaths)
{
    PyObject *sys_path = PySys_GetObject("path"); /* borrowed */
    if (!sys_path)
        return set_error("sys.path is missing");
    for (unsigned i = npaths; i > 0; i--) {
        PyObject *p = PyUnicode_DecodeFSDefault(paths[i - 1]);
        if (!p || PyList_Insert(sys_path, 0, p) < 0) {
            Py_XDECREF(p);
            return set_python_error("cannot extend sys.path");
        }
        Py_DECREF(p);
    }
    return 0;
}

/* A copy of the start's sys.path entries (the runtime frees its own). */
static void keep_paths(char *const *paths, unsigned npaths)
{
    for (unsigned i = 0; i < kept_npaths; i++)
        enif_free(kept_paths[i]);
    enif_free(kept_paths);
    kept_paths = enif_alloc((npaths ? npaths : 1) * sizeof *kept_paths);
    kept_npaths = 0;
    for (unsigned i = 0; kept_paths && i < npaths; i++) {
        size_t n = strlen(paths[i]) + 1;
        char *p = enif_alloc(n);
        if (!p)
            break;
        memcpy(p, paths[i], n);
        kept_paths[kept_npaths++] = p;
    }
}

/* The NIF loader opens py_nif.so with RTLD_LOCAL, so libpython's symbols
 * are invisible to the extension modules Python loads later (math, _json,
 * numpy...).  Reopen libpython RTLD_GLOBAL so that they resolve. */
static int promote_libpython(void)
{
    Dl_info info;
    if (!dladdr((void *)&Py_InitializeFromConfig, &info) || !info.dli_fname)
        return set_error("cannot locate libpython");
    if (!dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD)) {
        const char *why = dlerror();
        return set_error(why ? why : "cannot reopen libpython RTLD_GLOBAL");
    }
    return 0;
}

/* The runtime thread's start hook (runtime_set_start): the interpreter is
 * up, with the erlang package's side installed (0), or not, and finalized
 * again, errbuf saying why (-1). */
static int start_python(const char *executable, char *const *paths, unsigned npaths,
                        char *errbuf, size_t errlen)
{
    err.buf = errbuf;
    err.len = errlen;
    if (promote_libpython() < 0)
        return -1;
    static int inittab_added = 0;
    if (!inittab_added) {
        /* Once per OS process: the inittab survives Py_Finalize. */
        if (PyImport_AppendInittab("_erlang", erlang_mod_init) < 0)
            return set_error("cannot register the _erlang module");
        inittab_added = 1;
    }
    sandbox_preinit(); /* the audit hook, before any Python code runs */
    pyalloc_install(); /* before Python allocates anything */
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0; /* the VM keeps its signals */
    config.parse_argv = 0;
    PyStatus st = PyConfig_SetBytesString(&config, &config.program_name, executable);
    if (!PyStatus_Exception(st))
        st = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(st))
        return set_error(st.err_msg ? st.err_msg : "Py_InitializeFromConfig failed");
    py_types_bind(&py_types_main);
    if (add_paths(paths, npaths) < 0 || cache_types(&py_types_main) < 0 ||
        sandbox_install(errbuf, errlen) < 0 || install_python_side() < 0) {
        drop_types(&py_types_main);
        Py_FinalizeEx();
        return -1;
    }
    keep_paths(paths, npaths);
    return 0;
}

/* The context layer's hook for an own-GIL context: set up its new
 * sub-interpreter (current, its GIL held) as the main one was, with the
 * import guard besides, and fill t (registered for the interpreter's own
 * threads).  0, or -1 with err saying why. */
static int setup_subinterp(py_types_t *t, char *errbuf, size_t errlen)
{
    err.buf = errbuf;
    err.len = errlen;
    py_types_bind(t);
    if (add_paths(kept_paths, kept_npaths) < 0 || cache_types(t) < 0 ||
        sandbox_install_interp(errbuf, errlen) < 0 || install_python_side() < 0 ||
        install_import_guard() < 0) {
        drop_types(t);
        return -1;
    }
    if (py_types_register(t) < 0) {
        drop_types(t);
        return set_error("too many own-GIL interpreters");
    }
    return 0;
}

/* Before the sub-interpreter ends: its objects go. */
static void teardown_subinterp(py_types_t *t)
{
    py_types_unregister(t);
    drop_types(t);
}

void start_init(void)
{
    runtime_set_start(start_python);
    context_set_interp_hooks(setup_subinterp, teardown_subinterp);
}
