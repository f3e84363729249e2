# Compiles the patched tools/xl of $(XEN) into $(OUT)/xl, against the
# system's libxl: called by tools/xl/build-xl (see there).
# The objects are the ones the patched tools/xl/Makefile lists (XL_OBJS),
# the flags those of Xen's tools/Rules.mk and tools/xl/Makefile.
XL_DIR := $(XEN)/tools/xl
XL_MAKEFILE := $(XL_DIR)/Makefile
# XL_OBJS = ..., XL_OBJS += ..., XL_OBJS-$(CONFIG_X86) = ... (x86 here).
XL_OBJS := $(shell sed -n -E 's/^XL_OBJS(-\$$\(CONFIG_X86\))? *[+:]?= *//p' $(XL_MAKEFILE) | \
                   tr ' ' '\n' | grep '\.o$$')
XL_OBJS := $(XL_OBJS:%=$(OUT)/obj/%)

# tools/xl/Makefile's own additions: the snapshot commands' flags and libs.
XLSNAP_CFLAGS := $(shell pkg-config --cflags xlsnapcmd)
XLSNAP_LIBS := $(shell pkg-config --libs xlsnapcmd)

XL_CFLAGS := -std=gnu99 -O2 -g -fno-strict-aliasing -fPIC \
	-Wall -Werror -Wstrict-prototypes \
	-Wno-unused-but-set-variable -Wno-unused-local-typedefs \
	-Wno-format-zero-length -Wmissing-declarations -Wformat-nonliteral -Wshadow \
	-D__XEN_TOOLS__ -D_LARGEFILE_SOURCE -D_LARGEFILE64_SOURCE \
	-I$(XEN)/tools/include -include $(XEN)/tools/config.h \
	$(shell pkg-config --cflags xenlight xlutil xentoollog) $(XLSNAP_CFLAGS) \
	-pthread -MMD -MP

$(OUT)/xl: $(XL_OBJS) $(LIBS_DEPS)
	$(CC) $(XL_LDFLAGS) -pthread -o $@ $(XL_OBJS) $(XLSNAP_LIBS) \
	    -lxlutil -lxenlight -lxentoollog -lyajl

$(OUT)/obj/%.o: $(XL_DIR)/%.c $(XEN)/tools/config.h $(XEN)/.stamp
	@mkdir -p $(dir $@)
	$(CC) $(XL_CFLAGS) -c -o $@ $<

-include $(XL_OBJS:.o=.d)
