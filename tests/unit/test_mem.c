// test_mem.c - the base of the out-of-memory policy (core/base/mem.h, buf.h, fs.h): the x*
// functions call the handler with the size that failed and never return NULL; mem_mul saturates;
// the test hook QKV_TEST_XALLOC_MAX makes x* requests above it fail (and the default handler
// prints its one line and aborts); a fallible Buf records a failed growth and goes on; a file
// too large for the memory left is an error of fs_read_file and json_parse_file, not a crash.
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "../check.h"
#include "../aslimit.h"
#include "base/buf.h"
#include "base/fs.h"
#include "base/json.h"
#include "base/mem.h"

static jmp_buf back;
static size_t oom_size;
static int oom_calls;

// A handler that records the size and jumps back to the check (it must not return).
static void handler(size_t n) {
    oom_size = n;
    oom_calls++;
    longjmp(back, 1);
}

// expr must call the handler with a size of at least want instead of returning.
#define EXPECT_OOM(expr, want)                                                                         \
    do {                                                                                               \
        oom_calls = 0, oom_size = 0;                                                                   \
        if (!setjmp(back)) {                                                                           \
            void *p_ = (void *)(expr);                                                                 \
            fprintf(stderr, "%s:%d: %s returned %p instead of calling the out-of-memory handler\n",     \
                    __FILE__, __LINE__, #expr, p_);                                                    \
            check_failures++;                                                                          \
        } else {                                                                                       \
            CHECK_INT(oom_calls, 1);                                                                   \
            if (oom_size < (size_t)(want)) {                                                           \
                fprintf(stderr, "%s:%d: %s: the handler got %zu bytes, expected at least %zu\n",        \
                        __FILE__, __LINE__, #expr, oom_size, (size_t)(want));                          \
                check_failures++;                                                                      \
            }                                                                                          \
        }                                                                                              \
    } while (0)

static void test_x(void) {
    mem_set_oom_handler(handler);
    // sizes no allocator grants (above PTRDIFF_MAX)
    EXPECT_OOM(xmalloc(SIZE_MAX / 2), SIZE_MAX / 2);
    EXPECT_OOM(xcalloc(SIZE_MAX / 4, 8), SIZE_MAX); // n * size overflows: the handler hears SIZE_MAX
    char *p = xmalloc(16);
    memcpy(p, "kept", 5);
    EXPECT_OOM(xrealloc(p, SIZE_MAX / 2), SIZE_MAX / 2);
    CHECK_STR(p, "kept"); // a failed xrealloc leaves the block as it was
    free(p);
    // zero sizes are real blocks
    void *z = xmalloc(0), *zc = xcalloc(0, 8), *zr = xrealloc(NULL, 0);
    CHECK(z && zc && zr);
    free(z), free(zc), free(zr);
    char *s = xstrndup("abcdef", 3);
    CHECK_STR(s, "abc");
    free(s);
    s = xstrdup("");
    CHECK_STR(s, "");
    free(s);
    CHECK_INT(mem_mul(3, 4), 12);
    CHECK_INT(mem_mul(0, SIZE_MAX), 0);
    CHECK(mem_mul(SIZE_MAX, 0) == 0);
    CHECK(mem_mul(SIZE_MAX / 2 + 1, 2) == SIZE_MAX);
    CHECK(mem_mul((size_t)1 << 40, (size_t)1 << 30) == SIZE_MAX);
    // a bookkeeping buffer grows through xrealloc: the handler, not a silent failure
    Buf b = {0};
    buf_puts(&b, "abc");
    EXPECT_OOM((buf_reserve(&b, SIZE_MAX / 2), b.data), SIZE_MAX / 2);
    buf_free(&b);
    mem_set_oom_handler(NULL);
}

static void test_fallible_buf(void) {
    mem_set_oom_handler(handler); // must not be called below
    oom_calls = 0;
    if (setjmp(back)) {
        fprintf(stderr, "a fallible buffer called the out-of-memory handler (%zu bytes)\n", oom_size);
        check_failures++;
        mem_set_oom_handler(NULL);
        return;
    }
    Buf b = {.fallible = true};
    buf_puts(&b, "hello");
    CHECK_STR(b.data, "hello");
    CHECK_INT(buf_reserve(&b, SIZE_MAX / 2), -1);
    CHECK(b.failed >= SIZE_MAX / 2);
    CHECK(b.data == NULL && b.len == 0);
    buf_puts(&b, "more"); // no-ops from now on
    buf_printf(&b, "%d", 42);
    JsonW w;
    jw_init(&w, &b);
    jw_obj(&w);
    jw_kstr(&w, "k", "v");
    jw_obj_end(&w);
    CHECK(b.data == NULL && b.len == 0);
    CHECK_INT(buf_reserve(&b, 1), -1);
    CHECK(buf_take(&b) == NULL);
    CHECK(b.failed == 0 && b.fallible); // taken (nothing): empty again, still fallible
    buf_puts(&b, "again");
    CHECK_STR(b.data, "again");
    // an overflowing request fails without asking the allocator
    CHECK_INT(buf_reserve(&b, SIZE_MAX), -1);
    CHECK(b.failed == SIZE_MAX);
    buf_free(&b);
    CHECK(b.failed == 0 && b.fallible);
    char *t = (buf_puts(&b, "taken"), buf_take(&b));
    CHECK_STR(t, "taken");
    free(t);
    CHECK_INT(oom_calls, 0);
    mem_set_oom_handler(NULL);
}

// Run this program again as "hook", with QKV_TEST_XALLOC_MAX=4096: x* up to 4096 bytes work,
// plain malloc above it too, then xmalloc(5000) reaches the default handler: its one line on
// stderr, then abort.
static int hook_child(void) {
    void *a = xmalloc(4096), *p = malloc(100000);
    if (!a || !p) return 2;
    free(a), free(p);
    fprintf(stderr, "before\n");
    fflush(stderr);
    xmalloc(5000);
    fprintf(stderr, "after\n");
    return 3;
}

static void test_hook(const char *self) {
    int pipefd[2];
    CHECK_INT(pipe(pipefd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], STDERR_FILENO);
        close(pipefd[0]);
        setenv("QKV_TEST_XALLOC_MAX", "4096", 1);
        execl(self, self, "hook", (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    char out[512] = {0};
    size_t n = 0;
    ssize_t got;
    while (n < sizeof out - 1 && (got = read(pipefd[0], out + n, sizeof out - 1 - n)) > 0) n += (size_t)got;
    close(pipefd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGABRT) {
        fprintf(stderr, "the default handler should abort: the child %s %d; its stderr:\n%s\n",
                WIFSIGNALED(st) ? "died of signal" : "exited with", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
                out);
        check_failures++;
    }
    CHECK(strstr(out, "before\n") != NULL);
    CHECK(strstr(out, "qkv: out of memory (allocating 5000 bytes)\n") != NULL);
    CHECK(strstr(out, "after") == NULL);
}

// In a child whose address space is capped 16 MB above what it uses: reading a 64 MB file
// whole is an error naming the file, and so is parsing it as JSON; small files still read.
static int big_file_child(void *arg) {
    const char *dir = arg;
    char *path = fs_join(dir, "big.json");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || ftruncate(fd, 64 << 20)) return 2; // sparse: no disk used
    close(fd);
    char *small = fs_join(dir, "small.json");
    FILE *f = fopen(small, "w");
    if (!f) return 2;
    fputs("{\"a\": [1, 2, 3]}", f);
    fclose(f);
    if (aslimit_set(16 << 20)) return 77;
    Buf b = {0};
    Err e = {{0}};
    CHECK_INT(fs_read_file(path, SIZE_MAX, &b, &e), -1);
    CHECK(strstr(e.msg, "out of memory for the contents of '") != NULL && strstr(e.msg, "big.json' (67108865 bytes)"));
    CHECK(b.data == NULL && !b.fallible);
    e.msg[0] = 0;
    CHECK(json_parse_file(path, &e) == NULL);
    CHECK(strstr(e.msg, "out of memory for the contents of '") != NULL);
    Json *j = json_parse_file(small, &e);
    CHECK(j && json_get(j, "a") && json_get(j, "a")->len == 3);
    json_free(j);
    unlink(path), unlink(small);
    free(path), free(small);
    return check_failures ? 1 : 0;
}

static void test_big_file(void) {
    char dir[CHECK_TMP_LEN];
    if (!mkdtemp(check_tmpl(dir, sizeof dir, "qkv-test-mem"))) {
        fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
        check_failures++;
        return;
    }
    aslimit_fork("a file too large for the memory left", big_file_child, dir);
    rmdir(dir);
}

// mem_calloc_huge: zeroed and on a cache line at every size, whatever malloc did before (the
// decoding kernels' sums depend on a row's address modulo 64: see mem.h).
static void test_calloc_huge(void) {
    void *junk[24], *p[24];
    for (int i = 0; i < 24; i++) {
        junk[i] = xmalloc((size_t)(8 + 24 * i));
        size_t n = i == 23 ? (size_t)3 << 20 : (size_t)(1 + 37 * i);
        p[i] = mem_calloc_huge(n);
        CHECK(p[i] != NULL);
        if (!p[i]) continue;
        if ((uintptr_t)p[i] % 64) {
            fprintf(stderr, "%s:%d: mem_calloc_huge(%zu) at %p, not on a 64-byte line\n", __FILE__, __LINE__, n, p[i]);
            check_failures++;
        }
        const unsigned char *b = p[i];
        size_t nz = 0;
        for (size_t k = 0; k < n; k++) nz += b[k] != 0;
        CHECK_INT((long long)nz, 0);
    }
    for (int i = 0; i < 24; i++) free(junk[i]), free(p[i]);
}

// af_open (every atomic write) refuses a device and a FIFO: rename() over one replaced the node
// itself (/dev/null, run as root). Only af_open is called: were it to accept /dev/null, the
// temporary file it made is removed by af_abort and /dev/null is never renamed over.
static void test_af_targets(void) {
    AtomicFile af;
    Err e = {{0}};
    CHECK_INT(af_open(&af, "/dev/null", &e), -1);
    if (af.f) af_abort(&af);
    CHECK(strstr(e.msg, "it is a device, not a regular file") != NULL);
    char dir[CHECK_TMP_LEN];
    if (!mkdtemp(check_tmpl(dir, sizeof dir, "qkv-test-af"))) {
        check_failures++;
        return;
    }
    char fifo[CHECK_PATH_LEN], file[CHECK_PATH_LEN], link[CHECK_PATH_LEN], dangling[CHECK_PATH_LEN];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir), snprintf(file, sizeof file, "%s/file", dir);
    snprintf(link, sizeof link, "%s/link", dir), snprintf(dangling, sizeof dangling, "%s/dangling", dir);
    CHECK_INT(mkfifo(fifo, 0600), 0);
    e.msg[0] = 0;
    CHECK_INT(af_open(&af, fifo, &e), -1);
    if (af.f) af_abort(&af);
    CHECK(strstr(e.msg, "it is a FIFO") != NULL);
    CHECK_INT(symlink("file", link), 0);
    CHECK_INT(symlink("nowhere", dangling), 0);
    CHECK_INT(af_open(&af, dangling, &e), -1); // a link to nothing
    if (af.f) af_abort(&af);
    CHECK_INT(fs_write_atomic(file, "a", 1, &e), 0);
    CHECK_INT(fs_write_atomic(link, "bc", 2, &e), 0); // through the link: the file it names
    struct stat ls;
    CHECK(lstat(link, &ls) == 0 && S_ISLNK(ls.st_mode));
    CHECK(stat(file, &ls) == 0 && ls.st_size == 2);
    // af_unlink_pending (a signal handler's, before the process ends) removes the temporary files
    // of the writes under way, and only those; the destination stays
    AtomicFile a2, b2;
    CHECK_INT(af_open(&a2, file, &e), 0);
    CHECK_INT(af_open(&b2, link, &e), 0);
    CHECK_INT(af_commit(&b2, &e), 0); // committed: no longer pending
    CHECK(a2.tmp && access(a2.tmp, F_OK) == 0);
    af_unlink_pending();
    CHECK(a2.tmp && access(a2.tmp, F_OK) != 0);
    CHECK(stat(file, &ls) == 0 && ls.st_size == 0); // what b2 committed (nothing), untouched by a2
    af_abort(&a2);
    // a file replaced keeps its mode (an export over a 0600 file left it 0644: world-readable);
    // a new file gets 0666 less the umask; an SQLite database is not replaced (another qkv
    // database given as an export's file was lost) (before 2026-12-07)
    chmod(file, 0600);
    CHECK_INT(fs_write_atomic(file, "secret", 6, &e), 0);
    CHECK(stat(file, &ls) == 0 && (ls.st_mode & 07777) == 0600);
    char fresh[CHECK_PATH_LEN], dbf[CHECK_PATH_LEN];
    snprintf(fresh, sizeof fresh, "%s/fresh", dir), snprintf(dbf, sizeof dbf, "%s/other.db", dir);
    mode_t u = umask(027);
    CHECK_INT(fs_write_atomic(fresh, "x", 1, &e), 0);
    umask(u);
    CHECK(stat(fresh, &ls) == 0 && (ls.st_mode & 07777) == 0640);
    static const char sqlite_head[] = "SQLite format 3\0 and the rest of a page";
    CHECK_INT(fs_write_atomic(dbf, sqlite_head, sizeof sqlite_head, &e), 0);
    e.msg[0] = 0;
    CHECK_INT(fs_write_atomic(dbf, "{}\n", 3, &e), -1);
    CHECK(strstr(e.msg, "it is an SQLite database") != NULL);
    CHECK(stat(dbf, &ls) == 0 && ls.st_size == (off_t)sizeof sqlite_head);
    // a file this process may not write is not replaced, though its folder allows it (as a user
    // other than root: root may write any file)
    if (geteuid() != 0) {
        chmod(fresh, 0444);
        e.msg[0] = 0;
        CHECK_INT(fs_write_atomic(fresh, "y", 1, &e), -1);
        CHECK(strstr(e.msg, "the file is read-only") != NULL);
    } else {
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            chmod(dir, 0777), chmod(fresh, 0444);
            if (setgid(65534) || setuid(65534)) _exit(77);
            if (access(fresh, F_OK) != 0) _exit(77); // a folder above it shut to that user
            Err e2 = {{0}};
            _exit(fs_write_atomic(fresh, "y", 1, &e2) == -1 && strstr(e2.msg, "the file is read-only") ? 0 : 1);
        }
        int st;
        waitpid(pid, &st, 0);
        CHECK(WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 77));
        chmod(dir, 0700);
    }
    unlink(fresh), unlink(dbf);
    unlink(fifo), unlink(link), unlink(dangling), unlink(file), rmdir(dir);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "hook")) return hook_child();
    test_af_targets();
    test_x();
    test_calloc_huge();
    test_fallible_buf();
    test_hook("/proc/self/exe");
    test_big_file();
    return check_failures ? 1 : 0;
}
