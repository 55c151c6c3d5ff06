"""Workflows: YAML-defined chains of models and tools, validated and run as a DAG."""
