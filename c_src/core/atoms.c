/*
 * atoms.c - interns the atoms of atoms.h once, at load time, on a scheduler.
 */
#include "core/atoms.h"

#define PY_ATOM_DEF(name) ERL_NIF_TERM atom_##name;
PY_ATOM_LIST(PY_ATOM_DEF)
#undef PY_ATOM_DEF

void atoms_init(ErlNifEnv *env)
{
#define PY_ATOM_MAKE(name) atom_##name = enif_make_atom(env, #name);
    PY_ATOM_LIST(PY_ATOM_MAKE)
#undef PY_ATOM_MAKE
}
