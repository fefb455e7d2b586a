"""The worker's HTTP gateway: Cohere- and TEI-compatible routes over the same engine (FastAPI, uvicorn)."""
