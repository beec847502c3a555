/*
 * sandbox.c - the C audit hook, SandboxError, and the logging of denials.
 *
 * Layers (docs/security.md):
 *   1. this audit hook (PEP 578), registered with PySys_AddAuditHook before
 *      Py_Initialize, so no Python code can remove or rewrite it.  Until the
 *      policy is loaded it denies the documented process-creation events;
 *      afterwards it applies the tables of sandbox_policy.c;
 *   2. guards.c: builtin functions that raise no audit event, guarded in
 *      their method tables;
 *   3. interpose.c: libpython's and extension modules' own libc calls, and
 *      every ctypes/cffi foreign call, checked below the C API.
 *
 * A denial raises SandboxError, a RuntimeError that is also a PermissionError
 * (library code that catches OSError degrades), or for a denied import
 * SandboxImportError, a ModuleNotFoundError (code that probes an optional
 * module degrades as if it were missing), with the message
 * "<operation> is blocked in Erlang VM context.\n<reason>", and is sent to
 * the Erlang process py_sandbox_log (which logs through OTP logger) at most
 * log_limit times a second; the others are counted and reported with the
 * next one.  Nothing is written to stderr.
 *
 * Threads: the hook runs on whatever thread raised the event, GIL held.
 * Denials below the C API may come without the GIL; their logging takes only
 * log.lock (never while holding it do we touch Python).  The caller is the
 * pid of the request the thread runs, asked of the caller hook that
 * context/ registers at load (sandbox_set_caller_hook).
 */
#include "sandbox/sandbox_int.h"
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>
#include <stdarg.h>
#include <time.h>

#define HEADLINE " is blocked in Erlang VM context."

static struct {
    int level;            /* applied at the next start */
    unsigned log_limit;   /* denials sent to py_sandbox_log per second */
} cfg = {SBX_DEFAULT, 10};

static sandbox_caller_fn caller_hook; /* set at load, before any thread */

void sandbox_set_caller_hook(sandbox_caller_fn fn)
{
    caller_hook = fn;
}

static struct {
    ErlNifMutex *lock;
    int64_t window;       /* the second the counts below are for */
    unsigned sent;
    unsigned long suppressed;
} log_state;

static unsigned long denials; /* atomic: every denial since the NIF loaded */
static PyObject *main_error[2]; /* the error types of the main interpreter */

/* ------------------------------------------------------------ logging */

static int64_t now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

static ERL_NIF_TERM bin(ErlNifEnv *env, const char *s)
{
    ERL_NIF_TERM t;
    size_t n = s ? strlen(s) : 0;
    if (n)
        memcpy(enif_make_new_binary(env, n, &t), s, n);
    else
        enif_make_new_binary(env, 0, &t);
    return t;
}

/* {py_sandbox_denied, Op, Class, Detail, Caller | undefined, Suppressed} */
static void log_denial(const char *op, int cls, const char *detail)
{
    __atomic_add_fetch(&denials, 1, __ATOMIC_RELAXED);
    /* enif_send without an env is for threads that ERTS did not create;
     * Python never runs on a scheduler, so this only skips oddities. */
    if (!log_state.lock || enif_thread_type() != ERL_NIF_THR_UNDEFINED)
        return;
    enif_mutex_lock(log_state.lock);
    int64_t now = now_sec();
    if (now != log_state.window) {
        log_state.window = now;
        log_state.sent = 0;
    }
    int send = log_state.sent < cfg.log_limit;
    unsigned long suppressed = log_state.suppressed;
    if (send) {
        log_state.sent++;
        log_state.suppressed = 0;
    } else {
        log_state.suppressed++;
    }
    enif_mutex_unlock(log_state.lock);
    ErlNifPid logger;
    if (!send || !enif_whereis_pid(NULL, ATOM(py_sandbox_log), &logger)) {
        if (send) { /* nobody to tell: keep the count for the next one */
            enif_mutex_lock(log_state.lock);
            log_state.suppressed += suppressed + 1;
            enif_mutex_unlock(log_state.lock);
        }
        return;
    }
    ErlNifEnv *env = enif_alloc_env();
    ErlNifPid pid;
    ERL_NIF_TERM caller = caller_hook && caller_hook(&pid) ? enif_make_pid(env, &pid)
                                                           : ATOM(undefined);
    ERL_NIF_TERM msg = enif_make_tuple6(env, ATOM(py_sandbox_denied), bin(env, op),
                                        bin(env, policy_class_name(cls)), bin(env, detail),
                                        caller, enif_make_ulong(env, suppressed));
    enif_send(NULL, &logger, env, msg);
    enif_free_env(env);
}

