// clock.h - the clocks qkv reads: a monotonic one for timings, the wall clock for records.
#pragma once
#include <stdint.h>

// Seconds on a monotonic clock (for measuring durations).
double clock_now(void);
// Milliseconds since the Unix epoch (wall clock).
int64_t clock_wall_ms(void);
