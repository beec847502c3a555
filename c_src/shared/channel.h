/*
 * channel.h - a queue of Erlang terms from any sender to any receiver:
 * py_channel (terms), py_byte_channel (binaries), and the task queue of
 * py_event_loop.  The Python side (pymod/channel_py.c) takes messages and
 * waits for them; Erlang sends, and may take and wait too (byte channels).
 *
 * A message is a copy of the sent term, kept in the environment of a chunk
 * of up to 64 messages (no environment is made per message); a receiver
 * copies it out into its own environment.  Everything is done under the
 * channel's lock, so any number of senders and receivers, on any threads
 * (schedulers, context threads, own-GIL interpreters), share a channel.
 *
 * Waiting: a blocking receiver waits on the channel's condition variable
 * (the caller releases the GIL first); an async receiver registers a
 * chan_waiter_t, which the next message or the close wakes once (an
 * event loop's notifier, an Erlang process).
 */
#ifndef PY_CHANNEL_H
#define PY_CHANNEL_H

#include "core/nif.h"

typedef struct channel channel_t;

enum { CH_OK = 0, CH_EMPTY, CH_CLOSED, CH_BUSY, CH_TIMEOUT };

/* A receiver that the next message (or the close) wakes once.  wake runs
 * with the channel's lock held (it must not block, nor touch the channel);
 * caller_env is the NIF's environment when a NIF sent, else NULL.  The
 * waiter is unlinked before wake runs. */
typedef struct chan_waiter {
    struct chan_waiter *next;
    void (*wake)(struct chan_waiter *w, ErlNifEnv *caller_env);
    int owned;   /* freed by the channel (after wake, cancel or destroy) */
} chan_waiter_t;

int channel_init(ErlNifEnv *env);

/* 1 and *out when term is a channel (either kind). */
int channel_get(ErlNifEnv *env, ERL_NIF_TERM term, channel_t **out);
ERL_NIF_TERM channel_term(ErlNifEnv *env, channel_t *ch);
void channel_keep(channel_t *ch);
void channel_release(channel_t *ch);
int channel_is_bytes(channel_t *ch);

/* Copy the next message into `into`: CH_OK and *out, CH_EMPTY, CH_CLOSED
 * (closed and drained). */
int channel_take(channel_t *ch, ErlNifEnv *into, ERL_NIF_TERM *out);

/* Queue a copy of t (a binary for a byte channel: else CH_BUSY is not
 * the answer but badarg is the caller's): CH_OK, CH_BUSY (over max_size),
 * CH_CLOSED. */
int channel_push(channel_t *ch, ErlNifEnv *caller_env, ErlNifEnv *env, ERL_NIF_TERM t);

/* No GIL held: wait until a message is queued or the channel is closed
 * (CH_OK), or until deadline_ns on CLOCK_MONOTONIC (CH_TIMEOUT; -1 never). */
int channel_wait(channel_t *ch, int64_t deadline_ns);

/* Register w (1), or not when a message or the close is there already (0). */
int channel_add_waiter(channel_t *ch, chan_waiter_t *w);
/* Unregister w: 1, or 0 when it is no longer registered (it was woken). */
int channel_remove_waiter(channel_t *ch, chan_waiter_t *w);

void channel_close(channel_t *ch);
/* Bytes and messages queued, max_size (0: none), closed. */
void channel_stats(channel_t *ch, size_t *bytes, uint64_t *count, size_t *max, int *closed);

/* Monotonic clock, nanoseconds (the clock of channel_wait's deadline). */
int64_t shared_now_ns(void);

NIF(channel_new_nif);
NIF(channel_send_nif);
NIF(channel_close_nif);
NIF(channel_info_nif);
NIF(channel_try_receive_nif);
NIF(channel_wait_nif);
NIF(channel_cancel_wait_nif);

#endif
