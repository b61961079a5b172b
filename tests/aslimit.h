// aslimit.h - for the tests of the out-of-memory policy: run part of a test in a child process
// and cap its address space (RLIMIT_AS) a little above what it maps, so that a request of a
// known size fails for real. Include after check.h. Skipped under AddressSanitizer, whose
// shadow memory makes such a cap meaningless.
#pragma once
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define ASLIMIT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASLIMIT_SANITIZED 1
#endif
#endif
#ifndef ASLIMIT_SANITIZED
#define ASLIMIT_SANITIZED 0
#endif

// Cap this process's address space extra bytes above what it maps now (VmSize); 0, or -1
// when that cannot be done here.
static int aslimit_set(size_t extra) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %zu kB", &kb) == 1) break;
    if (f) fclose(f);
    struct rlimit rl = {kb * 1024 + extra, kb * 1024 + extra};
    return kb && !setrlimit(RLIMIT_AS, &rl) ? 0 : -1;
}

// Run fn(arg) in a child (which calls aslimit_set when ready): its exit status 0 passes, 77
// skips (say so), anything else is a failure of the test named what.
static void aslimit_fork(const char *what, int (*fn)(void *), void *arg) {
    if (ASLIMIT_SANITIZED) {
        printf("skip: %s (an address-space limit under AddressSanitizer)\n", what);
        return;
    }
    fflush(stdout), fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) _exit(fn(arg));
    int st = 0;
    waitpid(pid, &st, 0);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 77) {
        printf("skip: %s: cannot limit the address space here\n", what);
    } else if (!WIFEXITED(st) || WEXITSTATUS(st)) {
        fprintf(stderr, "%s: the child failed (%s %d)\n", what, WIFEXITED(st) ? "status" : "signal",
                WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        check_failures++;
    }
}
