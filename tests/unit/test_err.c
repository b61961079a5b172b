// test_err.c - error messages (core/base/err.h): a message may be built from the one the Err
// already holds (err_set(e, "x: %s", e->msg) as err_prefix does), a long message is cut, not
// overrun, and a NULL Err is allowed everywhere.
#include <string.h>

#include "../check.h"
#include "base/err.h"

int main(void) {
    Err e;
    err_set(&e, "No such file or directory");
    CHECK_INT(err_set(&e, "cannot read probe '%s': %s", "nonexist.json", e.msg), -1);
    CHECK_STR(e.msg, "cannot read probe 'nonexist.json': No such file or directory");

    err_set(&e, "bad value");
    err_set(&e, "%s; %s", e.msg, e.msg); // the old message twice, both whole
    CHECK_STR(e.msg, "bad value; bad value");

    err_set(&e, "inner");
    CHECK_INT(err_prefix(&e, "outer %d", 3), -1);
    CHECK_STR(e.msg, "outer 3: inner");

    char big[2000];
    memset(big, 'x', sizeof big - 1), big[sizeof big - 1] = 0;
    err_set(&e, "%s", big);
    CHECK_INT((int)strlen(e.msg), (int)sizeof e.msg - 1);
    err_prefix(&e, "head");
    CHECK_INT((int)strlen(e.msg), (int)sizeof e.msg - 1);
    CHECK(!strncmp(e.msg, "head: xxx", 9));

    CHECK_INT(err_set(NULL, "%s", "nothing"), -1);
    CHECK_INT(err_prefix(NULL, "nothing"), -1);
    return CHECK_DONE();
}
