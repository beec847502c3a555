/*
 * notifier.c - an eventfd and a token list (notifier.h).
 *
 * Threads: signal from any thread (schedulers, context threads, Python
 * threads); take on the loop's thread.  Lock: n->lock (a leaf: nothing is
 * taken while it is held; the eventfd write never blocks).
 */
#include "shared/notifier.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct notifier {
    pthread_mutex_t lock;
    int fd;
    int closed;
    int refs;
    uint64_t *tokens;
    size_t n, cap;
};

notifier_t *notifier_new(void)
{
    notifier_t *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (n->fd < 0) {
        int e = errno;
        free(n);
        errno = e;
        return NULL;
    }
    pthread_mutex_init(&n->lock, NULL);
    n->refs = 1;
    return n;
}

void notifier_keep(notifier_t *n)
{
    __atomic_add_fetch(&n->refs, 1, __ATOMIC_RELAXED);
}

void notifier_release(notifier_t *n)
{
    if (__atomic_sub_fetch(&n->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    close(n->fd);
    pthread_mutex_destroy(&n->lock);
    free(n->tokens);
    free(n);
}

int notifier_fd(notifier_t *n)
{
    return n->fd;
}

void notifier_signal(notifier_t *n, uint64_t token)
{
    pthread_mutex_lock(&n->lock);
    if (!n->closed) {
        if (n->n == n->cap) {
            size_t cap = n->cap ? n->cap * 2 : 16;
            uint64_t *t = realloc(n->tokens, cap * sizeof *t);
            if (t) {
                n->tokens = t;
                n->cap = cap;
            }
        }
        if (n->n < n->cap) {
            n->tokens[n->n++] = token;
            if (n->n == 1) { /* the first since the last take: wake the loop */
                uint64_t one = 1;
                ssize_t r = write(n->fd, &one, sizeof one);
                (void)r; /* EAGAIN: the counter is full, the fd readable anyway */
            }
        }
    }
    pthread_mutex_unlock(&n->lock);
}

size_t notifier_take(notifier_t *n, uint64_t *out, size_t max)
{
    uint64_t v;
    pthread_mutex_lock(&n->lock);
    ssize_t r = read(n->fd, &v, sizeof v); /* EAGAIN when empty */
    (void)r;
    size_t k = n->n < max ? n->n : max;
    memcpy(out, n->tokens, k * sizeof *out);
    memmove(n->tokens, n->tokens + k, (n->n - k) * sizeof *out);
    n->n -= k;
    if (n->n) { /* more than max: stay readable */
        uint64_t one = 1;
        r = write(n->fd, &one, sizeof one);
        (void)r;
    }
    pthread_mutex_unlock(&n->lock);
    return k;
}

void notifier_close(notifier_t *n)
{
    pthread_mutex_lock(&n->lock);
    n->closed = 1;
    n->n = 0;
    pthread_mutex_unlock(&n->lock);
}