/* ------------------------------------------------------------ the errors */

/* SandboxError, and SandboxImportError for a denied import: library code
 * probes optional modules with `except ImportError`, and it must degrade as
 * it does when the module is missing. */
enum { ERR_SANDBOX, ERR_IMPORT, ERR_KINDS };

static PyObject *new_error_type(int kind)
{
    PyObject *bases = kind == ERR_SANDBOX
                          ? PyTuple_Pack(2, PyExc_RuntimeError, PyExc_PermissionError)
                          : PyTuple_Pack(1, PyExc_ModuleNotFoundError);
    /* Erlang sees the documented builtin name (context/errors.c): 4.x code matches
     * {error, {'RuntimeError', Msg}}. */
    PyObject *dict = Py_BuildValue("{ss}", "__erlang_name__",
                                   kind == ERR_SANDBOX ? "RuntimeError" : "ModuleNotFoundError");
    PyObject *t = NULL;
    if (bases && dict && kind == ERR_SANDBOX)
        t = PyErr_NewExceptionWithDoc("erlang._sandbox.SandboxError",
                                      "An operation the sandbox blocks inside the Erlang VM: "
                                      "a RuntimeError that is also a PermissionError.",
                                      bases, dict);
    else if (bases && dict)
        t = PyErr_NewExceptionWithDoc("erlang._sandbox.SandboxImportError",
                                      "A module the sandbox does not let Python import inside "
                                      "the Erlang VM: a ModuleNotFoundError.",
                                      bases, dict);
    Py_XDECREF(dict);
    Py_XDECREF(bases);
    return t;
}

typedef struct {
    PyObject *error[ERR_KINDS];
} module_state_t;

static struct PyModuleDef sandbox_module;

/* The error type of the current interpreter (borrowed), or NULL. */
static PyObject *error_type(int kind)
{
    if (PyInterpreterState_Get() == PyInterpreterState_Main()) {
        if (!main_error[kind])
            main_error[kind] = new_error_type(kind);
        return main_error[kind];
    }
    /* Another interpreter has its own: the one of its _erlang_sandbox
     * instance, when sys.modules still holds ours. */
    PyObject *m = PyImport_ImportModule("_erlang_sandbox");
    PyObject *t = NULL;
    if (m && PyModule_GetDef(m) == &sandbox_module)
        t = ((module_state_t *)PyModule_GetState(m))->error[kind];
    Py_XDECREF(m); /* sys.modules keeps the module, and the module the type */
    PyErr_Clear();
    return t;
}

static PyObject *message(const char *op, int cls)
{
    return PyUnicode_FromFormat("%s" HEADLINE "\n%s", op, policy_reason(cls));
}

int sandbox_deny(const char *op, int cls, const char *detail)
{
    PyObject *type = error_type(ERR_SANDBOX);
    PyObject *msg = message(op, cls);
    if (msg)
        PyErr_SetObject(type ? type : PyExc_PermissionError, msg);
    else if (!PyErr_Occurred())
        PyErr_SetString(PyExc_PermissionError, op);
    Py_XDECREF(msg);
    log_denial(op, cls, detail);
    return -1;
}

int sandbox_deny_import(const char *name, int cls, const char *detail)
{
    char op[192];
    snprintf(op, sizeof op, "import %s", name);
    PyObject *type = error_type(ERR_IMPORT);
    PyObject *msg = message(op, cls);
    PyObject *mod = PyUnicode_FromString(name);
    if (msg && mod)
        PyErr_SetImportErrorSubclass(type ? type : PyExc_ModuleNotFoundError, msg, mod, NULL);
    else if (!PyErr_Occurred())
        PyErr_SetString(PyExc_ModuleNotFoundError, op);
    Py_XDECREF(msg);
    Py_XDECREF(mod);
    log_denial(op, cls, detail);
    return -1;
}

void sandbox_deny_quietly(const char *op, int cls, const char *detail)
{
    log_denial(op, cls, detail);
}

/* ------------------------------------------------------------ the hook */

