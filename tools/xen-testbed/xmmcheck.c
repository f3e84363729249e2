/*
 * xmmcheck SECONDS: detects SSE register contents lost across context switches.
 *
 * Each round loads xmm0-xmm15 with values naming this process and the round,
 * spins on integer instructions only (so the kernel and the hypervisor switch
 * away and back while the values must stay), then stores the registers and
 * compares. A wrong value is printed with the process and round it names, so a
 * value that belongs to ANOTHER process shows that this process ran on someone
 * else's register state. Exit status: 0 clean, 1 mismatches seen, 2 usage.
 * Built static by tools/xen-testbed/measure (no libc of dom0 involved).
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define NREGS       16
#define TAG         0x5Aull
#define MAX_REPORTS 10

/* Value of register I in round R of process P: TAG | P (24 bits) | R (24 bits) | I. */
static uint64_t pattern(uint32_t pid, uint32_t round, unsigned reg)
{
    return TAG << 56 | (uint64_t)(pid & 0xffffff) << 32 |
           (uint64_t)(round & 0xffffff) << 8 | reg;
}

#define LOAD(i)                                                                          \
    "movq %%rax, %%xmm" #i "\n\tpunpcklqdq %%xmm" #i ", %%xmm" #i "\n\tincq %%rax\n\t"
#define STORE(i) "movdqu %%xmm" #i ", 16*" #i "(%[out])\n\t"

/* One asm block: the compiler must not touch xmm between load and store. */
static void fill_spin_store(uint64_t first, unsigned long spins, uint64_t out[2 * NREGS])
{
    // clang-format off
    __asm__ volatile(
        "movq %[first], %%rax\n\t"
        LOAD(0) LOAD(1) LOAD(2) LOAD(3) LOAD(4) LOAD(5) LOAD(6) LOAD(7)
        LOAD(8) LOAD(9) LOAD(10) LOAD(11) LOAD(12) LOAD(13) LOAD(14) LOAD(15)
        "movq %[spins], %%rcx\n"
        "1:\n\tdecq %%rcx\n\tjnz 1b\n\t"
        STORE(0) STORE(1) STORE(2) STORE(3) STORE(4) STORE(5) STORE(6) STORE(7)
        STORE(8) STORE(9) STORE(10) STORE(11) STORE(12) STORE(13) STORE(14) STORE(15)
        :
        : [first] "r"(first), [spins] "r"(spins), [out] "r"(out)
        : "rax", "rcx", "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",
          "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14",
          "xmm15");
    // clang-format on
}

static void describe(uint64_t v, char *buf, size_t len)
{
    if (v >> 56 == TAG)
        snprintf(buf, len, "pid %" PRIu64 " round %" PRIu64 " xmm%" PRIu64,
                 (v >> 32) & 0xffffff, (v >> 8) & 0xffffff, v & 0xff);
    else
        snprintf(buf, len, "not an xmmcheck value");
}

/* Compares one round's registers; prints the first MAX_REPORTS wrong ones. */
static unsigned check_round(uint32_t pid, uint32_t round, const uint64_t regs[2 * NREGS],
                            unsigned *reported)
{
    unsigned bad = 0;
    for (unsigned i = 0; i < 2 * NREGS; i++) {
        uint64_t want = pattern(pid, round, i / 2);
        if (regs[i] == want)
            continue;
        bad++;
        if (*reported < MAX_REPORTS) {
            char who[80];
            describe(regs[i], who, sizeof(who));
            printf("xmmcheck %" PRIu32 ": round %" PRIu32 " xmm%u.q%u: want %016" PRIx64
                   " got %016" PRIx64 " (%s)\n",
                   pid, round, i / 2, i % 2, want, regs[i], who);
            (*reported)++;
        }
    }
    return bad;
}

int main(int argc, char **argv)
{
    if (argc != 2 || atoi(argv[1]) <= 0) {
        fprintf(stderr, "usage: xmmcheck SECONDS\n");
        return 2;
    }
    uint32_t pid = (uint32_t)getpid();
    time_t end = time(NULL) + atoi(argv[1]);
    uint64_t regs[2 * NREGS];
    uint32_t round = 0;
    unsigned bad_rounds = 0, bad_regs = 0, reported = 0;
    while (time(NULL) < end) {
        round++;
        fill_spin_store(pattern(pid, round, 0), 2000000, regs);
        unsigned bad = check_round(pid, round, regs, &reported);
        bad_regs += bad;
        bad_rounds += bad != 0;
    }
    printf("xmmcheck %" PRIu32 ": rounds %" PRIu32 " bad_rounds %u bad_qwords %u\n", pid,
           round, bad_rounds, bad_regs);
    return bad_rounds ? 1 : 0;
}
