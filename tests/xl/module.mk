# tests/xl: support for tests/scripts/xl-patched.sh (the patched xl, make xl).
# xl_nohv.so lets xl start without a hypervisor (see xl_nohv.c). Built
# without sanitizers: it is preloaded into the system's xl build.
XL_NOHV_SO := $(BUILD)/tests/xl_nohv.so
all: $(XL_NOHV_SO)
$(XL_NOHV_SO): tests/xl/xl_nohv.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE -O2 -fPIC -shared $(WARNFLAGS) $(PKG_CFLAGS) -o $@ $<
