/*
 * sandbox_int.h - shared by the sandbox's C files, private to them:
 *   sandbox.c         audit hook, SandboxError, denials and their logging
 *   sandbox_policy.c  the policy tables, read from erlang/_sandbox.py
 *   sandbox_host.c    the host snapshot (VM fds, signals, pid) and the checks
 *   guards.c          builtin functions guarded in their method tables
 *   interpose.c       wrappers of the libc calls of libpython and extension
 *                     modules, and of ctypes/cffi foreign calls
 *   interpose_got.c   points their GOT entries at the wrappers
 *
 * Everything here is read-only after sandbox_install(), so the checks run on
 * any thread, with or without the GIL, without a lock.
 */
#ifndef PY_SANDBOX_INT_H
#define PY_SANDBOX_INT_H

#include "sandbox/sandbox.h"
#include <sys/resource.h>
#include <sys/types.h>

enum { SBX_DEFAULT = 0, SBX_STRICT = 1 };

/* The checks named in the tables: a closed vocabulary, implemented in C. */
typedef enum {
    CK_DENY, CK_KILL_TARGET, CK_KILLPG_TARGET, CK_THREAD_SIGNAL, CK_RLIMIT,
    CK_PRLIMIT, CK_PROC_MEM_PATH, CK_FROM_PYTHON, CK_NATIVE_SYMBOL, CK_MODULE,
    CK_EXIT_FLAG, CK_SIGNAL, CK_SIGNAL_HANDLER, CK_FD, CK_FD2, CK_FD_RANGE,
    CK_PROC_MEM_FD, CK_EXTENSION, CK_SETLOCALE, CK_FD_INTERNAL, CK_EXTENSION_EXEC,
    CK_IGNORE, CK_STDIN, CK_FD_READ, CK_LOADER, CK_CHDIR, CK_COUNT
} check_t;

typedef struct {
    const char *name;   /* event, function ("Type.method") or native symbol */
    const char *module; /* guarded functions: the module's def name */
    const char *op;     /* the operation a denial names */
    check_t check;
    int cls;            /* index of the reason (class) */
    int level;          /* SBX_DEFAULT or SBX_STRICT */
} rule_t;

typedef struct {
    const rule_t *rules;
    size_t n;
} rules_t;

/* ------------------------------------------------------ sandbox_policy.c */

/* Read the tables and snapshot the host; 0 or -1 with err set. */
int policy_load(int level, char *err, size_t errlen);
int policy_loaded(void);
int policy_level(void);
const char *policy_name(void);
/* Whether a rule applies under the configured policy. */
int policy_applies(const rule_t *r);
const rule_t *policy_event(const char *event);
const rule_t *policy_symbol(const char *symbol);
const rule_t *policy_module(const char *name);
rules_t policy_guards(void);
int policy_class(const char *name);           /* -1 when unknown */
const char *policy_class_name(int cls);
const char *policy_reason(int cls);
/* The rule of a native function address (resolved at load), or NULL. */
const rule_t *policy_native_address(const void *addr);
/* Bootstrap (before the tables are read): the process-creation events. */
int policy_bootstrap_denies(const char *event);
const char *policy_bootstrap_reason(void);

/* ------------------------------------------------------- sandbox_host.c */

/* Snapshot the VM (pid, fds, signals); named_signals: bit n-1 = signal n. */
int host_snapshot(uint64_t named_signals, char *err, size_t errlen);

/* Descriptors Python made and closed (the interposed calls report them). */
void host_fd_created(int fd);
void host_fd_closed(int fd);
void host_fd_range_closed(unsigned long lo, unsigned long hi);

/* Checks: 1 when the operation would hit the VM. */
int host_fd_protected(int fd);
int host_fd_range_protected(long lo, long hi);  /* [lo, hi) */
/* The VM's own channels: protected and not stdio (Python may write to 1). */
int host_fd_internal(int fd);
int host_same_channel(int fd);
/* fd is the VM's standard input (0, still the file it was at start). */
int host_fd_stdin(int fd);
int host_signal_protected(int sig);
int host_kill_denied(long pid, int sig);
int host_killpg_denied(long pgid, int sig);
int host_rlimit_lowers(long pid, int resource, rlim_t soft, rlim_t hard);
int host_proc_mem_path(const char *path); /* callers: only for writing */
int host_proc_mem_fd(int fd);
/* The thread that ran Py_Initialize (CPython's main thread). */
unsigned long host_main_thread(void);
/* Python views for _erlang_sandbox: tuples of ints. */
PyObject *host_protected_fds(void);
PyObject *host_protected_signals(void);

/* ------------------------------------------------------------- sandbox.c */

/* GIL held: raise SandboxError naming op, log the denial; returns -1. */
int sandbox_deny(const char *op, int cls, const char *detail);
/* GIL held: raise SandboxImportError for "import <name>", log it; -1. */
int sandbox_deny_import(const char *name, int cls, const char *detail);
/* Any thread, GIL or not: log a denial that cannot raise (below the C API). */
void sandbox_deny_quietly(const char *op, int cls, const char *detail);

/* -------------------------------------------------------------- guards.c */

int guards_init(void);
/* GIL held: guard the builtin modules and what is already imported. */
int guards_install(char *err, size_t errlen);
/* GIL held: guard a module that was just created (extension or builtin). */
int guards_module(PyObject *module);

/* ----------------------------------------------------------- interpose.c */

typedef struct {
    const char *name;
    void *wrapper;
    void **real; /* NULL: the wrapper never calls the real function */
    int local;   /* the real one is looked up in the patched object */
} hook_t;

/* The wrapper of an imported libc (or libffi) function, or NULL. */
const hook_t *interpose_hook(const char *name);
/* Resolve the classes the wrappers report (after the policy is loaded). */
void interpose_classes(void);

/* ------------------------------------------------------- interpose_got.c */

int interpose_init(void);
/* Route libpython's process, signal and fd calls through the checks. */
int interpose_install(char *err, size_t errlen);
/* The same for the shared object that holds addr (an extension module). */
void interpose_object_at(const void *addr);
/* The objects loaded at a moment, to patch those a load brought in after
 * it: an extension module's or a ctypes/cffi library's own dependencies. */
typedef struct {
    uintptr_t base[256];
    size_t n;
} objset_t;
void interpose_snapshot(objset_t *s);
void interpose_new_since(const objset_t *s);

#endif
