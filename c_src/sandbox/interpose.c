/*
 * interpose.c - the libc calls of libpython and of extension modules, and
 * every ctypes/cffi foreign call, checked below the C API.
 *
 * The audit hook and the guards name what Python code asks for; this file
 * catches what C code underneath does anyway: FileIO, socket, epoll and mmap
 * objects closing a file descriptor (from close() or from their destructor),
 * a C extension calling fork() or system(), ctypes or cffi calling a function
 * through a raw address.  interpose_got.c points the GOT (the table of
 * imported function addresses) of libpython and of each extension module at
 * the wrappers of this file, so that their calls to close, dup2, fork, exec*, posix_spawn*, system, kill, sigaction,
 * setrlimit, wait*, alarm, setitimer, syscall, ffi_call, and the calls that
 * use a file descriptor (read, write, send, shutdown, fcntl, ioctl,
 * epoll_ctl, open of a /proc/self/fd link...) come here first.
 * The VM itself, libc and other NIFs are never touched.
 *
 * A denied call fails the way the kernel would refuse it: -1 (or NULL, or an
 * error number) with errno EPERM, so Python raises PermissionError.  When the
 * calling thread holds the GIL (a ctypes call of a Python C API function),
 * the denial raises SandboxError as well.  Every denial is logged.
 *
 * Threads: wrappers run on any thread, GIL or not; they read only immutable
 * policy data, and the real functions' addresses, each stored once (atomic)
 * before the first GOT entry that leads to its wrapper.
 */
#include "sandbox/sandbox_int.h"
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

enum { C_PROCESS, C_FD, C_KILL, C_SIGNAL, C_RLIMIT, C_CHILDREN, C_SANDBOX, C_N };
static const char *const class_names[C_N] = {"process", "fd", "kill", "signal",
                                            "rlimit", "children", "sandbox"};
static int cls[C_N];

static void refuse(const char *op, int c, const char *detail)
{
    sandbox_deny_quietly(op, cls[c], detail);
    errno = EPERM;
}

static void refuse_n(const char *op, int c, const char *what, long n)
{
    char detail[64];
    snprintf(detail, sizeof detail, "native call, %s %ld", what, n);
    refuse(op, c, detail);
}

/* ------------------------------------------------------------ wrappers */

/* A descriptor Python made (host_fd_created): the others above 2 are the VM's. */
static int made(int fd)
{
    if (fd >= 0)
        host_fd_created(fd);
    return fd;
}

static int (*real_close)(int);
static int (*real_close_range)(unsigned, unsigned, int);
static int (*real_dup2)(int, int);
static int (*real_dup3)(int, int, int);
static int (*real_kill)(pid_t, int);
static int (*real_killpg)(pid_t, int);
static int (*real_sigaction)(int, const struct sigaction *, struct sigaction *);
static sighandler_t (*real_signal)(int, sighandler_t);
static int (*real_setrlimit)(int, const struct rlimit *);
static int (*real_prlimit)(pid_t, int, const struct rlimit *, struct rlimit *);
static long (*real_syscall)(long, ...);
typedef void (*ffi_fn)(void *, void (*)(void), void *, void **);
static ffi_fn real_ffi_call, real_cffi_call;

static int w_close(int fd)
{
    if (host_fd_protected(fd)) {
        refuse_n("close", C_FD, "fd", fd);
        return -1;
    }
    /* Not Python's any more before the number is free: cleared after the
     * close, the bit of a descriptor another interpreter's thread opened
     * under the same number meanwhile would be lost (and its close refused). */
    host_fd_closed(fd);
    return real_close(fd);
}

static int w_close_range(unsigned lo, unsigned hi, int flags)
{
    /* CPython falls back to closing one by one, each through w_close. */
    if (host_fd_range_protected(lo, (long)hi + 1)) {
        errno = EPERM;
        return -1;
    }
    int rc = real_close_range(lo, hi, flags);
    /* Cleared after: a failed call leaves them open, and CPython then
     * closes them one by one (w_close), which must still see them as
     * Python's.  With CLOSE_RANGE_CLOEXEC nothing is closed. */
    if (rc == 0 && !(flags & CLOSE_RANGE_CLOEXEC))
        host_fd_range_closed(lo, hi);
    return rc;
}

