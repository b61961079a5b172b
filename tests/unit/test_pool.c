// test_pool.c - the thread team: every share of every section runs exactly once, with 1-4
// threads and shares of uneven length; and a worker the machine does not run (here held in a
// signal handler, as a descheduled thread on a busy host) is not waited for: the sections go
// on, the caller running its shares, and the worker rejoins when it runs again.
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

#include "../check.h"
#include "kern/pool.h"

enum { SECTIONS = 3000, MAXT = 4 };

typedef struct {
    atomic_int runs[MAXT];
    atomic_int wrong; // a share run with the wrong nth, or twice in one section
    int section;
    atomic_int seen[MAXT]; // the section each share last ran in
    pthread_t caller;
    atomic_int by_other; // shares run on threads other than the caller
    _Atomic pthread_t other;
} Job;

static void spin_us(int us) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000 < us);
}

static int expect_nth;

static void job(void *arg, int ith, int nth) {
    Job *J = arg;
    if (nth != expect_nth || ith < 0 || ith >= nth || atomic_exchange(&J->seen[ith], J->section) == J->section)
        atomic_fetch_add(&J->wrong, 1);
    atomic_fetch_add(&J->runs[ith], 1);
    if (!pthread_equal(pthread_self(), J->caller)) {
        atomic_fetch_add(&J->by_other, 1);
        atomic_store(&J->other, pthread_self());
    }
    if (J->section % 7 == 0) spin_us(ith == 0 ? 30 : 5); // uneven shares now and then
}

static int hold[2], entered[2]; // pipes: the held worker waits on hold, says so on entered

static void on_signal(int sig) {
    char c = 1;
    (void)sig;
    if (write(entered[1], &c, 1) != 1) return;
    while (read(hold[0], &c, 1) < 0) {
    }
}

static void run_sections(Pool *p, Job *J, int n) {
    for (int s = 0; s < n; s++) {
        J->section++;
        pool_run(p, job, J);
    }
}

int main(void) {
    for (int nt = 1; nt <= MAXT; nt++) {
        Pool *p = pool_new(nt);
        CHECK_INT(pool_size(p), nt);
        Job J = {.caller = pthread_self()};
        for (int i = 0; i < MAXT; i++) J.seen[i] = -1;
        expect_nth = nt;
        run_sections(p, &J, SECTIONS);
        for (int i = 0; i < nt; i++) CHECK_INT(J.runs[i], SECTIONS);
        CHECK_INT(J.wrong, 0);
        pool_free(p);
    }

    // a worker held still: the sections must go on without it (they hung before: the caller
    // waited for every thread to check in); alarm turns a hang into a failure
    CHECK(pipe(hold) == 0 && pipe(entered) == 0);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0);
    Pool *p = pool_new(2);
    Job J = {.caller = pthread_self()};
    for (int i = 0; i < MAXT; i++) J.seen[i] = -1;
    expect_nth = 2;
    for (int tries = 0; !J.by_other && tries < 1000; tries++) run_sections(p, &J, 7);
    CHECK(J.by_other > 0);
    if (J.by_other) {
        spin_us(20000); // the worker is back to waiting for a section
        pthread_t w = atomic_load(&J.other);
        CHECK(pthread_kill(w, SIGUSR1) == 0);
        char c;
        CHECK(read(entered[0], &c, 1) == 1);
        alarm(20);
        int before = J.by_other, runs0 = J.runs[0], runs1 = J.runs[1];
        run_sections(p, &J, 500);
        alarm(0);
        CHECK_INT(J.runs[0] - runs0, 500);
        CHECK_INT(J.runs[1] - runs1, 500);
        CHECK_INT(J.by_other - before, 0); // all run by the caller
        c = 1;
        CHECK(write(hold[1], &c, 1) == 1);
        for (int tries = 0; J.by_other == before && tries < 1000; tries++) run_sections(p, &J, 7);
        CHECK(J.by_other > before); // the worker takes shares again
        CHECK_INT(J.wrong, 0);
    }
    pool_free(p);
    return CHECK_DONE();
}
