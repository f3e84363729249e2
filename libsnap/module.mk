# libsnap: every .c in libsnap/ is part of the library.
LIBSNAP_SRCS += $(wildcard libsnap/*.c)
