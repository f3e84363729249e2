# xl-cmd: the snapshot-* commands and the xlsnap program.
# libxlsnapcmd.a holds the commands (options, calls into libsnap, output):
# the xlsnap program and the patched xl (make xl, tools/xl/) both link it.
XLSNAPCMD_SRCS := xl-cmd/xlsnap_snapshot.c xl-cmd/xlsnap_output.c
XLSNAPCMD_A := $(BUILD)/libxlsnapcmd.a
$(XLSNAPCMD_A): $(XLSNAPCMD_SRCS:%.c=$(BUILD)/%.o)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

PROGRAMS += xlsnap
INSTALL_PROGRAMS += xlsnap
xlsnap_SRCS := xl-cmd/xlsnap.c xl-cmd/xlsnap_cmdtable.c
xlsnap_LIBS := $(XLSNAPCMD_A) libsnap

# For an xl built from Xen's tree with the series (its Makefile asks
# pkg-config for xlsnapcmd): the archive, the two headers, xlsnapcmd.pc.
.PHONY: install-xlsnapcmd
install: install-xlsnapcmd
install-xlsnapcmd: $(XLSNAPCMD_A)
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)
	install -m 0644 $(XLSNAPCMD_A) $(DESTDIR)$(LIBDIR)/libxlsnapcmd.a
	install -m 0644 xl-cmd/xlsnap_cmd.h xl-cmd/xlsnap_cmdtable.h $(DESTDIR)$(INCLUDEDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|; s|@LIBDIR@|$(LIBDIR)|; s|@INCLUDEDIR@|$(INCLUDEDIR)|; s|@VERSION@|$(SNAP_VERSION)|' \
	    xl-cmd/xlsnapcmd.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/xlsnapcmd.pc
