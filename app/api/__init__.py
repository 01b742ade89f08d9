"""The HTTP API: FastAPI app factory, dependencies and routes."""
