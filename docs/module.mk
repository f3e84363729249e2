# docs: man pages, written in roff (checked by tests/scripts/manpages.sh).
MAN_PAGES += docs/xlsnap.1 docs/xl-snapshot.1 docs/libsnap.3 docs/xlsnap-snapshot.5
