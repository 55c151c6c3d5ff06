"""Pack the console built by Vite (console/dist) into server/console/static (`make console`)."""

from __future__ import annotations

from pathlib import Path

from server.console.bundle import pack

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    source = ROOT / "console"
    pack(source / "dist", source / "node_modules" / "swagger-ui-dist", source)
    print(f"packed the console into {ROOT / 'server' / 'console' / 'static'}")
