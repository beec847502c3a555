/*
 * nif.c - ERL_NIF_INIT, the function table, load/unload.  No logic.
 * Load initializes each layer bottom up; the layers above register their
 * hooks into the ones below there (start_init, context_init).
 */
#include "core/nif.h"
#include "start.h"
#include "runtime/runtime.h"
#include "context/context.h"
#include "convert/pyref.h"
#include "pymod/callback.h"
#include "convert/bigmap.h"
#include "sandbox/sandbox.h"
#include "context/deadline.h"
#include "ossignal.h"
#include "pymod/data_py.h"
#include "shared/buffer.h"
#include "shared/channel.h"
#include "shared/sdict.h"
#include "shared/kind.h"

static ErlNifFunc nif_funcs[] = {
    {"runtime_start", 5, runtime_start_nif, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"runtime_stop", 0, runtime_stop_nif, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"runtime_status", 0, runtime_status_nif, 0},
    {"python_version", 0, runtime_python_version_nif, 0},
    {"context_new", 4, context_new_nif, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"context_stop", 1, context_stop_nif, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"submit", 4, context_submit_nif, 0},
    {"submit", 5, context_submit_nif, 0},
    {"interrupt", 2, context_interrupt_nif, 0},
    {"interrupt_running", 1, context_interrupt_running_nif, 0},
    {"reply_wait", 3, context_reply_wait_nif, 0},
    {"context_load", 1, context_load_nif, 0},
    {"stream_credit", 3, context_stream_credit_nif, 0},
    {"callback_helper", 2, context_callback_helper_nif, 0},
    {"ref_context", 1, pyref_context_nif, 0},
    {"is_ref", 1, pyref_is_ref_nif, 0},
    {"finish", 1, bigmap_finish_nif, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"callback_reply", 2, callback_reply_nif, 0},
    {"callback_publish", 1, callback_publish_nif, 0},
    {"sandbox_configure", 2, sandbox_configure_nif, 0},
    {"os_signal", 2, ossignal_send_nif, 0},
    /* the data plane (c_src/shared/) */
    {"sdict_new", 0, sdict_new_nif, 0},
    {"sdict_get", 2, sdict_get_nif, 0},
    {"sdict_set", 3, sdict_set_nif, 0},
    {"sdict_del", 2, sdict_del_nif, 0},
    {"sdict_keys", 1, sdict_keys_nif, 0},
    {"sdict_destroy", 1, sdict_destroy_nif, 0},
    {"channel_new", 2, channel_new_nif, 0},
    {"channel_send", 2, channel_send_nif, 0},
    {"channel_close", 1, channel_close_nif, 0},
    {"channel_info", 1, channel_info_nif, 0},
    {"channel_try_receive", 1, channel_try_receive_nif, 0},
    {"channel_wait", 2, channel_wait_nif, 0},
    {"channel_cancel_wait", 2, channel_cancel_wait_nif, 0},
    {"buffer_new", 1, buffer_new_nif, 0},
    {"buffer_write", 2, buffer_write_nif, 0},
    {"buffer_close", 1, buffer_close_nif, 0},
    {"buffer_info", 1, buffer_info_nif, 0},
    {"data_kind", 1, data_kind_nif, 0},
    {"buffer_take", 4, buffer_take_nif, 0},
    {"buffer_cancel_wait", 2, buffer_cancel_wait_nif, 0},
    {"buffer_peek", 3, buffer_peek_nif, 0},
    {"buffer_seek", 3, buffer_seek_nif, 0},
    {"buffer_find", 4, buffer_find_nif, 0},
    {"buffer_close_reader", 1, buffer_close_reader_nif, 0},
};

static int load(ErlNifEnv *env, void **priv, ERL_NIF_TERM info)
{
    UNUSED(priv);
    UNUSED(info);
    atoms_init(env);
    if (runtime_init(env) < 0 || sandbox_init(env) < 0 || pyref_init(env) < 0 ||
        bigmap_init(env) < 0 || context_init(env) < 0 || deadline_init() < 0 ||
        callback_init(env) < 0 || channel_init(env) < 0 || sdict_init(env) < 0 ||
        buffer_init(env) < 0)
        return -1;
    data_py_init();
    start_init();
    return 0;
}

static void unload(ErlNifEnv *env, void *priv)
{
    UNUSED(env);
    UNUSED(priv);
    deadline_unload();
    runtime_unload();
    bigmap_unload();
    data_py_unload();
    sdict_unload();
}

ERL_NIF_INIT(py_nif, nif_funcs, load, NULL, NULL, unload)
