# syntax=docker/dockerfile:1
# Slim images without torch: the Celery pipeline (also the Chroma server and Flower in
# docker-compose.yml, so chromadb is one version everywhere) and the light client SDK/CLI.
#
#   docker build -f docker/pipeline.Dockerfile --target pipeline -t crossrank-pipeline .
#   docker build -f docker/pipeline.Dockerfile --target client -t crossrank-client .
#   docker run --rm --network host crossrank-client rerank "query" -d "doc one" -d "doc two"

ARG PYTHON_IMAGE=python:3.12-slim

FROM ${PYTHON_IMAGE} AS source
COPY pyproject.toml README.md /src/
COPY common /src/common
COPY protos /src/protos
COPY client /src/client
COPY worker /src/worker
COPY pipeline /src/pipeline

FROM source AS client-build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir /src

FROM source AS pipeline-build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
# Flower serves the optional `monitoring` profile; it is small, and it needs the app's tasks.
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir "/src[pipeline]" "flower>=2.0"

FROM ${PYTHON_IMAGE} AS client
COPY --from=client-build /opt/venv /opt/venv
RUN useradd --create-home --uid 10001 crossrank
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
USER 10001
ENTRYPOINT ["crossrank"]
CMD ["--help"]

FROM ${PYTHON_IMAGE} AS pipeline
COPY --from=pipeline-build /opt/venv /opt/venv
# /data is Chroma's volume when this image runs `chroma run`; owned by the user, so a fresh named
# volume mounted on it is writable.
RUN useradd --create-home --uid 10001 crossrank && mkdir -p /data && chown crossrank /data
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 ANONYMIZED_TELEMETRY=False
USER 10001
CMD ["crossrank", "pipeline", "worker"]
