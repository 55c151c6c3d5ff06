"""Security: API keys and scopes, the audit log, TLS, and the safe-defaults checks (docs/security.md)."""
