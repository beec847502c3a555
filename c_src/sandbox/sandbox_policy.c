/*
 * sandbox_policy.c - the sandbox's policy in C memory, and the host checks.
 *
 * The tables are written in Python (priv/python/erlang/_sandbox.py: plain
 * tuples of strings) and read once, by policy_load() on the runtime thread,
 * after Py_Initialize and before any application code.  They are copied into
 * memory that Python cannot reach; later changes to the Python module change
 * nothing.  policy_load() also has the host snapshotted (sandbox_host.c) and
 * resolves the native functions ctypes/cffi may not call to their addresses.
 *
 * Threads: a loaded policy is immutable.  A restart of the runtime loads a
 * new one and publishes it with one atomic store; the old one is never freed,
 * because a thread left over from the previous interpreter may still be in a
 * check (a few kilobytes per restart).  So every check runs lock-free, on any
 * thread, with or without the GIL.
 *
 * Until the first load, only the bootstrap rule holds: the process-creation
 * events of the documented contract, compiled in here and checked against
 * the Python table at load, so the two cannot drift apart.
 */
#include "sandbox/sandbox_int.h"
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_CLASSES 16
#define HEADLINE " is blocked in Erlang VM context."

typedef struct {
    const void *addr;
    const rule_t *rule;
} native_t;

typedef struct {
    int level;
    int nclasses;
    const char *classes[MAX_CLASSES];
    const char *reasons[MAX_CLASSES];
    rules_t events, guards, symbols, prefixes, modules; /* events, symbols, modules sorted */
    native_t *natives;
    size_t nnatives;
} policy_t;

static policy_t *current; /* atomic; never freed */

static const char *const check_names[CK_COUNT] = {
    "deny", "kill_target", "killpg_target", "thread_signal", "rlimit", "prlimit",
    "proc_mem_path", "from_python", "native_symbol", "module", "exit_flag", "signal",
    "signal_handler", "fd", "fd2", "fd_range", "proc_mem_fd", "extension", "setlocale",
    "fd_internal", "extension_exec", "ignore", "stdin", "fd_read", "loader", "chdir",
};

static const char *const bootstrap_events[] = {
    "os.exec", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.system",
    "subprocess.Popen",
};
static const char bootstrap_reason[] =
    "fork()/exec() would corrupt the Erlang runtime.\n"
    "Use Erlang ports (open_port/2) for subprocess management.";

static const policy_t *pol(void)
{
    return __atomic_load_n(&current, __ATOMIC_ACQUIRE);
}

/* ------------------------------------------------------------ reading */

typedef struct {
    policy_t *p;
    char *err;
    size_t errlen;
} loader_t;

static int fail(loader_t *ld, const char *what, const char *detail)
{
    snprintf(ld->err, ld->errlen, "sandbox policy: %s%s%s", what, detail ? ": " : "",
             detail ? detail : "");
    PyErr_Clear();
    return -1;
}

static const char *copy_str(PyObject *s)
{
    Py_ssize_t n;
    const char *u = PyUnicode_Check(s) ? PyUnicode_AsUTF8AndSize(s, &n) : NULL;
    if (!u || (Py_ssize_t)strlen(u) != n)
        return NULL;
    char *c = enif_alloc((size_t)n + 1);
    if (c)
        memcpy(c, u, (size_t)n + 1);
    return c;
}

