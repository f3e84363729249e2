# tools/xl: Xen's own xl with the snapshot-* subcommands (issue 17).
#   make xl          fetch Debian's xen source matching libxen-dev (cached in
#                    ~/.cache/xlsnap/xen-src), apply xl-cmd/xen-4.17/*.patch,
#                    build tools/xl against the system's libxenlight, libsnap
#                    and libxlsnapcmd: $(BUILD)/xl/xl
#   make install-xl  install it as $(XL_INSTALL_DIR)/xl, beside the stock xl
#                    (default $(PREFIX)/lib/xlsnap/xl; XL_INSTALL_DIR=/usr/local/sbin
#                    puts it ahead of /usr/sbin/xl in PATH)
XL_INSTALL_DIR ?= $(PREFIX)/lib/xlsnap
.PHONY: xl install-xl
# The archives by name: LIBSNAP_A and XLSNAPCMD_A are defined after this
# fragment is read, and a prerequisite list is expanded as it is read.
xl: $(BUILD)/libsnap.a $(BUILD)/libxlsnapcmd.a
	XL_LDFLAGS="$(ALL_LDFLAGS)" tools/xl/build-xl $(BUILD)

install-xl: xl
	install -d $(DESTDIR)$(XL_INSTALL_DIR)
	install -m 0755 $(BUILD)/xl/xl $(DESTDIR)$(XL_INSTALL_DIR)/xl
