# xlsnap — top-level, non-recursive build.
#
# Each directory contributes a fragment (`module.mk`) that is included here,
# so components can be added without editing this file. Fragments append to:
#   LIBSNAP_SRCS   sources of libsnap (static + shared library)
#   PROGRAMS       programs built into $(BUILD)/ (each with <name>_SRCS, <name>_LIBS)
#   UNIT_TESTS     C test programs built into $(BUILD)/tests/ (each <name>_SRCS, <name>_LIBS);
#                  `make check` runs them in the plain build and again under ASan+UBSan
#   GUEST_TESTS    C test programs that boot real guests; run once, in the sanitizer build
#   CHECK_SCRIPTS  shell test scripts run by `make check` (against the plain build)
#   INSTALL_PROGRAMS  programs `make install` puts in $(BINDIR)
#   INSTALL_LIBEXEC   helper programs `make install` puts in $(LIBEXECDIR)/xlsnap
#   MAN_PAGES      man pages to install (path relative to the top)
#
# The sanitizer build (ASan + UBSan) lives in $(BUILD)/asan and is made by
# re-invoking make with SAN=1.

PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
LIBEXECDIR ?= $(PREFIX)/libexec
MANDIR     ?= $(PREFIX)/share/man
DATADIR    ?= $(PREFIX)/share

SNAP_VERSION := 1.0.0
SNAP_SOMAJOR := 1

CC      ?= cc
SAN     ?= 0
ifeq ($(SAN),1)
BUILD   ?= build/asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPTFLAGS := -O1 -g
else
BUILD   ?= build
SANFLAGS :=
OPTFLAGS := -O2 -g
endif
# One spelling of the build directory, whatever the caller passed (make fuzz
# vs. fuzz-smoke.sh's BUILD=/abs/path): the targets in the generated .d files
# must match the rules' targets, or header changes leave objects stale.
override BUILD := $(abspath $(BUILD))

PKGS      := xenlight xenstore xlutil xentoollog yajl
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARNFLAGS := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes
CFLAGS   ?= $(OPTFLAGS)
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -fPIC $(WARNFLAGS) $(SANFLAGS) $(CFLAGS) \
             -Ilibsnap $(TEST_INCLUDES) $(PKG_CFLAGS) -MMD -MP
ALL_LDFLAGS = $(SANFLAGS) $(LDFLAGS)

LIBSNAP_SRCS  :=
PROGRAMS      :=
UNIT_TESTS    :=
GUEST_TESTS   :=
CHECK_SCRIPTS :=
INSTALL_PROGRAMS :=
INSTALL_LIBEXEC  :=
MAN_PAGES     :=

.DEFAULT_GOAL := all