/* A tuple of rows, each a tuple of `width` strings, copied into cells. */
static int read_rows(loader_t *ld, PyObject *mod, const char *attr, Py_ssize_t width,
                     const char ***cells, Py_ssize_t *nrows)
{
    PyObject *t = PyObject_GetAttrString(mod, attr);
    if (!t || !PyTuple_Check(t)) {
        Py_XDECREF(t);
        return fail(ld, "not a tuple", attr);
    }
    Py_ssize_t n = PyTuple_GET_SIZE(t);
    *cells = enif_alloc(sizeof(char *) * (size_t)(n * width + 1));
    *nrows = n;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = PyTuple_GET_ITEM(t, i);
        if (width == 1 && PyUnicode_Check(row)) {
            (*cells)[i] = copy_str(row);
            continue;
        }
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != width) {
            Py_DECREF(t);
            return fail(ld, "malformed row in", attr);
        }
        for (Py_ssize_t j = 0; j < width; j++) {
            const char *s = copy_str(PyTuple_GET_ITEM(row, j));
            if (!s) {
                Py_DECREF(t);
                return fail(ld, "non-string cell in", attr);
            }
            (*cells)[i * width + j] = s;
        }
    }
    Py_DECREF(t);
    return 0;
}

static int class_of(const policy_t *p, const char *name)
{
    for (int i = 0; i < p->nclasses; i++)
        if (strcmp(p->classes[i], name) == 0)
            return i;
    return -1;
}

static int parse_rule(loader_t *ld, rule_t *r, const char *check, const char *cls,
                      const char *level)
{
    r->check = CK_COUNT;
    for (int i = 0; i < CK_COUNT; i++)
        if (strcmp(check_names[i], check) == 0)
            r->check = (check_t)i;
    r->cls = class_of(ld->p, cls);
    r->level = strcmp(level, "strict") == 0 ? SBX_STRICT : SBX_DEFAULT;
    if (r->check == CK_COUNT)
        return fail(ld, "unknown check", check);
    if (r->cls < 0)
        return fail(ld, "unknown class", cls);
    if (strcmp(level, "default") != 0 && strcmp(level, "strict") != 0)
        return fail(ld, "unknown policy", level);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const rule_t *)a)->name, ((const rule_t *)b)->name);
}

/* layout: which cell is what, -1 for "not in the row" (then a default). */
typedef struct {
    const char *attr;
    Py_ssize_t width;
    int name, module, op, check, cls, level;
    check_t default_check;
} layout_t;

static int read_rules(loader_t *ld, PyObject *mod, const layout_t *lo, rules_t *out, int sort)
{
    const char **c;
    Py_ssize_t n;
    if (read_rows(ld, mod, lo->attr, lo->width, &c, &n) < 0)
        return -1;
    rule_t *rules = enif_alloc(sizeof(rule_t) * (size_t)(n ? n : 1));
    for (Py_ssize_t i = 0; i < n; i++) {
        const char **row = c + i * lo->width;
        rule_t *r = &rules[i];
        r->name = row[lo->name];
        r->module = lo->module >= 0 ? row[lo->module] : NULL;
        r->op = lo->op >= 0 ? row[lo->op] : r->name;
        if (parse_rule(ld, r, lo->check >= 0 ? row[lo->check] : check_names[lo->default_check],
                       row[lo->cls], lo->level >= 0 ? row[lo->level] : "default") < 0)
            return -1;
    }
    if (sort)
        qsort(rules, (size_t)n, sizeof(rule_t), by_name);
    out->rules = rules;
    out->n = (size_t)n;
    return 0;
}

static int read_classes(loader_t *ld, PyObject *mod)
{
    const char **c;
    Py_ssize_t n;
    if (read_rows(ld, mod, "REASONS", 2, &c, &n) < 0)
        return -1;
    if (n > MAX_CLASSES)
        return fail(ld, "too many classes", NULL);
    for (Py_ssize_t i = 0; i < n; i++) {
        ld->p->classes[i] = c[2 * i];
        ld->p->reasons[i] = c[2 * i + 1];
    }
    ld->p->nclasses = (int)n;
    PyObject *h = PyObject_GetAttrString(mod, "HEADLINE");
    int same = h && PyUnicode_Check(h) && PyUnicode_CompareWithASCIIString(h, HEADLINE) == 0;
    Py_XDECREF(h);
    return same ? 0 : fail(ld, "HEADLINE differs from the C one", NULL);
}

