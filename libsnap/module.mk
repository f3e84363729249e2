# libsnap: every .c in libsnap/ is part of the library. docs/design.md says
# what each file owns and who may call whom; tests/scripts/layering.sh fails
# on a cycle between these files, so a new file states its place by what it
# calls.
LIBSNAP_SRCS += $(wildcard libsnap/*.c)
