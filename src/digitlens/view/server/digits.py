"""Digits to try: ``GET /api/digits/random``, a bundled test digit the models never trained on."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Depends, Query

from .errors import errors_doc
from .state import ServerContext, context

router = APIRouter()


@router.get("/api/digits/random", tags=["digits"], responses=errors_doc(422))
def random_digit(label: int | None = Query(None, ge=0, le=9, description="only this digit"),
                 seed: int | None = Query(None, ge=0, description="repeatable pick"),
                 ctx: ServerContext = Depends(context)) -> dict:
    """A bundled *test* digit (the models never trained on it): its 28×28 pixels (0..255,
    ink bright) and its true label."""
    from ...data import load_digits

    d = load_digits()
    pool = np.flatnonzero(d.y_test == label) if label is not None else np.arange(len(d.y_test))
    if seed is not None:
        i = int(np.random.default_rng(seed).choice(pool))
    else:
        with ctx.rng_lock:
            i = int(ctx.rng.choice(pool))
    pixels = np.rint(d.x_test[i, 0] * 255).astype(np.uint8)  # (28, 28)
    return {"index": i, "split": "test", "label": int(d.y_test[i]), "pixels": pixels.tolist()}
