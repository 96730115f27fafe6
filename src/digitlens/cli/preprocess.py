"""``digitlens preprocess``: show every step from a photo or drawing to the 28x28 grid."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.text import Text

from . import app
from ._common import UserError, console, friendly_errors


def _switch(name: str, what: str):
    flag = name.replace("_", "-")
    return typer.Option(True, f"--{flag}/--no-{flag}", help=what)


@app.command("preprocess")
@friendly_errors
def preprocess_cmd(
    image: Path = typer.Argument(..., help="A photo, scan or drawing of one digit (PNG, JPEG, "
                                 "BMP, GIF, WebP, TIFF)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write a strip of all steps "
                                       "to this PNG file."),
    decimals: Optional[int] = typer.Option(None, "--decimals", "-d", min=0, max=6,
                                           help="Print the full 28x28 grid of intensities with "
                                           "this many decimals (default: one digit per pixel)."),
    polarity: bool = _switch("polarity", "Make the ink bright (invert dark-on-light)."),
    flatten_lighting: bool = _switch("flatten_lighting", "Remove uneven lighting and shadows."),
    remove_lines: bool = _switch("remove_lines", "Remove ruled or squared paper's lines."),
    threshold: bool = _switch("threshold", "Separate ink from paper (Otsu)."),
    despeckle: bool = _switch("despeckle", "Drop tiny specks."),
    largest_blob: bool = _switch("largest_blob", "Keep only the digit's connected ink."),
    crop: bool = _switch("crop", "Crop to the ink's bounding box."),
    scale: bool = _switch("scale", "Longer side to 20 px keeping the shape (off: stretch to "
                          "28x28)."),
    center: bool = _switch("center", "Put the centre of mass at the centre."),
    normalize: bool = _switch("normalize", "Scale so the brightest ink is 1.0."),
):
    """Turn IMAGE into the 28x28 grid the network reads, showing every step.

    Prints the final grid and one line per step; --out writes a picture of all steps.

    Switch a step off with --no-STEP (e.g. --no-center) to see what it does.
    """
    from ..preprocessing import preprocess

    if not image.is_file():
        raise UserError(f"file not found: {image}")
    switches = dict(polarity=polarity, flatten_lighting=flatten_lighting,
                    remove_lines=remove_lines, threshold=threshold,
                    despeckle=despeckle, largest_blob=largest_blob, crop=crop, scale=scale,
                    center=center, normalize=normalize)
    pre = preprocess(image, **switches)
    if decimals is None:
        console.print(pre.compact_grid(), highlight=False, markup=False)
        console.print("(each character is the intensity x 9, rounded; '.' is exactly 0; "
                      "--decimals 3 prints the numbers)", style="dim", highlight=False)
    else:
        console.print(pre.grid(decimals), highlight=False, markup=False, soft_wrap=True)
    console.print()
    for i, s in enumerate(pre.steps, start=1):
        line = Text.assemble(f"{i:>2}. ", (s.title, "bold"), (" (off)" if not s.enabled else "",
                                                               "dim"), ": ", s.sentence)
        console.print(line, highlight=False)
    if out is not None:
        from ..view.figures.preprocessing import save_steps_png

        save_steps_png(pre, out, sentences=True)
        console.print(f"wrote the steps to {out}", highlight=False)
