# docs/examples: programs that use libsnap as an API caller would, linked
# against libsnap.so (its public API only); tests/scripts/example-caller.sh
# runs them.
EXAMPLE_PROGRAMS := $(BUILD)/docs/examples/snapshot-caller
all: $(EXAMPLE_PROGRAMS)
$(BUILD)/docs/examples/snapshot-caller: $(BUILD)/docs/examples/snapshot-caller.o $(LIBSNAP_SO)
	$(CC) $(ALL_LDFLAGS) -o $@ $< -L$(BUILD) -lsnap $(PKG_LIBS)
