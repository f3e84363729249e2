# fuzz: libFuzzer targets (clang, -fsanitize=fuzzer,address,undefined).
#   make fuzz [FUZZ_SECONDS=N] [FUZZ_TARGETS="qmp agent"]   build, replay, then fuzz each
#   make fuzz-build                                         build only
#   make fuzz-regress                                       replay seeds + regressions only
# Seeds (fuzz/corpus/<t>/) and inputs of fixed crashes (fuzz/regress/<t>/) are
# committed; what a run finds goes to $(BUILD)/fuzz/corpus/<t>/ and crash
# artifacts to $(BUILD)/fuzz/artifacts/.
FUZZ_CC       ?= clang
FUZZ_SECONDS  ?= 30
FUZZ_ALL      := qmp agent xenstored xsdtree qimg qcow2 meta index journal group domcfg cli
FUZZ_TARGETS  ?= $(FUZZ_ALL)
FUZZ_DIR      := $(BUILD)/fuzz
FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                 -fno-omit-frame-pointer
FUZZ_CFLAGS    = -std=c11 -D_GNU_SOURCE -g -O1 $(WARNFLAGS) $(FUZZ_SAN) \
                 -fsanitize=fuzzer-no-link -Ilibsnap -Itools/xenstored -Itools/qga -Ixl-cmd -Ifuzz \
                 $(PKG_CFLAGS) -MMD -MP
# (fuzz/ is included before libsnap/, xl-cmd/, tools/: their lists are not set yet)
FUZZ_LIBSNAP_OBJS := $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(wildcard libsnap/*.c))
FUZZ_XSD_SRCS     := $(filter-out tools/xenstored/main.c,$(wildcard tools/xenstored/*.c))
FUZZ_CLI_OBJS     := $(patsubst %.c,$(FUZZ_DIR)/obj-cli/%.o,$(wildcard xl-cmd/*.c))

fuzz_qmp_OBJS       := fuzz/fuzz_qmp.c fuzz/fuzz_peer.c
fuzz_agent_OBJS     := fuzz/fuzz_agent.c fuzz/fuzz_peer.c tools/qga/qga_guest.c
fuzz_xenstored_OBJS := fuzz/fuzz_xenstored.c $(FUZZ_XSD_SRCS)
fuzz_xsdtree_OBJS   := fuzz/fuzz_xsdtree.c $(FUZZ_XSD_SRCS)
fuzz_qimg_OBJS      := fuzz/fuzz_qimg.c
fuzz_qcow2_OBJS     := fuzz/fuzz_qcow2.c
fuzz_meta_OBJS      := fuzz/fuzz_meta.c
fuzz_index_OBJS     := fuzz/fuzz_index.c
fuzz_journal_OBJS   := fuzz/fuzz_journal.c
fuzz_group_OBJS     := fuzz/fuzz_group.c
fuzz_domcfg_OBJS    := fuzz/fuzz_domcfg.c
fuzz_cli_OBJS       := fuzz/fuzz_cli.c

# Per-target libFuzzer options (the CLI fuzzer longjmps out of exit(): what
# main had allocated is, as in a real exit, not freed).
FUZZ_OPTS_cli := -detect_leaks=0
FUZZ_OPTS      = -max_len=65536 -timeout=20 -rss_limit_mb=2048

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_DIR)/obj-cli/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -include fuzz/cli_shim.h -Dmain=xlsnap_main \
	    -Dexit=xlsnap_fuzz_exit -Datexit=xlsnap_fuzz_atexit -c -o $@ $<

$(FUZZ_DIR)/libsnap-fuzz.a: $(FUZZ_LIBSNAP_OBJS)
	rm -f $@
	ar rcs $@ $^

define fuzz_rule
$(FUZZ_DIR)/fuzz_$(1): $(fuzz_$(1)_OBJS:%.c=$(FUZZ_DIR)/obj/%.o) $(if $(filter cli,$(1)),$(FUZZ_CLI_OBJS)) $(FUZZ_DIR)/libsnap-fuzz.a
	$$(FUZZ_CC) -fsanitize=fuzzer $(FUZZ_SAN) -o $$@ $$^ $$(PKG_LIBS) -lpthread
endef
$(foreach t,$(FUZZ_ALL),$(eval $(call fuzz_rule,$(t))))

FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)

.PHONY: fuzz-build fuzz-regress
fuzz-build: $(FUZZ_BINS)

# Every committed input once (seeds and fixed crashes): a failure is a regression.
fuzz-regress: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
	    files=$$(find fuzz/corpus/$$t fuzz/regress/$$t -type f 2>/dev/null | sort); \
	    [ -n "$$files" ] || continue; \
	    echo "fuzz-regress $$t: $$(echo "$$files" | wc -l) inputs"; \
	    $(FUZZ_DIR)/fuzz_$$t $(FUZZ_OPTS) $(FUZZ_OPTS_$$t) $$files >$(FUZZ_DIR)/regress-$$t.log 2>&1 || \
	        { tail -n 40 $(FUZZ_DIR)/regress-$$t.log; echo "fuzz-regress $$t: FAILED"; exit 1; }; \
	done

fuzz: fuzz-regress
	@set -e; mkdir -p $(FUZZ_DIR)/artifacts; for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_DIR)/corpus/$$t fuzz/corpus/$$t; \
	    echo "fuzz $$t: $(FUZZ_SECONDS) s"; \
	    $(FUZZ_DIR)/fuzz_$$t $(FUZZ_OPTS) $(FUZZ_OPTS_$$t) -max_total_time=$(FUZZ_SECONDS) \
	        -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t- -print_final_stats=1 \
	        $(FUZZ_DIR)/corpus/$$t fuzz/corpus/$$t >$(FUZZ_DIR)/fuzz-$$t.log 2>&1 || \
	        { tail -n 60 $(FUZZ_DIR)/fuzz-$$t.log; echo "fuzz $$t: CRASH (see $(FUZZ_DIR)/artifacts)"; exit 1; }; \
	    grep -E '^stat::number_of_executed_units' $(FUZZ_DIR)/fuzz-$$t.log | sed "s/^/    /" || true; \
	done