static const rule_t *find(const rules_t *rs, const char *name)
{
    rule_t key = {.name = name};
    return rs->n ? bsearch(&key, rs->rules, rs->n, sizeof(rule_t), by_name) : NULL;
}

static int check_bootstrap(loader_t *ld)
{
    int process = class_of(ld->p, "process");
    if (process < 0 || strcmp(ld->p->reasons[process], bootstrap_reason) != 0)
        return fail(ld, "the process reason differs from the documented one", NULL);
    for (size_t i = 0; i < sizeof bootstrap_events / sizeof *bootstrap_events; i++) {
        const rule_t *r = find(&ld->p->events, bootstrap_events[i]);
        if (!r || r->check != CK_DENY || r->cls != process || r->level != SBX_DEFAULT)
            return fail(ld, "a documented event is not denied", bootstrap_events[i]);
    }
    return 0;
}

/* ------------------------------------------------------------ natives */

/* VM_SIGNALS by name -> numbers, then the host snapshot (sandbox_host.c). */
static int read_host(loader_t *ld, PyObject *mod)
{
    const char **names;
    Py_ssize_t n;
    uint64_t mask = 0;
    if (read_rows(ld, mod, "VM_SIGNALS", 1, &names, &n) < 0)
        return -1;
    PyObject *signal = PyImport_ImportModule("signal");
    if (!signal)
        return fail(ld, "cannot import signal", NULL);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = names[i] ? PyObject_GetAttrString(signal, names[i]) : NULL;
        long sig = v ? PyLong_AsLong(v) : -1;
        Py_XDECREF(v);
        PyErr_Clear(); /* a signal this platform lacks */
        if (sig >= 1 && sig <= 64)
            mask |= 1ULL << (sig - 1);
    }
    Py_DECREF(signal);
    return host_snapshot(mask, ld->err, ld->errlen);
}

static int by_addr(const void *a, const void *b)
{
    const char *x = ((const native_t *)a)->addr, *y = ((const native_t *)b)->addr;
    return x < y ? -1 : x > y;
}

/* Every address of every denied native symbol, old symbol versions included. */
static void resolve_natives(policy_t *p)
{
    static const char *const versions[] = {"GLIBC_2.0", "GLIBC_2.2", "GLIBC_2.2.5",
                                            "GLIBC_2.3", "GLIBC_2.15", "GLIBC_2.17"};
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    size_t cap = p->symbols.n * 2 + 8, n = 0;
    native_t *out = enif_alloc(sizeof(native_t) * cap);
    for (size_t i = 0; i < p->symbols.n; i++) {
        const rule_t *r = &p->symbols.rules[i];
        void *found[2 + sizeof versions / sizeof *versions];
        size_t k = 0;
        found[k++] = dlsym(RTLD_DEFAULT, r->name);
        found[k++] = libc ? dlsym(libc, r->name) : NULL;
        for (size_t v = 0; libc && v < sizeof versions / sizeof *versions; v++)
            found[k++] = dlvsym(libc, r->name, versions[v]);
        for (size_t j = 0; j < k; j++) {
            if (!found[j])
                continue;
            if (n == cap)
                out = enif_realloc(out, sizeof(native_t) * (cap *= 2));
            out[n++] = (native_t){found[j], r};
        }
    }
    if (libc)
        dlclose(libc);
    dlerror();
    qsort(out, n, sizeof(native_t), by_addr);
    p->natives = out;
    p->nnatives = n;
}

/* ------------------------------------------------------------ load */

