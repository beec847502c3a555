/*
 * erlang_mod.h - the C half of the Python `erlang` package: the `_erlang`
 * extension module, registered with PyImport_AppendInittab before init.
 */
#ifndef PY_ERLANG_MOD_H
#define PY_ERLANG_MOD_H

#include "core/nif.h"

PyObject *erlang_mod_init(void);

#endif
