/*
 * Fuzzes the snapshot metadata reader (snap_meta_from_json). What it accepts
 * must survive a round trip: serialise, parse again, serialise again, and
 * the two texts must be identical (a misparse shows up as a difference).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snap_meta.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char *text = malloc(len + 1);
    memcpy(text, data, len);
    text[len] = '\0';
    snap_err err;
    snap_meta m;
    if (snap_meta_from_json(&m, text, "fuzz", &err) == 0) {
        (void)snap_meta_validate(&m, "fuzz", &err);
        char *once = snap_meta_to_json(&m);
        snap_meta again;
        if (snap_meta_from_json(&again, once, "fuzz-again", &err) != 0) {
            fprintf(stderr, "reparse failed: %s\n%s\n", err.msg, once);
            abort();
        }
        char *twice = snap_meta_to_json(&again);
        if (strcmp(once, twice) != 0) {
            fprintf(stderr, "round trip differs:\n%s\n----\n%s\n", once, twice);
            abort();
        }
        free(twice);
        free(once);
        snap_meta_dispose(&again);
        snap_meta_dispose(&m);
    }
    free(text);
    return 0;
}
