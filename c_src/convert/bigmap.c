/*
 * bigmap.c - see bigmap.h.  The placeholder tag is a reference made at load
 * time in a private environment; only this file can put it in a term.
 *
 * Threads: placeholders are made on any thread; bigmap_finish_nif runs on a
 * dirty CPU scheduler, where building a hashmap is safe.
 */
#include "convert/bigmap.h"
#include "runtime/runtime.h"

static ErlNifEnv *tag_env;
static ERL_NIF_TERM tag;

int bigmap_init(ErlNifEnv *env)
{
    UNUSED(env);
    tag_env = enif_alloc_env();
    if (!tag_env)
        return -1;
    tag = enif_make_ref(tag_env);
    return 0;
}

void bigmap_unload(void)
{
    enif_free_env(tag_env);
}

ERL_NIF_TERM bigmap_placeholder(ErlNifEnv *env, ERL_NIF_TERM *keys, ERL_NIF_TERM *vals,
                                size_t n, int nested)
{
    return enif_make_tuple4(env, enif_make_copy(env, tag), enif_make_tuple_from_array(env, keys, n),
                            enif_make_tuple_from_array(env, vals, n),
                            nested ? ATOM(true) : ATOM(false));
}

typedef struct {
    ErlNifEnv *env;
    int depth;
    int collided;
} fix_t;

static int fix(fix_t *f, ERL_NIF_TERM t, ERL_NIF_TERM *out);

/* Fix every element of an array in place; 1 when one changed. */
static int fix_array(fix_t *f, ERL_NIF_TERM *items, size_t n)
{
    int changed = 0;
    for (size_t i = 0; i < n && !f->collided; i++)
        changed |= fix(f, items[i], &items[i]);
    return changed;
}

static int fix_tuple(fix_t *f, ERL_NIF_TERM t, ERL_NIF_TERM *out)
{
    int arity;
    const ERL_NIF_TERM *elems;
    enif_get_tuple(f->env, t, &arity, &elems);
    if (arity == 4 && enif_is_identical(elems[0], tag)) {
        int n;
        const ERL_NIF_TERM *k, *v;
        enif_get_tuple(f->env, elems[1], &n, &k);
        enif_get_tuple(f->env, elems[2], &n, &v);
        ERL_NIF_TERM *vals = (ERL_NIF_TERM *)v;
        if (elems[3] == ATOM(true)) { /* a copy to fix: the tuple is shared */
            vals = enif_alloc(sizeof(ERL_NIF_TERM) * (n ? n : 1));
            memcpy(vals, v, sizeof(ERL_NIF_TERM) * n);
            fix_array(f, vals, n);
        }
        size_t size = 0;
        /* Most of finish's time is in here, in OTP (25.2, perf of a 10k-key
         * round trip): the map is built by hashing every key, sorting the
         * (hash, pair) nodes with erts_qsort, then a linear tree build.  The
         * sort is about half of it (~0.5 of ~1 ms) and cannot be helped from
         * outside: its pivot is random, so the input order does not matter
         * (ours is already in hash order, a dict's keys coming back in the
         * order the map's iterator gave them), and no public erl_nif call
         * builds a large map from pre-sorted arrays.  (The pivot's seed is
         * also the crash of erlang/otp#8208: erts-13.1.5's erts_qsort reads
         * it from erts_get_scheduler_data(), NULL off a scheduler, when it
         * sorts more than 128 items.)
         *
         * Large maps keep the last of duplicate keys instead of failing,
         * so compare sizes: a collision must be an error, not data loss. */
        if (!f->collided &&
            (!enif_make_map_from_arrays(f->env, (ERL_NIF_TERM *)k, vals, n, out) ||
             !enif_get_map_size(f->env, *out, &size) || size != (size_t)n))
            f->collided = 1;
        if (vals != v)
            enif_free(vals);
        return 1;
    }
    ERL_NIF_TERM small[8];
    ERL_NIF_TERM *items = arity <= 8 ? small : enif_alloc(sizeof(ERL_NIF_TERM) * arity);
    memcpy(items, elems, sizeof(ERL_NIF_TERM) * arity);
    int changed = fix_array(f, items, arity);
    if (changed)
        *out = enif_make_tuple_from_array(f->env, items, arity);
    if (items != small)
        enif_free(items);
    return changed;
}

static int fix_list(fix_t *f, ERL_NIF_TERM t, ERL_NIF_TERM *out)
{
    unsigned n;
    if (!enif_get_list_length(f->env, t, &n))
        return 0; /* improper lists come from erlang.Term: nothing inside */
    ERL_NIF_TERM *items = enif_alloc(sizeof(ERL_NIF_TERM) * (n ? n : 1));
    ERL_NIF_TERM head, tail = t;
    for (unsigned i = 0; enif_get_list_cell(f->env, tail, &head, &tail); i++)
        items[i] = head;
    int changed = fix_array(f, items, n);
    if (changed)
        *out = enif_make_list_from_array(f->env, items, n);
    enif_free(items);
    return changed;
}

static int fix_map(fix_t *f, ERL_NIF_TERM t, ERL_NIF_TERM *out)
{
    size_t n;
    enif_get_map_size(f->env, t, &n);
    ERL_NIF_TERM *keys = enif_alloc(sizeof(ERL_NIF_TERM) * 2 * (n ? n : 1));
    ERL_NIF_TERM *vals = keys + n;
    ErlNifMapIterator it;
    size_t i = 0;
    enif_map_iterator_create(f->env, t, &it, ERL_NIF_MAP_ITERATOR_FIRST);
    while (i < n && enif_map_iterator_get_pair(f->env, &it, &keys[i], &vals[i])) {
        i++;
        enif_map_iterator_next(f->env, &it);
    }
    enif_map_iterator_destroy(f->env, &it);
    int changed = fix_array(f, vals, i);
    if (changed && !f->collided)
        enif_make_map_from_arrays(f->env, keys, vals, i, out);
    enif_free(keys);
    return changed;
}

static int fix(fix_t *f, ERL_NIF_TERM t, ERL_NIF_TERM *out)
{
    if (++f->depth > runtime_limits.max_depth + 2) { /* conversion bounded it already */
        f->depth--;
        return 0;
    }
    int changed = 0;
    switch (enif_term_type(f->env, t)) { /* one call for the common leaf */
    case ERL_NIF_TERM_TYPE_TUPLE: changed = fix_tuple(f, t, out); break;
    case ERL_NIF_TERM_TYPE_LIST:
        changed = !enif_is_empty_list(f->env, t) && fix_list(f, t, out);
        break;
    case ERL_NIF_TERM_TYPE_MAP: changed = fix_map(f, t, out); break;
    default: break;
    }
    f->depth--;
    return changed;
}

/* (Term) -> Term | {error, {'ValueError', Message}} */
NIF(bigmap_finish_nif)
{
    UNUSED(argc);
    fix_t f = {.env = env, .depth = 0, .collided = 0};
    ERL_NIF_TERM out = argv[0];
    fix(&f, argv[0], &out);
    if (!f.collided)
        return out;
    const char *msg = "dict keys collide after conversion to Erlang terms "
                      "(e.g. 'a' and b'a' both become <<\"a\">>)";
    return make_error(env, enif_make_tuple2(env, ATOM(ValueError),
                                            enif_make_string(env, msg, ERL_NIF_LATIN1)));
}
