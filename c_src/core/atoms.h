/*
 * atoms.h - every atom the NIF uses, interned once in load (one X-macro list).
 * Call sites write ATOM(name); none builds an atom from a C string.
 */
#ifndef PY_ATOMS_H
#define PY_ATOMS_H

#include <erl_nif.h>

#define PY_ATOM_LIST(X) \
    X(ok) X(error) X(true) X(false) X(none) X(nil) X(undefined) \
    X(nan) X(infinity) X(neg_infinity) X(bytes) X(badarg) \
    X(not_running) X(already_running) X(closed) X(cancelled) X(sent) \
    X(not_found) X(too_deep) X(key_collision) X(atom_limit) \
    X(call) X(eval) X(exec) X(getattr) X(call_method) X(to_term) \
    X(nop) X(last_traceback) X(ref) X(term) X(bad_request) \
    X(init_failed) X(python) X(invalid_utf8) X(unsupported) \
    X(queued) X(running) X(stopped) X(PythonError) \
    X(py_callback) X(py_send) X(py_stream) X(data) X(done) X(list) X(stream) \
    X(py_fixup) X(ValueError) X(py_reply) X(py_parallel) X(finalized) \
    X(py_sandbox_log) X(py_sandbox_denied) X(default) X(strict) X(timeout) X(enomem) X(noproc) \
    X(worker) X(owngil) X(owngil_unsupported) X(interrupted) \
    X(busy) X(empty) X(ready) X(size) X(count) X(max_size) X(py_channel_ready) \
    X(destroyed) X(view_held) X(read) X(eof) \
    X(shared_dict) X(channel) X(byte_channel) X(buffer) \
    X(any) X(line) X(lines) X(full) X(wait) X(py_buffer_ready) X(whence) X(not_eof) X(outside)

#define PY_ATOM_DECL(name) extern ERL_NIF_TERM atom_##name;
PY_ATOM_LIST(PY_ATOM_DECL)
#undef PY_ATOM_DECL

#define ATOM(name) (atom_##name)

void atoms_init(ErlNifEnv *env);

#endif
