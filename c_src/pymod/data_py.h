/*
 * data_py.h - the Python face of the data plane (c_src/shared/): shared
 * dicts and channels as `_erlang.Resource' handles (data_py.c,
 * channel_py.c), py_buffer as `_erlang.PyBuffer' (buffer_py.c), and the
 * conversion hooks that turn those resources into these objects and back.
 * priv/python/erlang/_shared_dict.py and _channel.py are the public API.
 */
#ifndef PY_DATA_PY_H
#define PY_DATA_PY_H

#include "core/nif.h"

enum { RES_SDICT = 1, RES_CHANNEL, RES_BYTE_CHANNEL };

typedef struct {
    PyObject_HEAD
    int kind;
    void *ptr; /* the resource, kept while the object lives */
} resource_obj_t;

/* At load: the conversion hooks (convert/convert.h). */
void data_py_init(void);
void data_py_unload(void);
/* _erlang's exec: add the types and functions of the data plane to m. */
int data_py_exec(PyObject *m);

/* This thread's scratch environment (clear it after each use). */
ErlNifEnv *data_scratch_env(void);

/* The resource of kind behind o (a Resource), or NULL with TypeError. */
void *data_resource_arg(PyObject *o, int kind, const char *what);

/* GIL held: wait with the GIL released until ready(arg, until_ns) answers 1
 * (it may wait itself, until until_ns on CLOCK_MONOTONIC, -1 forever), or
 * until deadline_ns (-1: never).  Inside a request the wait is cut into
 * 2 ms slices and a cancel ends it with CallInterrupted.  0 ready, 1 timed
 * out, -1 with an exception set. */
int data_block(int (*ready)(void *arg, int64_t until_ns), void *arg, int64_t deadline_ns);

struct notifier;
/* channel_py.c: the notifier behind a Notifier object (checked by the caller). */
struct notifier *notifier_of(PyObject *o);

/* channel_py.c and buffer_py.c: their part of data_py_exec. */
int channel_py_exec(PyObject *m);
int buffer_py_exec(PyObject *m);
/* buffer_py.c: a PyBuffer for a py_buffer resource (new reference). */
PyObject *buffer_py_new(void *buffer);
/* buffer_py.c: the resource behind a PyBuffer, or NULL when o is not one. */
void *buffer_py_resource(PyObject *o);

#endif
