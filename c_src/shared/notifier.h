/*
 * notifier.h - wakes an event loop from any thread, without polling.
 *
 * A notifier is an eventfd the loop watches (add_reader) and a list of
 * tokens: notifier_signal(n, token) appends a token and makes the fd
 * readable; the loop's reader takes the tokens (notifier_take) and resolves
 * the futures they name.  Channels signal it when a message comes for an
 * async receive (channel.h), erlang.async_call when Erlang answers.
 *
 * Ownership: reference counted; the eventfd is closed with the last
 * reference, so a signal from a thread that still holds one never writes to
 * a descriptor number that has been reused.  notifier_close only stops new
 * signals (the loop that owned it is closing).
 */
#ifndef PY_NOTIFIER_H
#define PY_NOTIFIER_H

#include <stddef.h>
#include <stdint.h>

typedef struct notifier notifier_t;

/* A new notifier (one reference), or NULL (errno set). */
notifier_t *notifier_new(void);
void notifier_keep(notifier_t *n);
void notifier_release(notifier_t *n);
int notifier_fd(notifier_t *n);

/* Any thread, never blocks: queue token and make the fd readable. */
void notifier_signal(notifier_t *n, uint64_t token);

/* The loop's thread: up to max queued tokens into out (the count); the fd
 * is read empty first, so a signal after it makes it readable again. */
size_t notifier_take(notifier_t *n, uint64_t *out, size_t max);

/* No more signals are queued. */
void notifier_close(notifier_t *n);

#endif
