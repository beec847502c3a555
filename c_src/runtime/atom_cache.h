/*
 * atom_cache.h - a direct-mapped cache from atom terms to Python objects.
 *
 * Atoms are never collected, so an atom's term value identifies it for the
 * life of the VM and is a key that needs no allocation (a dict keyed by
 * PyLong allocated one per lookup, twice per call on the hot path).  A
 * collision just replaces the slot.  Used with the GIL held (the main
 * interpreter's GIL serializes every context), and cleared when the
 * interpreter is finalized.
 */
#ifndef PY_ATOM_CACHE_H
#define PY_ATOM_CACHE_H

#include "core/nif.h"

#define ATOM_CACHE_SLOTS 1024

typedef struct {
    ERL_NIF_TERM atom[ATOM_CACHE_SLOTS];
    PyObject *obj[ATOM_CACHE_SLOTS];
} atom_cache_t;

static inline unsigned atom_cache_slot(ERL_NIF_TERM atom)
{
    return (unsigned)((atom >> 6) ^ (atom >> 16)) & (ATOM_CACHE_SLOTS - 1);
}

/* Borrowed reference, or NULL when not cached. */
static inline PyObject *atom_cache_get(const atom_cache_t *c, ERL_NIF_TERM atom)
{
    unsigned i = atom_cache_slot(atom);
    return c->atom[i] == atom ? c->obj[i] : NULL;
}

/* Keeps a new reference to obj. */
static inline void atom_cache_put(atom_cache_t *c, ERL_NIF_TERM atom, PyObject *obj)
{
    unsigned i = atom_cache_slot(atom);
    Py_XSETREF(c->obj[i], Py_NewRef(obj));
    c->atom[i] = atom;
}

/* Forget everything (GIL held, or the interpreter is gone: then pass 0). */
static inline void atom_cache_clear(atom_cache_t *c, int decref)
{
    for (unsigned i = 0; i < ATOM_CACHE_SLOTS; i++) {
        if (decref)
            Py_CLEAR(c->obj[i]);
        c->obj[i] = NULL;
        c->atom[i] = 0;
    }
}

#endif
