// fs.c - paths, folders, whole-file reads and atomic replacement.
#include "base/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/mem.h"

bool fs_is_dir(const char *path) {
    struct stat st;
    return !stat(path, &st) && S_ISDIR(st.st_mode);
}

bool fs_is_file(const char *path) {
    struct stat st;
    return !stat(path, &st) && S_ISREG(st.st_mode);
}

bool fs_present(const char *path) {
    struct stat st;
    return !lstat(path, &st) || (errno != ENOENT && errno != ENOTDIR);
}

char *fs_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = xmalloc(a + b + 2);
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

char *fs_dirname(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return xstrdup(".");
    if (slash == path) return xstrdup("/");
    return xstrndup(path, (size_t)(slash - path));
}

const char *fs_basename(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int fs_mkdir_p(const char *dir, unsigned mode, Err *e) {
    if (!*dir) return 0;
    char *tmp = xstrdup(dir);
    int rc = 0;
    for (char *s = tmp + 1;; s++) {
        if (*s && *s != '/') continue;
        char c = *s;
        *s = 0;
        struct stat st;
        if (mkdir(tmp, (mode_t)mode) != 0 && errno != EEXIST) {
            rc = err_set(e, "cannot create directory '%s': %s", tmp, strerror(errno));
            break;
        }
        if (stat(tmp, &st) != 0 || !S_ISDIR(st.st_mode)) {
            rc = err_set(e, "cannot create directory '%s': %s", tmp, strerror(ENOTDIR));
            break;
        }
        *s = c;
        if (!c) break;
    }
    free(tmp);
    return rc;
}

int fs_lock_dir(const char *dir, const char *what, Err *e) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return err_set(e, "cannot open '%s': %s", dir, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return fd;
    int er = errno;
    close(fd);
    if (er == EWOULDBLOCK) return err_set(e, "'%s' is in use by another qkv process (%s)", dir, what);
    return err_set(e, "cannot lock '%s': %s", dir, strerror(er));
}

int fs_mkdir_parents(const char *path, unsigned mode, Err *e) {
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path) return 0; // a file in the current folder, or directly under /
    char *dir = xstrndup(path, (size_t)(slash - path));
    int rc = fs_mkdir_p(dir, mode, e);
    free(dir);
    return rc;
}

// Whether the 2 MB at p are mapped through one huge page (/proc/self/smaps: FilePmdMapped of
// the mapping that starts at p); true when that cannot be read, so that nothing is redone.
static bool huge_mapped(const unsigned char *p) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return true;
    char line[256];
    bool in = false, found = false, huge = true;
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, '-') == line + strspn(line, "0123456789abcdef")) {
            in = a == (uintptr_t)p;
            continue;
        }
        unsigned long kb;
        if (in && sscanf(line, "FilePmdMapped: %lu kB", &kb) == 1) {
            found = true, huge = kb > 0;
            break;
        }
    }
    fclose(f);
    return !found || huge;
}

// Large files (model weights) are mapped onto 2 MB pages where the kernel can (MADV_HUGEPAGE:
// ext4 and XFS on Linux 6.x read such a mapping into 2 MB page-cache folios): decoding streams
// through the weights, and on 4 KB pages every 4 KB costs a TLB miss, a slow one in a virtual
// machine. Measured on the Zen 4 host, 2 threads, one token of GPT-2 124M: F32 5% and F16 8-9%
// faster on 2 MB pages. A file already cached in 4 KB pages (one just written, or read with
// read()) stays in them; then its clean cached pages are dropped (POSIX_FADV_DONTNEED, after
// writing back dirty ones) and it is mapped again, read back once from disk into 2 MB folios,
// which later runs find in the cache. Pages another process maps stay as they are.
enum { HUGE_MAP_MIN = 64 << 20 };

static void *map_streamed(int fd, size_t size) {
    void *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
#if defined(MADV_HUGEPAGE) && defined(POSIX_FADV_DONTNEED)
    const size_t huge = (size_t)2 << 20;
    if (p == MAP_FAILED || size < HUGE_MAP_MIN || (uintptr_t)p % huge) return p;
    if (madvise(p, size, MADV_HUGEPAGE)) return p;
    const volatile unsigned char *probe = (const unsigned char *)p + huge;
    (void)*probe; // the fault maps a cached folio, or reads the file into a new one
    if (huge_mapped(p)) return p;
    munmap(p, size);
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    if (p != MAP_FAILED) madvise(p, size, MADV_HUGEPAGE);
#endif
    return p;
}

