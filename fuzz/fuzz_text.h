/* Shared by the fuzzers of the JSON readers: the input as text, the round-trip verdict.
 */
#ifndef FUZZ_TEXT_H
#define FUZZ_TEXT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The fuzzer's bytes as a NUL-terminated string (free it). */
static inline char *fuzz_text(const uint8_t *data, size_t len)
{
    char *text = malloc(len + 1);
    if (!text)
        abort();
    memcpy(text, data, len);
    text[len] = '\0';
    return text;
}

/*
 * What a reader accepted was serialised (once), parsed again and serialised
 * again (twice): both texts must be the same. reparse_error is the second
 * parse's message when it failed (twice is then NULL). Aborts on a
 * difference, which is how a misparse shows; frees once and twice.
 */
static inline void fuzz_round_trip_same(char *once, const char *reparse_error,
                                        char *twice)
{
    if (reparse_error) {
        fprintf(stderr, "reparse failed: %s\n%s\n", reparse_error, once);
        abort();
    }
    if (strcmp(once, twice) != 0) {
        fprintf(stderr, "round trip differs:\n%s\n----\n%s\n", once, twice);
        abort();
    }
    free(twice);
    free(once);
}

#endif
