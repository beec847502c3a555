/*
 * deadline.c - the thread that ends requests whose deadline has passed.
 *
 * It sleeps until `next', the earliest moment something may be due: the
 * earliest deadline its last scan saw, an earlier one a submitter kicked
 * in (deadline_armed), and, while requests with deadlines are about, at
 * most TICK_NS after the scan.  That bound is what lets a submitter skip
 * the kick: a deadline at or after `next' is seen by the planned scan, and
 * a timeout longer than TICK_NS always is.  After IDLE_SCANS scans that
 * found no deadline the thread sleeps until kicked.
 *
 * Why a submitter may trust `next': it reads it holding its context's lock,
 * after queueing.  Either the scan takes that lock later (and sees the
 * request), or the scan has begun: `next' is then SCANNING (the kick is kept
 * in `kicked' and planned for), or the plan made after the scan, which did
 * not count the request (kick if the deadline is earlier; if not, the
 * planned scan comes first and sees it).
 *
 * Threads: one "py_deadline" thread per loaded library, from load to
 * unload; it never takes the GIL.
 * Locks: wd.lock guards next, kicked and stop; wd.reg guards the registry.
 * Order: ctx->lock then wd.lock (submit), wd.reg then ctx->lock (scan);
 * nothing else is taken while wd.lock is held.
 */
#define _GNU_SOURCE /* pthread_setname_np */
#include "context/deadline.h"
#include <pthread.h>
#include <time.h>

#define NS_PER_S 1000000000LL
#define TICK_NS (10 * 1000000LL)
#define IDLE_SCANS 100
#define SCANNING INT64_MIN

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int64_t next;   /* atomic reads outside the lock */
    int64_t kicked; /* earliest deadline kicked in during a scan */
    int stop;
    pthread_t tid;
    int started;
    pthread_mutex_t reg;
    context_t **ctxs;
    unsigned n, cap;
} wd = {.lock = PTHREAD_MUTEX_INITIALIZER, .reg = PTHREAD_MUTEX_INITIALIZER};

int64_t deadline_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* The earliest deadline still pending in any context. */
static int64_t scan(int64_t now)
{
    int64_t min = DEADLINE_NONE;
    pthread_mutex_lock(&wd.reg);
    for (unsigned i = 0; i < wd.n; i++) {
        int64_t d = context_expire(wd.ctxs[i], now);
        if (d < min)
            min = d;
    }
    pthread_mutex_unlock(&wd.reg);
    return min;
}

static void *deadline_thread(void *arg)
{
    (void)arg;
    int idle = IDLE_SCANS;
    pthread_mutex_lock(&wd.lock);
    while (!wd.stop) {
        int64_t now = deadline_now();
        if (wd.next > now) {
            if (wd.next == DEADLINE_NONE) {
                pthread_cond_wait(&wd.cond, &wd.lock);
            } else {
                struct timespec ts = {.tv_sec = wd.next / NS_PER_S,
                                      .tv_nsec = wd.next % NS_PER_S};
                pthread_cond_timedwait(&wd.cond, &wd.lock, &ts);
            }
            continue;
        }
        __atomic_store_n(&wd.next, SCANNING, __ATOMIC_RELEASE);
        wd.kicked = DEADLINE_NONE;
        pthread_mutex_unlock(&wd.lock);
        int64_t found = scan(now);
        pthread_mutex_lock(&wd.lock);
        idle = found == DEADLINE_NONE ? idle + 1 : 0;
        int64_t plan = found < wd.kicked ? found : wd.kicked;
        if (idle < IDLE_SCANS && now + TICK_NS < plan)
            plan = now + TICK_NS;
        __atomic_store_n(&wd.next, plan, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&wd.lock);
    return NULL;
}

int deadline_init(void)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return -1;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&wd.cond, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        return -1;
    wd.next = DEADLINE_NONE;
    wd.kicked = DEADLINE_NONE;
    wd.stop = 0;
    if (pthread_create(&wd.tid, NULL, deadline_thread, NULL) != 0) {
        pthread_cond_destroy(&wd.cond);
        return -1;
    }
    pthread_setname_np(wd.tid, "py_deadline");
    wd.started = 1;
    return 0;
}

void deadline_unload(void)
{
    if (!wd.started)
        return;
    pthread_mutex_lock(&wd.lock);
    wd.stop = 1;
    pthread_cond_signal(&wd.cond);
    pthread_mutex_unlock(&wd.lock);
    pthread_join(wd.tid, NULL);
    pthread_cond_destroy(&wd.cond);
    wd.started = 0;
    enif_free(wd.ctxs);
    wd.ctxs = NULL;
    wd.n = wd.cap = 0;
}

int deadline_track(context_t *ctx)
{
    pthread_mutex_lock(&wd.reg);
    if (wd.n == wd.cap) {
        unsigned cap = wd.cap ? 2 * wd.cap : 16;
        context_t **grown = enif_realloc(wd.ctxs, cap * sizeof *grown);
        if (!grown) {
            pthread_mutex_unlock(&wd.reg);
            return -1;
        }
        wd.ctxs = grown;
        wd.cap = cap;
    }
    wd.ctxs[wd.n++] = ctx;
    pthread_mutex_unlock(&wd.reg);
    return 0;
}

void deadline_untrack(context_t *ctx)
{
    pthread_mutex_lock(&wd.reg);
    for (unsigned i = 0; i < wd.n; i++) {
        if (wd.ctxs[i] == ctx) {
            wd.ctxs[i] = wd.ctxs[--wd.n];
            break;
        }
    }
    pthread_mutex_unlock(&wd.reg);
}

void deadline_armed(int64_t d)
{
    int64_t next = __atomic_load_n(&wd.next, __ATOMIC_ACQUIRE);
    if (next != SCANNING && d >= next)
        return;
    pthread_mutex_lock(&wd.lock);
    if (wd.next == SCANNING) {
        if (d < wd.kicked)
            wd.kicked = d;
    } else if (d < wd.next) {
        __atomic_store_n(&wd.next, d, __ATOMIC_RELEASE);
        pthread_cond_signal(&wd.cond);
    }
    pthread_mutex_unlock(&wd.lock);
}
