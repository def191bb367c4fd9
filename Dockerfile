# syntax=docker/dockerfile:1.7
# One image recipe for every avatarflow service; build arguments pick what differs (issue 17).
# Build from the repository root (one uv.lock for the whole workspace):
#   docker build --build-arg SERVICE=validator -t avatarflow/validator .
#   docker build --build-arg SERVICE=animator --build-arg EXTRA=cpu --build-arg APT_PACKAGES=espeak-ng \
#                -t avatarflow/animator .
#   docker build --build-arg SERVICE=animator --build-arg EXTRA=gpu --build-arg APT_PACKAGES=espeak-ng \
#                --build-arg VARIANT=gpu -t avatarflow/animator-gpu .
# docker-compose.yml and docs/operations.md list each service's arguments.
#   SERVICE       ingest | validator | matting | animator | notifier (the package avatarflow-<SERVICE>)
#   EXTRA         the package's optional dependency set (the animator's onnxruntime: cpu or gpu); never
#                 matting's `eval` (pymatting, scipy: evaluation only, kept out of the production images)
#   APT_PACKAGES  Debian/Ubuntu packages the service needs at run time (the animator: espeak-ng)
#   VARIANT       cpu (python slim) | gpu (CUDA 12 + cuDNN 9 runtime, the NVIDIA container runtime)
# Runs as uid 10001 with a read-only root filesystem; writable paths: /tmp and /var/cache/avatarflow.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu22.04
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9
ARG VARIANT=cpu

FROM ${UV_IMAGE} AS uv

FROM ${PYTHON_IMAGE} AS base-cpu

# Ubuntu 22.04 ships Python 3.10; the workspace requires 3.11 (deadsnakes build), linked where the
# slim image has it so the venv's interpreter path is the same in both variants.
FROM ${CUDA_IMAGE} AS base-gpu
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends software-properties-common gpg-agent \
    && add-apt-repository -y ppa:deadsnakes/ppa \
    && apt-get install -y --no-install-recommends python3.11 \
    && apt-get purge -y --auto-remove software-properties-common gpg-agent \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s /usr/bin/python3.11 /usr/local/bin/python3.11 \
    && ln -s /usr/bin/python3.11 /usr/local/bin/python
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

FROM base-${VARIANT} AS builder
ARG SERVICE
ARG EXTRA=""
COPY --from=uv /uv /usr/local/bin/uv
# Never download a Python: the venv must use the interpreter the runtime stage has at the same path.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/opt/avatarflow/venv
WORKDIR /src
# 1) Third-party dependencies only: the lock plus every workspace member's manifest (uv reads the
#    whole workspace to check the lock). This layer survives code changes.
COPY pyproject.toml uv.lock ./
COPY libs/contracts/pyproject.toml libs/contracts/
COPY libs/imaging/pyproject.toml libs/imaging/
COPY libs/ops/pyproject.toml libs/ops/
COPY libs/runtime/pyproject.toml libs/runtime/
COPY services/animator/pyproject.toml services/animator/
COPY services/ingest/pyproject.toml services/ingest/
COPY services/matting/pyproject.toml services/matting/
COPY services/notifier/pyproject.toml services/notifier/
COPY services/validator/pyproject.toml services/validator/
RUN --mount=type=cache,target=/root/.cache/uv \
    test -n "${SERVICE}" \
    && uv sync --frozen --no-dev --no-editable --no-install-workspace --package avatarflow-${SERVICE} ${EXTRA:+--extra ${EXTRA}}
# 2) The service and the libraries, installed as regular (non-editable) wheels so the runtime stage
#    needs nothing but the venv (only the libraries the service depends on are installed).
COPY libs/ libs/
COPY services/${SERVICE}/ services/${SERVICE}/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package avatarflow-${SERVICE} ${EXTRA:+--extra ${EXTRA}}

FROM base-${VARIANT} AS runtime
ARG SERVICE
ARG APT_PACKAGES=""
ARG DEBIAN_FRONTEND=noninteractive
RUN if [ -n "${APT_PACKAGES}" ]; then \
        apt-get update \
        && apt-get install -y --no-install-recommends ${APT_PACKAGES} \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && groupadd --system --gid 10001 avatarflow \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin avatarflow \
    && install -d -o 10001 -g 10001 -m 0750 /var/cache/avatarflow
COPY --from=builder /opt/avatarflow/venv /opt/avatarflow/venv
# MPLCONFIGDIR: mediapipe requires matplotlib (our code never imports it), which wants a writable config dir.
# NUMBA_CPU_NAME=generic keeps a numba cache valid on any x86-64 node (a host-specific cache would be
# silently recompiled on a different CPU model); only the matting core uses numba.
ENV PATH=/opt/avatarflow/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    XDG_CACHE_HOME=/var/cache/avatarflow \
    MPLCONFIGDIR=/var/cache/avatarflow/matplotlib \
    NUMBA_CACHE_DIR=/var/cache/avatarflow/numba \
    AVATARFLOW_NUMBA_CACHE_DIR=/var/cache/avatarflow/numba \
    NUMBA_CPU_NAME=generic \
    ORT_DISABLE_TELEMETRY=1 \
    HF_HUB_DISABLE_TELEMETRY=1 \
    DO_NOT_TRACK=1 \
    AVATARFLOW_IMAGE_SERVICE=${SERVICE} \
    AVATARFLOW_SERVICE_NAME=${SERVICE} \
    AVATARFLOW_HTTP_HOST=0.0.0.0 \
    AVATARFLOW_HTTP_PORT=8080
USER 10001:10001
WORKDIR /tmp
# Build-time warm-up, as the runtime user, where the service has one: the matting core compiles its
# numba kernels (several seconds cold) into the image's cache, so a pod starts in about a second (in
# Kubernetes /var/cache/avatarflow is an emptyDir: an init container copies this warm cache in).
RUN python -m avatarflow_runtime.entrypoint --warm-up \
    && if [ "${SERVICE}" = matting ]; then test -n "$(find /var/cache/avatarflow/numba -name '*.nbi' -print -quit)"; fi
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('AVATARFLOW_HTTP_PORT', '8080'), timeout=4)"]
ENTRYPOINT ["python", "-m", "avatarflow_runtime.entrypoint"]
