/*
 * sandbox_host.c - what the sandbox protects, and the checks against it.
 *
 * host_snapshot() runs once per start of the interpreter, on the runtime
 * thread, before any application code: it records the VM's pid and process
 * group, the thread that runs Py_Initialize (CPython's "main thread"), the
 * file descriptors open at that moment (all the VM's: fd, device and inode,
 * so that a number the VM closed and Python reopened is not mistaken for the
 * VM's), and the signals the VM relies on (the named ones, and every one
 * whose disposition is not the default then).
 *
 * Threads: a snapshot is immutable, published with one atomic store and
 * never freed (a thread left from a previous interpreter may still read it),
 * so the checks run lock-free on any thread, GIL or not.  They use only
 * system calls and /proc.
 */
#include "sandbox/sandbox_int.h"
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    int fd;
    dev_t dev;
    ino_t ino;
} vmfd_t;

typedef struct {
    vmfd_t *fds; /* sorted by fd */
    size_t nfds;
    uint64_t signals; /* bit n-1: signal n */
    pid_t pid, pgid;
    unsigned long main_thread;
} host_t;

static host_t *current; /* atomic; never freed */

static const host_t *cur(void)
{
    return __atomic_load_n(&current, __ATOMIC_ACQUIRE);
}

/* Signals delivered to the faulting thread: faulthandler chains to the VM's
 * disposition, so they are protected only when the table names them. */
static const int fault_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS};

static int sig_is_fault(int sig)
{
    for (size_t i = 0; i < sizeof fault_signals / sizeof *fault_signals; i++)
        if (fault_signals[i] == sig)
            return 1;
    return 0;
}

static int by_fd(const void *a, const void *b)
{
    return ((const vmfd_t *)a)->fd - ((const vmfd_t *)b)->fd;
}

static int read_fds(host_t *h)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    size_t cap = 64, n = 0;
    vmfd_t *fds = enif_alloc(sizeof(vmfd_t) * cap);
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        struct stat st;
        if (*end || end == e->d_name || fd == dirfd(d) || fstat((int)fd, &st) != 0)
            continue;
        if (n == cap)
            fds = enif_realloc(fds, sizeof(vmfd_t) * (cap *= 2));
        fds[n++] = (vmfd_t){(int)fd, st.st_dev, st.st_ino};
    }
    closedir(d);
    qsort(fds, n, sizeof(vmfd_t), by_fd);
    h->fds = fds;
    h->nfds = n;
    return 0;
}

int host_snapshot(uint64_t named_signals, char *err, size_t errlen)
{
    host_t *h = enif_alloc(sizeof *h);
    memset(h, 0, sizeof *h);
    if (read_fds(h) < 0) {
        snprintf(err, errlen, "sandbox: cannot list /proc/self/fd");
        return -1;
    }
    h->signals = named_signals;
    for (int sig = 1; sig <= 64 && sig < NSIG; sig++) {
        struct sigaction sa;
        if (sig_is_fault(sig) || sigaction(sig, NULL, &sa) != 0)
            continue;
        if (sa.sa_handler != SIG_DFL)
            h->signals |= 1ULL << (sig - 1);
    }
    h->pid = getpid();
    h->pgid = getpgrp();
    h->main_thread = PyThread_get_thread_ident();
    __atomic_store_n(&current, h, __ATOMIC_RELEASE);
    return 0;
}

unsigned long host_main_thread(void)
{
    const host_t *p = cur();
    return p ? p->main_thread : 0;
}

/* ------------------------------------------------------------ checks */

/* Which descriptors Python opened: set by the interposed calls that make a
 * descriptor (open, socket, accept, pipe, dup...) in libpython, extension
 * modules and the libraries they load; cleared when they close it.  A
 * descriptor above 2 that is open, was not in the snapshot and is not
 * Python's was opened by the VM (a port, a gen_tcp socket, a file) or by
 * another NIF after Python started: it is the VM's.  Lock-free: one atomic
 * bit per descriptor; those above OWN_MAX are taken to be Python's. */
#define OWN_MAX (1 << 20)
#define OWN_BITS (8 * sizeof(unsigned long))
static unsigned long owned[OWN_MAX / OWN_BITS];

void host_fd_created(int fd)
{
    if (fd >= 0 && fd < OWN_MAX)
        __atomic_or_fetch(&owned[fd / OWN_BITS], 1UL << (fd % OWN_BITS), __ATOMIC_RELEASE);
}

void host_fd_closed(int fd)
{
    if (fd >= 0 && fd < OWN_MAX)
        __atomic_and_fetch(&owned[fd / OWN_BITS], ~(1UL << (fd % OWN_BITS)), __ATOMIC_RELEASE);
}

/* close_range() closed [lo, hi]: those numbers are no longer Python's. */
void host_fd_range_closed(unsigned long lo, unsigned long hi)
{
    if (hi >= OWN_MAX)
        hi = OWN_MAX - 1;
    for (unsigned long fd = lo; fd <= hi;) {
        if (fd % OWN_BITS == 0 && hi - fd >= OWN_BITS - 1) { /* a whole word */
            __atomic_store_n(&owned[fd / OWN_BITS], 0UL, __ATOMIC_RELEASE);
            fd += OWN_BITS;
        } else {
            host_fd_closed((int)fd);
            fd++;
        }
    }
}

static int owned_by_python(int fd)
{
    return fd >= OWN_MAX ||
           (__atomic_load_n(&owned[fd / OWN_BITS], __ATOMIC_ACQUIRE) >> (fd % OWN_BITS) & 1);
}

