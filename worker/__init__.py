"""crossrank.worker: the GPU-pinned gRPC reranker (needs the `crossrank[worker]` extra)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("crossrank")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
