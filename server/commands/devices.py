"""`hearth devices`: what this machine can run models on."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

import msgspec

from adapters.hardware import format_report, system_info

if TYPE_CHECKING:
    from server.commands.common import Commands
    from server.settings import Settings


def register(commands: Commands) -> None:
    """Add `hearth devices [--json]`."""
    parser = commands.add_parser(
        "devices",
        help="show the CPU, memory and the devices OpenVINO and ONNX Runtime can use",
        description="Show this machine's CPU, memory, and every device the inference runtimes see "
        "(the ids are what --device accepts).",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON (as GET /v1/system)")
    parser.set_defaults(run=devices)


def devices(settings: Settings, args: argparse.Namespace) -> int:
    """Print the hardware report."""
    info = system_info()
    if args.json:
        print(msgspec.json.format(msgspec.json.encode(info).decode()))
    else:
        print(format_report(info))
    return 0
