/*
 * guards.c - builtin functions that raise no audit event, guarded in place.
 *
 * A builtin function is a PyMethodDef entry in its module's (or type's)
 * static method table; every function object, in every module instance and
 * every interpreter, calls through that entry's ml_meth.  Guarding a function
 * replaces ml_meth with a trampoline that checks the call and then calls the
 * original (or raises SandboxError).  So a fresh instance of the module
 * (importlib.util.module_from_spec, _imp.create_builtin), a reference taken
 * earlier, or gc.get_objects() all reach the guard: there is no unguarded
 * copy of the function left to find.  A second copy of an extension module
 * (the same .so copied elsewhere and loaded) has its own table: the guard on
 * _imp.create_dynamic guards every extension module as it is created.
 *
 * Which functions, and which check each gets, is the GUARDED_FUNCTIONS table
 * of erlang/_sandbox.py (read by sandbox_policy.c).  A trampoline exists per
 * slot and per calling convention, so a slot knows its entry, the original
 * C function and the rule.
 *
 * Threads: slots are written under patch_lock (and the GIL), read by the
 * trampolines; a slot is complete before the release store that publishes
 * it in the table entry, one aligned pointer.
 * Patches outlive Py_Finalize (the tables are static data of libpython and
 * of the extension modules); a restart rebinds the slots to the new policy.
 */
#include "sandbox/sandbox_int.h"
#include "core/pyerr.h"
#include <fcntl.h>
#include <unistd.h>

#define NSLOTS 120
#define X10(X, d) X(d##0) X(d##1) X(d##2) X(d##3) X(d##4) \
                  X(d##5) X(d##6) X(d##7) X(d##8) X(d##9)
#define SLOTS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) \
    X10(X, 1) X10(X, 2) X10(X, 3) X10(X, 4) X10(X, 5) X10(X, 6) \
    X10(X, 7) X10(X, 8) X10(X, 9) X10(X, 10) X10(X, 11)

typedef struct {
    const rule_t *rule;
    PyMethodDef *entry;
    PyCFunction orig;
    int flags;
} slot_t;

typedef struct {
    PyObject *self;
    PyObject *const *args;
    Py_ssize_t nargs;
    PyObject *kwnames; /* vectorcall keywords (values follow args) */
    PyObject *kwargs;  /* or a dict */
    objset_t loaded;   /* CK_EXTENSION, CK_LOADER: the objects before the call */
} view_t;

static slot_t slots[NSLOTS];
static int nslots;
static ErlNifMutex *patch_lock; /* interpreters with a GIL of their own may race */

typedef PyObject *(*varkw_fn)(PyObject *, PyObject *, PyObject *);
typedef PyObject *(*fast_fn)(PyObject *, PyObject *const *, Py_ssize_t);
typedef PyObject *(*fastkw_fn)(PyObject *, PyObject *const *, Py_ssize_t, PyObject *);

/* ------------------------------------------------------------ arguments */

static PyObject *arg(const view_t *v, Py_ssize_t pos, const char *kw)
{
    if (pos < v->nargs)
        return v->args[pos];
    if (kw && v->kwnames)
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(v->kwnames); i++)
            if (PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(v->kwnames, i), kw) == 0)
                return v->args[v->nargs + i];
    if (kw && v->kwargs && PyDict_Check(v->kwargs))
        return PyDict_GetItemString(v->kwargs, kw);
    return NULL;
}