const char *fs_not_regular(unsigned mode) {
    return S_ISREG(mode)                    ? NULL
           : S_ISDIR(mode)                  ? "it is a directory"
           : S_ISFIFO(mode)                 ? "it is a FIFO, not a regular file"
           : S_ISCHR(mode) || S_ISBLK(mode) ? "it is a device, not a regular file"
                                            : "it is not a regular file";
}

int fs_open_regular(const char *path, size_t *size, Err *e) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int err = errno;
        struct stat ls;
        if (err == ENOENT) // a name that is there but leads nowhere (a broken link in a model's folder)
            return err_set(e, "cannot open '%s': %s", path,
                           lstat(path, &ls) == 0 ? "a broken symbolic link" : strerror(err));
        return err_set(e, "cannot open '%s': %s", path, strerror(err));
    }
    struct stat sb;
    const char *why = fstat(fd, &sb) ? strerror(errno) : fs_not_regular(sb.st_mode);
    if (!why && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0) why = strerror(errno);
    if (why) {
        close(fd);
        return err_set(e, "cannot open '%s': %s", path, why);
    }
    *size = (size_t)sb.st_size;
    return fd;
}

size_t fs_read_head(const char *path, void *buf, size_t n) {
    size_t size;
    int fd = fs_open_regular(path, &size, NULL);
    if (fd < 0) return 0;
    ssize_t got = read(fd, buf, n);
    close(fd);
    return got > 0 ? (size_t)got : 0;
}

int fs_map(const char *path, const unsigned char **base, size_t *size, Err *e) {
    int fd = fs_open_regular(path, size, e);
    if (fd < 0) return -1;
    *base = (const unsigned char *)"";
    if (*size) {
        void *p = map_streamed(fd, *size);
        if (p == MAP_FAILED) {
            int err = errno;
            close(fd);
            return err_set(e, "cannot map '%s': %s", path, strerror(err));
        }
        *base = p;
    }
    close(fd);
    return 0;
}

void fs_unmap(const unsigned char *base, size_t size) {
    if (size) munmap((void *)base, size);
}

int fs_read_file(const char *path, size_t max, Buf *out, Err *e) {
    size_t size;
    int fd = fs_open_regular(path, &size, e);
    if (fd < 0) return -1;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        int err = errno;
        close(fd);
        return err_set(e, "cannot open '%s': %s", path, strerror(err));
    }
    if (size > max) {
        fclose(f);
        return err_set(e, "'%s': larger than %zu bytes", path, max);
    }
    // the contents are input-sized (mem.h rule 1): read into a fallible buffer
    Buf b = {.fallible = true};
    buf_reserve(&b, size);
    char chunk[65536];
    size_t got, total = 0;
    int rc = 0;
    while (!b.failed && (got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        total += got;
        if (total > max) {
            rc = err_set(e, "'%s': larger than %zu bytes", path, max);
            break;
        }
        buf_put(&b, chunk, got);
    }
    if (b.failed) rc = err_set(e, "out of memory for the contents of '%s' (%zu bytes)", path, b.failed);
    else if (!rc && ferror(f)) rc = err_set(e, "cannot read '%s': %s", path, strerror(errno ? errno : EIO));
    fclose(f);
    if (!rc && !out->data) { // hand the data over
        bool fallible = out->fallible;
        *out = b;
        out->fallible = fallible;
        return 0;
    }
    if (!rc) buf_put(out, b.data, b.len);
    buf_free(&b);
    return rc;
}

// The files no atomic write may replace (fs_protect): the session's database, by its real path
// (its identity, for other names of it, is taken when a write is checked: the file need not
// exist yet). Set and cleared by the main thread.
enum { PROTECT_MAX = 4 };
static struct {
    char *real, *why;
} protected_files[PROTECT_MAX];

// The real path of path, which need not exist (its folder must): NULL when the folder cannot be
// resolved.
static char *real_path_of(const char *path) {
    char *r = realpath(path, NULL);
    if (r) return r;
    char *dir = fs_dirname(path), *rd = realpath(dir, NULL);
    free(dir);
    if (!rd) return NULL;
    const char *base = strrchr(path, '/');
    char *j = fs_join(rd, base ? base + 1 : path);
    free(rd);
    return j;
}

void fs_protect(const char *path, const char *why) {
    char *real = real_path_of(path);
    for (int i = 0; real && i < PROTECT_MAX; i++) {
        if (protected_files[i].real && !strcmp(protected_files[i].real, real)) break; // already
        if (!protected_files[i].real) {
            protected_files[i].real = real;
            protected_files[i].why = xstrdup(why);
            return;
        }
    }
    free(real);
}

