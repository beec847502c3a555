/*
 * sandbox.h - the sandbox that keeps embedded Python from forking, exec'ing,
 * killing or corrupting the VM (docs/security.md).
 *
 * Lifecycle, all on the runtime thread that starts Python:
 *   sandbox_preinit()  before Py_InitializeFromConfig: registers the C audit
 *                      hook (process creation is denied from then on) and the
 *                      _erlang_sandbox builtin module.
 *   sandbox_install()  after Py_InitializeFromConfig, before any application
 *                      code: reads the policy tables of erlang/_sandbox.py into
 *                      C memory, snapshots the VM's fds and signals, and puts
 *                      the guards below Python in place.  Failing here fails
 *                      the start (the sandbox never runs half installed).
 */
#ifndef PY_SANDBOX_H
#define PY_SANDBOX_H

#include "core/nif.h"

int sandbox_init(ErlNifEnv *env);

/* The caller hook: 1 and *out set to the pid of the Erlang process whose
 * request the current thread runs, or 0 off a request.  Registered by
 * context/ at load (context_init); it names the caller in denial reports. */
typedef int (*sandbox_caller_fn)(ErlNifPid *out);
void sandbox_set_caller_hook(sandbox_caller_fn fn);
void sandbox_preinit(void);
int sandbox_install(char *err, size_t errlen);
/* In a sub-interpreter (an own-GIL context's), current with its GIL held,
 * after sandbox_install: its own error types (the audit hook, the policy,
 * the guards and the interposition are the process's). */
int sandbox_install_interp(char *err, size_t errlen);

NIF(sandbox_configure_nif);

#endif
