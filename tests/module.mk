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
