// proc.h - this process as another process can recognise it later: an owner token for a row
// a process claims while it works on it (a running experiment), and whether the process a
// token names still runs.
#pragma once
#include <stdbool.h>

enum { PROC_TOKEN_MAX = 128 };

// "HOST PID START": the host name, the pid and the process's start time in clock ticks after
// boot (field 22 of /proc/PID/stat; 0 where /proc is missing), so that a pid the kernel has
// given to another process since is not taken for the owner.
void proc_token(char out[PROC_TOKEN_MAX]);

// Whether the process of a token still runs: on this host, the pid alive with the same start
// time. A token of another host counts as gone: qkv's SQLite files run in WAL mode, which one
// host's processes share and no network file system does, so such a row came with a copied
// file. A malformed token (or NULL) is gone too.
bool proc_token_alive(const char *token);
