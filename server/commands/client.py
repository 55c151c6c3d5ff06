"""What the CLI's client commands (`hearth ps`, `hearth workflow`) send to a running server."""

from __future__ import annotations

import os


def auth_headers() -> dict[str, str]:
    """`Authorization: Bearer $HEARTH_API_KEY` once the server requires keys (none when unset)."""
    key = os.environ.get("HEARTH_API_KEY", "").strip()
    return {"Authorization": f"Bearer {key}"} if key else {}
