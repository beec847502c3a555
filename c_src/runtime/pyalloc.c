/*
 * pyalloc.c - where the embedded Python's large blocks come from.
 *
 * Inside the VM glibc's malloc does not adapt its mmap threshold (the
 * emulator sets malloc options, and setting any turns the adaptation off),
 * so every block of 128 KiB or more that Python allocates is a fresh mmap:
 * copying a 10 MiB binary into a `bytes` costs 2,560 page faults (4 ms)
 * and freeing it a munmap, where a standalone Python reuses the memory
 * (0.3 ms).  This file is Python's raw allocator and pymalloc's arena
 * allocator: small blocks go to malloc as before; large ones are page
 * mappings of our own, and freed ones wait in a small cache (at most
 * `alloc_cache' bytes, app env) for the next large block of a similar size.
 *
 * Threads: the raw domain is called from any thread, with or without the
 * GIL; one mutex guards the table of live large blocks and the cache.
 * Freeing a small block does not take it: large blocks are page-aligned,
 * malloc's rarely are, and only page-aligned pointers are looked up.
 */
#define _GNU_SOURCE
#include "runtime/pyalloc.h"

#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define LARGE_MIN ((size_t)128 * 1024) /* glibc's mmap threshold */
#define CACHE_SLOTS 16

typedef struct {
    char *base;
    size_t size; /* the mapping's length, a multiple of the page */
} block_t;

static struct {
    pthread_mutex_t lock;
    PyMemAllocatorEx orig;  /* the raw allocator Python had (malloc) */
    size_t page;
    int installed;
    block_t *live;          /* open addressing on base; NULL base = empty */
    size_t live_cap;        /* a power of two */
    size_t live_n;          /* read unlocked by free: a hint only */
    block_t cache[CACHE_SLOTS]; /* oldest first */
    int ncache;
    size_t cache_bytes;
    size_t cache_max;
    pyalloc_stats_t st;
} pa = {.lock = PTHREAD_MUTEX_INITIALIZER, .cache_max = (size_t)64 << 20};

/* ------------------------------------------------------------ live table */

static size_t slot_of(const char *base, size_t cap)
{
    return (size_t)(((uintptr_t)base >> 12) * 0x9E3779B97F4A7C15ull) & (cap - 1);
}

/* Lock held.  0 when the table cannot grow (then the block is not ours). */
static int live_add(block_t b)
{
    if (2 * (pa.live_n + 1) > pa.live_cap) {
        size_t cap = pa.live_cap ? 2 * pa.live_cap : 64;
        block_t *t = pa.orig.calloc(pa.orig.ctx, cap, sizeof *t);
        if (!t)
            return 0;
        for (size_t i = 0; i < pa.live_cap; i++) {
            if (!pa.live[i].base)
                continue;
            size_t j = slot_of(pa.live[i].base, cap);
            while (t[j].base)
                j = (j + 1) & (cap - 1);
            t[j] = pa.live[i];
        }
        pa.orig.free(pa.orig.ctx, pa.live);
        pa.live = t;
        pa.live_cap = cap;
    }
    size_t j = slot_of(b.base, pa.live_cap);
    while (pa.live[j].base)
        j = (j + 1) & (pa.live_cap - 1);
    pa.live[j] = b;
    __atomic_store_n(&pa.live_n, pa.live_n + 1, __ATOMIC_RELAXED);
    pa.st.large_blocks++;
    pa.st.large_bytes += b.size;
    return 1;
}

/* Lock held.  Removes base's entry and returns its size, 0 if not ours.
 * Deletion shifts the following run back, so no tombstones build up. */
static size_t live_remove(const char *base)
{
    if (!pa.live_cap)
        return 0;
    size_t mask = pa.live_cap - 1, i = slot_of(base, pa.live_cap);
    while (pa.live[i].base != base) {
        if (!pa.live[i].base)
            return 0;
        i = (i + 1) & mask;
    }
    size_t size = pa.live[i].size;
    for (size_t j = (i + 1) & mask; pa.live[j].base; j = (j + 1) & mask) {
        size_t home = slot_of(pa.live[j].base, pa.live_cap);
        /* Move j into the hole at i unless its home lies in (i, j]. */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            pa.live[i] = pa.live[j];
            i = j;
        }
    }
    pa.live[i].base = NULL;
    __atomic_store_n(&pa.live_n, pa.live_n - 1, __ATOMIC_RELAXED);
    pa.st.large_blocks--;
    pa.st.large_bytes -= size;
    return size;
}

