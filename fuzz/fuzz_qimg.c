/*
 * Fuzzes the parsers of `qemu-img info --output=json` (single image and
 * --backing-chain) and of `qemu-img check --output=json`.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz_text.h"
#include "snap_qemuimg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char *text = fuzz_text(data, len);
    snap_err err;
    snap_qimg_info info;
    memset(&info, 0, sizeof info);
    if (snap_qimg_parse_info(text, &info, &err) == 0) {
        (void)snap_qimg_find_snapshot(&info, "s1");
        snap_qimg_info_dispose(&info);
    }
    snap_qimg_chain chain;
    memset(&chain, 0, sizeof chain);
    if (snap_qimg_parse_chain(text, &chain, &err) == 0)
        snap_qimg_chain_dispose(&chain);
    snap_qimg_check check;
    if (snap_qimg_parse_check(text, &check, &err) == 0 &&
        check.clean != (!check.corruptions && !check.leaks && !check.check_errors))
        abort(); /* "clean" must mean what it says */
    free(text);
    return 0;
}
