"""`hearth pull / import / convert / ls / show / rm / gc / verify / catalog`: the model hub's CLI.

Exit codes: 0 done; 1 the operation failed (download, conversion, a verify mismatch); 2 bad usage
(an invalid name, an unknown model, options that do not fit).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, get_args

import msgspec

from hub.catalog import Catalog, local_targets, suitable_recipes
from hub.errors import HubFailure
from hub.manifest import Manifest, encode
from hub.operations import convert_artifact, converters_available, import_path, pull
from hub.options import (
    ConvertFormat,
    ConvertOptions,
    ConvertPrecision,
    PullFormat,
    PullOptions,
    PullTarget,
    from_arguments,
)
from hub.store import ArtifactStore
from server.commands.common import add_home_flag
from server.commands.output import add_json_flag, print_fields, print_json, print_table, progress_bars, size

if TYPE_CHECKING:
    from server.commands.common import Commands
    from server.settings import Settings

OK, FAILED, USAGE = 0, 1, 2


def store_of(settings: Settings) -> ArtifactStore:
    """The artifact store under the settings' HEARTH_HOME."""
    return ArtifactStore(settings.models_dir)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run(action: str, op: Callable[[], object]) -> int:
    """Run `op()`, turning the hub's errors into a message and an exit code."""
    try:
        result = op()
    except (HubFailure, OSError) as exc:
        _say(f"hearth {action}: {exc}")
        return USAGE if isinstance(exc, HubFailure) and exc.bad_request else FAILED
    if isinstance(result, Manifest):
        kind = " ".join(part for part in (result.format, result.precision) if part)
        print(f"installed {result.name} ({kind}, {size(result.size)})")
    return result if isinstance(result, int) else OK


def _pull(settings: Settings, args: argparse.Namespace) -> int:
    with progress_bars() as bars:
        return _run(
            "pull",
            lambda: pull(store_of(settings), from_arguments(PullOptions, args), log=bars.step, transfer=bars.transfer),
        )


def _import(settings: Settings, args: argparse.Namespace) -> int:
    with progress_bars() as bars:
        return _run(
            "import",
            lambda: import_path(
                store_of(settings),
                Path(args.path),
                name=args.name,
                task=args.task,
                format=args.format,
                precision=args.precision,
                target=args.target,
                log=bars.step,
            ),
        )


def _convert(settings: Settings, args: argparse.Namespace) -> int:
    with progress_bars() as bars:
        return _run(
            "convert",
            lambda: convert_artifact(store_of(settings), from_arguments(ConvertOptions, args), log=bars.step),
        )


def _ls(settings: Settings, args: argparse.Namespace) -> int:
    store = store_of(settings)
    artifacts, damaged = store.artifacts(), store.damaged()
    if args.json:
        print_json([msgspec.to_builtins(m) | {"size": m.size} for m in artifacts] + msgspec.to_builtins(damaged))
        return OK
    rows: list[tuple[str, ...]] = []
    for m in artifacts:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(m.created))
        source = m.source.ref + (f"@{m.source.revision[:12]}" if m.source.revision else "")
        rows.append((m.name, m.format, m.precision or "-", ",".join(m.devices), size(m.size), source, created))
    for d in damaged:
        rows.append((d.name, "DAMAGED", "-", "-", "-", d.reason[:60], "-"))
    print_table(("name", "format", "precision", "devices", "size", "source", "created"), rows)
    return OK


def _show(settings: Settings, args: argparse.Namespace) -> int:
    def show() -> None:
        m = store_of(settings).get(args.name)
        if args.json:
            sys.stdout.write(encode(m).decode())
            return
        source = f"{m.source.kind} {m.source.ref}" + (f"@{m.source.revision}" if m.source.revision else "")
        fields = [
            ("name", m.name),
            ("task", m.task),
            ("format", m.format),
            ("precision", m.precision or "-"),
            ("devices", ", ".join(m.devices)),
            ("size", size(m.size)),
            ("entry", m.entry),
            ("source", source),
            ("created", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(m.created))),
        ]
        if m.conversion is not None:
            fields.append(("conversion", " ".join(f"{k}={v}" for k, v in msgspec.to_builtins(m.conversion).items())))
        fields += [("file", f"{f.path}  {size(f.size)}  sha256:{f.sha256[:16]}") for f in m.files]
        print_fields(fields)

    return _run("show", show)


def _rm(settings: Settings, args: argparse.Namespace) -> int:
    def rm() -> None:
        for name in args.names:
            store_of(settings).remove(name)
            print(f"removed {name}")

    return _run("rm", rm)


def _gc(settings: Settings, args: argparse.Namespace) -> int:
    report = store_of(settings).gc()
    for path in report.removed:
        print(f"removed {path}")
    print(f"freed {size(report.freed_bytes)}")
    return OK


