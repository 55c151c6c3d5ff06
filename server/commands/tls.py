"""`hearth tls init` (a local CA and a server certificate) and `hearth tls client NAME` (mTLS)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from hub.names import InvalidNameError, check_name
from server.commands.common import add_home_flag
from server.security.tls import TLSError, init_tls, issue_client, tls_files
from server.settings import Settings

if TYPE_CHECKING:
    from server.commands.common import Commands


def register(commands: Commands) -> None:
    """Add `hearth tls`."""
    tls = commands.add_parser("tls", help="TLS certificates", description="Make certificates for `hearth serve --tls`.")
    add_home_flag(tls)
    sub = tls.add_subparsers(dest="tls_command", required=True)
    init = sub.add_parser("init", help="make a local CA (kept if it exists) and a new server certificate")
    init.add_argument("--host", dest="tls_hosts", action="append", default=[], help="another name or address")
    init.add_argument("--days", type=int, default=825, help="validity of the server certificate (default 825)")
    init.set_defaults(run=tls_init)
    client = sub.add_parser("client", help="issue a client certificate for mutual TLS")
    client.add_argument("name")
    client.set_defaults(run=tls_client)


def tls_init(settings: Settings, args: argparse.Namespace) -> int:
    """Write the CA and server certificate under $HEARTH_HOME/tls and say how to use them."""
    files = tls_files(settings)
    try:
        written = init_tls(files, list(args.tls_hosts), days=args.days)
    except (TLSError, OSError, ValueError) as exc:
        print(f"hearth tls init: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    print(
        f"serve with `hearth serve --tls`; clients trust {files.ca_cert} "
        f"(e.g. SSL_CERT_FILE={files.ca_cert} or httpx.Client(verify=...))",
        file=sys.stderr,
    )
    return 0


def tls_client(settings: Settings, args: argparse.Namespace) -> int:
    """Issue a client certificate from the local CA."""
    try:
        check_name(args.name, "file")
        cert, key = issue_client(tls_files(settings), args.name)
    except (TLSError, InvalidNameError, OSError) as exc:
        print(f"hearth tls client: {exc}", file=sys.stderr)
        return 1
    print(cert)
    print(key)
    print(f"serve with --tls-client-ca {tls_files(settings).ca_cert} to require such certificates", file=sys.stderr)
    return 0
