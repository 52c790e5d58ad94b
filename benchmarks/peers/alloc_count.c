/* SPDX-License-Identifier: MIT */
/* LD_PRELOAD heap-allocation counter for benchmarks/suite.sh: counts the process's malloc,
 * calloc, realloc and aligned allocations (posix_memalign, aligned_alloc, memalign, valloc),
 * and separately its C++ operator new calls (which reach malloc too, so they are a subset),
 * into a shared file mapping named by ALLOC_COUNT_FILE. The suite reads the file (five
 * little-endian 64-bit counters: malloc calloc realloc aligned operator_new) before and after
 * a known number of requests, without signalling or stopping the server.
 *
 * Build: gcc -O2 -shared -fPIC -o alloc_count.so alloc_count.c -ldl
 * Use:   ALLOC_COUNT_FILE=/tmp/x LD_PRELOAD=./alloc_count.so server ...
 * Counting starts when the library is loaded; allocations made before its constructor runs
 * are counted in a private array and copied into the file once it is mapped. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

enum { C_MALLOC, C_CALLOC, C_REALLOC, C_ALIGNED, C_NEW, C_COUNT };

static uint64_t early[C_COUNT];
static uint64_t *counters = early;

static void count(int which) { __atomic_fetch_add(&counters[which], 1, __ATOMIC_RELAXED); }

__attribute__((constructor)) static void map_counters(void) {
    const char *path = getenv("ALLOC_COUNT_FILE");
    if (path == NULL) return;
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return;
    size_t size = sizeof(uint64_t) * C_COUNT;
    if (ftruncate(fd, (off_t)size) == 0) {
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED) {
            uint64_t *shared = p;
            for (int i = 0; i < C_COUNT; ++i) shared[i] = early[i];
            counters = shared;
        }
    }
    close(fd);
}

/* glibc's own entry points: no dlsym (which may allocate) on the malloc path. */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

void *malloc(size_t n) { count(C_MALLOC); return __libc_malloc(n); }
void *calloc(size_t n, size_t m) { count(C_CALLOC); return __libc_calloc(n, m); }
void *realloc(void *p, size_t n) { count(C_REALLOC); return __libc_realloc(p, n); }
void *memalign(size_t a, size_t n) { count(C_ALIGNED); return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { count(C_ALIGNED); return __libc_memalign(a, n); }
void *valloc(size_t n) { count(C_ALIGNED); return __libc_memalign((size_t)getpagesize(), n); }
int posix_memalign(void **out, size_t a, size_t n) {
    count(C_ALIGNED);
    void *p = __libc_memalign(a, n);
    if (p == NULL) return 12; /* ENOMEM */
    *out = p;
    return 0;
}

/* operator new (libstdc++): counted, then forwarded to the real one, which throws on failure
 * and allocates through malloc above. */
#define FORWARD_NEW(mangled, params, args)                                                     \
    void *mangled params {                                                                    \
        static void *(*next) params;                                                          \
        if (next == NULL) next = (void *(*) params)dlsym(RTLD_NEXT, #mangled);                \
        count(C_NEW);                                                                         \
        return next args;                                                                     \
    }
FORWARD_NEW(_Znwm, (size_t n), (n))
FORWARD_NEW(_Znam, (size_t n), (n))
FORWARD_NEW(_ZnwmSt11align_val_t, (size_t n, size_t a), (n, a))
FORWARD_NEW(_ZnamSt11align_val_t, (size_t n, size_t a), (n, a))
FORWARD_NEW(_ZnwmRKSt9nothrow_t, (size_t n, const void *t), (n, t))
FORWARD_NEW(_ZnamRKSt9nothrow_t, (size_t n, const void *t), (n, t))
