"""The FastAPI application behind ``gansr serve``: the page, its static files and the JSON/HTTP API.

Endpoints (documented at ``/docs`` and ``/openapi.json``):

* ``GET /api/health``: liveness, load and the limits the page needs.
* ``GET /api/models``: the models a request may name.
* ``POST /api/upscale``: a multipart upload in, the upscaled image's bytes out.

A request to ``/api/upscale`` streams its body in memory with size and time limits enforced
(:mod:`gansr.serve.upload`), each chunk charged to the memory budget as it arrives, so a slow
client holds only what it has sent. Once the body is complete it checks the form values and the
image header against the limits (:mod:`gansr.serve.limits`), estimates what the job will cost in
memory (:func:`gansr.serve.worker.job_cost`), reserves that in the budget
(:mod:`gansr.serve.admission`: at once, or after a bounded wait, or 503 with ``Retry-After``)
and only then hands the bytes to a worker thread (:class:`~gansr.serve.worker.InferencePool`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gansr.serve.admission import MemoryBudget
from gansr.serve.catalog import ModelEntry, build_catalog
from gansr.serve.errors import ApiError, ErrorResponse, install_error_handlers
from gansr.serve.limits import (
    MAX_OUTSCALE,
    MIN_OUTSCALE,
    OUTPUT_FORMATS,
    ServeConfig,
    output_size,
    parse_format,
    parse_outscale,
    sniff_image,
)
from gansr.serve.upload import BodyDeadline, read_upload
from gansr.serve.worker import InferencePool, job_cost, upscale_bytes
from gansr.version import __version__

__all__ = ["STATIC_DIR", "Health", "Limits", "ModelInfo", "create_app", "download_name"]

logger = logging.getLogger("gansr.serve")

STATIC_DIR = Path(__file__).resolve().parent / "static"
TEXT_FIELDS = frozenset({"model", "outscale", "format"})

# The page loads only its own files; blob: URLs are the results it displays and downloads.
PAGE_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


# --------------------------------------------------------------------------- response models


class ModelInfo(BaseModel):
    """One model a request may name."""

    name: str = Field(description="The value to send as `model`.")
    description: str = Field(description="One line about the model.")
    scale: int = Field(description="The model's native upscaling factor (used when `outscale` is omitted).")
    default: bool = Field(description="Whether requests without `model` use it.")


class Limits(BaseModel):
    """What a request to `/api/upscale` may send."""

    max_upload_bytes: int = Field(description="Largest accepted image file, in bytes.")
    max_pixels: int = Field(description="Largest accepted input image, in pixels (width x height).")
    max_output_pixels: int = Field(description="Largest result, in pixels.")
    min_outscale: float
    max_outscale: float
    input_formats: list[str] = Field(description="Accepted image types, recognised by content.")
    output_formats: list[str] = Field(description="Values of the `format` field.")


class Health(BaseModel):
    """Liveness and load of the server."""

    status: Literal["ok"] = "ok"
    version: str = Field(description="gansr version.")
    device: str = Field(description="The torch device inference runs on.")
    workers: int = Field(description="Images processed at the same time.")
    queue: int = Field(description="Requests that may wait for memory before new ones get 503.")
    active: int = Field(description="Requests in progress now (uploading, waiting or running).")
    waiting: int = Field(description="Requests waiting for memory now.")
    jobs: int = Field(description="Admitted requests waiting for a worker or being processed now.")
    memory_budget_bytes: int = Field(description="Memory the requests in progress may hold at once.")
    memory_used_bytes: int = Field(description="Memory they hold now (received uploads, admitted jobs).")
    limits: Limits


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "A missing, empty or malformed field, or an unknown model."},
    408: {
        "model": ErrorResponse,
        "description": "The upload did not arrive in time (a total and an idle deadline apply).",
    },
    413: {
        "model": ErrorResponse,
        "description": "The upload or the image (pixels) is larger than the limit, or processing it "
        "would need more memory than the server's whole budget.",
    },
    415: {"model": ErrorResponse, "description": "Not an image, or an image type outside the allow-list."},
    422: {
        "model": ErrorResponse,
        "description": "A corrupt or truncated image, or a result over the pixel limit.",
    },
    503: {
        "model": ErrorResponse,
        "description": "The memory budget is in use and the request could not wait for it (the "
        "line is full or the wait bound passed); retry after `Retry-After` seconds.",
        "headers": {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
    },
}


def _upscale_openapi(catalog: Sequence[ModelEntry], default: ModelEntry) -> dict[str, Any]:
    """The multipart request body (parsed by hand, so FastAPI cannot infer it)."""
    properties = {
        "image": {
            "type": "string",
            "format": "binary",
            "description": "The image (PNG, JPEG, WebP, BMP or TIFF; the type is read from the content).",
        },
        "model": {
            "type": "string",
            "enum": [e.name for e in catalog],
            "default": default.name,
            "description": "A name from `GET /api/models`.",
        },
        "outscale": {
            "type": "number",
            "minimum": MIN_OUTSCALE,
            "maximum": MAX_OUTSCALE,
            "description": "Final size as a multiple of the input (default: the model's scale).",
        },
        "format": {
            "type": "string",
            "enum": list(OUTPUT_FORMATS),
            "default": "png",
            "description": "Output encoding: png keeps alpha and 16-bit depth, webp keeps alpha, "
            "jpeg composites transparency onto white.",
        },
    }
    body = {"type": "object", "required": ["image"], "properties": properties}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": body}}}}


# --------------------------------------------------------------------------- helpers


class SecurityHeaders:
    """ASGI middleware adding ``nosniff`` and ``no-referrer`` to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "no-referrer")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def download_name(client_name: str, scale_label: str, suffix: str) -> str:
    """A safe file name for Content-Disposition: the client's stem (ASCII-safe), the scale, the suffix."""
    base = re.split(r"[\\/]", client_name)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:80] or "image"
    return f"{stem}_{scale_label}{suffix}"


