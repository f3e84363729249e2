/*
 * Fuzzes the operation journal reader (snap_journal_from_json). What it accepts
 * must survive a round trip: serialise, parse again, serialise again, and
 * the two texts must be identical (a misparse shows up as a difference).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snap_journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char *text = malloc(len + 1);
    memcpy(text, data, len);
    text[len] = '\0';
    snap_err err;
    snap_journal m;
    if (snap_journal_from_json(&m, text, "fuzz", &err) == 0) {
        char *once = snap_journal_to_json(&m);
        snap_journal again;
        if (snap_journal_from_json(&again, once, "fuzz-again", &err) != 0) {
            fprintf(stderr, "reparse failed: %s\n%s\n", err.msg, once);
            abort();
        }
        char *twice = snap_journal_to_json(&again);
        if (strcmp(once, twice) != 0) {
            fprintf(stderr, "round trip differs:\n%s\n----\n%s\n", once, twice);
            abort();
        }
        free(twice);
        free(once);
        snap_journal_dispose(&again);
        snap_journal_dispose(&m);
    }
    free(text);
    return 0;
}
