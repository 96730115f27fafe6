"""The ``digitlens`` command: a thin shell over the library.

Each topic registers its commands on :data:`app` from its own module.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="digitlens",
    help="See how a neural network reads handwritten digits: train, predict, explain, look inside.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

from . import train as _train  # noqa: E402,F401  (registers train / predict / info)
from . import preprocess as _preprocess  # noqa: E402,F401  (registers preprocess)
from . import data as _data  # noqa: E402,F401  (registers data download / info)
from . import lab as _lab  # noqa: E402,F401  (registers lab activations / output / all)
from . import playground as _playground  # noqa: E402,F401  (registers playground)
from . import serve as _serve  # noqa: E402,F401  (registers serve)
from . import explain as _explain  # noqa: E402,F401  (registers explain)
from . import ladder as _ladder  # noqa: E402,F401  (registers ladder)
from . import models as _models  # noqa: E402,F401  (registers models restore)
from . import interop as _interop  # noqa: E402,F401  (registers export / import-torch)
from . import mine as _mine  # noqa: E402,F401  (registers mine import/list/export/clear/evaluate)
from . import finetune as _finetune  # noqa: E402,F401  (registers finetune)
from . import evaluate as _evaluate  # noqa: E402,F401  (registers evaluate)

__all__ = ["app"]
