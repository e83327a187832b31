#include "tap.h"

int tap_passed, tap_failed;

int tap_finish(void) {
        printf("%d passed, %d failed\n", tap_passed, tap_failed);
        return tap_failed ? 1 : 0;
}
