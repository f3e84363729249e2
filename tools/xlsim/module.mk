# xlsim: QEMU guests as simulated Xen domains (`xl create` stand-in).
PROGRAMS += xlsim
INSTALL_PROGRAMS += xlsim
xlsim_SRCS := $(wildcard tools/xlsim/*.c)
xlsim_LIBS := libsnap
