/*
 * pyalloc.h - the embedded Python's allocator for large blocks and
 * pymalloc arenas: mappings of its own, freed ones cached for reuse.
 */
#ifndef PY_PYALLOC_H
#define PY_PYALLOC_H

#include "core/nif.h"

typedef struct {
    int installed;        /* 0 when PYTHONMALLOC or a debug build chose */
    size_t large_blocks;  /* live large blocks of the raw domain */
    size_t large_bytes;
    size_t cache_blocks;  /* freed mappings kept for reuse */
    size_t cache_bytes;
    size_t cache_max;
    uint64_t mapped;      /* mappings made */
    uint64_t reused;      /* mappings taken from the cache */
} pyalloc_stats_t;

/* Before Py_Initialize, once per OS process. */
void pyalloc_install(void);

/* The cache's cap in bytes (0: keep nothing); trims at once. */
void pyalloc_set_cache(size_t max_bytes);

/* Unmap every cached block. */
void pyalloc_trim(void);

void pyalloc_stats(pyalloc_stats_t *out);

#endif