/* ------------------------------------------------------------- mappings */

static size_t round_page(size_t n)
{
    return n > SIZE_MAX - pa.page ? 0 : (n + pa.page - 1) & ~(pa.page - 1);
}

/* A mapping of at least size bytes: a cached one that fits without wasting
 * more than a quarter, else a fresh one.  *fresh says which (fresh pages
 * are zero).  {NULL, 0} when the system has no memory left. */
static block_t block_take(size_t size, int *fresh)
{
    block_t b = {NULL, round_page(size)};
    if (!b.size)
        return b;
    pthread_mutex_lock(&pa.lock);
    int best = -1;
    for (int i = 0; i < pa.ncache; i++) {
        size_t s = pa.cache[i].size;
        if (s >= b.size && s - b.size <= b.size / 4 && (best < 0 || s < pa.cache[best].size))
            best = i;
    }
    if (best >= 0) {
        b = pa.cache[best];
        pa.cache_bytes -= b.size;
        memmove(&pa.cache[best], &pa.cache[best + 1],
                (size_t)(pa.ncache - best - 1) * sizeof(block_t));
        pa.ncache--;
        pa.st.reused++;
    } else {
        pa.st.mapped++;
    }
    pthread_mutex_unlock(&pa.lock);
    *fresh = best < 0;
    if (best < 0) {
        void *p = mmap(NULL, b.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        b.base = p == MAP_FAILED ? NULL : p;
    }
    return b;
}

/* Lock held: unmaps the oldest cached blocks until `need' more bytes fit
 * under the cap and in the slots; returns how many it removed, moved to
 * out[] (unmapped by the caller, outside the lock). */
static int cache_make_room(size_t need, block_t out[CACHE_SLOTS])
{
    int n = 0;
    while (pa.ncache && (pa.cache_bytes + need > pa.cache_max || pa.ncache == CACHE_SLOTS)) {
        out[n++] = pa.cache[0];
        pa.cache_bytes -= pa.cache[0].size;
        memmove(&pa.cache[0], &pa.cache[1], (size_t)(pa.ncache - 1) * sizeof(block_t));
        pa.ncache--;
    }
    return n;
}

/* Keep b for reuse when it fits under the cap, else unmap it. */
static void block_give(block_t b)
{
    block_t out[CACHE_SLOTS];
    int n = 0, keep = 0;
    pthread_mutex_lock(&pa.lock);
    if (b.size <= pa.cache_max) {
        n = cache_make_room(b.size, out);
        pa.cache[pa.ncache++] = b;
        pa.cache_bytes += b.size;
        keep = 1;
    }
    pthread_mutex_unlock(&pa.lock);
    for (int i = 0; i < n; i++)
        munmap(out[i].base, out[i].size);
    if (!keep)
        munmap(b.base, b.size);
}

/* ------------------------------------------------------ the raw domain */

static int track(block_t b)
{
    pthread_mutex_lock(&pa.lock);
    int ok = live_add(b);
    pthread_mutex_unlock(&pa.lock);
    return ok;
}

static void *large_alloc(size_t size, int zero)
{
    int fresh;
    block_t b = block_take(size, &fresh);
    if (!b.base)
        return NULL;
    if (!track(b)) {
        munmap(b.base, b.size);
        return NULL;
    }
    if (zero && !fresh)
        memset(b.base, 0, size);
    return b.base;
}

/* The mapping's size when p is one of our large blocks (and forgets it),
 * 0 when p came from malloc. */
static size_t large_forget(void *p)
{
    if (((uintptr_t)p & (pa.page - 1)) || !__atomic_load_n(&pa.live_n, __ATOMIC_RELAXED))
        return 0;
    pthread_mutex_lock(&pa.lock);
    size_t size = live_remove(p);
    pthread_mutex_unlock(&pa.lock);
    return size;
}

static void *raw_malloc(void *ctx, size_t size)
{
    return size < LARGE_MIN ? pa.orig.malloc(pa.orig.ctx, size) : large_alloc(size, 0);
}

static void *raw_calloc(void *ctx, size_t nelem, size_t elsize)
{
    if (elsize && nelem > SIZE_MAX / elsize)
        return NULL;
    size_t size = nelem * elsize;
    return size < LARGE_MIN ? pa.orig.calloc(pa.orig.ctx, nelem, elsize)
                            : large_alloc(size, 1);
}

static void raw_free(void *ctx, void *p)
{
    if (!p)
        return;
    size_t size = large_forget(p);
    if (size)
        block_give((block_t){p, size});
    else
        pa.orig.free(pa.orig.ctx, p);
}

static void *raw_realloc(void *ctx, void *p, size_t size)
{
    if (!p)
        return raw_malloc(ctx, size);
    size_t have = large_forget(p);
    if (!have) {
        if (size < LARGE_MIN)
            return pa.orig.realloc(pa.orig.ctx, p, size);
        /* A malloc block grows large: move it into a mapping. */
        void *q = large_alloc(size, 0);
        if (q) {
            size_t old = malloc_usable_size(p);
            memcpy(q, p, old < size ? old : size);
            pa.orig.free(pa.orig.ctx, p);
        }
        return q;
    }
    block_t b = {p, have};
    if (size >= LARGE_MIN) {
        /* Stays in place while it fits without wasting half; else mremap. */
        size_t need = round_page(size);
        void *q = need ? p : NULL;
        if (need && (need > have || need < have / 2)) {
            q = mremap(p, have, need, MREMAP_MAYMOVE);
            if (q == MAP_FAILED)
                q = NULL;
            else
                b = (block_t){q, need};
        }
        track(b); /* on failure p stays valid, as realloc promises */
        return q;
    }
    void *q = pa.orig.malloc(pa.orig.ctx, size);
    if (!q) {
        track(b);
        return NULL;
    }
    memcpy(q, p, size);
    block_give(b);
    return q;
}

/* ------------------------------------------------------ pymalloc arenas */

static void *arena_alloc(void *ctx, size_t size)
{
    int fresh;
    return block_take(size, &fresh).base;
}

static void arena_free(void *ctx, void *p, size_t size)
{
    if (p)
        block_give((block_t){p, round_page(size)});
}

/* ---------------------------------------------------------------- public */

void pyalloc_install(void)
{
#ifndef Py_DEBUG
    /* PYTHONMALLOC and PYTHONDEVMODE ask for another allocator (debug
     * hooks, malloc for valgrind) that Python installs during its
     * pre-initialization: leave the field to it. */
    const char *dev = getenv("PYTHONDEVMODE");
    if (pa.installed || getenv("PYTHONMALLOC") || (dev && *dev))
        return;
    long page = sysconf(_SC_PAGESIZE);
    pa.page = page > 0 ? (size_t)page : 4096;
    PyMem_GetAllocator(PYMEM_DOMAIN_RAW, &pa.orig);
    PyMemAllocatorEx raw = {NULL, raw_malloc, raw_calloc, raw_realloc, raw_free};
    PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &raw);
    PyObjectArenaAllocator arenas = {NULL, arena_alloc, arena_free};
    PyObject_SetArenaAllocator(&arenas);
    pa.installed = 1;
#endif
}

void pyalloc_set_cache(size_t max_bytes)
{
    block_t out[CACHE_SLOTS];
    pthread_mutex_lock(&pa.lock);
    pa.cache_max = max_bytes;
    int n = cache_make_room(0, out);
    pthread_mutex_unlock(&pa.lock);
    for (int i = 0; i < n; i++)
        munmap(out[i].base, out[i].size);
}

void pyalloc_trim(void)
{
    block_t out[CACHE_SLOTS];
    pthread_mutex_lock(&pa.lock);
    int n = pa.ncache;
    memcpy(out, pa.cache, (size_t)n * sizeof(block_t));
    pa.ncache = 0;
    pa.cache_bytes = 0;
    pthread_mutex_unlock(&pa.lock);
    for (int i = 0; i < n; i++)
        munmap(out[i].base, out[i].size);
}

void pyalloc_stats(pyalloc_stats_t *out)
{
    pthread_mutex_lock(&pa.lock);
    *out = pa.st;
    out->installed = pa.installed;
    out->cache_blocks = (size_t)pa.ncache;
    out->cache_bytes = pa.cache_bytes;
    out->cache_max = pa.cache_max;
    pthread_mutex_unlock(&pa.lock);
}