static int arg_long(PyObject *args, Py_ssize_t i, long *out)
{
    if (!PyTuple_Check(args) || PyTuple_GET_SIZE(args) <= i)
        return 0;
    *out = PyLong_AsLong(PyTuple_GET_ITEM(args, i));
    if (*out == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

static int arg_limits(PyObject *limits, rlim_t *soft, rlim_t *hard)
{
    if (!PyTuple_Check(limits) || PyTuple_GET_SIZE(limits) != 2)
        return 0;
    long long s = PyLong_AsLongLong(PyTuple_GET_ITEM(limits, 0));
    long long h = PyLong_AsLongLong(PyTuple_GET_ITEM(limits, 1));
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    *soft = (rlim_t)s; /* -1 is RLIM_INFINITY */
    *hard = (rlim_t)h;
    return 1;
}

/* The first str or bytes argument (a symbol or module name), or NULL. */
static const char *arg_name(PyObject *args)
{
    for (Py_ssize_t i = 0; PyTuple_Check(args) && i < PyTuple_GET_SIZE(args); i++) {
        PyObject *a = PyTuple_GET_ITEM(args, i);
        if (PyUnicode_Check(a))
            return PyUnicode_AsUTF8(a);
        if (PyBytes_Check(a))
            return PyBytes_AS_STRING(a);
    }
    return NULL;
}

__attribute__((format(printf, 2, 3)))
static int deny_detail(const rule_t *r, const char *fmt, ...)
{
    char detail[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return sandbox_deny(r->op, r->cls, detail);
}

/* ("open", (path, mode, flags)): writing to this process's memory file, or
 * wrapping one of the VM's own fds in a file object. */
static int check_path(const rule_t *r, PyObject *args)
{
    PyObject *path = PyTuple_Check(args) && PyTuple_GET_SIZE(args) ? PyTuple_GET_ITEM(args, 0)
                                                                     : NULL;
    PyObject *bytes = NULL;
    long flags, fd;
    if (path && PyLong_Check(path) && arg_long(args, 0, &fd) && host_fd_internal((int)fd)) {
        char detail[32];
        snprintf(detail, sizeof detail, "fd %ld", fd);
        return sandbox_deny("open", policy_class("fd"), detail); /* open(fd), os.fdopen */
    }
    if (!arg_long(args, 2, &flags) || !(flags & (O_WRONLY | O_RDWR)))
        return 0; /* reading it does no harm */
    if (!path || PyLong_Check(path) || !PyUnicode_FSConverter(path, &bytes)) {
        PyErr_Clear();
        return 0;
    }
    int hit = host_proc_mem_path(PyBytes_AS_STRING(bytes));
    int rc = hit ? sandbox_deny("open(/proc/self/mem)", r->cls, PyBytes_AS_STRING(bytes)) : 0;
    Py_DECREF(bytes);
    return rc;
}

/* ("os.chdir", (path,)): only to where it already is (pytest does that). */
static int check_chdir(const rule_t *r, PyObject *args)
{
    PyObject *path = PyTuple_Check(args) && PyTuple_GET_SIZE(args) ? PyTuple_GET_ITEM(args, 0)
                                                                     : NULL;
    PyObject *bytes = NULL;
    char real[PATH_MAX], cwd[PATH_MAX];
    int same = path && !PyLong_Check(path) && PyUnicode_FSConverter(path, &bytes) &&
               realpath(PyBytes_AS_STRING(bytes), real) && getcwd(cwd, sizeof cwd) &&
               strcmp(real, cwd) == 0;
    Py_XDECREF(bytes);
    PyErr_Clear();
    return same ? 0 : sandbox_deny(r->op, r->cls, NULL);
}

static int check_named(const rule_t *r, PyObject *args)
{
    char op[160];
    const char *name = arg_name(args);
    const rule_t *hit = NULL;
    if (!name)
        return 0;
    if (r->check == CK_MODULE) {
        hit = policy_module(name);
        return policy_applies(hit) ? sandbox_deny_import(name, hit->cls, "import") : 0;
    }
    hit = policy_symbol(name);
    snprintf(op, sizeof op, "%s via ctypes", name);
    return policy_applies(hit) ? sandbox_deny(op, hit->cls, name) : 0;
}

static int check_event(const rule_t *r, PyObject *args)
{
    long a, b, c;
    rlim_t soft, hard;
    switch (r->check) {
    case CK_DENY:
        return sandbox_deny(r->op, r->cls, NULL);
    case CK_KILL_TARGET:
        if (arg_long(args, 0, &a) && arg_long(args, 1, &b) && host_kill_denied(a, (int)b))
            return deny_detail(r, "pid %ld, signal %ld", a, b);
        return 0;
    case CK_KILLPG_TARGET:
        if (arg_long(args, 0, &a) && arg_long(args, 1, &b) && host_killpg_denied(a, (int)b))
            return deny_detail(r, "process group %ld, signal %ld", a, b);
        return 0;
    case CK_THREAD_SIGNAL:
        if (arg_long(args, 1, &b) && b != 0)
            return deny_detail(r, "a thread of the VM, signal %ld", b);
        return 0;
    case CK_RLIMIT:
        if (arg_long(args, 0, &a) && PyTuple_GET_SIZE(args) > 1 &&
            arg_limits(PyTuple_GET_ITEM(args, 1), &soft, &hard) &&
            host_rlimit_lowers(0, (int)a, soft, hard))
            return deny_detail(r, "resource %ld lowered", a);
        return 0;
    case CK_PRLIMIT:
        if (arg_long(args, 0, &a) && arg_long(args, 1, &c) && PyTuple_GET_SIZE(args) > 2 &&
            arg_limits(PyTuple_GET_ITEM(args, 2), &soft, &hard) &&
            host_rlimit_lowers(a, (int)c, soft, hard))
            return deny_detail(r, "pid %ld, resource %ld lowered", a, c);
        return 0;
    case CK_PROC_MEM_PATH:
        return check_path(r, args);
    case CK_CHDIR:
        return check_chdir(r, args);
    case CK_FROM_PYTHON:
        return PyEval_GetFrame() ? sandbox_deny(r->op, r->cls, NULL) : 0;
    case CK_NATIVE_SYMBOL:
    case CK_MODULE:
        return check_named(r, args);
    default:
        return 0;
    }
}

static int audit_hook(const char *event, PyObject *args, void *data)
{
    UNUSED(data);
    if (!policy_loaded())
        return policy_bootstrap_denies(event) ? sandbox_deny(event, -1, "during start") : 0;
    const rule_t *r = policy_event(event);
    return policy_applies(r) ? check_event(r, args) : 0;
}

/* ------------------------------------------------------------ _erlang_sandbox */

static PyObject *mod_policy(PyObject *self, PyObject *unused)
{
    UNUSED(self);
    UNUSED(unused);
    return PyUnicode_FromString(policy_name());
}

static PyObject *mod_active(PyObject *self, PyObject *unused)
{
    UNUSED(self);
    UNUSED(unused);
    return PyBool_FromLong(policy_loaded());
}

static PyObject *mod_denials(PyObject *self, PyObject *unused)
{
    UNUSED(self);
    UNUSED(unused);
    return PyLong_FromUnsignedLong(__atomic_load_n(&denials, __ATOMIC_RELAXED));
}

static PyObject *mod_fds(PyObject *self, PyObject *unused)
{
    UNUSED(self);
    UNUSED(unused);
    return host_protected_fds();
}

static PyObject *mod_signals(PyObject *self, PyObject *unused)
{
    UNUSED(self);
    UNUSED(unused);
    return host_protected_signals();
}

static PyObject *mod_note(PyObject *self, PyObject *args)
{
    UNUSED(self);
    const char *op, *cls;
    if (!PyArg_ParseTuple(args, "ss:note_denial", &op, &cls))
        return NULL;
    log_denial(op, policy_class(cls), "refused by Python code");
    Py_RETURN_NONE;
}

static PyMethodDef sandbox_methods[] = {
    {"note_denial", mod_note, METH_VARARGS,
     "Log and count a denial that Python code decided (erlang._sandbox.blocked)."},
    {"policy", mod_policy, METH_NOARGS, "The policy in force: 'default' or 'strict'."},
    {"active", mod_active, METH_NOARGS, "True once the sandbox is fully installed."},
    {"denials", mod_denials, METH_NOARGS, "How many operations the sandbox denied."},
    {"protected_fds", mod_fds, METH_NOARGS, "The VM's file descriptors (at start)."},
    {"protected_signals", mod_signals, METH_NOARGS, "The signals of the VM."},
    {NULL, NULL, 0, NULL},
};

static int sandbox_module_exec(PyObject *m)
{
    static const char *const names[ERR_KINDS] = {"SandboxError", "SandboxImportError"};
    module_state_t *st = PyModule_GetState(m);
    for (int k = 0; k < ERR_KINDS; k++) {
        if (PyInterpreterState_Get() == PyInterpreterState_Main()) {
            st->error[k] = error_type(k);
            Py_XINCREF(st->error[k]);
        } else {
            st->error[k] = new_error_type(k);
        }
        if (!st->error[k])
            return -1;
        Py_INCREF(st->error[k]);
        if (PyModule_AddObject(m, names[k], st->error[k]) < 0) {
            Py_DECREF(st->error[k]);
            return -1;
        }
    }
    return 0;
}

static int sandbox_module_traverse(PyObject *m, visitproc visit, void *arg)
{
    module_state_t *st = PyModule_GetState(m);
    for (int k = 0; st && k < ERR_KINDS; k++)
        Py_VISIT(st->error[k]);
    return 0;
}

static int sandbox_module_clear(PyObject *m)
{
    module_state_t *st = PyModule_GetState(m);
    for (int k = 0; st && k < ERR_KINDS; k++)
        Py_CLEAR(st->error[k]);
    return 0;
}

static PyModuleDef_Slot sandbox_slots[] = {
    {Py_mod_exec, (void *)sandbox_module_exec},
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
    {0, NULL},
};

static struct PyModuleDef sandbox_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_erlang_sandbox",
    .m_doc = "C half of erlang._sandbox; present only inside the Erlang VM.",
    .m_size = sizeof(module_state_t),
    .m_methods = sandbox_methods,
    .m_slots = sandbox_slots,
    .m_traverse = sandbox_module_traverse,
    .m_clear = sandbox_module_clear,
};

static PyObject *sandbox_module_init(void)
{
    return PyModuleDef_Init(&sandbox_module);
}

/* ------------------------------------------------------------ lifecycle */

int sandbox_init(ErlNifEnv *env)
{
    UNUSED(env);
    if (!log_state.lock)
        log_state.lock = enif_mutex_create("py.sandbox.log");
    return log_state.lock && guards_init() == 0 && interpose_init() == 0 ? 0 : -1;
}

void sandbox_preinit(void)
{
    static int inittab_added = 0;
    if (!inittab_added && PyImport_AppendInittab("_erlang_sandbox", sandbox_module_init) == 0)
        inittab_added = 1; /* once per OS process: the inittab survives finalize */
    main_error[0] = main_error[1] = NULL; /* gone with the previous interpreter */
    PySys_AddAuditHook(audit_hook, NULL);
}

/* The guards point into this library: keep it mapped for the life of the
 * OS process, whatever happens to the py_nif module. */
static int pin_library(char *err, size_t errlen)
{
    Dl_info info;
    if (dladdr((void *)&sandbox_install, &info) && info.dli_fname &&
        dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE))
        return 0;
    snprintf(err, errlen, "sandbox: cannot pin the NIF library");
    return -1;
}

int sandbox_install(char *err, size_t errlen)
{
    if (!error_type(ERR_SANDBOX) || !error_type(ERR_IMPORT)) {
        PyErr_Clear();
        snprintf(err, errlen, "sandbox: cannot create the SandboxError types");
        return -1;
    }
    if (policy_load(cfg.level, err, errlen) < 0 || pin_library(err, errlen) < 0 ||
        guards_install(err, errlen) < 0 || interpose_install(err, errlen) < 0)
        return -1;
    return 0;
}

int sandbox_install_interp(char *err, size_t errlen)
{
    if (!policy_loaded()) {
        snprintf(err, errlen, "sandbox: the main interpreter's sandbox is not installed");
        return -1;
    }
    /* The guards patch method tables, which every interpreter shares, and
     * guard each extension module as it is created (guards.c): nothing to
     * redo here but the error types. */
    if (!error_type(ERR_SANDBOX) || !error_type(ERR_IMPORT)) {
        PyErr_Clear();
        snprintf(err, errlen, "sandbox: cannot create the SandboxError types");
        return -1;
    }
    return 0;
}

/* (Policy :: default | strict, LogLimit :: non_neg_integer()) ->
 *     ok | {error, {already_running, InForce}}.
 * The policy applies from the next start of the interpreter; a running one
 * keeps its own, and asking for another is an error (not a silent no-op).
 * The log limit applies at once. */
NIF(sandbox_configure_nif)
{
    UNUSED(argc);
    unsigned limit;
    int level;
    if (enif_is_identical(argv[0], ATOM(default)))
        level = SBX_DEFAULT;
    else if (enif_is_identical(argv[0], ATOM(strict)))
        level = SBX_STRICT;
    else
        return enif_make_badarg(env);
    if (!enif_get_uint(env, argv[1], &limit))
        return enif_make_badarg(env);
    cfg.log_limit = limit;
    if (policy_loaded() && policy_level() != level)
        return make_error(env, enif_make_tuple2(env, ATOM(already_running),
                                                policy_level() ? ATOM(strict) : ATOM(default)));
    cfg.level = level;
    return ATOM(ok);
}
