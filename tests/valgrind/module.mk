# make check-valgrind: every unit test program under valgrind (memcheck), with
# the project's own programs they start (xlsnap, xlsnap-xenstored, xlsim...)
# traced too; system programs (qemu, qemu-img, coreutils) are not.
#   make check-valgrind [BUILD=...] [VALGRIND_TESTS="test_meta test_qmp"]
# Logs: $(BUILD)/valgrind/<test>/<pid>.log. Suppressions: tests/valgrind/xlsnap.supp.
VALGRIND_TESTS ?= $(UNIT_TESTS)

.PHONY: check-valgrind
check-valgrind: all
	tests/valgrind/run.sh $(abspath $(BUILD)) $(VALGRIND_TESTS)

# make check-valgrind-guest: one guest test (test_create) with every xlsnap it
# runs under valgrind (XLSNAP_WRAPPER, honoured by th_xlsnap()); the test
# itself runs plainly. Slow (guests boot under TCG): not part of make check.
VALGRIND_GUEST_TESTS ?= test_create
.PHONY: check-valgrind-guest
check-valgrind-guest: all
	tests/valgrind/run-guest.sh $(abspath $(BUILD)) $(VALGRIND_GUEST_TESTS)
