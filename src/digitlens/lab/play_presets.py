"""One playground preset per rule of thumb the lab judges (the keys of
:data:`digitlens.lab.verdicts.RULES`): one click on the page, or ``digitlens playground --preset
NAME``, trains the networks that show the rule happen.

At full speed each takes a few seconds on 2 cores (0.9 to 3.1 s measured for the five, one
session each, no cache); slow motion only adds waiting (half a second per checkpoint on the page).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LabError
from .playground import Budget, PlayConfig, Playground


@dataclass(frozen=True)
class PlayPreset:
    """A named playground and what to look at while it runs."""

    name: str
    rule: str  # the verdict id it shows
    title: str
    look: str  # what to watch, in a sentence
    playground: Playground


def _pg(name: str, *configs: PlayConfig, **budget) -> Playground:
    return Playground(tuple(configs), Budget(**budget), preset=name)


_M = PlayConfig.make

PLAY_PRESETS: dict[str, PlayPreset] = {p.name: p for p in (
    PlayPreset("speed", "speed", "ReLU against sigmoid and tanh, two hidden layers",
               "Which curve climbs first? Count epochs, then compare the seconds.",
               _pg("speed", _M("relu", depth=2, width=64), _M("sigmoid", depth=2, width=64),
                   _M("tanh", depth=2, width=64))),
    PlayPreset("width", "width", "Narrow and wide: 8 and 64 units, ReLU and sigmoid",
               "Does ReLU need more units? Compare the two narrow networks, then the two wide "
               "ones, and count ReLU's dead units.",
               _pg("width", _M("relu", depth=1, width=8), _M("sigmoid", depth=1, width=8),
                   _M("relu", depth=1, width=64), _M("sigmoid", depth=1, width=64))),
    PlayPreset("range", "range", "Sigmoid against tanh: 0..1 and -1..1",
               "Read each network's activation range under its curves, and the share of "
               "values sitting in the flat tails.",
               _pg("range", _M("sigmoid", depth=1, width=32), _M("tanh", depth=1, width=32))),
    PlayPreset("output", "output", "The output layer: softmax + cross-entropy, a sigmoid, "
               "ReLU + squared error",
               "Same ReLU hidden layer, three output layers: which learns, which gets stuck?",
               _pg("output", _M("relu", depth=1, width=64),
                   _M("relu", depth=1, width=64, head="sigmoid_bce"),
                   _M("relu", depth=1, width=64, head="relu_mse"))),
    PlayPreset("depth", "depth", "Four hidden layers: ReLU, tanh, sigmoid",
               "Watch the gradient per layer: under sigmoid the first layer's bar shrinks to "
               "almost nothing, and its accuracy stalls.",
               _pg("depth", _M("relu", depth=4, width=64), _M("tanh", depth=4, width=64),
                   _M("sigmoid", depth=4, width=64))),
)}


def play_preset(name: str) -> PlayPreset:
    """The preset ``name`` (one of :data:`PLAY_PRESETS`)."""
    if name not in PLAY_PRESETS:
        raise LabError(f"preset must be one of {list(PLAY_PRESETS)}, got {name!r}")
    return PLAY_PRESETS[name]


__all__ = ["PLAY_PRESETS", "PlayPreset", "play_preset"]
