/*
 * Confinement for a Node.js sandbox worker, loaded with LD_PRELOAD: its
 * constructor runs after the dynamic loader and before Node's main, so the
 * worker is confined before any JavaScript exists.
 *
 * Node has no way to set resource limits, pass a descriptor over a Unix socket
 * or install a seccomp filter, which the Python worker does for itself
 * (worker.py). Here, in that order:
 *   - a process group of its own (kill(0, ...) reaches nothing outside);
 *   - hard resource limits (RLIMIT_DATA, not RLIMIT_AS: V8 reserves far more
 *     address space than it uses; a small RLIMIT_STACK, see STACK_BYTES) and a
 *     lower CPU priority;
 *   - the egress hand-over: a listener on the sandbox's loopback, given to the
 *     egress broker through the door descriptor, which is then closed;
 *   - every other inherited descriptor closed but 0, 1, 2 and the frame pipe;
 *   - no_new_privs and the seccomp filter the server built for every worker
 *     (runtime/seccomp.py), read from a file.
 * Anything that fails ends the process before Node starts.
 *
 * The environment says what to do (the server sets it through bwrap):
 *   AUTHHOOKS_FILTER   the filter, as libseccomp's exported BPF
 *   AUTHHOOKS_LIMITS   "data cpu fsize nofile nproc nice", decimal
 *   AUTHHOOKS_FRAMES   the frame pipe's descriptor (kept open; worker.js has
 *                      its number as an argument)
 *   AUTHHOOKS_DOOR     the egress door's descriptor (optional)
 * and is cleared of them before Node reads it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROXY_PORT 3128
/* The stack of the main thread, and of every thread libuv starts (V8's and
 * libuv's own), which libuv sizes from RLIMIT_STACK: at 8 MiB, the defaults
 * reserved for Node's six threads count some 40 MiB against RLIMIT_DATA before
 * any JavaScript runs, and a heap bomb would run out of native memory (an
 * abort with no word of why) before it reaches the V8 heap's own cap. V8's
 * JavaScript stack is under 1 MiB. */
#define STACK_BYTES (2UL * 1024 * 1024)

/* Running out of memory, said on the raw output: RLIMIT_DATA refuses a
 * malloc, and V8, which does not check every one (its garbage collector's
 * among them), often ends the process with no word of why. The server tells
 * running out of memory from any other crash by this line
 * (runtime/worker_handle.py). Said once: a hook that catches the RangeError of
 * a refused Buffer and goes on does not fill the pipe with it. glibc's own
 * allocator does the work, under the names it exports for wrappers. */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *old, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

static void out_of_memory(void) {
    static const char said[] = "\nauthhooks: out of memory (RLIMIT_DATA refused an allocation)\n";
    static int told;
    if (__atomic_exchange_n(&told, 1, __ATOMIC_RELAXED)) return;
    ssize_t written = write(2, said, sizeof said - 1);
    (void)written;
}

void *malloc(size_t size) {
    void *memory = __libc_malloc(size);
    if (!memory && size) out_of_memory();
    return memory;
}

void *calloc(size_t count, size_t size) {
    void *memory = __libc_calloc(count, size);
    if (!memory && count && size) out_of_memory();
    return memory;
}

void *realloc(void *old, size_t size) {
    void *memory = __libc_realloc(old, size);
    if (!memory && size) out_of_memory();
    return memory;
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment % sizeof(void *) != 0 || (alignment & (alignment - 1)) != 0) return EINVAL;
    void *memory = __libc_memalign(alignment, size);
    if (!memory) {
        out_of_memory();
        return ENOMEM;
    }
    *out = memory;
    return 0;
}

static void fail(const char *what) {
    fprintf(stderr, "authhooks confine: %s: %s\n", what, strerror(errno));
    _exit(71);
}

static void limit(int resource, unsigned long value) {
    struct rlimit limit = {value, value};
    if (setrlimit(resource, &limit) != 0) fail("setrlimit");
}

