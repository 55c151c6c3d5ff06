"""Ollama's native API under /api (docs/ollama-compat.md)."""