static int w_dup2(int fd, int fd2)
{
    if (fd != fd2 && host_fd_protected(fd2)) {
        refuse_n("dup2", C_FD, "fd", fd2);
        return -1;
    }
    return made(real_dup2(fd, fd2));
}

static int w_dup3(int fd, int fd2, int flags)
{
    if (host_fd_protected(fd2)) {
        refuse_n("dup3", C_FD, "fd", fd2);
        return -1;
    }
    return made(real_dup3(fd, fd2, flags));
}

static int w_kill(pid_t pid, int sig)
{
    if (host_kill_denied(pid, sig)) {
        refuse_n("kill", C_KILL, "pid", pid);
        return -1;
    }
    return real_kill(pid, sig);
}

static int w_killpg(pid_t pgid, int sig)
{
    if (host_killpg_denied(pgid, sig)) {
        refuse_n("killpg", C_KILL, "process group", pgid);
        return -1;
    }
    return real_killpg(pgid, sig);
}

static int w_sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
    if (act && host_signal_protected(sig)) {
        refuse_n("sigaction", C_SIGNAL, "signal", sig);
        return -1;
    }
    return real_sigaction(sig, act, old);
}

static sighandler_t w_signal(int sig, sighandler_t handler)
{
    if (host_signal_protected(sig)) {
        refuse_n("signal", C_SIGNAL, "signal", sig);
        return SIG_ERR;
    }
    return real_signal(sig, handler);
}

static int w_setrlimit(int res, const struct rlimit *rl)
{
    if (rl && host_rlimit_lowers(0, res, rl->rlim_cur, rl->rlim_max)) {
        refuse_n("setrlimit", C_RLIMIT, "resource", res);
        return -1;
    }
    return real_setrlimit(res, rl);
}

static int w_prlimit(pid_t pid, int res, const struct rlimit *rl, struct rlimit *old)
{
    if (rl && host_rlimit_lowers(pid, res, rl->rlim_cur, rl->rlim_max)) {
        refuse_n("prlimit", C_RLIMIT, "resource", res);
        return -1;
    }
    return real_prlimit(pid, res, rl, old);
}

/* The VM's own channels (its pipes, sockets, poll set; not stdio): Python
 * may not read, write, reconfigure or duplicate them, nor reopen them. */
