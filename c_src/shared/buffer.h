/*
 * buffer.h - py_buffer: bytes Erlang writes (py_buffer:write/2) and Python
 * reads as a file (erlang.PyBuffer, pymod/buffer_py.c), blocking with the
 * GIL released until enough has come or the writer has closed it.
 *
 * The bytes are kept from the first (seek may go back) in one block that
 * grows by doubling; while Python holds a memoryview of it the block may
 * not move, so a write that would grow it fails ({error, view_held}).
 */
#ifndef PY_BUFFER_H
#define PY_BUFFER_H

#include "core/nif.h"
#include <pthread.h>

typedef struct buffer {
    pthread_mutex_t lock;
    pthread_cond_t cond;   /* written, or closed by the writer */
    char *data;
    size_t cap, len;       /* allocated, written */
    size_t pos;            /* the read position (Python's) */
    int eof;               /* the writer closed it */
    int closed;            /* the reader closed it */
    unsigned views;        /* memoryviews held */
    struct buf_waiter *waiters; /* Erlang processes told of the next write or close */
} buffer_t;

int buffer_init(ErlNifEnv *env);
int buffer_get(ErlNifEnv *env, ERL_NIF_TERM term, buffer_t **out);
ERL_NIF_TERM buffer_term(ErlNifEnv *env, buffer_t *b);
void buffer_keep(buffer_t *b);
void buffer_release(buffer_t *b);

/* Lock held, no GIL: wait until ready(b, arg) or eof, or deadline_ns
 * (CLOCK_MONOTONIC; -1 never): 1 when ready or eof, 0 at the deadline. */
int buffer_wait(buffer_t *b, int (*ready)(buffer_t *b, void *arg), void *arg,
                int64_t deadline_ns);

NIF(buffer_new_nif);
NIF(buffer_write_nif);
NIF(buffer_close_nif);
NIF(buffer_info_nif);

/* Erlang's reads (buffer_read.c): an isolated context's child reads a
 * buffer through the VM (src/py_bridge.erl). */
void buffer_wake(buffer_t *b, ErlNifEnv *caller_env); /* lock held */
void buffer_free_waiters(buffer_t *b);
NIF(buffer_take_nif);
NIF(buffer_cancel_wait_nif);
NIF(buffer_peek_nif);
NIF(buffer_seek_nif);
NIF(buffer_find_nif);
NIF(buffer_close_reader_nif);

#endif