def _verify(settings: Settings, args: argparse.Namespace) -> int:
    def verify() -> int:
        store = store_of(settings)
        names = (
            [args.name]
            if args.name
            else sorted([m.name for m in store.artifacts()] + [d.name for d in store.damaged()])
        )
        bad = 0
        with progress_bars() as bars:
            broken = {d.name for d in store.damaged()}
            # A damaged artifact's size is unknown (its manifest is unreadable): it counts as 0 bytes.
            sizes = {name: 0 if name in broken else store.get(name).size for name in names}
            total, done = sum(sizes.values()), 0
            for name in names:
                bars.transfer("verifying", done, total)
                problems = store.verify(name)
                done += sizes[name]
                bars.transfer("verifying", done, total)
                print(f"{name}: {'ok' if not problems else 'MISMATCH'}")
                for problem in problems:
                    print(f"  {problem}")
                bad += bool(problems)
        return FAILED if bad else OK

    return _run("verify", verify)


def _catalog(settings: Settings, args: argparse.Namespace) -> int:
    targets = local_targets()
    can_convert = converters_available()
    installed = {m.name for m in store_of(settings).artifacts()}
    entries = [e for e in Catalog.load().entries if not args.kind or args.kind in e.kinds]
    fits = {e.name: [r.label for r in suitable_recipes(e, targets, can_convert)] for e in entries}
    if args.json:
        print_json(
            [msgspec.to_builtins(e) | {"installed": e.name in installed, "suits": fits[e.name]} for e in entries]
        )
        return OK
    rows = [
        (
            "*" if e.name in installed else "",
            e.name,
            "/".join(e.kinds),
            e.params,
            f"{e.size_gb:.2f} GB",
            e.license + (" (gated)" if e.gated else ""),
            fits[e.name][0] if fits[e.name] else "none (install hearth[convert])",
        )
        for e in entries
    ]
    print(f"this machine: {', '.join(targets)}; converters {'installed' if can_convert else 'not installed'}")
    print_table(("", "name", "kinds", "params", "size", "license", "suits this machine"), rows)
    return OK


def register(commands: Commands) -> None:
    """Add the hub's subcommands."""
    home = argparse.ArgumentParser(add_help=False)
    add_home_flag(home)

    p = commands.add_parser("pull", parents=[home], help="download (and convert) a catalog model or HF repo")
    p.add_argument("model", help="a catalog name (see `hearth catalog`) or a Hugging Face repo id")
    p.add_argument("--name", help="name of the installed artifact")
    p.add_argument("--format", choices=get_args(PullFormat))
    p.add_argument("--precision", help="fp16, int8, int4, or a GGUF quantization such as q4_k_m")
    p.add_argument("--target", choices=get_args(PullTarget), help="default: best for this machine")
    p.add_argument("--revision", help="branch, tag or commit of the repo (default main; recorded as a commit)")
    p.set_defaults(run=_pull)

    p = commands.add_parser("import", parents=[home], help="install a local GGUF, HF folder, SavedModel, IR or ONNX")
    p.add_argument("path")
    p.add_argument("--name", help="name of the artifact (default: from the path)")
    p.add_argument("--task", choices=["text-generation", "embeddings"], default="text-generation")
    p.add_argument("--format", choices=["openvino", "onnx"], help="convert to this format right away")
    p.add_argument("--precision", help="precision of that conversion (default int8; fp16 for embeddings)")
    p.add_argument("--target", default="cpu", help="device the conversion is for (default cpu)")
    p.set_defaults(run=_import)

    p = commands.add_parser("convert", parents=[home], help="convert an installed artifact to a new one")
    p.add_argument("model", metavar="name")
    p.add_argument("--format", choices=get_args(ConvertFormat), required=True)
    p.add_argument("--precision", choices=get_args(ConvertPrecision), required=True)
    p.add_argument("--device", default="cpu", help="cpu, gpu, npu, dml or cuda (default cpu)")
    p.add_argument("--symmetric", action="store_true", help="symmetric weights (what NPUs want)")
    p.add_argument("--output", dest="name", help="name of the new artifact (default NAME-FORMAT-PRECISION)")
    p.set_defaults(run=_convert)

    p = commands.add_parser("ls", parents=[home], help="list installed artifacts")
    add_json_flag(p)
    p.set_defaults(run=_ls)
    p = commands.add_parser("show", parents=[home], help="show an artifact: format, source, files")
    p.add_argument("name")
    add_json_flag(p)
    p.set_defaults(run=_show)
    p = commands.add_parser("rm", parents=[home], help="remove artifacts")
    p.add_argument("names", nargs="+")
    p.set_defaults(run=_rm)
    commands.add_parser("gc", parents=[home], help="remove partial installs and stray files").set_defaults(run=_gc)
    p = commands.add_parser("verify", parents=[home], help="re-hash artifacts; exit 1 on any mismatch")
    p.add_argument("name", nargs="?")
    p.set_defaults(run=_verify)
    p = commands.add_parser("catalog", parents=[home], help="curated models and the variants that suit this machine")
    p.add_argument("--kind", choices=["chat", "code", "embeddings", "document"])
    add_json_flag(p)
    p.set_defaults(run=_catalog)
