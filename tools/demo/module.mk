# tools/demo: the guest-agent helper `make demo` uses to wait for the guest and
# run commands inside it (not installed).
PROGRAMS += xlsnap-demo-agent
xlsnap-demo-agent_SRCS := tools/demo/demo_agent.c
xlsnap-demo-agent_LIBS := libsnap
