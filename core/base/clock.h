// clock.h - the clocks qkv reads: a monotonic one for timings, the wall clock for records.
#pragma once
#include <stddef.h>
#include <stdint.h>

// Seconds on a monotonic clock (for measuring durations).
double clock_now(void);
// Milliseconds since the Unix epoch (wall clock).
int64_t clock_wall_ms(void);
// A duration as a person reads it: "1:05", or "2:03:10" from an hour on (0:00 for s <= 0 or not finite).
void clock_fmt_duration(double s, char *out, size_t cap);
