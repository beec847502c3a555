/*
 * ossignal.h - a signal to an OS process (the child of an isolated context):
 * the mechanism behind py_isolated's interrupts and kills.
 */
#ifndef PY_OSSIGNAL_H
#define PY_OSSIGNAL_H

#include "core/nif.h"

/* (OsPid, Signal) -> ok | {error, Errno} */
NIF(ossignal_send_nif);

#endif
