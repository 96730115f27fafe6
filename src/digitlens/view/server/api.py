"""What requests carry: the request bodies of the JSON API (pydantic models, so the OpenAPI schema
documents them) and the request-size limit."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from .errors import error_response

#: largest request body accepted (bytes): a phone photo fits, even as a base64 data URL (+33 %)
MAX_BODY_BYTES = 12 * 1024 * 1024


# ----------------------------------------------------------------------------- request bodies
class ExplainOptions(BaseModel):
    """What to compute.  ``detail="live"`` is what the page asks for while a stroke is being
    drawn (answer, pre-processing and every layer's numbers: fast); ``"full"`` adds attributions,
    the contrast, the counterfactual, the units and the nearest training digits."""

    model_config = ConfigDict(extra="forbid")

    detail: Literal["full", "live"] = Field("full", description="'live': prediction, "
                                            "pre-processing and trace only")
    # StrictInt: JSON `true` is not the digit 1
    vs: StrictInt | None = Field(None, ge=0, le=9, description="the digit to contrast with "
                                 "('why X and not Y'); default: the runner-up.  If the network "
                                 "now reads this very digit, the runner-up is used and `notes` "
                                 "says so")
    target: StrictInt | None = Field(None, ge=0, le=9, description="also compute attribution "
                                     "maps for this digit (the predicted digit always has them)")
    method: Literal["saliency", "gradient_x_input", "integrated_gradients", "occlusion"] | None = \
        Field(None, description="compute only this attribution method (default: all four)")
    counterfactual: bool = Field(True, description="search for the smallest ink edit that "
                                 "changes the answer to `vs`")
    steps: dict[str, bool] = Field(default_factory=dict, description="pre-processing switches, "
                                   "e.g. {\"center\": false}; names as in "
                                   "digitlens.preprocessing.SWITCHES")


class UnitRequest(BaseModel):
    """Optional body of ``POST /api/models/{name}/units/{layer}/{unit}``."""

    model_config = ConfigDict(extra="forbid")

    image: list[list[float]] | None = Field(None, description="the 28×28 image the network read "
                                            "(the explanation's `image`), for the pixel template "
                                            "of units that do not read pixels directly")

    @field_validator("image")
    @classmethod
    def _square_28(cls, image):
        """28 rows of 28 numbers (a ragged list would reach the library as a broken array)."""
        if image is not None and (len(image) != 28 or any(len(row) != 28 for row in image)):
            rows = sorted({len(row) for row in image})
            raise ValueError(f"image must be 28 rows of 28 numbers; got {len(image)} rows of "
                             f"{rows if len(rows) > 1 else rows[0] if rows else 0} numbers")
        return image


class ExplainJSON(BaseModel):
    """``POST /api/explain`` with ``Content-Type: application/json``."""

    model_config = ConfigDict(extra="forbid")

    image: str = Field(description="the image as a data URL (data:image/png;base64,...) or "
                       "plain base64", max_length=MAX_BODY_BYTES)
    model: str | None = Field(None, min_length=1, description="a zoo model name; default: the "
                              "server's (leave it out rather than sending \"\")")
    options: ExplainOptions = Field(default_factory=ExplainOptions)


class TrainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="the zoo model to train")
    epochs: int | None = Field(None, ge=1, description="default: the model's recipe")
    seed: int = Field(0, ge=0, le=2**31 - 1)


# --------------------------------------------------------------------------- request limits
class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413, whether the client announces the size
    (Content-Length) or streams it in chunks (the running count is checked as it arrives)."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, int(max_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for k, v in scope.get("headers", ()):
            if k == b"content-length":
                try:
                    too_big = int(v) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    return await self._refuse(scope, receive, send)
        seen = 0
        started = False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope, receive, send):
        mib = self.max_bytes / 2**20
        response = error_response(413, "too_large", f"the request body is over the "
                                  f"{mib:.0f} MiB limit; send a smaller image")
        await response(scope, receive, send)
