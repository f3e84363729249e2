# make check-xen: xlsnap end-to-end on real Xen 4.17, nested under QEMU TCG
# (tools/xen-testbed, tests/xen/check-xen). Needs root and the Debian archive
# (debootstrap, once; images cached outside the tree). XEN_SMOKE=1 for the
# short set.
.PHONY: check-xen
check-xen: all xl
	tests/xen/check-xen $(abspath $(BUILD))