def _resolve_model(value: str | None, by_name: dict[str, ModelEntry], default: ModelEntry) -> ModelEntry:
    if value is None or not value.strip():
        return default
    entry = by_name.get(value.strip())
    if entry is not None:
        return entry
    names = ", ".join(by_name)
    if (
        any(c in value for c in "/\\")
        or ".." in value
        or value.lower().endswith((".pth", ".pt", ".safetensors"))
    ):
        raise ApiError(400, f"model must be one of the listed names ({names}), not a path")
    raise ApiError(400, f"unknown model {value[:60]!r}; choose one of {names} (GET /api/models)")


# --------------------------------------------------------------------------- the app


def create_app(
    config: ServeConfig | None = None, *, models: Sequence[str | os.PathLike[str]] = ()
) -> FastAPI:
    """Build the web app.

    Args:
        config: limits, pool size and device (defaults: :class:`ServeConfig`).
        models: extra checkpoint paths to offer besides the shipped models and ``bicubic``.

    Raises:
        ConfigError: bad device, default model or extra checkpoint.
        ModelError: an extra checkpoint cannot be loaded.
    """
    from gansr.engine.device import resolve_device

    config = config or ServeConfig()
    device = str(resolve_device(config.device))
    catalog = build_catalog(models, default=config.default_model)
    by_name = {e.name: e for e in catalog}
    default = next(e for e in catalog if e.default)
    pool = InferencePool(config.workers, device=device)
    budget = MemoryBudget(
        config.memory_budget_bytes(), max_waiting=config.queue, retry_after=pool.retry_after
    )
    body_deadline = BodyDeadline(total_s=config.body_timeout_s, idle_s=config.body_idle_s)
    limits = Limits(
        max_upload_bytes=config.max_upload_bytes,
        max_pixels=config.max_pixels,
        max_output_pixels=config.max_output_pixels,
        min_outscale=MIN_OUTSCALE,
        max_outscale=MAX_OUTSCALE,
        input_formats=["PNG", "JPEG", "WebP", "BMP", "TIFF"],
        output_formats=list(OUTPUT_FORMATS),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await asyncio.to_thread(pool.shutdown)

    app = FastAPI(
        title="gansr",
        version=__version__,
        summary="GAN-based single-image super-resolution.",
        description=(
            "Upscale images with gansr's models. Upload an image to `POST /api/upscale` as "
            "multipart/form-data; the response is the upscaled image. Errors are JSON "
            '`{"detail": "..."}` with a 4xx status; 503 means the server is busy (see `Retry-After`). '
            "Requests are admitted by their estimated memory cost within a budget: small images "
            "queue in large numbers, large ones only while memory allows."
        ),
        lifespan=lifespan,
    )
    app.state.config = config
    app.state.pool = pool
    app.state.budget = budget
    app.state.catalog = catalog
    app.add_middleware(SecurityHeaders)
    install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Content-Security-Policy": PAGE_CSP})

    @app.get("/api/health", response_model=Health, tags=["service"], summary="Liveness, load and limits")
    async def health() -> Health:
        """Report that the server is up, how busy it is and the limits uploads must respect."""
        return Health(
            version=__version__,
            device=device,
            workers=config.workers,
            queue=config.queue,
            active=budget.open,
            waiting=budget.waiting,
            jobs=pool.jobs,
            memory_budget_bytes=budget.budget,
            memory_used_bytes=budget.used,
            limits=limits,
        )

    @app.get("/api/models", response_model=list[ModelInfo], tags=["upscale"], summary="The models offered")
    async def list_models() -> list[ModelInfo]:
        """The models `POST /api/upscale` accepts as `model`, default first flagged."""
        return [
            ModelInfo(name=e.name, description=e.description, scale=e.scale, default=e.default)
            for e in catalog
        ]

    @app.post(
        "/api/upscale",
        tags=["upscale"],
        summary="Upscale one image",
        response_class=Response,
        responses={
            200: {
                "description": "The upscaled image, with a Content-Disposition file name.",
                "content": {
                    f.media_type: {"schema": {"type": "string", "format": "binary"}}
                    for f in OUTPUT_FORMATS.values()
                },
            },
            **_ERRORS,
        },
        openapi_extra=_upscale_openapi(catalog, default),
    )
    async def upscale(request: Request) -> Response:
        """Upscale the uploaded `image` with `model` to `outscale` times its size, encoded as `format`.

        The image type is recognised from its content (not its name or Content-Type); the upload
        size, the input pixels (read from the header before decoding) and the output pixels are
        limited (see `GET /api/health`). The body must arrive within the server's deadlines (408
        otherwise). The job's memory cost is estimated from the image header and reserved before
        it runs: a request that does not fit waits a bounded time, and gets 503 with `Retry-After`
        when the memory budget stays in use; one larger than the whole budget gets 413. The
        response headers `X-Gansr-Input-Size`, `X-Gansr-Output-Size` (`WxH`), `X-Gansr-Model` and
        `X-Gansr-Seconds` describe the result.
        """
        loop = asyncio.get_running_loop()
        reservation = budget.reservation()
        try:
            form = await read_upload(
                request,
                file_field="image",
                text_fields=TEXT_FIELDS,
                max_file_bytes=config.max_upload_bytes,
                deadline=body_deadline,
                on_bytes=reservation.grow,
            )
            # The wait for memory and a worker is bounded from here: the upload's own time is the
            # client's and has its own deadlines.
            start_by = loop.time() + config.max_wait_s
            entry = _resolve_model(form.fields.get("model"), by_name, default)
            outscale = parse_outscale(form.fields.get("outscale"))
            fmt = parse_format(form.fields.get("format"))
            header = sniff_image(form.image, max_pixels=config.max_pixels)
            out_h, out_w = output_size(header.height, header.width, scale=entry.scale, outscale=outscale)
            if out_h * out_w > config.max_output_pixels:
                raise ApiError(
                    422,
                    f"the result would be {out_w}x{out_h} = {out_w * out_h:,} pixels, more than the limit of "
                    f"{config.max_output_pixels:,}; choose a smaller outscale or image",
                )
            upscaler = await pool.load(entry)  # its memory estimate is part of the cost
            cost = job_cost(upscaler, header, (out_h, out_w), fmt, len(form.image))
            await reservation.reserve(cost, deadline=start_by)
            job = functools.partial(
                upscale_bytes, upscaler, form.image, outscale=outscale, fmt=fmt, max_pixels=config.max_pixels
            )
            result = await pool.run(job, release=reservation.hand_over(), start_by=start_by)
        finally:
            reservation.release()
        label = f"x{outscale:g}" if outscale is not None else f"x{entry.scale}"
        name = download_name(form.filename, label, OUTPUT_FORMATS[fmt].suffix)
        (in_w, in_h), (res_w, res_h) = result.input_size, result.output_size
        logger.info(
            "%s: %dx%d -> %dx%d %s in %.2f s", entry.name, in_w, in_h, res_w, res_h, fmt, result.seconds
        )
        return Response(
            result.body,
            media_type=result.media_type,
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "Cache-Control": "no-store",
                "X-Gansr-Model": entry.name,
                "X-Gansr-Input-Size": f"{in_w}x{in_h}",
                "X-Gansr-Output-Size": f"{res_w}x{res_h}",
                "X-Gansr-Seconds": f"{result.seconds:.3f}",
            },
        )

    return app