include $(sort $(wildcard */module.mk */*/module.mk))

LIBSNAP_OBJS := $(LIBSNAP_SRCS:%.c=$(BUILD)/%.o)
LIBSNAP_A    := $(BUILD)/libsnap.a
LIBSNAP_SO   := $(BUILD)/libsnap.so.$(SNAP_VERSION)

# obj_of(name, var): the objects of program/test <name>.
obj_of = $(patsubst %.c,$(BUILD)/%.o,$($(1)_SRCS))

PROGRAM_BINS := $(PROGRAMS:%=$(BUILD)/%)
TEST_BINS    := $(UNIT_TESTS:%=$(BUILD)/tests/%) $(GUEST_TESTS:%=$(BUILD)/tests/%)

.PHONY: all check check-unit demo bench fuzz install clean deps format check-valgrind check-valgrind-guest check-xen

all: $(LIBSNAP_A) $(LIBSNAP_SO) $(PROGRAM_BINS) $(TEST_BINS)

# Only test code sees the test harness's headers: the product never includes them.
# The tests and the demo look inside guests with tools/qga (not in libsnap).
$(BUILD)/tests/%.o: TEST_INCLUDES := -Itests/lib -Itools/qga
$(BUILD)/tools/demo/%.o: TEST_INCLUDES := -Itools/qga

# libsnap looks for its helper programs there first (libsnap/snap_watchdog.h).
$(BUILD)/libsnap/snap_watchdog.o: ALL_CFLAGS += -DSNAP_LIBEXECDIR='"$(LIBEXECDIR)/xlsnap"'

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(LIBSNAP_A): $(LIBSNAP_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

# Only the API of libsnap.h is exported (libsnap/libsnap.map); the static
# library keeps everything for the in-tree tools and tests.
$(LIBSNAP_SO): $(LIBSNAP_OBJS) libsnap/libsnap.map
	$(CC) -shared -Wl,-soname,libsnap.so.$(SNAP_SOMAJOR) -Wl,--version-script=libsnap/libsnap.map \
	    $(ALL_LDFLAGS) -o $@ $(LIBSNAP_OBJS) $(PKG_LIBS) -lpthread
	ln -sf libsnap.so.$(SNAP_VERSION) $(BUILD)/libsnap.so.$(SNAP_SOMAJOR)
	ln -sf libsnap.so.$(SNAP_VERSION) $(BUILD)/libsnap.so

# <name>_LIBS: "libsnap" and/or archives of $(BUILD) (linked before libsnap.a).
define program_rule
$(BUILD)/$(1): $(call obj_of,$(1)) $(filter %.a,$($(1)_LIBS)) $(if $(filter libsnap,$($(1)_LIBS)),$(LIBSNAP_A))
	$$(CC) $$(ALL_LDFLAGS) -o $$@ $(call obj_of,$(1)) $(filter-out libsnap,$($(1)_LIBS)) $(if $(filter libsnap,$($(1)_LIBS)),$(LIBSNAP_A)) $$(PKG_LIBS) -lpthread
endef
$(foreach p,$(PROGRAMS),$(eval $(call program_rule,$(p))))

TESTLIB_A := $(BUILD)/tests/libth.a
$(TESTLIB_A): $(TESTLIB_SRCS:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

define test_rule
$(BUILD)/tests/$(1): $(call obj_of,$(1)) $(TESTLIB_A) $(LIBSNAP_A)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(ALL_LDFLAGS) -o $$@ $(call obj_of,$(1)) $(TESTLIB_A) $(LIBSNAP_A) $($(1)_LIBS) $$(PKG_LIBS) -lpthread
endef
$(foreach t,$(UNIT_TESTS) $(GUEST_TESTS),$(eval $(call test_rule,$(t))))

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---------------------------------------------------------------- checks
# `make check`: install what is missing, build, run every suite plainly and the
# unit tests again under ASan+UBSan.
check: deps
	$(MAKE) all
	$(MAKE) SAN=1 all
	tests/run --plain $(abspath build) --asan $(abspath build/asan) \
	    --unit "$(UNIT_TESTS)" --guest "$(GUEST_TESTS)" --scripts "$(CHECK_SCRIPTS)"

# Quick loop for developers: one build, unit tests only.
check-unit: all
	tests/run --plain $(abspath $(BUILD)) --unit "$(UNIT_TESTS)"

deps:
	@tools/deps.sh

demo: deps all xl
	@XLSNAP_BUILDDIR=$(abspath $(BUILD)) tools/demo.sh

bench: deps all
	@XLSNAP_BUILDDIR=$(abspath $(BUILD)) tools/bench.sh

format:
	clang-format -i $(shell git ls-files '*.c' '*.h')

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(MANDIR)
	$(foreach p,$(INSTALL_PROGRAMS),install -m 0755 $(BUILD)/$(p) $(DESTDIR)$(BINDIR)/$(p);)
	install -d $(DESTDIR)$(LIBEXECDIR)/xlsnap
	$(foreach p,$(INSTALL_LIBEXEC),install -m 0755 $(BUILD)/$(p) $(DESTDIR)$(LIBEXECDIR)/xlsnap/$(p);)
	install -m 0644 $(LIBSNAP_A) $(DESTDIR)$(LIBDIR)/libsnap.a
	install -m 0755 $(LIBSNAP_SO) $(DESTDIR)$(LIBDIR)/libsnap.so.$(SNAP_VERSION)
	ln -sf libsnap.so.$(SNAP_VERSION) $(DESTDIR)$(LIBDIR)/libsnap.so.$(SNAP_SOMAJOR)
	ln -sf libsnap.so.$(SNAP_VERSION) $(DESTDIR)$(LIBDIR)/libsnap.so
	install -m 0644 libsnap/libsnap.h $(DESTDIR)$(INCLUDEDIR)/libsnap.h
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|; s|@VERSION@|$(SNAP_VERSION)|' \
	    libsnap/libsnap.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/libsnap.pc
	$(foreach m,$(MAN_PAGES),install -d $(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(m))) && \
	    install -m 0644 $(m) $(DESTDIR)$(MANDIR)/man$(subst .,,$(suffix $(m)))/;)
	install -d $(DESTDIR)$(DATADIR)/bash-completion/completions
	install -m 0644 tools/completion/xlsnap.bash $(DESTDIR)$(DATADIR)/bash-completion/completions/xlsnap

clean:
	rm -rf build