void fs_unprotect_all(void) {
    for (int i = 0; i < PROTECT_MAX; i++) free(protected_files[i].real), free(protected_files[i].why);
    memset(protected_files, 0, sizeof protected_files);
}

// Why dst may not be replaced (a protected file, another name of it, or one of its SQLite
// journals), or NULL.
static const char *protected_reason(const char *dst) {
    bool any = false;
    for (int i = 0; i < PROTECT_MAX; i++) any |= protected_files[i].real != NULL;
    if (!any) return NULL;
    struct stat st;
    bool exists = stat(dst, &st) == 0;
    char *real = real_path_of(dst);
    const char *why = NULL;
    for (int i = 0; i < PROTECT_MAX && !why; i++) {
        const char *p = protected_files[i].real;
        struct stat ps;
        if (!p) continue;
        if (exists && stat(p, &ps) == 0 && st.st_dev == ps.st_dev && st.st_ino == ps.st_ino) why = protected_files[i].why;
        size_t n = strlen(p);
        if (real && !strncmp(real, p, n) &&
            (!real[n] || !strcmp(real + n, "-wal") || !strcmp(real + n, "-shm") || !strcmp(real + n, "-journal")))
            why = protected_files[i].why;
    }
    free(real);
    return why;
}

int fs_check_protected(const char *dst, Err *e) {
    const char *why = protected_reason(dst);
    return why ? err_set(e, "cannot write '%s': it is %s; choose another file", dst, why) : 0;
}

// What an atomic write to dst replaces: dst itself, or the file a symbolic link dst names (the
// link stays a link; rename() over it would turn it into a file). NULL with e set when that is
// not a regular file: a FIFO or device (rename() would replace the node itself: /dev/null,
// run as root), a socket, a directory, or a link to nothing.
static char *af_target(const char *dst, Err *e) {
    struct stat ls, st;
    if (lstat(dst, &ls) != 0) return xstrdup(dst); // a new file
    if (S_ISLNK(ls.st_mode)) {
        char *r = realpath(dst, NULL);
        if (r) {
            if (stat(r, &st) == 0 && S_ISREG(st.st_mode)) return r;
            free(r);
        } else if (errno == ENOENT) {
            err_set(e, "cannot write '%s': it is a symbolic link to nothing (write to the name it points to)", dst);
            return NULL;
        }
        if (stat(dst, &ls) != 0) {
            err_set(e, "cannot write '%s': %s", dst, strerror(errno));
            return NULL;
        }
    }
    if (S_ISREG(ls.st_mode)) return xstrdup(dst);
    err_set(e, "cannot write '%s': %s", dst, fs_not_regular(ls.st_mode));
    return NULL;
}

void fs_remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *de; (de = readdir(d));) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char *p = fs_join(dir, de->d_name);
        struct stat ls;
        if (lstat(p, &ls) == 0 && S_ISDIR(ls.st_mode)) fs_remove_tree(p);
        else unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

int fs_remove_stale_tmp(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    for (struct dirent *de; (de = readdir(d));) {
        const char *t = strstr(de->d_name, ".tmp-");
        if (!t || t == de->d_name || strlen(t + 5) != 6) continue; // NAME.tmp-XXXXXX, as mkstemp fills it
        bool ok = true;
        for (const char *c = t + 5; *c && ok; c++)
            ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9');
        char *p = fs_join(dir, de->d_name);
        struct stat ls;
        if (ok && lstat(p, &ls) == 0 && S_ISREG(ls.st_mode) && unlink(p) == 0) n++;
        free(p);
    }
    closedir(d);
    return n;
}

// The temporary files of the atomic writes under way, for af_unlink_pending: copies in static
// memory, each slot's name written before it is marked live and left alone while it is, so that a
// signal handler reads whole names whatever the main thread is doing (atomic files are opened and
// closed on the main thread only). A name too long for a slot goes unrecorded.
enum { PENDING_MAX = 8 };
static char pending_tmp[PENDING_MAX][PATH_MAX];
static volatile sig_atomic_t pending_live[PENDING_MAX];

static void pending_add(const char *tmp) {
    size_t n = strlen(tmp);
    for (int i = 0; i < PENDING_MAX && n < PATH_MAX; i++)
        if (!pending_live[i]) {
            memcpy(pending_tmp[i], tmp, n + 1);
            pending_live[i] = 1;
            return;
        }
}