static int in_snapshot(const host_t *p, int fd)
{
    vmfd_t key = {.fd = fd}, *hit;
    struct stat st;
    if (!p->nfds || !(hit = bsearch(&key, p->fds, p->nfds, sizeof key, by_fd)))
        return 0;
    /* Still the same open file?  The VM may have closed it since, and the
     * number may now be one that Python opened. */
    return fstat(fd, &st) == 0 && st.st_dev == hit->dev && st.st_ino == hit->ino;
}

int host_fd_protected(int fd)
{
    const host_t *p = cur();
    if (!p || fd < 0)
        return 0;
    if (in_snapshot(p, fd))
        return 1;
    return fd > 2 && !owned_by_python(fd) && fcntl(fd, F_GETFD) != -1;
}

int host_fd_internal(int fd)
{
    return fd > 2 && host_fd_protected(fd);
}

int host_fd_stdin(int fd)
{
    return fd == 0 && host_fd_protected(0);
}

/* A pipe or socket that is one of the VM's internal channels, under a new
 * number (reopened through /proc/self/fd, say). */
int host_same_channel(int fd)
{
    const host_t *p = cur();
    struct stat st;
    if (!p || fstat(fd, &st) != 0 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
        return 0;
    for (size_t i = 0; i < p->nfds; i++)
        if (p->fds[i].fd > 2 && p->fds[i].fd != fd && p->fds[i].dev == st.st_dev &&
            p->fds[i].ino == st.st_ino && host_fd_protected(p->fds[i].fd))
            return 1;
    return 0;
}

int host_fd_range_protected(long lo, long hi)
{
    const host_t *p = cur();
    if (!p)
        return 0;
    for (size_t i = 0; i < p->nfds; i++)
        if (p->fds[i].fd >= lo && p->fds[i].fd < hi && host_fd_protected(p->fds[i].fd))
            return 1;
    /* and the VM's descriptors opened since: those open in the range */
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int hit = 0;
    while (d && !hit && (e = readdir(d))) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (!*end && end != e->d_name && fd != dirfd(d) && fd >= lo && fd < hi)
            hit = host_fd_protected((int)fd);
    }
    if (d)
        closedir(d);
    return hit;
}

int host_signal_protected(int sig)
{
    const host_t *p = cur();
    return p && sig >= 1 && sig <= 64 && (p->signals >> (sig - 1) & 1);
}

static long parent_of(long pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *close = strrchr(buf, ')'); /* the command name may hold anything */
    char state;
    long ppid;
    return close && sscanf(close + 1, " %c %ld", &state, &ppid) == 2 ? ppid : -1;
}

/* Python in the VM has no child processes of its own (programs run through
 * ports are children of erl_child_setup), so every signal to another process
 * hits the VM, its kin (its parent, erl_child_setup, port programs) or a
 * stranger: all are denied.  Only signal 0 to the VM itself or its own
 * group, an existence probe of itself, is let through. */
int host_killpg_denied(long pgid, int sig)
{
    const host_t *p = cur();
    if (!p)
        return 0;
    return !(sig == 0 && (pgid == 0 || pgid == p->pgid));
}

int host_kill_denied(long pid, int sig)
{
    const host_t *p = cur();
    if (!p)
        return 0;
    return !(sig == 0 && (pid == 0 || pid == p->pid || pid == -p->pgid));
}

int host_rlimit_lowers(long pid, int resource, rlim_t soft, rlim_t hard)
{
    const host_t *p = cur();
    struct rlimit cur;
    if (!p || (pid != 0 && pid != p->pid && parent_of(pid) != p->pid))
        return 0;
    if (prlimit(pid == 0 ? p->pid : (pid_t)pid, resource, NULL, &cur) != 0)
        return 0; /* an invalid resource: the call fails by itself */
    return soft < cur.rlim_cur || hard < cur.rlim_max;
}

/* "/proc/<pid>/mem" or "/proc/<pid>/task/<tid>/mem" of this process. */
static int is_own_mem(const char *real)
{
    const host_t *p = cur();
    char *end;
    if (!p || strncmp(real, "/proc/", 6) != 0)
        return 0;
    long pid = strtol(real + 6, &end, 10);
    if (end == real + 6 || pid != p->pid)
        return 0;
    if (strncmp(end, "/task/", 6) == 0) {
        char *tid_end;
        strtol(end + 6, &tid_end, 10);
        if (tid_end == end + 6)
            return 0;
        end = tid_end;
    }
    return strcmp(end, "/mem") == 0;
}

int host_proc_mem_path(const char *path)
{
    char real[PATH_MAX]; /* symlinks and /proc/self resolved */
    return realpath(path, real) && is_own_mem(real);
}

int host_proc_mem_fd(int fd)
{
    char link[64], real[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real, sizeof real - 1);
    if (n <= 0)
        return 0;
    real[n] = 0;
    return is_own_mem(real);
}

/* ------------------------------------------------------------ views */

PyObject *host_protected_fds(void)
{
    const host_t *p = cur();
    PyObject *t = PyTuple_New(p ? (Py_ssize_t)p->nfds : 0);
    for (size_t i = 0; t && p && i < p->nfds; i++) {
        PyObject *v = PyLong_FromLong(p->fds[i].fd);
        if (!v) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SET_ITEM(t, (Py_ssize_t)i, v);
    }
    return t;
}

PyObject *host_protected_signals(void)
{
    const host_t *p = cur();
    PyObject *l = PyList_New(0);
    for (int sig = 1; l && p && sig <= 64; sig++) {
        PyObject *v = (p->signals >> (sig - 1) & 1) ? PyLong_FromLong(sig) : NULL;
        if (v && PyList_Append(l, v) < 0)
            Py_CLEAR(l);
        Py_XDECREF(v);
    }
    PyObject *t = l ? PyList_AsTuple(l) : NULL;
    Py_XDECREF(l);
    return t;
}
