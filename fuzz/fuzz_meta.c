/*
 * Fuzzes the snapshot metadata reader (snap_meta_from_json). What it accepts
 * must survive a round trip: serialise, parse again, serialise again, and
 * the two texts must be identical (a misparse shows up as a difference).
 */
#include <stdbool.h>
#include <stdlib.h>

#include "fuzz_text.h"
#include "snap_meta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char *text = fuzz_text(data, len);
    snap_err err;
    snap_meta m;
    if (snap_meta_from_json(&m, text, "fuzz", &err) == 0) {
        (void)snap_meta_validate(&m, "fuzz", &err);
        char *once = snap_meta_to_json(&m);
        snap_meta again;
        bool bad = snap_meta_from_json(&again, once, "fuzz-again", &err) != 0;
        fuzz_round_trip_same(once, bad ? err.msg : NULL,
                             bad ? NULL : snap_meta_to_json(&again));
        snap_meta_dispose(&again);
        snap_meta_dispose(&m);
    }
    free(text);
    return 0;
}
