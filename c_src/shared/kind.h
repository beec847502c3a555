/*
 * kind.h - which of the data plane's handles a term is (a shared dict, a
 * channel, a byte channel, a buffer): what an isolated context's bridge
 * (src/py_bridge.erl) asks for a handle that crossed to a child OS process
 * as a bare reference.
 */
#ifndef PY_KIND_H
#define PY_KIND_H

#include "core/nif.h"

NIF(data_kind_nif);

#endif