/* An int argument; 0 when absent or not an int (the original then fails). */
static int arg_long(const view_t *v, Py_ssize_t pos, const char *kw, long *out)
{
    PyObject *o = arg(v, pos, kw);
    if (!o || !PyLong_Check(o))
        return 0;
    *out = PyLong_AsLong(o);
    if (*out == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

static int deny_num(const rule_t *r, const char *what, long n)
{
    char detail[64];
    snprintf(detail, sizeof detail, "%s %ld", what, n);
    return sandbox_deny(r->op, r->cls, detail);
}

/* ------------------------------------------------------------ checks */

static int check_extension(const rule_t *r, const view_t *v)
{
    PyObject *spec = arg(v, 0, "spec");
    PyObject *name = spec ? PyObject_GetAttrString(spec, "name") : NULL;
    const char *s = name && PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
    const rule_t *hit = s ? policy_module(s) : NULL;
    int rc = s && policy_applies(hit) ? sandbox_deny_import(s, hit->cls, r->op) : 0;
    Py_XDECREF(name);
    if (!rc)
        PyErr_Clear(); /* a spec without a name: the original reports it */
    return rc;
}

static int check_symbol(const view_t *v)
{
    PyObject *name = arg(v, 1, NULL);
    const char *s = name && PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
    const rule_t *hit = s ? policy_symbol(s) : NULL;
    if (!s || !policy_applies(hit)) {
        PyErr_Clear();
        return 0;
    }
    char op[160];
    snprintf(op, sizeof op, "%s via cffi", s);
    return sandbox_deny(op, hit->cls, s);
}

/* input() reading the VM's own stdin (sys.stdin still on fd 0). */
static int check_stdin(const rule_t *r)
{
    PyObject *in = PySys_GetObject("stdin"); /* borrowed */
    PyObject *fd = in && in != Py_None ? PyObject_CallMethod(in, "fileno", NULL) : NULL;
    long n = fd && PyLong_Check(fd) ? PyLong_AsLong(fd) : -1;
    Py_XDECREF(fd);
    PyErr_Clear(); /* a StringIO or a closed stream: not the VM's stdin */
    return n >= 0 && host_fd_stdin((int)n) ? deny_num(r, "fd", n) : 0;
}

/* Before the original runs: -1 (denied, exception set), 1 (skip it: the
 * call returns None) or 0. */
static int check_before(const rule_t *r, const view_t *v)
{
    long a, b;
    PyObject *o;
    if (!policy_applies(r))
        return 0;
    switch (r->check) {
    case CK_DENY:
        return sandbox_deny(r->op, r->cls, NULL);
    case CK_FD:
        return arg_long(v, 0, "fd", &a) && host_fd_protected((int)a) ? deny_num(r, "fd", a) : 0;
    case CK_FD_INTERNAL:
        return arg_long(v, 0, "fd", &a) && host_fd_internal((int)a) ? deny_num(r, "fd", a) : 0;
    case CK_FD_READ:
        if (arg_long(v, 0, "fd", &a) && (host_fd_internal((int)a) || host_fd_stdin((int)a)))
            return deny_num(r, "fd", a);
        return 0;
    case CK_STDIN:
        return check_stdin(r);
    case CK_IGNORE:
        return 1;
    case CK_FD2:
        return arg_long(v, 1, "fd2", &a) && host_fd_protected((int)a) ? deny_num(r, "fd", a)
                                                                         : 0;
    case CK_FD_RANGE:
        if (arg_long(v, 0, "fd_low", &a) && arg_long(v, 1, "fd_high", &b) &&
            host_fd_range_protected(a, b))
            return deny_num(r, "range from fd", a);
        return 0;
    case CK_SIGNAL:
        if ((arg_long(v, 0, "signalnum", &a) || arg_long(v, 0, "signum", &a)) &&
            host_signal_protected((int)a))
            return deny_num(r, "signal", a);
        return 0;
    case CK_SIGNAL_HANDLER:
        /* Off the main thread CPython raises ValueError and changes nothing:
         * keep that behaviour, libraries rely on it. */
        if (PyThread_get_thread_ident() == host_main_thread() &&
            PyInterpreterState_Get() == PyInterpreterState_Main() &&
            arg_long(v, 0, "signalnum", &a) && host_signal_protected((int)a))
            return deny_num(r, "signal", a);
        return 0;
    case CK_EXIT_FLAG:
        o = arg(v, 3, "exit");
        return o && PyObject_IsTrue(o) == 1 ? sandbox_deny(r->op, r->cls, NULL) : 0;
    case CK_SETLOCALE:
        o = arg(v, 1, "locale");
        return o && o != Py_None ? sandbox_deny(r->op, r->cls, NULL) : 0;
    case CK_EXTENSION:
        interpose_snapshot(&((view_t *)v)->loaded);
        return check_extension(r, v);
    case CK_LOADER:
        interpose_snapshot(&((view_t *)v)->loaded);
        return 0;
    case CK_NATIVE_SYMBOL:
        return check_symbol(v);
    default:
        return 0;
    }
}

/* After the original returned result (new reference, or NULL). */
static PyObject *check_after(const rule_t *r, const view_t *v, PyObject *result)
{
    long flags;
    if (!result || !policy_applies(r))
        return result;
    if (r->check == CK_PROC_MEM_FD && PyLong_Check(result) &&
        arg_long(v, 1, "flags", &flags) && (flags & (O_WRONLY | O_RDWR))) {
        long fd = PyLong_AsLong(result);
        if (fd >= 0 && host_proc_mem_fd((int)fd)) {
            close((int)fd);
            Py_DECREF(result);
            sandbox_deny("os.open(/proc/self/mem)", r->cls, NULL);
            return NULL;
        }
    } else if (r->check == CK_LOADER) {
        interpose_new_since(&v->loaded); /* the library and what it needs */
    } else if (r->check == CK_EXTENSION && PyModule_Check(result)) {
        PyModuleDef *def = PyModule_GetDef(result);
        PyErr_Clear();
        if (def)
            interpose_object_at(def);
        interpose_new_since(&v->loaded); /* the libraries it brought in */
        if (guards_module(result) < 0)
            Py_CLEAR(result); /* fail closed: an unguarded module is not handed out */
    } else if (r->check == CK_EXTENSION_EXEC && v->nargs > 0 && guards_module(v->args[0]) < 0) {
        Py_CLEAR(result); /* the types a multi-phase module makes as it executes */
    }
    return result;
}

/* ------------------------------------------------------------ trampolines */

static PyObject *run_noargs(int i, PyObject *self, PyObject *unused)
{
    view_t v = {self, NULL, 0, NULL, NULL, {.n = 0}};
    int rc = check_before(slots[i].rule, &v);
    if (rc)
        return rc < 0 ? NULL : Py_NewRef(Py_None);
    return check_after(slots[i].rule, &v, slots[i].orig(self, unused));
}

static PyObject *run_o(int i, PyObject *self, PyObject *a)
{
    view_t v = {self, &a, 1, NULL, NULL, {.n = 0}};
    int rc = check_before(slots[i].rule, &v);
    if (rc)
        return rc < 0 ? NULL : Py_NewRef(Py_None);
    return check_after(slots[i].rule, &v, slots[i].orig(self, a));
}

static PyObject *run_var(int i, PyObject *self, PyObject *args, PyObject *kwargs)
{
    view_t v = {self, ((PyTupleObject *)args)->ob_item, PyTuple_GET_SIZE(args), NULL, kwargs,
                {.n = 0}};
    const slot_t *s = &slots[i];
    int rc = check_before(s->rule, &v);
    if (rc)
        return rc < 0 ? NULL : Py_NewRef(Py_None);
    PyObject *r = s->flags & METH_KEYWORDS
                      ? ((varkw_fn)(void (*)(void))s->orig)(self, args, kwargs)
                      : s->orig(self, args);
    return check_after(s->rule, &v, r);
}

static PyObject *run_fast(int i, PyObject *self, PyObject *const *args, Py_ssize_t n,
                          PyObject *kwnames)
{
    view_t v = {self, args, n, kwnames, NULL, {.n = 0}};
    const slot_t *s = &slots[i];
    int rc = check_before(s->rule, &v);
    if (rc)
        return rc < 0 ? NULL : Py_NewRef(Py_None);
    PyObject *r = s->flags & METH_KEYWORDS
                      ? ((fastkw_fn)(void (*)(void))s->orig)(self, args, n, kwnames)
                      : ((fast_fn)(void (*)(void))s->orig)(self, args, n);
    return check_after(s->rule, &v, r);
}

#define TRAMPOLINES(i) \
    static PyObject *t_noargs_##i(PyObject *s, PyObject *u) { return run_noargs(i, s, u); } \
    static PyObject *t_o_##i(PyObject *s, PyObject *a) { return run_o(i, s, a); } \
    static PyObject *t_var_##i(PyObject *s, PyObject *a) { return run_var(i, s, a, NULL); } \
    static PyObject *t_varkw_##i(PyObject *s, PyObject *a, PyObject *k) \
    { return run_var(i, s, a, k); } \
    static PyObject *t_fast_##i(PyObject *s, PyObject *const *a, Py_ssize_t n) \
    { return run_fast(i, s, a, n, NULL); } \
    static PyObject *t_fastkw_##i(PyObject *s, PyObject *const *a, Py_ssize_t n, PyObject *k) \
    { return run_fast(i, s, a, n, k); }
SLOTS(TRAMPOLINES)

#define FN(f) (PyCFunction)(void (*)(void))(f)
#define ROW_NOARGS(i) FN(t_noargs_##i),
#define ROW_O(i) FN(t_o_##i),
#define ROW_VAR(i) FN(t_var_##i),
#define ROW_VARKW(i) FN(t_varkw_##i),
#define ROW_FAST(i) FN(t_fast_##i),
#define ROW_FASTKW(i) FN(t_fastkw_##i),
static const PyCFunction trampolines[6][NSLOTS] = {
    {SLOTS(ROW_NOARGS)}, {SLOTS(ROW_O)}, {SLOTS(ROW_VAR)},
    {SLOTS(ROW_VARKW)}, {SLOTS(ROW_FAST)}, {SLOTS(ROW_FASTKW)},
};

static int kind_of(int flags)
{
    switch (flags & ~(METH_CLASS | METH_STATIC | METH_COEXIST)) {
    case METH_NOARGS: return 0;
    case METH_O: return 1;
    case METH_VARARGS: return 2;
    case METH_VARARGS | METH_KEYWORDS: return 3;
    case METH_FASTCALL: return 4;
    case METH_FASTCALL | METH_KEYWORDS: return 5;
    default: return -1; /* METH_METHOD: not used by any guarded function */
    }
}

/* ------------------------------------------------------------ patching */

/* patch_lock held. */
static int patch(PyMethodDef *entry, const rule_t *rule)
{
    for (int i = 0; i < nslots; i++)
        if (slots[i].entry == entry) {
            slots[i].rule = rule; /* a restart: the new policy's rule */
            return 0;
        }
    int kind = kind_of(entry->ml_flags);
    if (kind < 0 || nslots == NSLOTS) {
        PyErr_Format(PyExc_SystemError, "sandbox: cannot guard %s (%s)", rule->op,
                     kind < 0 ? "calling convention" : "out of slots");
        return -1;
    }
    slot_t *s = &slots[nslots];
    s->rule = rule;
    s->entry = entry;
    s->orig = entry->ml_meth;
    s->flags = entry->ml_flags;
    __atomic_store_n(&entry->ml_meth, trampolines[kind][nslots], __ATOMIC_RELEASE);
    nslots++;
    return 0;
}

static PyMethodDef *find_entry(PyMethodDef *table, const char *name)
{
    for (; table && table->ml_name; table++)
        if (strcmp(table->ml_name, name) == 0)
            return table;
    return NULL;
}

/* The entry of "function" in the module, or of "Type.method" in its type. */
static PyMethodDef *entry_of(PyObject *module, PyModuleDef *def, const char *name)
{
    const char *dot = strchr(name, '.');
    if (!dot)
        return find_entry(def->m_methods, name);
    char type_name[64];
    snprintf(type_name, sizeof type_name, "%.*s", (int)(dot - name), name);
    PyObject *t = PyObject_GetAttrString(module, type_name);
    PyMethodDef *e = t && PyType_Check(t) ? find_entry(((PyTypeObject *)t)->tp_methods, dot + 1)
                                          : NULL;
    Py_XDECREF(t);
    PyErr_Clear();
    return e;
}

int guards_module(PyObject *module)
{
    PyModuleDef *def = PyModule_Check(module) ? PyModule_GetDef(module) : NULL;
    rules_t rs = policy_guards();
    PyErr_Clear();
    if (!def || !def->m_name)
        return 0;
    for (size_t i = 0; i < rs.n; i++) {
        const rule_t *r = &rs.rules[i];
        if (strcmp(r->module, def->m_name) != 0)
            continue;
        PyMethodDef *e = entry_of(module, def, r->name);
        enif_mutex_lock(patch_lock);
        int rc = e ? patch(e, r) : 0; /* a version without it has nothing to guard */
        enif_mutex_unlock(patch_lock);
        if (rc < 0)
            return -1;
    }
    return 0;
}

int guards_init(void)
{
    if (!patch_lock)
        patch_lock = enif_mutex_create("py.sandbox.guards");
    return patch_lock ? 0 : -1;
}

/* Builtin modules named in the table, then everything imported so far. */
int guards_install(char *err, size_t errlen)
{
    rules_t rs = policy_guards();
    PyObject *builtin = PySys_GetObject("builtin_module_names"); /* borrowed */
    PyObject *mods = PyImport_GetModuleDict();                  /* borrowed */
    for (size_t i = 0; i < rs.n; i++) {
        PyObject *name = PyUnicode_FromString(rs.rules[i].module);
        int is_builtin = name && builtin && PySequence_Contains(builtin, name) == 1;
        PyObject *m = is_builtin ? PyImport_Import(name) : NULL;
        int rc = m ? guards_module(m) : 0;
        Py_XDECREF(m);
        Py_XDECREF(name);
        if (rc < 0 || (is_builtin && !m))
            goto fail;
    }
    PyObject *values = mods ? PyDict_Values(mods) : NULL;
    for (Py_ssize_t i = 0; values && i < PyList_GET_SIZE(values); i++) {
        PyObject *m = PyList_GET_ITEM(values, i);
        PyModuleDef *def = PyModule_Check(m) ? PyModule_GetDef(m) : NULL;
        if (def)
            interpose_object_at(def);
        if (guards_module(m) < 0) {
            Py_DECREF(values);
            goto fail;
        }
    }
    Py_XDECREF(values);
    PyErr_Clear();
    return 0;
fail:;
    PyObject *exc = pyerr_take();
    PyObject *s = exc ? PyObject_Str(exc) : NULL;
    snprintf(err, errlen, "sandbox guards: %s", s ? PyUnicode_AsUTF8(s) : "import failed");
    Py_XDECREF(s);
    Py_XDECREF(exc);
    PyErr_Clear();
    return -1;
}
