"""Reading the ``multipart/form-data`` upload in memory, with size and time limits enforced while streaming.

FastAPI's ``UploadFile`` only reaches the endpoint after the whole body has been received and
spools anything over 1 MB to a temporary file. Here the body is parsed chunk by chunk with
python-multipart (the parser Starlette itself uses), every part stays in a ``BytesIO`` and the
byte count is checked after each chunk, so an oversized upload gets its 413 as soon as it passes
the limit (or at once, from ``Content-Length``) instead of after it has been stored.

The body must arrive within a total deadline and must not pause longer than an idle deadline
between chunks; otherwise the request ends with 408. Together with charging each chunk to the
memory budget as it arrives (``on_bytes``), this is what keeps slow clients from holding the
server: a client dribbling its upload holds what it has sent, and only until a deadline.
Any refusal before the body is complete closes the connection (``Connection: close``), so the
rest of a refused body is never read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import Field, File, FormParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from gansr.serve.errors import ApiError

__all__ = ["FORM_OVERHEAD_BYTES", "MAX_FIELD_BYTES", "BodyDeadline", "UploadForm", "read_upload"]

FORM_OVERHEAD_BYTES = 64 * 1024  # part headers, boundaries and the small text fields
MAX_FIELD_BYTES = 256  # the text fields are a model name, a number and a format


@dataclass
class UploadForm:
    """The parsed form: the image bytes, the client's file name and the text fields."""

    image: bytes
    filename: str
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BodyDeadline:
    """How long a request body may take: ``total_s`` in all, ``idle_s`` between two chunks."""

    total_s: float
    idle_s: float


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


async def read_upload(
    request: Request,
    *,
    file_field: str,
    text_fields: frozenset[str],
    max_file_bytes: int,
    deadline: BodyDeadline,
    on_bytes: Callable[[int], None] = lambda _n: None,
) -> UploadForm:
    """Parse the request body as a form with one file part and optional text parts.

    Args:
        request: the incoming request.
        file_field: the name of the required file part.
        text_fields: the names of the allowed text parts; any other part is refused.
        max_file_bytes: the largest accepted file; the body may exceed it only by
            :data:`FORM_OVERHEAD_BYTES`.
        deadline: the time limits for receiving the body.
        on_bytes: called with each chunk's size before it is kept (it may raise to refuse it).

    Raises:
        ApiError: 415 not multipart, 413 too large, 408 too slow, 400 malformed, missing file,
            duplicate or unknown part, or an over-long text value; whatever ``on_bytes`` raises.
    """
    content_type, params = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data":
        raise _closing(
            ApiError(415, f"send the image as multipart/form-data with a file field named {file_field!r}")
        )
    boundary = params.get(b"boundary")
    if not boundary:
        raise _closing(ApiError(400, "the multipart/form-data request has no boundary"))

    too_large = ApiError(413, f"the upload is larger than the limit of {_mb(max_file_bytes)}")
    max_body = max_file_bytes + FORM_OVERHEAD_BYTES
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_body:
        raise _closing(too_large)

    files: list[File] = []
    fields: dict[str, str] = {}

    def on_file(part: File) -> None:
        name = (part.field_name or b"").decode("latin-1")
        if name != file_field:
            raise ApiError(400, f"unexpected file field {name[:40]!r}; send the image as {file_field!r}")
        if files:
            raise ApiError(400, f"send exactly one {file_field!r} file per request")
        files.append(part)

    def on_field(part: Field) -> None:
        name = (part.field_name or b"").decode("latin-1")
        value = part.value or b""
        if name == file_field:
            raise ApiError(400, f"{file_field!r} must be a file upload, not a text field")
        if name not in text_fields:
            allowed = ", ".join(sorted(text_fields | {file_field}))
            raise ApiError(400, f"unknown form field {name[:40]!r}; the fields are {allowed}")
        if name in fields:
            raise ApiError(400, f"form field {name!r} given more than once")
        if len(value) > MAX_FIELD_BYTES:
            raise ApiError(400, f"form field {name!r} is too long")
        try:
            fields[name] = value.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, f"form field {name!r} is not UTF-8 text") from None

    # MAX_MEMORY_FILE_SIZE = inf keeps every part in a BytesIO: nothing is written to disk.
    parser = FormParser(
        "multipart/form-data",
        on_field,
        on_file,
        boundary=boundary,
        config={"MAX_MEMORY_FILE_SIZE": float("inf"), "MAX_BODY_SIZE": float("inf")},
    )
    received = 0
    try:
        async for chunk in _timed(request, deadline):
            received += len(chunk)
            if received > max_body:
                raise too_large
            on_bytes(len(chunk))
            parser.write(chunk)
        parser.finalize()
    except FormParserError:
        raise _closing(ApiError(400, "malformed multipart/form-data body")) from None
    except ClientDisconnect:
        raise ApiError(400, "the client disconnected during the upload") from None
    except ApiError as exc:
        raise _closing(exc) from None

    if not files:
        raise ApiError(400, f"no image uploaded: send the image as a file field named {file_field!r}")
    part = files[0]
    stream = part.file_object
    stream.seek(0)
    data = stream.read()
    part.close()
    if len(data) > max_file_bytes:
        raise ApiError(413, f"the image is {_mb(len(data))}, more than the limit of {_mb(max_file_bytes)}")
    filename = (part.file_name or b"").decode("utf-8", "replace")
    return UploadForm(image=data, filename=filename, fields=fields)


async def _timed(request: Request, deadline: BodyDeadline) -> AsyncIterator[bytes]:
    """The body's chunks, each awaited no longer than the idle deadline or what is left of the total.

    Raises:
        ApiError: 408 when a deadline passes.
    """
    loop = asyncio.get_running_loop()
    ends = loop.time() + deadline.total_s
    chunks = request.stream()
    while True:
        left = ends - loop.time()
        wait = min(deadline.idle_s, left)
        try:
            async with asyncio.timeout(max(0.0, wait)):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError:
            if wait < deadline.idle_s:
                why = f"it did not arrive within {deadline.total_s:g} s"
            else:
                why = f"nothing arrived for {deadline.idle_s:g} s"
            raise ApiError(408, f"the upload was too slow ({why}); send the image again") from None
        yield chunk


def _closing(exc: ApiError) -> ApiError:
    """``exc`` answered with ``Connection: close``: the rest of the body is never read."""
    exc.headers.setdefault("Connection", "close")
    return exc
