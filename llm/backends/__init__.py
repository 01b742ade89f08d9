"""Chat-model backends, one per module; ``llm.registry`` picks one by ``kind``."""
