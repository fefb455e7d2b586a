"""Helpers the tests share: `from support.workers import serving_worker`. `tests/` is on sys.path
(pyproject's `pythonpath`), so no test edits sys.path to find them. Fixtures stay in the conftest.py files;
plain functions, classes and data live here, one module per idea:

- paths: where the repository and the shared models and data are
- workers: real workers: settings for an in-process one, `crossrank serve` as a subprocess
- clients: both SDK clients behind one blocking interface
- redis_server: the Redis the tests use, and the database each test area takes on it
- credentials: a bearer token and a self-signed TLS certificate
- tiny_models: tiny random models on disk, loaded like any model
- dev_tools: the dev extra's pinned command-line tools (buf, docker-compose, grpcurl, hadolint)
- compose: the compose files as Docker Compose resolves them
- kustomize: deploy/k8s's overlays as `kubectl kustomize` renders them
- markdown: a guide's code blocks and shell commands
- pipeline: the pipeline's real parts as processes (Celery workers, `chroma run`) and its test data
- faults: what the fault tests kill and restart, and the check that a job ended exact
- evaluation: a small hand-made BEIR folder and the eval command run in process
- batching: a stand-in model that echoes its inputs, with gates that hold the batcher
"""
