"""`recstream bench`: throughput, latency, per-burst cost and state size, measured in one run.

One concept per module: ``workload`` (what is sent), ``supervisor`` (every child process stopped
by PID), ``loadgen`` / ``probe`` / ``relay`` / ``faust_baseline`` / ``bare_consumer`` (child
processes), ``throughput`` / ``latency`` / ``inprocess`` / ``scaling`` / ``state_size`` (the
measurements), ``report`` (JSON, markdown, PNG) and ``runner`` (the phases in order).
"""
