"""Benchmarks for Hearth: engine tuning sweep, load generator, and the driver that compares Hearth
against llama.cpp's `llama-server` and against the raw OpenVINO engine. Never run in CI."""
