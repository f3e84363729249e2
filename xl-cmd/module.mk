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
