#!/bin/sh
# Container entrypoint: prepare the prometheus-client multiprocess directory,
# then replace this shell with the real command (so it is PID 1 and receives
# SIGTERM directly for a graceful drain).
#
# The directory must exist before the first metric is touched, and must be
# emptied at every start: files left by the processes of a previous run (a
# container restart keeps /tmp, a Kubernetes container restart keeps its
# emptyDir) would otherwise be summed into the new run's metrics.
set -eu

if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    mkdir -p "${PROMETHEUS_MULTIPROC_DIR}"
    find "${PROMETHEUS_MULTIPROC_DIR}" -mindepth 1 -maxdepth 1 -name '*.db' -type f -delete
fi

exec "$@"