static void pending_drop(const char *tmp) {
    for (int i = 0; i < PENDING_MAX; i++)
        if (pending_live[i] && !strcmp(pending_tmp[i], tmp)) {
            pending_live[i] = 0;
            return;
        }
}

void af_unlink_pending(void) {
    for (int i = 0; i < PENDING_MAX; i++)
        if (pending_live[i]) unlink(pending_tmp[i]);
}

int af_open(AtomicFile *af, const char *dst_given, Err *e) {
    memset(af, 0, sizeof *af);
    if (!*dst_given) return err_set(e, "no file name given");
    const char *why = protected_reason(dst_given);
    if (why) return err_set(e, "cannot write '%s': it is %s; choose another file", dst_given, why);
    char *dst = af_target(dst_given, e);
    if (!dst) return -1;
    if ((why = protected_reason(dst))) {
        err_set(e, "cannot write '%s': it is %s; choose another file", dst_given, why);
        free(dst);
        return -1;
    }
    // a file replaced keeps its mode (an export over a 0600 file made it world-readable); one this
    // process may not write is not replaced behind its back (the folder's permission allowed it),
    // nor is an SQLite database (another qkv database given as an export's file was lost)
    struct stat st;
    mode_t mode;
    if (stat(dst, &st) == 0) {
        char head[16] = {0};
        FILE *f = fopen(dst, "rb");
        bool sqlite = f && fread(head, 1, 16, f) == 16 && !memcmp(head, "SQLite format 3", 16);
        if (f) fclose(f);
        if (sqlite || access(dst, W_OK) != 0) {
            err_set(e, "cannot write '%s': %s; choose another file", dst_given,
                    sqlite ? "it is an SQLite database" : "the file is read-only");
            free(dst);
            return -1;
        }
        mode = st.st_mode & 07777;
    } else {
        mode_t u = umask(0); // a new file: as open(2) would make it
        umask(u);
        mode = 0666 & ~u;
    }
    size_t n = strlen(dst);
    af->tmp = xmalloc(n + 16);
    memcpy(af->tmp, dst, n);
    memcpy(af->tmp + n, ".tmp-XXXXXX", 12);
    int fd = mkstemp(af->tmp);
    if (fd < 0) {
        int err = errno;
        free(af->tmp), free(dst);
        af->tmp = NULL;
        return err_set(e, "cannot write '%s': %s", dst_given, strerror(err));
    }
    fchmod(fd, mode);
    af->f = fdopen(fd, "w");
    if (!af->f) {
        int err = errno;
        close(fd);
        unlink(af->tmp);
        free(af->tmp), free(dst);
        af->tmp = NULL;
        return err_set(e, "cannot write '%s': %s", dst_given, strerror(err));
    }
    af->dst = dst;
    pending_add(af->tmp);
    return 0;
}

void af_abort(AtomicFile *af) {
    if (af->tmp) pending_drop(af->tmp);
    if (af->f) {
        fclose(af->f);
        unlink(af->tmp);
    }
    free(af->tmp);
    free(af->dst);
    memset(af, 0, sizeof *af);
}

int af_commit(AtomicFile *af, Err *e) {
    int err = 0;
    errno = 0;
    if (fflush(af->f) != 0 || ferror(af->f)) err = errno ? errno : EIO;
    if (!err && fsync(fileno(af->f)) != 0) err = errno;
    if (fclose(af->f) != 0 && !err) err = errno ? errno : EIO;
    af->f = NULL;
    if (!err && rename(af->tmp, af->dst) != 0) err = errno;
    pending_drop(af->tmp);
    int rc = 0;
    if (err) {
        unlink(af->tmp);
        rc = err_set(e, "cannot write '%s': %s", af->dst, strerror(err));
    } else {
        char *dir = fs_dirname(af->dst);
        int dfd = open(dir, O_RDONLY | O_DIRECTORY);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dir);
    }
    free(af->tmp);
    free(af->dst);
    memset(af, 0, sizeof *af);
    return rc;
}

int fs_write_atomic(const char *path, const void *data, size_t n, Err *e) {
    AtomicFile af;
    if (af_open(&af, path, e)) return -1;
    if (n && fwrite(data, 1, n, af.f) != n) {
        err_set(e, "cannot write '%s': %s", path, strerror(errno ? errno : EIO));
        af_abort(&af);
        return -1;
    }
    return af_commit(&af, e);
}
