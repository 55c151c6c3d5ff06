"""Bounds on what one request may make the server parse, check or compile (docs/security.md)."""
