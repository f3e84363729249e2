/*
 * Fuzzes xlsnap-xenstored's saved-tree loader (--load, persist.c): the input
 * is the file. What loads must save, and the saved text must load again and
 * save identically (a misparse shows up as a difference).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "persist.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

static char dir[] = "/tmp/fuzz-xsdtree.XXXXXX";
static char input[64], once[64], twice[64];

static void cleanup(void)
{
    unlink(input);
    unlink(once);
    unlink(twice);
    rmdir(dir);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        abort();
    char *buf = NULL;
    size_t cap = 0;
    if (getdelim(&buf, &cap, '\0', f) < 0) {
        free(buf);
        buf = calloc(1, 1);
    }
    fclose(f);
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    if (!input[0]) {
        if (!mkdtemp(dir))
            abort();
        snprintf(input, sizeof input, "%s/in", dir);
        snprintf(once, sizeof once, "%s/once", dir);
        snprintf(twice, sizeof twice, "%s/twice", dir);
        atexit(cleanup);
        xsd_log_enable(false); /* every malformed line would be logged */
    }
    FILE *f = fopen(input, "w");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f))
        abort();
    if (xsd_store_init() < 0)
        abort();
    if (xsd_tree_load(input) == 0) {
        if (xsd_tree_save(once) < 0 || xsd_tree_load(once) < 0 ||
            xsd_tree_save(twice) < 0) {
            fprintf(stderr, "a loaded tree does not save and load again\n");
            abort();
        }
        char *a = slurp(once), *b = slurp(twice);
        if (strcmp(a, b) != 0) {
            fprintf(stderr, "round trip differs:\n%s\n----\n%s\n", a, b);
            abort();
        }
        free(a);
        free(b);
    }
    xsd_store_clear();
    return 0;
}
