"""Fine-tuning the answer model: datasets, LoRA/QLoRA training, GGUF export, vLLM adapters.

Heavy libraries (torch, transformers, peft, bitsandbytes, gguf) are imported
inside the functions that need them, never at import time.
"""
