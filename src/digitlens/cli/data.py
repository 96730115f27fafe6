"""``digitlens data download mnist`` and ``digitlens data info``."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from . import app
from ._common import UserError, console, friendly_errors

data_app = typer.Typer(help="Datasets: download full MNIST, see what is available.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("download")
@friendly_errors
def download(
    name: str = typer.Argument("mnist", help="Which dataset (only 'mnist')."),
    directory: Optional[Path] = typer.Option(None, "--dir", help="Where to put the files "
                                             "(default: the digitlens cache)."),
    mirror: Optional[List[str]] = typer.Option(None, "--mirror", help="Base URL to try "
                                               "(repeatable; replaces the built-in list)."),
    timeout: float = typer.Option(30.0, help="Seconds to wait for a mirror before trying the "
                                  "next."),
    force: bool = typer.Option(False, help="Download again even if verified files exist."),
):
    """Download the four official MNIST files (about 11 MB), checked against known MD5s.

    Mirrors are tried in order; a file appears only once complete and verified.
    """
    from ..data import mnist

    if name.lower() != "mnist":
        raise UserError(f"unknown dataset {name!r}; the only one is 'mnist'")
    mirrors = tuple(mirror) if mirror else mnist.MIRRORS
    tasks: dict[str, int] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), console=console, transient=False) as progress:
        def on_progress(file_name: str, done: int, total: int | None) -> None:
            if file_name not in tasks:
                tasks[file_name] = progress.add_task(file_name, total=total)
            progress.update(tasks[file_name], completed=done, total=total)

        dest = mnist.download_mnist(directory, mirrors=mirrors, checksums=mnist.MD5,
                                    timeout=timeout, progress=on_progress, force=force)
    console.print(f"MNIST is in {dest} (checksums verified); train on it with "
                  f"`digitlens train --data mnist`", highlight=False)


@data_app.command("info")
@friendly_errors
def info(directory: Optional[Path] = typer.Option(None, "--dir", help="MNIST directory to "
                                                  "check (default: the digitlens cache).")):
    """Show the datasets digitlens can use and whether full MNIST is downloaded."""
    from ..data import ATTRIBUTION, load_raw, mnist

    images, _ = load_raw()
    console.print(f"[bold]bundled[/]: {len(images):,} digits shipped with digitlens "
                  f"(4,000 train / 1,000 test). {ATTRIBUTION}", highlight=False)
    d = directory or mnist.default_dir()
    table = Table(title=f"full MNIST in {d}", header_style="bold")
    for col in ("file", "status"):
        table.add_column(col)
    for fname, md5 in mnist.MD5.items():
        p = d / fname
        if not p.exists():
            status = "missing"
        elif mnist.md5_file(p) == md5:
            status = "verified"
        else:
            status = "[red]checksum mismatch[/]"
        table.add_row(fname, status)
    console.print(table)
