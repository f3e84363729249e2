# xl-cmd: the xlsnap command.
PROGRAMS += xlsnap
INSTALL_PROGRAMS += xlsnap
xlsnap_SRCS := $(wildcard xl-cmd/*.c)
xlsnap_LIBS := libsnap
