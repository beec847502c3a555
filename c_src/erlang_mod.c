/*
 * erlang_mod.c - the `_erlang` extension module.
 *
 * Its presence is how Python code knows it runs inside the Erlang VM
 * (erlang._sandbox.is_sandboxed); the Python package priv/python/erlang
 * builds the public surface on top of it.
 */
#include "erlang_mod.h"

static struct PyModuleDef erlang_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_erlang",
    .m_doc = "C half of the erlang package; present only inside the Erlang VM.",
    .m_size = -1,
};

PyObject *erlang_mod_init(void)
{
    PyObject *m = PyModule_Create(&erlang_module);
    if (m && PyModule_AddIntConstant(m, "embedded", 1) < 0)
        Py_CLEAR(m);
    return m;
}
