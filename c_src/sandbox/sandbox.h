/*
 * sandbox.h - the sandbox that keeps embedded Python from forking, exec'ing,
 * killing or corrupting the VM (DESIGN.md "Sandbox", docs/security.md).
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
void sandbox_preinit(void);
int sandbox_install(char *err, size_t errlen);

NIF(sandbox_configure_nif);

#endif
