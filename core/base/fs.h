// fs.h - file utilities every folder shares: paths, mkdir -p, reading a whole file, and the
// one way qkv replaces a file (a temporary file beside it, fsync, rename, fsync of the folder).
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "base/buf.h"
#include "base/err.h"

bool fs_is_dir(const char *path);
bool fs_is_file(const char *path);
// Whether something is at path: a file of any kind, a broken symbolic link, or a name qkv may
// not look at (permission denied). Where a file is optional, its presence decides, and reading
// it then says what is wrong: an unreadable config.json is an error, not a missing one.
bool fs_present(const char *path);
// "dir/name" (xmalloc'd).
char *fs_join(const char *dir, const char *name);
// The folder part of path ("." when there is none; "/" for "/x"), xmalloc'd.
char *fs_dirname(const char *path);
// The last component of path (a pointer into it).
const char *fs_basename(const char *path);

// Create dir and the folders leading to it (mkdir -p) with mode. 0, or -1 with e filled.
int fs_mkdir_p(const char *dir, unsigned mode, Err *e);
// Create the folders leading to the file path (mkdir -p of its dirname).
int fs_mkdir_parents(const char *path, unsigned mode, Err *e);
// Hold the folder dir for this process alone (an advisory lock on the folder itself, released
// when the descriptor is closed or the process ends): its descriptor (>= 0), or -1 with e
// filled, "'dir' is in use by another qkv process (what)" when another holds it.
int fs_lock_dir(const char *dir, const char *what, Err *e);

// Read the whole file into out (appended). Files larger than max bytes are refused; a file
// that does not fit in memory is an error ("out of memory for the contents of ...").
int fs_read_file(const char *path, size_t max, Buf *out, Err *e);

// Why a file of this mode (a struct stat's st_mode) is not a regular file, to follow "cannot open
// 'x': " ("it is a directory", "it is a FIFO, not a regular file", "it is a device, not a regular
// file", "it is not a regular file"), or NULL when it is one.
const char *fs_not_regular(unsigned mode);
// path opened for reading when it is a regular file: the descriptor (blocking; the caller
// closes it) and its size, or -1 with e (may be NULL) saying why (fs_not_regular's words, "a
// broken symbolic link", ...). Opened without blocking first: a FIFO would
// wait for a writer forever, and a device (/dev/zero) never ends.
int fs_open_regular(const char *path, size_t *size, Err *e);
// Up to n of the first bytes of the regular file path into buf (a format's magic): how many were
// read, 0 when none or when path is not a readable regular file.
size_t fs_read_head(const char *path, void *buf, size_t n);
// Map the regular file path read-only: *base and *size (an empty file maps to "" of size 0,
// nothing to unmap). 0, or -1 with e saying why ("cannot open 'x': ..."). fs_unmap undoes it.
int fs_map(const char *path, const unsigned char **base, size_t *size, Err *e);
void fs_unmap(const unsigned char *base, size_t size);
// Remove dir and everything under it, as far as it can (for a folder a command created itself:
// a training run's out= when it fails before its first checkpoint). Symbolic links are removed,
// never followed.
void fs_remove_tree(const char *dir);
// Remove the temporary files atomic writes left in dir (NAME.tmp-XXXXXX, regular files) when
// their process was killed before it could: call it holding dir (fs_lock_dir), so that none is
// another's write under way. The number removed.
int fs_remove_stale_tmp(const char *dir);
// Writing a file atomically: af_open creates a temporary file beside dst; write to f; then
// af_commit (flush, fsync, rename over dst, fsync the folder) or af_abort (remove it). On any
// failure dst is untouched. dst must be a regular file or a new name: a symbolic link is
// written through (the file it names is replaced, the link kept); a FIFO, device, socket,
// directory or link to nothing is refused.
typedef struct AtomicFile {
    FILE *f;
    char *tmp, *dst;
} AtomicFile;

int af_open(AtomicFile *af, const char *dst, Err *e);
// From now on af_open (every atomic write) refuses path, any other name of the same file and
// its SQLite journals (path-wal, path-shm, path-journal), saying it is `why` ("the session's
// database ..."): an export or a save given the database's own name would replace it. path
// need not exist yet (its folder must); at most 4 files. fs_unprotect_all forgets them. Main
// thread only.
void fs_protect(const char *path, const char *why);
void fs_unprotect_all(void);
// -1 with e filled as af_open would when dst is protected (fs_protect), else 0: for a command
// that looks at dst before it writes, so that the protected file is named as such first.
int fs_check_protected(const char *dst, Err *e);
int af_commit(AtomicFile *af, Err *e);
void af_abort(AtomicFile *af);
// Remove the temporary files of the atomic writes under way, for a signal handler that ends the
// process at once (a second Ctrl-C headless): async-signal-safe, it only unlinks. Their
// destinations stay as they were.
void af_unlink_pending(void);
// Write n bytes to path atomically.
int fs_write_atomic(const char *path, const void *data, size_t n, Err *e);
