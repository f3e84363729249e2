# xlsnap-xenstored: the project's own xenstore daemon (pure C, no libxenstore).
PROGRAMS += xlsnap-xenstored
INSTALL_PROGRAMS += xlsnap-xenstored
xlsnap-xenstored_SRCS := tools/xenstored/wire.c tools/xenstored/store.c \
    tools/xenstored/txn.c tools/xenstored/watch.c tools/xenstored/conn.c \
    tools/xenstored/ops.c tools/xenstored/domain.c tools/xenstored/persist.c \
    tools/xenstored/log.c tools/xenstored/main.c
xlsnap-xenstored_LIBS :=
