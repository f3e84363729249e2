# Tests are discovered by name:
#   tests/unit/test_*.c   one program each, run plain and under ASan+UBSan
#   tests/guest/test_*.c  one program each, boots real guests; run once (ASan build)
#   tests/lib/*.c         test support (harness, fake peers), linked into every test
#   tests/scripts/*.sh    shell tests against the plain build
UNIT_TESTS  += $(sort $(notdir $(basename $(wildcard tests/unit/test_*.c))))
GUEST_TESTS += $(sort $(notdir $(basename $(wildcard tests/guest/test_*.c))))
CHECK_SCRIPTS += $(sort $(wildcard tests/scripts/*.sh))
$(foreach t,$(notdir $(basename $(wildcard tests/unit/test_*.c))),$(eval $(t)_SRCS := tests/unit/$(t).c))
$(foreach t,$(notdir $(basename $(wildcard tests/guest/test_*.c))),$(eval $(t)_SRCS := tests/guest/$(t).c))
TESTLIB_SRCS := $(wildcard tests/lib/*.c)

# test_durability's LD_PRELOAD shim (tests/preload/, not linked into the tests):
# plain C whatever SAN says, so that it can be preloaded into either build.
TRACE_DURABLE_SO := $(BUILD)/tests/libtrace_durable.so
$(TRACE_DURABLE_SO): tests/preload/trace_durable.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -U_FORTIFY_SOURCE -fPIC -shared -O2 -g $(WARNFLAGS) \
	    -o $@ $< -ldl -lpthread
$(BUILD)/tests/test_durability: $(TRACE_DURABLE_SO)

# make mutants: product mutations, each against the tests named for it
# (tools/mutants.sh; not part of make check). MUTANTS="no-fsync ..." selects.
.PHONY: mutants
mutants:
	tools/mutants.sh $(MUTANTS)
