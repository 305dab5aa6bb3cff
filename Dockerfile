# LLM gateway container image.
#
#   docker build -t llm-gateway .
#   docker run --rm -p 8080:8080 --env-file .env llm-gateway
#
# Stage 1 builds the package and its dependencies into a virtualenv; stage 2
# copies only that virtualenv (without pip) onto a clean slim image (no
# compiler, no sources) and runs it as an unprivileged user.
ARG PYTHON_IMAGE=python:3.12-slim

# --------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
# gateway/default_registry (the registry shipped inside the package) is a
# symlink to ../registry: the build needs its target.
COPY registry ./registry
# A regular (non-editable) install: the venv holds the gateway and its runtime
# dependencies only. pip itself is not needed at run time.
RUN pip install --no-cache-dir . \
 && pip uninstall --yes pip

# --------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="llm-gateway" \
      org.opencontainers.image.description="Self-hosted, OpenAI-compatible LLM gateway for OpenAI and Gemini" \
      org.opencontainers.image.licenses="Apache-2.0"

# Fixed ids so Kubernetes securityContext (runAsUser/fsGroup) can match them.
ARG APP_UID=10001
ARG APP_GID=10001
RUN groupadd --system --gid "${APP_GID}" gateway \
 && useradd --system --uid "${APP_UID}" --gid gateway --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin gateway

# GATEWAY_REGISTRY: the registry baked into the image; mount a folder over
#   /app/registry (or point GATEWAY_REGISTRY elsewhere) to use your own; the
#   gateway hot-reloads it.
# PROMETHEUS_MULTIPROC_DIR: where prometheus-client's multiprocess mode keeps
#   its per-worker files so /metrics aggregates all GATEWAY_WORKERS processes.
#   It lives under /tmp, the only path that must be writable (the entrypoint
#   creates and empties it at every start).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GATEWAY_REGISTRY=/app/registry \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8080 \
    GATEWAY_WORKERS=1 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus-multiproc

COPY --from=builder /opt/venv /opt/venv
COPY registry /app/registry
COPY --chmod=0755 deploy/docker/entrypoint.sh /usr/local/bin/gateway-entrypoint

WORKDIR /app
USER ${APP_UID}:${APP_GID}
EXPOSE 8080

# Liveness only (no curl in slim images: use the interpreter we already have).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('GATEWAY_PORT', '8080'), timeout=4); sys.exit(0 if r.status == 200 else 1)"]

ENTRYPOINT ["gateway-entrypoint"]
# Workers come from GATEWAY_WORKERS, the port from GATEWAY_PORT.
CMD ["gateway", "serve", "--host", "0.0.0.0"]
