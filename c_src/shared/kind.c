/*
 * kind.c - data_kind/1: the kind of a data plane handle.
 *
 * A shared dict or channel handle passed to an isolated context's child
 * crosses as the external form of its reference; when the child names it
 * again, the VM decodes it back to the resource (while the resource lives)
 * and src/py_bridge.erl asks here what it is.  Only resource lookups: no
 * lock, no allocation, normal scheduler.
 */
#include "shared/kind.h"
#include "shared/buffer.h"
#include "shared/channel.h"
#include "shared/sdict.h"

/* (Term) -> shared_dict | channel | byte_channel | buffer | none */
NIF(data_kind_nif)
{
    UNUSED(argc);
    sdict_t *d;
    channel_t *ch;
    buffer_t *b;
    if (sdict_get_resource(env, argv[0], &d))
        return ATOM(shared_dict);
    if (channel_get(env, argv[0], &ch))
        return channel_is_bytes(ch) ? ATOM(byte_channel) : ATOM(channel);
    if (buffer_get(env, argv[0], &b))
        return ATOM(buffer);
    return ATOM(none);
}
