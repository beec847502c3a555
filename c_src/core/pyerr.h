/*
 * pyerr.h - take the raised Python exception as one object, on every
 * supported Python version.  Used by the layers that report a Python error
 * (context/errors.c, the sandbox's guards, the start in ../start.c).
 */
#ifndef PY_PYERR_H
#define PY_PYERR_H

#include "core/nif.h"

/* GIL held.  The raised exception (normalized, its traceback attached), now
 * cleared; NULL when none.  New reference. */
static inline PyObject *pyerr_take(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (!type)
        return NULL;
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb && value)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
#endif
}

#endif
