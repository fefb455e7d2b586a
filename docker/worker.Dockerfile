# syntax=docker/dockerfile:1
# The gRPC worker (`crossrank serve`). torch's CUDA wheels bring their own CUDA libraries, so the
# NVIDIA "base" image (CUDA's driver requirements and the container toolkit's variables only) is
# enough and the multi-GB devel image is never needed. The build stage has pip and python3-venv;
# the runtime stage gets only the finished virtualenv.
#
#   docker build -f docker/worker.Dockerfile -t crossrank-worker .
#
# torch 2.13.0 from PyPI is built for CUDA 13.0 and so needs an NVIDIA driver >= 580. For an older
# driver, take torch from a CUDA 12 index and a matching base image, e.g.
#   --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 \
#   --build-arg BASE_IMAGE=nvidia/cuda:12.8.1-base-ubuntu24.04
# CPU image (docker-compose.cpu.yml does this):
#   --build-arg BASE_IMAGE=ubuntu:24.04 --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu
# A base on another Ubuntu release needs its Python series too, e.g. 22.04:
#   --build-arg PYTHON_SERIES=3.10

ARG BASE_IMAGE=nvidia/cuda:13.0.2-base-ubuntu24.04
# The Python series of the base image's Ubuntu release (24.04: 3.12). Both stages install it
# pinned: the virtualenv built in one runs on the interpreter of the other.
ARG PYTHON_SERIES=3.12

FROM ${BASE_IMAGE} AS build
ARG PYTHON_SERIES
ARG TORCH_VERSION=2.13.0
# Empty: PyPI (or whatever pip is configured with).
ARG TORCH_INDEX=
ENV DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends "python3=${PYTHON_SERIES}.*" "python3-venv=${PYTHON_SERIES}.*" \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# torch first, in its own layer: the largest download, and it changes least often.
RUN if [ -n "$TORCH_INDEX" ]; then export PIP_INDEX_URL="$TORCH_INDEX"; fi \
 && pip install --no-cache-dir "torch==${TORCH_VERSION}"
COPY pyproject.toml README.md /src/
COPY common /src/common
COPY protos /src/protos
COPY client /src/client
COPY worker /src/worker
COPY pipeline /src/pipeline
# torch is already there, so the worker extra keeps this build of it.
RUN pip install --no-cache-dir "/src[worker]"

FROM ${BASE_IMAGE} AS runtime
ARG PYTHON_SERIES
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends "python3=${PYTHON_SERIES}.*" \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/venv /opt/venv
COPY docker/grpc_health_check.py /opt/crossrank/grpc_health_check.py
# HF_HOME is the model cache volume in docker-compose.yml; made here and owned by the user, so a
# fresh named volume mounted on it is writable.
RUN useradd --create-home --uid 10001 crossrank && mkdir -p /models && chown crossrank /models
ENV PATH=/opt/venv/bin:$PATH \
    HF_HOME=/models \
    PYTHONUNBUFFERED=1
# DL3064 reads TOKEN in the name as a secret; it is the tokenizers library's threading switch.
# hadolint ignore=DL3064
ENV TOKENIZERS_PARALLELISM=false
# The uid useradd gave: numeric, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 10001
# gRPC, HTTP gateway, Prometheus metrics (each off unless its CROSSRANK_*_PORT is set).
EXPOSE 50051 8080 9100
HEALTHCHECK --interval=10s --timeout=5s --start-period=600s --retries=6 \
    CMD ["python", "/opt/crossrank/grpc_health_check.py"]
CMD ["crossrank", "serve"]