static void limit_resources(void) {
    const char *text = getenv("AUTHHOOKS_LIMITS");
    unsigned long data, cpu, fsize, nofile, nproc;
    int nice_value;
    if (!text || sscanf(text, "%lu %lu %lu %lu %lu %d", &data, &cpu, &fsize, &nofile, &nproc,
                        &nice_value) != 6) {
        errno = EINVAL;
        fail("AUTHHOOKS_LIMITS");
    }
    limit(RLIMIT_DATA, data);
    limit(RLIMIT_CPU, cpu);
    limit(RLIMIT_FSIZE, fsize);
    limit(RLIMIT_NOFILE, nofile);
    limit(RLIMIT_NPROC, nproc);
    limit(RLIMIT_STACK, STACK_BYTES);
    limit(RLIMIT_CORE, 0);
    limit(RLIMIT_MEMLOCK, 0);
    limit(RLIMIT_NICE, 0);
    limit(RLIMIT_RTPRIO, 0);
    limit(RLIMIT_RTTIME, 0);
    /* Threads started without attributes take glibc's default, read from
     * RLIMIT_STACK before this ran. */
    pthread_attr_t attributes;
    if (pthread_attr_init(&attributes) != 0 ||
        pthread_attr_setstacksize(&attributes, STACK_BYTES) != 0 ||
        pthread_setattr_default_np(&attributes) != 0)
        fail("thread stack size");
    pthread_attr_destroy(&attributes);
    errno = 0;
    if (nice(nice_value) == -1 && errno != 0) fail("nice");
}

static void hand_over(int door) {
    int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener < 0) fail("socket");
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(PROXY_PORT)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0) fail("bind");
    if (listen(listener, 128) != 0) fail("listen");
    char byte = 'L';
    struct iovec data = {.iov_base = &byte, .iov_len = 1};
    char control[CMSG_SPACE(sizeof(int))];
    memset(control, 0, sizeof control);
    struct msghdr message = {
        .msg_iov = &data, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    struct cmsghdr *header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(header), &listener, sizeof(int));
    if (sendmsg(door, &message, 0) != 1) fail("sendmsg");
    close(listener);
    close(door);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", PROXY_PORT);
    setenv("HTTP_PROXY", url, 1);
    setenv("HTTPS_PROXY", url, 1);
}

static void close_others(int keep) {
    DIR *directory = opendir("/proc/self/fd");
    if (!directory) fail("opendir");
    int own = dirfd(directory);
    struct dirent *entry;
    while ((entry = readdir(directory)) != NULL) {
        if (entry->d_name[0] == '.') continue;
        int fd = atoi(entry->d_name);
        if (fd > 2 && fd != keep && fd != own) close(fd);
    }
    closedir(directory);
}

static void install_filter(void) {
    const char *path = getenv("AUTHHOOKS_FILTER");
    if (!path) {
        errno = EINVAL;
        fail("AUTHHOOKS_FILTER");
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail("open filter");
    struct stat status;
    if (fstat(fd, &status) != 0) fail("fstat filter");
    size_t size = (size_t)status.st_size;
    if (size == 0 || size % sizeof(struct sock_filter) != 0 || size > 65536) {
        errno = EINVAL;
        fail("filter size");
    }
    struct sock_filter *code = malloc(size);
    if (!code || read(fd, code, size) != (ssize_t)size) fail("read filter");
    close(fd);
    struct sock_fprog program = {.len = (unsigned short)(size / sizeof *code), .filter = code};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail("no_new_privs");
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) fail("seccomp");
    free(code);
}

__attribute__((constructor)) static void confine(void) {
    const char *frames = getenv("AUTHHOOKS_FRAMES");
    if (!frames) {
        errno = EINVAL;
        fail("AUTHHOOKS_FRAMES");
    }
    if (setpgid(0, 0) != 0) fail("setpgid");
    limit_resources();
    const char *door = getenv("AUTHHOOKS_DOOR");
    if (door) hand_over(atoi(door));
    close_others(atoi(frames));
    install_filter();
    unsetenv("LD_PRELOAD");
    unsetenv("AUTHHOOKS_FILTER");
    unsetenv("AUTHHOOKS_LIMITS");
    unsetenv("AUTHHOOKS_DOOR");
    unsetenv("AUTHHOOKS_FRAMES");
}
