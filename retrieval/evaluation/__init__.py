"""Retrieval evaluation: IR metrics and a runner for BEIR-format datasets."""
