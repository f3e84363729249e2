# tools/qga: looking inside a guest through its agent (guest-exec, file read,
# fsinfo). Linked into the tests and the demo, never into libsnap.
QGA_GUEST_SRCS := tools/qga/qga_guest.c
TESTLIB_SRCS += $(QGA_GUEST_SRCS)
xlsnap-demo-agent_SRCS += $(QGA_GUEST_SRCS)
