/*
 * py_program_exec - the small program an Erlang port runs to start a program
 * for Python (erlang.subprocess, src/py_program.erl).
 *
 * An Erlang port gives a spawned program one pipe each way and merges
 * nothing else: no separate stderr, no way to close the program's stdin
 * while reading its output, no signal but closing the port.  This wrapper
 * is the port's program; it starts the real one with its own pipes and
 * relays everything over the port as frames, so that stdout and stderr stay
 * apart, stdin can be closed, signals reach the program and its exit status
 * is exact (a signal is told apart from an exit code).
 *
 * The port is opened with {packet, 4} and nouse_stdio: the wrapper reads
 * frames on fd 3 and writes them on fd 4; its fds 0-2 are the VM's stdio,
 * which a program inherits when asked to (stdout/stderr None).
 *
 * Frames from Erlang (first byte is the type):
 *   'S' setup, once, first: u8 stdin, u8 stdout, u8 stderr (0 inherit,
 *       1 pipe, 2 /dev/null, 3 stderr to stdout), then u32-length-prefixed
 *       strings: executable, cwd ("" = the VM's), u32 argc and the args,
 *       u32 envc (0xffffffff = the VM's environment) and "K=V" strings.
 *   'I' data for the program's stdin     'C' close its stdin
 *   'K' u32 signal number to send it
 * Frames to Erlang:
 *   'P' u32 pid (the program runs)       'F' u32 errno, u8 stage ('c' the
 *       cwd, 'x' the exec): it could not start; the wrapper then exits
 *   'O' stdout data   'R' stderr data    'X' i32 wait status (it exited)
 *   'E' end: exited and both outputs at end of file; the wrapper exits.
 * End of file on fd 3 (the port closed: its owner died, or a timeout) kills
 * the program (SIGKILL) and ends the wrapper.
 *
 * Not linked with the NIF (c_src/Makefile builds it on its own into priv/).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define IN 3
#define OUT 4
enum { M_INHERIT = 0, M_PIPE = 1, M_NULL = 2, M_STDOUT = 3 };

static int sigpipe[2] = {-1, -1};

static void on_child(int sig)
{
    (void)sig;
    int saved = errno;
    if (write(sigpipe[1], "c", 1) < 0) { /* full: a wake-up is pending anyway */ }
    errno = saved;
}

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static void send_frame(char type, const void *data, size_t n)
{
    uint32_t len = (uint32_t)(n + 1);
    unsigned char h[4] = {len >> 24, len >> 16 & 0xff, len >> 8 & 0xff, len & 0xff};
    if (write_all(OUT, h, 4) < 0 || write_all(OUT, &type, 1) < 0 ||
        (n && write_all(OUT, data, n) < 0))
        exit(1); /* the port is gone */
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One frame from the port (malloc'd, *n its length), or NULL at its end. */
static unsigned char *recv_frame(size_t *n)
{
    unsigned char h[4];
    if (read_all(IN, h, 4) < 0)
        return NULL;
    *n = get_u32(h);
    unsigned char *buf = malloc(*n ? *n : 1);
    if (!buf || read_all(IN, buf, *n) < 0)
        return NULL;
    return buf;
}

typedef struct {
    unsigned char mode[3];
    char *exe, *cwd;
    char **argv, **envp; /* envp NULL: the VM's environment */
} setup_t;

static char *take_str(const unsigned char **p, const unsigned char *end)
{
    if (end - *p < 4)
        return NULL;
    uint32_t n = get_u32(*p);
    *p += 4;
    if ((size_t)(end - *p) < n)
        return NULL;
    char *s = malloc(n + 1);
    memcpy(s, *p, n);
    s[n] = 0;
    *p += n;
    return s;
}

static char **take_list(const unsigned char **p, const unsigned char *end, int *inherit)
{
    if (end - *p < 4)
        return NULL;
    uint32_t n = get_u32(*p);
    *p += 4;
    if (inherit && n == 0xffffffffu) {
        *inherit = 1;
        return NULL;
    }
    char **l = calloc(n + 1, sizeof *l);
    for (uint32_t i = 0; l && i < n; i++)
        if (!(l[i] = take_str(p, end)))
            return NULL;
    return l;
}

static int parse_setup(const unsigned char *f, size_t n, setup_t *s)
{
    const unsigned char *p = f + 1, *end = f + n;
    int inherit = 0;
    if (n < 4 || f[0] != 'S')
        return -1;
    memcpy(s->mode, p, 3);
    p += 3;
    s->exe = take_str(&p, end);
    s->cwd = take_str(&p, end);
    s->argv = take_list(&p, end, NULL);
    s->envp = take_list(&p, end, &inherit);
    return s->exe && s->cwd && s->argv && (s->envp || inherit) ? 0 : -1;
}

/* execve along PATH (of the program's environment), as execvpe does. */
static void exec_search(const setup_t *s, char **envp)
{
    if (strchr(s->exe, '/')) {
        execve(s->exe, s->argv, envp);
        return;
    }
    const char *path = NULL;
    for (char **e = envp; e && *e; e++)
        if (strncmp(*e, "PATH=", 5) == 0)
            path = *e + 5;
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    int err = ENOENT;
    char buf[4096];
    for (const char *d = path; d;) {
        const char *colon = strchr(d, ':');
        size_t len = colon ? (size_t)(colon - d) : strlen(d);
        snprintf(buf, sizeof buf, "%.*s%s%s", (int)len, d, len ? "/" : "", s->exe);
        execve(buf, s->argv, envp);
        if (errno == EACCES)
            err = EACCES;
        else if (errno != ENOENT && errno != ENOTDIR)
            err = errno;
        d = colon ? colon + 1 : NULL;
    }
    errno = err;
}

static void child(const setup_t *s, int fds[3][2], int report)
{
    extern char **environ;
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL); /* an ignored signal would stay ignored */
    int null = open("/dev/null", O_RDWR);
    for (int i = 0; i < 3; i++) {
        int m = s->mode[i], src = -1;
        if (m == M_PIPE)
            src = i == 0 ? fds[0][0] : fds[i][1];
        else if (m == M_NULL || (i == 0 && m == M_INHERIT))
            src = null; /* the VM's stdin is the VM's */
        else if (m == M_STDOUT)
            src = 1;
        if (src >= 0 && dup2(src, i) < 0)
            goto fail;
    }
    unsigned char stage = 'c';
    if (s->cwd[0] && chdir(s->cwd) < 0)
        goto report_it;
    stage = 'x';
    exec_search(s, s->envp ? s->envp : environ);
report_it:;
    unsigned char msg[5] = {0, 0, 0, 0, stage};
    uint32_t e = (uint32_t)errno;
    msg[0] = (unsigned char)(e >> 24), msg[1] = (unsigned char)(e >> 16);
    msg[2] = (unsigned char)(e >> 8), msg[3] = (unsigned char)e;
    if (write(report, msg, 5) < 0) { /* the wrapper sees end of file */ }
fail:
    _exit(127);
}

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

static void cloexec(int fd)
{
    fcntl(fd, F_SETFD, FD_CLOEXEC);
}

/* Start the program: its pid, or -1 after a 'F' frame. */
static pid_t start(const setup_t *s, int fds[3][2])
{
    int report[2];
    for (int i = 0; i < 3; i++) {
        fds[i][0] = fds[i][1] = -1;
        if (s->mode[i] == M_PIPE && pipe2(fds[i], O_CLOEXEC) < 0)
            return -1;
    }
    if (pipe2(report, O_CLOEXEC) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0)
        child(s, fds, report[1]);
    close(report[1]);
    unsigned char msg[5];
    ssize_t r;
    while ((r = read(report[0], msg, 5)) < 0 && errno == EINTR)
        ;
    close(report[0]);
    if (pid < 0 || r == 5) {
        unsigned char f[5];
        put_u32(f, pid < 0 ? (uint32_t)errno : get_u32(msg));
        f[4] = pid < 0 ? 'x' : msg[4];
        if (pid > 0)
            waitpid(pid, NULL, 0);
        send_frame('F', f, 5);
        return -1;
    }
    /* ours: the read end of stdin's pipe and the write ends of the others
     * belong to the program */
    if (fds[0][0] >= 0)
        close(fds[0][0]), fds[0][0] = -1;
    for (int i = 1; i < 3; i++)
        if (fds[i][1] >= 0)
            close(fds[i][1]), fds[i][1] = -1;
    if (fds[0][1] >= 0)
        fcntl(fds[0][1], F_SETFL, O_NONBLOCK);
    unsigned char p[4];
    put_u32(p, (uint32_t)pid);
    send_frame('P', p, 4);
    return pid;
}

typedef struct {
    char *buf;
    size_t len, off;
} queue_t;

static void queue_add(queue_t *q, const unsigned char *d, size_t n)
{
    if (q->off == q->len)
        q->off = q->len = 0;
    q->buf = realloc(q->buf, q->len + n);
    memcpy(q->buf + q->len, d, n);
    q->len += n;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    cloexec(IN);
    cloexec(OUT);
    size_t n;
    unsigned char *f = recv_frame(&n);
    setup_t s;
    if (!f || parse_setup(f, n, &s) < 0)
        return 2;
    if (pipe2(sigpipe, O_CLOEXEC | O_NONBLOCK) < 0)
        return 2;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_child;
    sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    int fds[3][2];
    pid_t pid = start(&s, fds);
    if (pid < 0)
        return 0;
    int in = fds[0][1], out = fds[1][0], err = fds[2][0], exited = 0, close_in = 0;
    queue_t q = {NULL, 0, 0};
    unsigned char buf[65536];
    while (!exited || out >= 0 || err >= 0) {
        struct pollfd p[5] = {{IN, POLLIN, 0}, {sigpipe[0], POLLIN, 0}, {out, POLLIN, 0},
                              {err, POLLIN, 0}, {in, q.len > q.off ? POLLOUT : 0, 0}};
        if (poll(p, 5, -1) < 0 && errno != EINTR)
            break;
        if (p[0].revents) {
            f = recv_frame(&n);
            if (!f) { /* the port closed */
                if (!exited)
                    kill(pid, SIGKILL);
                return 0;
            }
            if (n >= 1 && f[0] == 'I' && in >= 0)
                queue_add(&q, f + 1, n - 1);
            else if (n >= 1 && f[0] == 'C')
                close_in = 1;
            else if (n >= 5 && f[0] == 'K' && !exited)
                kill(pid, (int)get_u32(f + 1));
            free(f);
        }
        if (in >= 0 && q.len > q.off) {
            ssize_t w = write(in, q.buf + q.off, q.len - q.off);
            if (w > 0)
                q.off += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR)
                q.off = q.len; /* EPIPE: the program closed its stdin */
        }
        if (in >= 0 && close_in && q.off == q.len)
            close(in), in = -1;
        for (int i = 2; i <= 3; i++) {
            int *fd = i == 2 ? &out : &err;
            if (*fd < 0 || !p[i].revents)
                continue;
            ssize_t r = read(*fd, buf, sizeof buf);
            if (r > 0)
                send_frame(i == 2 ? 'O' : 'R', buf, (size_t)r);
            else if (r == 0 || (errno != EINTR && errno != EAGAIN))
                close(*fd), *fd = -1;
        }
        if (p[1].revents) {
            while (read(sigpipe[0], buf, sizeof buf) > 0)
                ;
            int status;
            if (!exited && waitpid(pid, &status, WNOHANG) == pid) {
                unsigned char x[4];
                put_u32(x, (uint32_t)status);
                send_frame('X', x, 4);
                exited = 1;
            }
        }
    }
    send_frame('E', NULL, 0);
    return 0;
}
