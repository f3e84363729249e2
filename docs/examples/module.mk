# docs/examples: programs that use libsnap as an API caller would, linked
# against libsnap.so (its public API only); tests/scripts/example-caller.sh
# runs them.
EXAMPLE_PROGRAMS := $(BUILD)/docs/examples/snapshot-caller
all: $(EXAMPLE_PROGRAMS)
# (LIBSNAP_SO is defined after the fragments are read: spelled out here.)
$(BUILD)/docs/examples/snapshot-caller: $(BUILD)/docs/examples/snapshot-caller.o \
		$(BUILD)/libsnap.so.$(SNAP_VERSION)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(PKG_LIBS)
