// test_check_guard.c - the test kit itself: a main that records a failed check and then
// returns 0 (the mistake test_views.c once made) must still exit non-zero. Registered with
// should_fail, so this test passes only when the failure reaches the exit status.
#include "../check.h"

int main(void) {
    CHECK_INT(1 + 1, 3);
    return 0;
}
