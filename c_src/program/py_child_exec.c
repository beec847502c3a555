/*
 * py_child_exec - the program an Erlang port runs to start the Python
 * process of an isolated context or a zygote (src/py_isolated_launch.erl):
 *
 *     py_child_exec PYTHON ARG...
 *
 * asks Linux to SIGKILL it when its parent (the VM's erl_child_setup) exits
 * (PR_SET_PDEATHSIG, which execve keeps), then becomes PYTHON ARG... with
 * execv: same pid, same environment, same file descriptors.  So a child
 * never outlives a VM killed with kill -9, and Python does not have to set
 * it itself: doing so from Python takes ctypes, whose import cost every
 * cold start some milliseconds (erlang/_child.py).  A child forked from a
 * zygote still sets it from Python (erlang._child.die_with_parent): its
 * parent is the zygote, which has ctypes imported already.
 *
 * PYTHON is a path (open_port's spawn_executable does not search PATH
 * either; py_isolated_launch checks it before the port opens).  When execv
 * fails, the reason goes to stderr (the port's output) and the exit status
 * is 127, as a shell's.
 *
 * Not linked with the NIF (c_src/Makefile builds it on its own into priv/).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: py_child_exec PYTHON [ARG...]\n");
        return 2;
    }
#ifdef __linux__
    pid_t parent = getppid();
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) {
        fprintf(stderr, "py_child_exec: prctl: %s\n", strerror(errno));
        return 127;
    }
    if (getppid() != parent) /* the parent went before the request took effect */
        return 1;
#endif
    execv(argv[1], argv + 1);
    fprintf(stderr, "py_child_exec: %s: %s\n", argv[1], strerror(errno));
    return 127;
}