int policy_load(int level, char *err, size_t errlen)
{
    static const layout_t audit = {"AUDIT_RULES", 4, 0, -1, -1, 1, 2, 3, CK_DENY};
    static const layout_t guards = {"GUARDED_FUNCTIONS", 6, 1, 0, 2, 3, 4, 5, CK_DENY};
    static const layout_t symbols = {"NATIVE_SYMBOLS", 2, 0, -1, -1, -1, 1, -1,
                                     CK_NATIVE_SYMBOL};
    static const layout_t prefixes = {"NATIVE_PREFIXES", 2, 0, -1, -1, -1, 1, -1,
                                      CK_NATIVE_SYMBOL};
    static const layout_t modules = {"DENIED_MODULES", 3, 0, -1, -1, -1, 1, 2, CK_MODULE};
    policy_t *p = enif_alloc(sizeof *p);
    memset(p, 0, sizeof *p);
    p->level = level;
    loader_t ld = {p, err, errlen};
    PyObject *mod = PyImport_ImportModule("erlang._sandbox");
    if (!mod)
        return fail(&ld, "cannot import erlang._sandbox", NULL);
    int rc = read_classes(&ld, mod) < 0 || read_rules(&ld, mod, &audit, &p->events, 1) < 0 ||
             read_rules(&ld, mod, &guards, &p->guards, 0) < 0 ||
             read_rules(&ld, mod, &symbols, &p->symbols, 1) < 0 ||
             read_rules(&ld, mod, &prefixes, &p->prefixes, 0) < 0 ||
             read_rules(&ld, mod, &modules, &p->modules, 1) < 0 ||
             check_bootstrap(&ld) < 0 || read_host(&ld, mod) < 0
                 ? -1 : 0;
    Py_DECREF(mod);
    if (rc < 0)
        return -1; /* the half-read policy leaks: a failed start is rare */
    resolve_natives(p);
    __atomic_store_n(&current, p, __ATOMIC_RELEASE);
    return 0;
}

/* ------------------------------------------------------------ lookups */

int policy_loaded(void)
{
    return pol() != NULL;
}

int policy_level(void)
{
    const policy_t *p = pol();
    return p ? p->level : SBX_DEFAULT;
}

const char *policy_name(void)
{
    return policy_level() == SBX_STRICT ? "strict" : "default";
}

int policy_applies(const rule_t *r)
{
    return r && r->level <= policy_level();
}

const rule_t *policy_event(const char *event)
{
    const policy_t *p = pol();
    return p ? find(&p->events, event) : NULL;
}

const rule_t *policy_symbol(const char *symbol)
{
    const policy_t *p = pol();
    if (!p)
        return NULL;
    const rule_t *r = find(&p->symbols, symbol);
    for (size_t i = 0; !r && i < p->prefixes.n; i++) {
        const char *pre = p->prefixes.rules[i].name;
        if (strncmp(symbol, pre, strlen(pre)) == 0)
            r = &p->prefixes.rules[i];
    }
    return r;
}

const rule_t *policy_module(const char *name)
{
    const policy_t *p = pol();
    const char *dot = strrchr(name, '.');
    return p ? find(&p->modules, dot ? dot + 1 : name) : NULL;
}

rules_t policy_guards(void)
{
    const policy_t *p = pol();
    return p ? p->guards : (rules_t){NULL, 0};
}

int policy_class(const char *name)
{
    const policy_t *p = pol();
    return p ? class_of(p, name) : -1;
}

const char *policy_class_name(int cls)
{
    const policy_t *p = pol();
    return p && cls >= 0 && cls < p->nclasses ? p->classes[cls] : "process";
}

const char *policy_reason(int cls)
{
    const policy_t *p = pol();
    return p && cls >= 0 && cls < p->nclasses ? p->reasons[cls] : bootstrap_reason;
}

int policy_bootstrap_denies(const char *event)
{
    for (size_t i = 0; i < sizeof bootstrap_events / sizeof *bootstrap_events; i++)
        if (strcmp(bootstrap_events[i], event) == 0)
            return 1;
    return 0;
}

const char *policy_bootstrap_reason(void)
{
    return bootstrap_reason;
}

const rule_t *policy_native_address(const void *addr)
{
    const policy_t *p = pol();
    native_t key = {addr, NULL}, *hit;
    if (!p || !p->nnatives)
        return NULL;
    hit = bsearch(&key, p->natives, p->nnatives, sizeof key, by_addr);
    return hit ? hit->rule : NULL;
}

