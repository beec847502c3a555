/*
 * types.c - the per-interpreter sets of cached objects (types.h): the main
 * interpreter's, and a registry of the own-GIL sub-interpreters' sets that
 * Python's own threads look theirs up in.
 *
 * Locks: reg.lock guards the registry (a short array); it is taken by a
 * thread's first lookup and by a context's start and stop.
 */
#include "runtime/types.h"
#include <pthread.h>

py_types_t py_types_main;
__thread py_types_t *py_types_tls __attribute__((tls_model("initial-exec")));

#define TYPES_MAX 1024

static struct {
    pthread_mutex_t lock;
    py_types_t *sets[TYPES_MAX];
    unsigned n;
} reg = {.lock = PTHREAD_MUTEX_INITIALIZER};

py_types_t *py_types_find(void)
{
    PyInterpreterState *is = PyInterpreterState_Get();
    py_types_t *found = &py_types_main;
    if (is != PyInterpreterState_Main()) {
        int64_t id = PyInterpreterState_GetID(is);
        pthread_mutex_lock(&reg.lock);
        for (unsigned i = 0; i < reg.n; i++)
            if (reg.sets[i]->interp_id == id)
                found = reg.sets[i];
        pthread_mutex_unlock(&reg.lock);
    }
    py_types_tls = found;
    return found;
}

int py_types_register(py_types_t *t)
{
    t->interp_id = PyInterpreterState_GetID(PyInterpreterState_Get());
    pthread_mutex_lock(&reg.lock);
    int ok = reg.n < TYPES_MAX;
    if (ok)
        reg.sets[reg.n++] = t;
    pthread_mutex_unlock(&reg.lock);
    return ok ? 0 : -1;
}

void py_types_unregister(py_types_t *t)
{
    pthread_mutex_lock(&reg.lock);
    for (unsigned i = 0; i < reg.n; i++) {
        if (reg.sets[i] == t) {
            reg.sets[i] = reg.sets[--reg.n];
            break;
        }
    }
    pthread_mutex_unlock(&reg.lock);
}
