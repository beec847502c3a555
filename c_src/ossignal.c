/*
 * ossignal.c - py_nif:os_signal/2: kill(2) to one OS process.
 *
 * An isolated context's child runs Python in another OS process; when a
 * request must stop (a timeout, py_context:interrupt/1, py_context:kill/1)
 * the context process sends it SIGINT or SIGKILL through this (a port
 * running /bin/kill would fork per signal and need that program).  Which
 * process and which signal is py_isolated's decision: this only refuses
 * what can never be a child (pids below 2, which would signal the VM's
 * process group, every process, or init) and signals outside 1..64.
 * No lock, no state; runs on a normal scheduler (one system call).
 */
#include <errno.h>
#include <signal.h>
#include <sys/types.h>

#include "ossignal.h"

/* (OsPid, Signal) */
NIF(ossignal_send_nif)
{
    UNUSED(argc);
    ErlNifSInt64 pid;
    int sig;
    if (!enif_get_int64(env, argv[0], &pid) || pid < 2 || pid > INT32_MAX ||
        !enif_get_int(env, argv[1], &sig) || sig < 1 || sig > 64)
        return enif_make_badarg(env);
    if (kill((pid_t)pid, sig) == 0)
        return ATOM(ok);
    return make_error(env, errno == ESRCH ? ATOM(not_found) : ATOM(unsupported));
}