#define FD_CALL(ret, name, params, args)                        \
    static ret(*real_##name) params;                            \
    static ret w_##name params                                  \
    {                                                           \
        if (host_fd_internal(fd)) {                             \
            refuse_n(#name, C_FD, "fd", fd);                    \
            return (ret)-1;                                     \
        }                                                       \
        return real_##name args;                                \
    }
/* Reads, besides: the VM's stdin (its shell's input). */
#define FD_READ(ret, name, params, args)                        \
    static ret(*real_##name) params;                            \
    static ret w_##name params                                  \
    {                                                           \
        if (host_fd_internal(fd) || host_fd_stdin(fd)) {        \
            refuse_n(#name, C_FD, "fd", fd);                    \
            return (ret)-1;                                     \
        }                                                       \
        return real_##name args;                                \
    }
FD_READ(ssize_t, read, (int fd, void *b, size_t n), (fd, b, n))
FD_CALL(ssize_t, write, (int fd, const void *b, size_t n), (fd, b, n))
FD_READ(ssize_t, readv, (int fd, const struct iovec *v, int n), (fd, v, n))
FD_CALL(ssize_t, writev, (int fd, const struct iovec *v, int n), (fd, v, n))
FD_READ(ssize_t, pread64, (int fd, void *b, size_t n, off_t o), (fd, b, n, o))
FD_CALL(ssize_t, pwrite64, (int fd, const void *b, size_t n, off_t o), (fd, b, n, o))
FD_CALL(int, ftruncate64, (int fd, off_t len), (fd, len))
FD_CALL(ssize_t, send, (int fd, const void *b, size_t n, int f), (fd, b, n, f))
FD_CALL(ssize_t, recv, (int fd, void *b, size_t n, int f), (fd, b, n, f))
FD_CALL(ssize_t, sendto, (int fd, const void *b, size_t n, int f, const struct sockaddr *a,
                          socklen_t l), (fd, b, n, f, a, l))
FD_CALL(ssize_t, recvfrom, (int fd, void *b, size_t n, int f, struct sockaddr *a,
                            socklen_t *l), (fd, b, n, f, a, l))
FD_CALL(ssize_t, sendmsg, (int fd, const struct msghdr *m, int f), (fd, m, f))
FD_CALL(int, shutdown, (int fd, int how), (fd, how))
/* Calls that make descriptors: what they make is Python's. */
#define FD_MAKE(name, params, args)                             \
    static int(*real_##name) params;                            \
    static int w_##name params                                  \
    {                                                           \
        if (host_fd_internal(fd)) {                             \
            refuse_n(#name, C_FD, "fd", fd);                    \
            return -1;                                          \
        }                                                       \
        return made(real_##name args);                          \
    }
FD_MAKE(accept, (int fd, struct sockaddr *a, socklen_t *l), (fd, a, l))
FD_MAKE(accept4, (int fd, struct sockaddr *a, socklen_t *l, int f), (fd, a, l, f))
FD_MAKE(dup, (int fd), (fd))
#define NEW_FD(name, params, args)                              \
    static int(*real_##name) params;                            \
    static int w_##name params { return made(real_##name args); }
NEW_FD(socket, (int d, int t, int p), (d, t, p))
NEW_FD(eventfd, (unsigned v, int f), (v, f))
NEW_FD(epoll_create, (int n), (n))
NEW_FD(epoll_create1, (int f), (f))
NEW_FD(signalfd, (int fd, const sigset_t *m, int f), (fd, m, f))
NEW_FD(timerfd_create, (int c, int f), (c, f))
NEW_FD(inotify_init, (void), ())
NEW_FD(inotify_init1, (int f), (f))
NEW_FD(memfd_create, (const char *n, unsigned f), (n, f))
NEW_FD(posix_openpt, (int f), (f))
NEW_FD(creat64, (const char *p, mode_t m), (p, m))
NEW_FD(shm_open, (const char *n, int f, mode_t m), (n, f, m))
NEW_FD(mkstemp, (char *t), (t))
NEW_FD(mkostemp, (char *t, int f), (t, f))

/* Calls that make two. */
static int (*real_pipe)(int[2]);
static int w_pipe(int fds[2])
{
    int rc = real_pipe(fds);
    if (rc == 0)
        made(fds[0]), made(fds[1]);
    return rc;
}

static int (*real_pipe2)(int[2], int);
static int w_pipe2(int fds[2], int flags)
{
    int rc = real_pipe2(fds, flags);
    if (rc == 0)
        made(fds[0]), made(fds[1]);
    return rc;
}

static int (*real_socketpair)(int, int, int, int[2]);
static int w_socketpair(int d, int t, int p, int fds[2])
{
    int rc = real_socketpair(d, t, p, fds);
    if (rc == 0)
        made(fds[0]), made(fds[1]);
    return rc;
}

static int (*real_openpty)(int *, int *, char *, const void *, const void *);
static int w_openpty(int *m, int *s, char *name, const void *t, const void *w)
{
    int rc = real_openpty(m, s, name, t, w);
    if (rc == 0)
        made(*m), made(*s);
    return rc;
}

/* recvmsg: the descriptors that come with the message (SCM_RIGHTS). */
static ssize_t (*real_recvmsg)(int, struct msghdr *, int);
static ssize_t w_recvmsg(int fd, struct msghdr *m, int f)
{
    if (host_fd_internal(fd)) {
        refuse_n("recvmsg", C_FD, "fd", fd);
        return -1;
    }
    ssize_t n = real_recvmsg(fd, m, f);
    for (struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(m) : NULL; c; c = CMSG_NXTHDR(m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
                made(((int *)CMSG_DATA(c))[i]);
    return n;
}
FD_CALL(int, connect, (int fd, const struct sockaddr *a, socklen_t l), (fd, a, l))
FD_CALL(int, setsockopt, (int fd, int lv, int nm, const void *v, socklen_t l), (fd, lv, nm, v, l))
FD_CALL(int, epoll_ctl, (int fd, int op, int t, struct epoll_event *e), (fd, op, t, e))

static int two_fds(const char *op, int a, int b)
{
    int fd = host_fd_internal(a) ? a : host_fd_internal(b) ? b : -1;
    if (fd >= 0)
        refuse_n(op, C_FD, "fd", fd);
    return fd >= 0;
}

static ssize_t (*real_sendfile64)(int, int, off_t *, size_t);
static ssize_t w_sendfile64(int out, int in, off_t *o, size_t n)
{
    return two_fds("sendfile", out, in) ? -1 : real_sendfile64(out, in, o, n);
}

static ssize_t (*real_splice)(int, loff_t *, int, loff_t *, size_t, unsigned);
static ssize_t w_splice(int in, loff_t *oi, int out, loff_t *oo, size_t n, unsigned f)
{
    return two_fds("splice", in, out) ? -1 : real_splice(in, oi, out, oo, n, f);
}

static ssize_t (*real_copy_file_range)(int, loff_t *, int, loff_t *, size_t, unsigned);
static ssize_t w_copy_file_range(int in, loff_t *oi, int out, loff_t *oo, size_t n, unsigned f)
{
    return two_fds("copy_file_range", in, out) ? -1 : real_copy_file_range(in, oi, out, oo, n, f);
}

/* fcntl and ioctl are variadic: the one optional argument is forwarded as a
 * pointer-sized value, which is how every command passes it. */
static int fcntl_reads_only(int cmd)
{
    return cmd == F_GETFD || cmd == F_GETFL || cmd == F_GETOWN || cmd == F_GETLK ||
           cmd == F_GETSIG || cmd == F_GETLEASE || cmd == F_GETPIPE_SZ || cmd == F_OFD_GETLK;
}

/* The VM's stdio (its terminal, when it has one): Python may query it, not
 * reconfigure it (non-blocking mode, terminal modes, window size, the
 * controlling terminal).  TIOCSTI, which types into a terminal, is refused
 * on every descriptor. */
static int stdio_protected(int fd)
{
    return fd >= 0 && fd <= 2 && host_fd_protected(fd);
}

static int tty_request_changes(unsigned long req)
{
    switch (req) {
    case TIOCSTI: case TIOCSWINSZ: case TCSETS: case TCSETSW: case TCSETSF: case TCSETA:
    case TCSETAW: case TCSETAF: case TIOCSCTTY: case TIOCNOTTY: case TIOCSPGRP: case TIOCCONS:
    case TIOCEXCL: case TIOCNXCL: case FIONBIO: case FIOASYNC: case TCFLSH: case TCXONC:
    case TIOCSETD: case TIOCVHANGUP: case TCSBRK: case TCSBRKP: case TIOCSBRK: case TIOCCBRK:
    case TIOCMSET: case TIOCMBIS: case TIOCMBIC: case TIOCSSOFTCAR: case TIOCSLCKTRMIOS:
        return 1;
    default:
        return 0;
    }
}

static int (*real_fcntl)(int, int, ...);
static int w_fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if ((host_fd_internal(fd) && !fcntl_reads_only(cmd)) ||
        (stdio_protected(fd) && (cmd == F_SETFL || cmd == F_SETOWN || cmd == F_SETSIG))) {
        refuse_n("fcntl", C_FD, "fd", fd);
        return -1;
    }
    int rc = real_fcntl(fd, cmd, arg);
    return cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC ? made(rc) : rc;
}

static int (*real_ioctl)(int, unsigned long, ...);
static int w_ioctl(int fd, unsigned long req, ...)
{
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (host_fd_internal(fd) || req == TIOCSTI ||
        (stdio_protected(fd) && tty_request_changes(req))) {
        refuse_n(req == TIOCSTI ? "ioctl(TIOCSTI)" : "ioctl", C_FD, "fd", fd);
        return -1;
    }
    return real_ioctl(fd, req, arg);
}

/* open: the VM's pipes reopened through /proc/self/fd/N are its pipes. */
static int reopened(int fd)
{
    if (fd < 0 || !host_same_channel(fd))
        return fd;
    close(fd); /* ours, not interposed */
    refuse_n("open", C_FD, "a channel of the VM reopened, fd", fd);
    return -1;
}

static int (*real_open64)(const char *, int, ...);
static int w_open64(const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | __O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    return made(reopened(real_open64(path, flags, mode)));
}

static int (*real_openat64)(int, const char *, int, ...);
static int w_openat64(int dir, const char *path, int flags, ...)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | __O_TMPFILE)) {
        va_list ap;
        va_start(ap, flags);
        mode = (mode_t)va_arg(ap, int);
        va_end(ap);
    }
    return made(reopened(real_openat64(dir, path, flags, mode)));
}

/* Always refused: Python in the VM has no business with these. */
#define REFUSE(c, name) (refuse(name, c, "native call"), -1)
static pid_t w_fork(void) { return REFUSE(C_PROCESS, "fork"); }
static pid_t w_vfork(void) { return REFUSE(C_PROCESS, "vfork"); }
static int w_execve(const char *p, char *const a[], char *const e[])
{ UNUSED(p); UNUSED(a); UNUSED(e); return REFUSE(C_PROCESS, "execve"); }
static int w_execv(const char *p, char *const a[])
{ UNUSED(p); UNUSED(a); return REFUSE(C_PROCESS, "execv"); }
static int w_fexecve(int fd, char *const a[], char *const e[])
{ UNUSED(fd); UNUSED(a); UNUSED(e); return REFUSE(C_PROCESS, "fexecve"); }
static int w_posix_spawn(pid_t *pid, const char *p, const void *fa, const void *at,
                         char *const a[], char *const e[])
{
    UNUSED(pid); UNUSED(p); UNUSED(fa); UNUSED(at); UNUSED(a); UNUSED(e);
    refuse("posix_spawn", C_PROCESS, "native call");
    return EPERM; /* posix_spawn returns the error number */
}
static int w_system(const char *cmd) { UNUSED(cmd); return REFUSE(C_PROCESS, "system"); }
static FILE *w_popen(const char *cmd, const char *mode)
{ UNUSED(cmd); UNUSED(mode); refuse("popen", C_PROCESS, "native call"); return NULL; }
static int w_daemon(int a, int b) { UNUSED(a); UNUSED(b); return REFUSE(C_PROCESS, "daemon"); }
static pid_t w_wait(int *st) { UNUSED(st); return REFUSE(C_CHILDREN, "wait"); }
static pid_t w_waitpid(pid_t pid, int *st, int o)
{ UNUSED(pid); UNUSED(st); UNUSED(o); return REFUSE(C_CHILDREN, "waitpid"); }
static pid_t w_wait3(int *st, int o, struct rusage *ru)
{ UNUSED(st); UNUSED(o); UNUSED(ru); return REFUSE(C_CHILDREN, "wait3"); }
static pid_t w_wait4(pid_t pid, int *st, int o, struct rusage *ru)
{ UNUSED(pid); UNUSED(st); UNUSED(o); UNUSED(ru); return REFUSE(C_CHILDREN, "wait4"); }
static int w_waitid(idtype_t t, id_t id, siginfo_t *i, int o)
{ UNUSED(t); UNUSED(id); UNUSED(i); UNUSED(o); return REFUSE(C_CHILDREN, "waitid"); }
static unsigned w_alarm(unsigned s)
{ UNUSED(s); refuse("alarm", C_SIGNAL, "native call"); return 0; }
static int w_setitimer(int w, const struct itimerval *n, struct itimerval *o)
{ UNUSED(w); UNUSED(n); UNUSED(o); return REFUSE(C_SIGNAL, "setitimer"); }

/* syscall(2) by number: the same checks for the calls that matter. */
static long w_syscall(long nr, ...)
{
    va_list ap;
    long a[6];
    va_start(ap, nr);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    int c = -1;
    switch (nr) {
#ifdef SYS_fork
    case SYS_fork:
    case SYS_vfork:
#endif
#ifdef SYS_clone3
    case SYS_clone3:
#endif
#ifdef SYS_execveat
    case SYS_execveat:
#endif
    case SYS_clone: case SYS_execve:
        c = C_PROCESS; break;
    case SYS_kill:
        c = host_kill_denied(a[0], (int)a[1]) ? C_KILL : -1; break;
#ifdef SYS_pidfd_send_signal
    case SYS_pidfd_send_signal:
#endif
    case SYS_tkill: case SYS_tgkill: case SYS_rt_sigqueueinfo: case SYS_rt_tgsigqueueinfo:
    case SYS_exit_group: case SYS_exit:
        c = C_KILL; break;
    case SYS_close:
        c = host_fd_protected((int)a[0]) ? C_FD : -1; break;
#ifdef SYS_close_range
    case SYS_close_range:
        c = host_fd_range_protected(a[0], a[1] + 1) ? C_FD : -1; break;
#endif
#ifdef SYS_dup2
    case SYS_dup2:
#endif
    case SYS_dup3:
        c = host_fd_protected((int)a[1]) ? C_FD : -1; break;
    case SYS_rt_sigaction:
        c = a[1] && host_signal_protected((int)a[0]) ? C_SIGNAL : -1; break;
    case SYS_setrlimit: case SYS_prlimit64:
        c = C_RLIMIT; break;
    case SYS_wait4: case SYS_waitid:
        c = C_CHILDREN; break;
    case SYS_ptrace: case SYS_process_vm_writev:
        c = C_SANDBOX; break;
#ifdef SYS_alarm
    case SYS_alarm:
#endif
    case SYS_setitimer: case SYS_timer_create:
        c = C_SIGNAL; break;
    }
    if (c >= 0) {
        refuse_n("syscall", c, "number", nr);
        return -1;
    }
    if (nr == SYS_close)
        host_fd_closed((int)a[0]); /* before, as w_close does */
    long rc = real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    switch (nr) {
#ifdef SYS_close_range
    case SYS_close_range:
        if (rc == 0 && !(a[2] & CLOSE_RANGE_CLOEXEC))
            host_fd_range_closed((unsigned long)a[0], (unsigned long)a[1]);
        break;
#endif
#ifdef SYS_pidfd_open
    case SYS_pidfd_open:
#endif
#ifdef SYS_memfd_create
    case SYS_memfd_create:
#endif
#ifdef SYS_open
    case SYS_open:
#endif
    case SYS_openat: case SYS_socket: case SYS_dup: case SYS_eventfd2: case SYS_epoll_create1:
        made((int)rc);
        break;
    }
    return rc;
}

/* Enough of libffi's ABI (stable since 3.0) to fill a refused call's result. */
typedef struct {
    size_t size;
    unsigned short alignment, type;
} ffi_type_view;
typedef struct {
    int abi;
    unsigned nargs;
    void **arg_types;
    ffi_type_view *rtype;
} ffi_cif_view;

static int holds_gil(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    PyThreadState *ts = PyThreadState_GetUnchecked();
#else
    PyThreadState *ts = _PyThreadState_UncheckedGet();
#endif
    return ts && ts->thread_id == PyThread_get_thread_ident();
}

static int ffi_refused(void *cif, void (*fn)(void), void *rvalue)
{
    const rule_t *r = policy_native_address((const void *)fn);
    if (!policy_applies(r))
        return 0;
    ffi_type_view *rt = ((ffi_cif_view *)cif)->rtype;
    if (rvalue && rt && rt->type != 0 /* FFI_TYPE_VOID */) {
        int integral = rt->type != 13 && rt->type != 14 && (rt->type < 2 || rt->type > 4);
        memset(rvalue, integral ? 0xff : 0, rt->size < sizeof(long) ? sizeof(long) : rt->size);
    }
    char op[128];
    snprintf(op, sizeof op, "%s via a foreign function call", r->name);
    if (holds_gil()) /* ctypes.pythonapi: it checks for an exception */
        sandbox_deny(op, r->cls, "raw address");
    else
        sandbox_deny_quietly(op, r->cls, "raw address");
    errno = EPERM;
    return 1;
}

static void w_ffi_call(void *cif, void (*fn)(void), void *rvalue, void **avalue)
{
    if (!ffi_refused(cif, fn, rvalue))
        real_ffi_call(cif, fn, rvalue, avalue);
}

static void w_cffi_call(void *cif, void (*fn)(void), void *rvalue, void **avalue)
{
    if (!ffi_refused(cif, fn, rvalue))
        real_cffi_call(cif, fn, rvalue, avalue);
}

/* ------------------------------------------------------------ the table */

#define HOOK(n, w, r) {n, (void *)(w), (void **)(r), 0}
static const hook_t hooks[] = {
    HOOK("close", w_close, &real_close), HOOK("close_range", w_close_range, &real_close_range),
    HOOK("dup2", w_dup2, &real_dup2), HOOK("dup3", w_dup3, &real_dup3),
    HOOK("kill", w_kill, &real_kill), HOOK("killpg", w_killpg, &real_killpg),
    HOOK("sigaction", w_sigaction, &real_sigaction), HOOK("signal", w_signal, &real_signal),
    HOOK("setrlimit", w_setrlimit, &real_setrlimit),
    HOOK("setrlimit64", w_setrlimit, &real_setrlimit),
    HOOK("prlimit", w_prlimit, &real_prlimit), HOOK("prlimit64", w_prlimit, &real_prlimit),
    HOOK("syscall", w_syscall, &real_syscall),
    HOOK("fork", w_fork, NULL), HOOK("_Fork", w_fork, NULL), HOOK("vfork", w_vfork, NULL),
    HOOK("execve", w_execve, NULL), HOOK("execv", w_execv, NULL),
    HOOK("execvp", w_execv, NULL), HOOK("execvpe", w_execve, NULL),
    HOOK("fexecve", w_fexecve, NULL), HOOK("posix_spawn", w_posix_spawn, NULL),
    HOOK("posix_spawnp", w_posix_spawn, NULL), HOOK("system", w_system, NULL),
    HOOK("popen", w_popen, NULL), HOOK("daemon", w_daemon, NULL),
    HOOK("wait", w_wait, NULL), HOOK("waitpid", w_waitpid, NULL),
    HOOK("wait3", w_wait3, NULL), HOOK("wait4", w_wait4, NULL), HOOK("waitid", w_waitid, NULL),
    HOOK("alarm", w_alarm, NULL), HOOK("setitimer", w_setitimer, NULL),
#define FD_HOOK(n) HOOK(#n, w_##n, &real_##n)
    FD_HOOK(read), FD_HOOK(write), FD_HOOK(readv), FD_HOOK(writev), FD_HOOK(pread64),
    FD_HOOK(pwrite64), FD_HOOK(ftruncate64), FD_HOOK(send), FD_HOOK(recv), FD_HOOK(sendto),
    FD_HOOK(recvfrom), FD_HOOK(sendmsg), FD_HOOK(recvmsg), FD_HOOK(shutdown), FD_HOOK(accept),
    FD_HOOK(accept4), FD_HOOK(connect), FD_HOOK(dup), FD_HOOK(socket), FD_HOOK(eventfd),
    FD_HOOK(epoll_create), FD_HOOK(epoll_create1), FD_HOOK(signalfd), FD_HOOK(timerfd_create),
    FD_HOOK(inotify_init), FD_HOOK(inotify_init1), FD_HOOK(memfd_create), FD_HOOK(posix_openpt),
    FD_HOOK(creat64), HOOK("creat", w_creat64, &real_creat64), FD_HOOK(pipe), FD_HOOK(pipe2),
    FD_HOOK(socketpair), FD_HOOK(openpty), FD_HOOK(shm_open), FD_HOOK(mkstemp),
    FD_HOOK(mkostemp), HOOK("mkstemp64", w_mkstemp, &real_mkstemp), FD_HOOK(setsockopt), FD_HOOK(epoll_ctl),
    FD_HOOK(sendfile64), FD_HOOK(splice), FD_HOOK(copy_file_range), FD_HOOK(open64),
    FD_HOOK(openat64), HOOK("pread", w_pread64, &real_pread64),
    HOOK("pwrite", w_pwrite64, &real_pwrite64), HOOK("ftruncate", w_ftruncate64, &real_ftruncate64),
    HOOK("sendfile", w_sendfile64, &real_sendfile64), HOOK("open", w_open64, &real_open64),
    HOOK("openat", w_openat64, &real_openat64), HOOK("fcntl", w_fcntl, &real_fcntl),
    HOOK("fcntl64", w_fcntl, &real_fcntl), HOOK("ioctl", w_ioctl, &real_ioctl),
    {"ffi_call", (void *)w_ffi_call, (void **)&real_ffi_call, 1},
    {"cffistatic_ffi_call", (void *)w_cffi_call, (void **)&real_cffi_call, 1},
};
#define NHOOKS (sizeof hooks / sizeof *hooks)

const hook_t *interpose_hook(const char *name)
{
    for (size_t i = 0; i < NHOOKS; i++)
        if (strcmp(hooks[i].name, name) == 0)
            return &hooks[i];
    return NULL;
}

void interpose_classes(void)
{
    for (int c = 0; c < C_N; c++)
        cls[c] = policy_class(class_names[c]);
}
