"""How the CLI shows things: one table style, `--json` for scripts, sizes, and progress bars.

Every listing command (`ps`, `ls`, `show`, `catalog`, ...) prints a rich table to people and, with
`--json`, the same data as JSON for scripts, so the two never drift apart: a command builds its rows
once and hands both forms here. Tables and JSON go to stdout; progress and messages to stderr, so
`hearth ls --json | jq` and `hearth pull m 2>/dev/null` stay clean.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Column, Table
from rich.text import Text


def _emit(renderable: RenderableType) -> None:
    """Print to stdout: styled on a terminal; as plain lines, never cut to a width and without
    trailing blanks, into a pipe or a file, so that scripts see every cell whole."""
    console = Console(highlight=False)
    if console.is_terminal:
        console.print(renderable)
        return
    plain = Console(file=io.StringIO(), width=100_000, no_color=True, highlight=False)
    with plain.capture() as captured:
        plain.print(renderable)
    sys.stdout.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def stderr() -> Console:
    """The console for progress and messages."""
    return Console(stderr=True, highlight=False)


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """`--json`: what every listing command takes."""
    parser.add_argument("--json", action="store_true", help="print JSON for scripts instead of a table")


def size(n: int | None) -> str:
    """Bytes in decimal units, as download tools show them (`1.2 GB`); `-` for unknown."""
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"


def duration(seconds: float | None) -> str:
    """A short duration (`45s`, `12m`, `3.5h`); `-` for none."""
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    return f"{seconds / 60:.0f}m" if seconds < 7200 else f"{seconds / 3600:.1f}h"


def print_json(data: Any) -> None:
    """`data` as indented JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def print_table(columns: Sequence[str], rows: Sequence[Sequence[str]], title: str | None = None) -> None:
    """One table in the CLI's style: upper-case headers, no box, left-aligned cells that never wrap."""
    table = Table(title=title, box=None, header_style="bold", pad_edge=False, title_justify="left")
    for column in columns:
        table.add_column(column.upper(), overflow="fold")
    for row in rows:
        table.add_row(*row)
    _emit(table)


def print_fields(fields: Sequence[tuple[str, str]], title: str | None = None) -> None:
    """A two-column key/value table (`hearth show`)."""
    table = Table(title=title, box=None, show_header=False, pad_edge=False, title_justify="left")
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in fields:
        table.add_row(key, value)
    _emit(table)


class _BytesOnly(ProgressColumn):
    """`column` for byte transfers; blank on a step's spinner line, which has no byte count."""

    def __init__(self, column: ProgressColumn) -> None:
        super().__init__(table_column=column.get_table_column())
        self._column = column

    def render(self, task: Task) -> RenderableType:
        """The wrapped column's cell, or nothing for a task without a total."""
        return self._column.render(task) if task.total is not None else Text("")


class Bars:
    """Byte progress bars (size, speed, ETA) keyed by what is transferred, plus a spinner line for
    steps without a byte count; drawn on stderr, and only when it is a terminal."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, TaskID] = {}
        self._step: TaskID | None = None

    def transfer(self, what: str, done: int, total: int | None) -> None:
        """Report `done` of `total` bytes of `what` (the hub's `ProgressFn`)."""
        task = self._tasks.get(what)
        if task is None:
            task = self._tasks[what] = self._progress.add_task(what, total=total)
        self._progress.update(task, completed=done, total=total)

    def step(self, message: str) -> None:
        """Show `message` as the current step (the hub's `LogFn`); earlier steps stay printed above."""
        if self._progress.disable:
            self._progress.console.print(message, markup=False)
        elif self._step is not None:
            self._progress.console.print(f"[dim]{self._progress.tasks[self._step].description}[/dim]")
            self._progress.update(self._step, description=message)
        else:
            self._step = self._progress.add_task(message, total=None)


@contextmanager
def progress_bars() -> Iterator[Bars]:
    """Bars for one operation; they stay on screen, complete, when it ends."""
    console = stderr()
    progress = Progress(
        SpinnerColumn(),
        # The description gives way (it is cut) before the figures wrap on a narrow terminal.
        TextColumn(
            "{task.description}",
            markup=False,
            style="progress.description",
            table_column=Column(no_wrap=True, overflow="ellipsis"),
        ),
        _BytesOnly(BarColumn(bar_width=30)),
        _BytesOnly(DownloadColumn(table_column=Column(no_wrap=True))),
        _BytesOnly(TransferSpeedColumn(table_column=Column(no_wrap=True))),
        _BytesOnly(TimeRemainingColumn(table_column=Column(no_wrap=True))),
        TimeElapsedColumn(table_column=Column(no_wrap=True)),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    )
    with progress:
        yield Bars(progress)
