"""Self-describing model checkpoints: one ``.safetensors`` file per model.

The file's header metadata (safetensors allows ``str -> str``) says how to rebuild the model, so
:func:`load` needs nothing but the file::

    format          "gansr"
    format_version  "1"
    arch            registry name, e.g. "rrdbnet"
    config          JSON of the kwargs: ``gansr.models.create(arch, **config)`` rebuilds the model
    dtype           storage dtype of the floating-point tensors ("float32" or "float16")
    gansr_version   version that wrote the file
    scale, in_channels, out_channels, size_multiple   (generators only)
    user            JSON object of the caller's metadata (training info, dataset, metrics, ...)

Only model weights live here; a trainer's resumable state (optimizers, schedulers) is its own file.
:func:`load` is the one way from a name or path to a model: besides these files it reads peer
``.pth``/``.pt`` files (see :mod:`gansr.models.interop`), ``.onnx`` models (:mod:`gansr.models.onnx`),
the names of models shipped in ``gansr/weights``, and architecture names (weightless ``bicubic``, or
any architecture with ``random_weights=True`` for benchmarks).
"""

from __future__ import annotations

import json
import os
from importlib.resources import files
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes
from torch import nn

from gansr.data.io import atomic_write
from gansr.errors import ConfigError, ModelError
from gansr.models import interop
from gansr.models.onnx import ONNX_SUFFIX, load_onnx

FORMAT = "gansr"
FORMAT_VERSION = "1"
SUFFIX = ".safetensors"
DIR_FILENAME = "model.safetensors"
FOREIGN_SUFFIXES = frozenset({".pth", ".pt", ".ckpt"})
# ``format`` of a ``gansr train`` checkpoint, defined here (the lower layer) for gansr.train.checkpointing.
TRAIN_FORMAT = "gansr-train"

# Header keys written by :func:`save`; user metadata may not reuse them (they are merged flat on read).
_INT_KEYS = ("scale", "in_channels", "out_channels", "size_multiple")
RESERVED_KEYS = frozenset(
    {"format", "format_version", "arch", "config", "dtype", "gansr_version", "user", "source", *_INT_KEYS}
)
_STORAGE_DTYPES = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}


def _json_default(value: Any) -> Any:
    # NumPy / torch scalars (metrics are often these) and paths are common in training metadata.
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serializable")


def _to_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, default=_json_default, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} must be JSON-serializable: {exc}") from None


def _state_for_storage(model: nn.Module, dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    """Contiguous CPU copies of the state dict, floats cast to ``dtype``; no two share memory."""
    out: dict[str, torch.Tensor] = {}
    seen: set[tuple[int, int]] = set()
    for key, tensor in model.state_dict().items():
        t = tensor.detach().cpu()
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        t = t.contiguous()
        # safetensors refuses tensors that share storage (tied weights); store each one separately.
        ident = (t.untyped_storage().data_ptr(), t.storage_offset())
        if t.numel() and ident in seen:
            t = t.clone()
        seen.add((t.untyped_storage().data_ptr(), t.storage_offset()))
        out[key] = t
    return out


def save(
    model: nn.Module,
    path: str | os.PathLike[str],
    *,
    metadata: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write ``model`` as one self-describing ``.safetensors`` file and return its path.

    Args:
        model: a gansr model (it must have ``arch`` and ``config``).
        path: destination; ``.safetensors`` is appended when the suffix is missing, and an existing
            folder gets a ``model.safetensors`` inside it (what :func:`load` reads from a folder).
            Written to a temporary file in the same folder and renamed into place, so a crash
            never leaves a half-written checkpoint.
        metadata: JSON-able facts to keep with the weights (iteration, dataset, metrics...). They
            come back merged into :func:`read_metadata` and ``model.metadata`` after :func:`load`.
        dtype: storage dtype of floating-point tensors, e.g. ``torch.float16`` to halve the file;
            :func:`load` casts back to float32. ``None`` keeps each tensor's dtype.

    Raises:
        ModelError: the model does not describe itself (no ``arch``/``config``).
        ConfigError: metadata is not JSON-able, uses a reserved key, or ``dtype`` is unsupported.
    """
    arch = getattr(model, "arch", None)
    config = getattr(model, "config", None)
    if not isinstance(arch, str) or not isinstance(config, dict):
        raise ModelError(
            f"cannot save a {type(model).__name__}: gansr checkpoints need a model with `arch` and "
            "`config` (build it with gansr.models.create)"
        )
    if dtype is not None and dtype not in _STORAGE_DTYPES:
        raise ConfigError(f"unsupported storage dtype {dtype}; use one of {list(_STORAGE_DTYPES)}")
    user = dict(metadata or {})
    clash = sorted(RESERVED_KEYS.intersection(user))
    if clash:
        raise ConfigError(f"metadata keys {clash} are reserved by the checkpoint format")

    state = _state_for_storage(model, dtype)
    float_dtypes = sorted(
        {_STORAGE_DTYPES.get(t.dtype, str(t.dtype)) for t in state.values() if t.is_floating_point()}
    )
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": arch,
        "config": _to_json(config, "model config"),
        "dtype": ",".join(float_dtypes) or "none",
        "gansr_version": _gansr_version(),
        "user": _to_json(user, "metadata"),
    }
    for key in _INT_KEYS:
        value = getattr(model, key, None)
        if isinstance(value, int):
            header[key] = str(value)

    dest = Path(path)
    if dest.is_dir():  # mirrors load(), which reads a folder's model.safetensors
        dest = dest / DIR_FILENAME
    elif dest.suffix != SUFFIX:
        dest = dest.with_name(dest.name + SUFFIX)
    # atomic_write rather than mkstemp: the file gets the umask's permissions, not mkstemp's 0600.
    with atomic_write(dest) as fh:
        fh.write(safetensors_bytes(state, metadata=header))
    return dest


def _gansr_version() -> str:
    from gansr.version import __version__

    return __version__


# Globals a weights-only torch.load accepts in plain tensor checkpoints; any other names a Python
# object, which is what makes torch refuse the file.
_TENSOR_GLOBALS = ("torch.", "collections.OrderedDict", "_codecs.encode", "builtins.set")
_STRING_OPS = frozenset({"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING",
                         "BINSTRING", "STRING"})  # fmt: skip


def torch_load(path: Path, *, unreadable: str, **kwargs: Any) -> Any:
    """``torch.load(path, weights_only=True, **kwargs)`` with failures as one-line ModelErrors.

    A pickle that holds Python objects gives ``refusing to unpickle PATH: it holds Python objects
    (NAME) ...``; anything else ``PATH: <unreadable> (<reason>)``. torch's own multi-line text,
    with its advice to pass ``weights_only=False``, never reaches the user.
    """
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4": the error says enough
            return torch.load(path, weights_only=True, **kwargs)
    except Exception as exc:  # torch raises KeyError/EOFError/RuntimeError/UnpicklingError... on garbage
        raise torch_load_error(path, exc, unreadable=unreadable) from None


def torch_load_error(path: Path, exc: BaseException, *, unreadable: str) -> ModelError:
    """The one-line ModelError for a failed weights-only ``torch.load`` (see :func:`torch_load`)."""
    import pickle
    import re

    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError):
        # torch names the refused global in several phrasings ("Unsupported global: GLOBAL x.y",
        # "unsupported GLOBAL posix.system whose module ..."); protocol-4 pickles it cannot parse
        # at all, so their globals are read from the opcodes here (nothing is executed).
        found = re.search(r"GLOBAL ([\w.]+)", text)
        name = found[1] if found else _first_object_global(path)
        if name:
            return ModelError(
                f"refusing to unpickle {path}: it holds Python objects ({name}), not just tensors; "
                "gansr reads PyTorch files with torch.load(weights_only=True) only"
            )
        return ModelError(f"{path}: {unreadable} (invalid or unsupported pickle data)")
    if isinstance(exc, EOFError):
        return ModelError(f"{path}: {unreadable} (the file ends too early: empty or truncated)")
    if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
        return ModelError(f"{path}: {unreadable} ({exc.strerror or type(exc).__name__})")
    reason = " ".join((text.strip().splitlines() or [""])[0].split())
    reason = reason.split(". ")[0].rstrip(".")  # torch appends paragraphs of advice after the cause
    if not reason or "weights_only" in reason:
        reason = type(exc).__name__
    if isinstance(exc, OSError):  # torch reading a cut-off zip archive: EINVAL from a seek
        reason = f"damaged or truncated file: {exc.strerror or reason}"
    return ModelError(f"{path}: {unreadable} ({reason})")


def _first_object_global(path: Path) -> str | None:
    """The first global in ``path``'s pickles that is not part of a plain tensor checkpoint."""
    import io
    import pickletools
    import zipfile

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                name = next((n for n in archive.namelist() if n.rsplit("/", 1)[-1] == "data.pkl"), None)
                data = archive.read(name) if name else b""
        else:
            with open(path, "rb") as fh:
                data = fh.read(64 << 20)  # the legacy format's pickles come before the tensor data
    except (OSError, zipfile.BadZipFile, KeyError):
        return None
    stream = io.BytesIO(data)
    strings: list[str] = []  # the strings pushed so far, for STACK_GLOBAL (module, then name)
    memo: dict[int, str] = {}
    memo_size = 0
    try:
        for _ in range(6):  # the legacy format has up to five pickles back to back
            top = None  # the string the last opcode pushed, if it pushed one
            for op, arg, _pos in pickletools.genops(stream):
                name, pushed = None, None
                if op.name in ("GLOBAL", "INST"):
                    name = str(arg).replace(" ", ".")
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    name = f"{strings[-2]}.{strings[-1]}"
                elif op.name in _STRING_OPS:
                    pushed = arg.decode("latin-1") if isinstance(arg, bytes) else str(arg)
                elif op.name in ("BINGET", "LONG_BINGET", "GET"):
                    pushed = memo.get(int(arg))
                elif op.name in ("MEMOIZE", "BINPUT", "LONG_BINPUT", "PUT"):
                    index = memo_size if op.name == "MEMOIZE" else int(arg)
                    memo_size = max(memo_size, index + 1)
                    if top is not None:
                        memo[index] = top
                    continue  # storing leaves the stack (and so ``top``) as it was
                if pushed is not None:
                    strings.append(pushed)
                top = pushed
                if name and not name.startswith(_TENSOR_GLOBALS):
                    return name
            if stream.tell() >= len(data):
                break
    except Exception:  # damaged data: nothing more to learn from it
        return None
    return None


def _open_error(path: Path, exc: Exception) -> ModelError:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return ModelError(f"{path}: not a valid .safetensors file ({reason})")


def _parse_header(path: Path, header: dict[str, str] | None) -> dict[str, Any]:
    """Header strings -> typed metadata (user keys merged flat); ModelError when not gansr's."""
    header = header or {}
    if header.get("format") != FORMAT:
        raise ModelError(f"{path}: not a gansr checkpoint (no 'format: gansr' in its metadata)")
    if header.get("format_version") != FORMAT_VERSION:
        raise ModelError(
            f"{path}: gansr checkpoint format version {header.get('format_version')!r} is not supported "
            f"by this gansr (reads version {FORMAT_VERSION}); upgrade gansr"
        )
    try:
        config = json.loads(header["config"])
        user = json.loads(header.get("user", "{}"))
        info: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "arch": header["arch"],
            "config": config,
            "dtype": header.get("dtype", "float32"),
            "gansr_version": header.get("gansr_version"),
        }
        for key in _INT_KEYS:
            if key in header:
                info[key] = int(header[key])
    except (KeyError, ValueError) as exc:
        raise ModelError(f"{path}: damaged gansr checkpoint metadata ({type(exc).__name__}: {exc})") from None
    if not isinstance(config, dict) or not isinstance(user, dict):
        raise ModelError(f"{path}: damaged gansr checkpoint metadata (config/user is not an object)")
    for key, value in user.items():
        info.setdefault(key, value)
    return info


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a gansr checkpoint, without reading its tensors.

    Returns a dict with ``format``, ``format_version``, ``arch``, ``config`` (a dict), ``dtype``,
    ``gansr_version``, the generator fields present (``scale``, ``in_channels``, ``out_channels``,
    ``size_multiple``; ints) and the user metadata given to :func:`save`, merged at the top level.

    Raises:
        ModelError: missing file, not a safetensors file, or not a gansr checkpoint.
    """
    file = _resolve_file(Path(path))
    try:
        with safe_open(file, framework="pt") as handle:
            header = handle.metadata()
    except (SafetensorError, OSError) as exc:
        raise _open_error(file, exc) from None
    return _parse_header(file, header)


def _resolve_file(path: Path) -> Path:
    if path.is_dir():
        inner = path / DIR_FILENAME
        if not inner.is_file():
            raise ModelError(f"{path}: directory has no {DIR_FILENAME}")
        return inner
    if not path.is_file():
        raise ModelError(f"{path}: no such checkpoint file")
    return path


def shipped_models() -> dict[str, Path]:
    """Models shipped with gansr (``gansr/weights/<name>.safetensors``), by name."""
    root = files("gansr") / "weights"
    if not root.is_dir():
        return {}
    return {
        entry.name[: -len(SUFFIX)]: Path(str(entry))
        for entry in sorted(root.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(SUFFIX) and entry.is_file()
    }


def _looks_like_path(spec: str) -> bool:
    suffix = Path(spec).suffix.lower()
    return "/" in spec or os.sep in spec or suffix in (SUFFIX, ONNX_SUFFIX) or suffix in FOREIGN_SUFFIXES


def load(
    spec: str | os.PathLike[str],
    *,
    scale: int | None = None,
    random_weights: bool = False,
    seed: int = 0,
    map_location: str | torch.device = "cpu",
    strict: bool = True,
) -> nn.Module:
    """Turn a name or a file into a model, ready for inference (eval mode, float32 parameters).

    ``spec`` is tried as, in this order:

    1. a file or folder: a gansr ``.safetensors`` checkpoint (or a folder holding
       ``model.safetensors``); a peer ``.pth``/``.pt``/``.ckpt`` (ESRGAN, Real-ESRGAN, BasicSR;
       see :mod:`gansr.models.interop`) or a ``.safetensors`` file in one of those layouts, read
       with ``torch.load(weights_only=True)`` only; a ``gansr train`` checkpoint
       (``checkpoints/iter_*.pt``: its EMA generator); an ``.onnx`` model, run by onnxruntime on the
       CPU whatever ``map_location`` says (see :mod:`gansr.models.onnx`);
    2. the name of a model shipped in ``gansr/weights`` (:func:`shipped_models`);
    3. a registered architecture name: a weightless one (``bicubic``) always, one with weights
       only with ``random_weights=True``.

    The model's ``metadata`` dict says where it came from: ``source`` and ``format`` (``gansr``
    with everything :func:`read_metadata` returns, a peer layout such as ``basicsr-rrdbnet``,
    ``onnx``, ``weightless``, or ``random`` with its ``seed``).

    Args:
        scale: the factor an architecture name is built at (its default when None). A model from
            a file or shipped name must already have it, unless it renders any size
            (``arbitrary_scale``).
        random_weights: build an architecture name with random weights, for speed and memory
            benchmarks (useless for real images). Without it such a name raises ModelError.
        seed: seed of those random weights (the caller's random state is left untouched).
        map_location: device the model is moved to.
        strict: for gansr checkpoints, False tolerates missing and unexpected state-dict keys
            (shape mismatches never are).

    Raises:
        ModelError: unknown name, an architecture name without ``random_weights``, missing or
            corrupt file, unsupported layout, state-dict mismatch.
        ConfigError: the model's scale is not ``scale``, an option the architecture does not
            take, or an ``.onnx`` file without onnxruntime installed.
    """
    if isinstance(spec, os.PathLike) or Path(spec).exists() or _looks_like_path(str(spec)):
        model = _load_file(_resolve_file(Path(spec)), map_location=map_location, strict=strict)
    elif spec in (shipped := shipped_models()):
        model = _load_file(shipped[spec], map_location=map_location, strict=strict)
    else:
        model = _build(spec, scale=scale, random_weights=random_weights, seed=seed, shipped=shipped)
        return model.to(map_location)
    got = getattr(model, "scale", None)
    fixed = isinstance(got, int) and not getattr(model, "arbitrary_scale", False)
    if scale is not None and fixed and got != scale:
        raise ConfigError(f"scale {scale} does not match the checkpoint's scale {got} ({spec})")
    return model


def _build(
    name: str, *, scale: int | None, random_weights: bool, seed: int, shipped: dict[str, Path]
) -> nn.Module:
    """An architecture name -> that network, with seeded random weights (see :func:`load`)."""
    from gansr.models.registry import REGISTRY, create

    available = ", ".join(shipped) or "none installed"
    if name not in REGISTRY:
        raise ModelError(f"unknown model {name!r}: not a file, not a shipped model (available: {available})")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = create(name, **({} if scale is None else {"scale": scale}))
    weightless = next(model.parameters(), None) is None
    if not (weightless or random_weights):
        raise ModelError(
            f"model {name!r}: it is an architecture, not trained weights (random weights are for speed "
            f"and memory tests: gansr speed, or models.load(..., random_weights=True)); shipped models: "
            f"{available}"
        )
    model.metadata = {"source": name, "format": "weightless" if weightless else "random", "arch": name}
    model.metadata["config"] = dict(getattr(model, "config", {}))
    if not weightless:
        model.metadata["seed"] = seed
    return model.eval()


def _load_file(file: Path, *, map_location: str | torch.device, strict: bool) -> nn.Module:
    """A model file of any supported kind (see :func:`load`) -> the model, in eval mode."""
    suffix = file.suffix.lower()
    if suffix == ONNX_SUFFIX:
        return load_onnx(file)
    if suffix in FOREIGN_SUFFIXES:
        obj = torch_load(file, unreadable="not a readable PyTorch checkpoint", map_location="cpu")
        if isinstance(obj, dict) and obj.get("format") == TRAIN_FORMAT:
            return _from_train_checkpoint(obj, file).to(map_location)
        state, wrapper = interop.extract_state_dict(obj, source=file)
        return _from_peer_state(state, file, wrapper).to(map_location)
    try:
        with safe_open(file, framework="pt", device="cpu") as handle:
            header = handle.metadata()
            if (header or {}).get("format") != FORMAT:
                # Community models often ship BasicSR-layout weights as .safetensors.
                if not interop.recognises(handle.keys()):
                    _parse_header(file, header)  # raises: not a gansr checkpoint
                state = {key: handle.get_tensor(key) for key in handle.keys()}
                return _from_peer_state(state, file, None).to(map_location)
            info = _parse_header(file, header)
            state = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError) as exc:
        raise _open_error(file, exc) from None

    model = instantiate(info["arch"], info["config"], state, source=file, strict=strict)
    model.metadata = {**info, "source": str(file)}
    return model.to(map_location).eval()


def _from_train_checkpoint(obj: dict[str, Any], file: Path) -> nn.Module:
    """The EMA generator of a ``gansr train`` checkpoint (``checkpoints/iter_*.pt``, ``best.pt``)."""
    spec, ema = obj.get("generator"), obj.get("ema")
    if not isinstance(spec, dict) or not isinstance(ema, dict) or not isinstance(ema.get("module"), dict):
        raise ModelError(
            f"{file}: a gansr training checkpoint written before they named their generator; "
            "resume the run (gansr train --resume) to its end and use its model.safetensors"
        )
    arch, config = spec.get("arch"), spec.get("config")
    if not isinstance(arch, str) or not isinstance(config, dict):
        raise ModelError(f"{file}: corrupt training checkpoint (its generator entry has no arch/config)")
    model = instantiate(arch, config, ema["module"], source=file, strict=True)
    model.metadata = {
        "source": str(file),
        "format": TRAIN_FORMAT,
        "arch": arch,
        "config": dict(config),
        "iterations": obj.get("iteration"),
    }
    return model


def _from_peer_state(state: dict[str, torch.Tensor], source: Path, wrapper: str | None) -> nn.Module:
    """The gansr model a peer state dict describes, loaded strictly (see :mod:`gansr.models.interop`)."""
    converted = interop.convert(state, source=source)
    model = instantiate(converted.arch, converted.config, converted.state, source=source, strict=True)
    model.metadata = {
        "source": str(source),
        "format": converted.format,
        "wrapper": wrapper,
        "arch": converted.arch,
        "config": dict(converted.config),
    }
    return model


def require_generator(model: nn.Module) -> nn.Module:
    """``model`` itself when it is an SR generator (an integer ``scale`` of at least 1).

    Raises:
        ModelError: anything else, e.g. a discriminator.
    """
    scale = getattr(model, "scale", None)
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ModelError(
            f"{getattr(model, 'arch', type(model).__name__)!r} is not an SR generator "
            "(it has no integer `scale` attribute)"
        )
    return model


def instantiate(
    arch: str,
    config: dict[str, Any],
    state: dict[str, torch.Tensor],
    *,
    source: Path | str,
    strict: bool = True,
) -> nn.Module:
    """``create(arch, **config)`` with ``state`` loaded, in eval mode; ModelError when they do not fit.

    Built on the CPU with its random initialisation (0.7 s for the full rrdbnet): building on the
    ``meta`` device and assigning the tensors skips that, but its one-time set-up costs a fresh
    process about 3 s, so it would slow down every one-shot ``gansr upscale``.
    """
    from gansr.models import create

    try:
        model = create(arch, **config)
    except (ConfigError, ModelError, TypeError, ValueError) as exc:
        raise ModelError(f"{source}: cannot rebuild {arch!r} from its stored config ({exc})") from None
    load_state(model, state, source=source, strict=strict)
    return model.eval()


def load_state(
    model: nn.Module,
    state: dict[str, torch.Tensor],
    *,
    source: Path | str,
    strict: bool = True,
) -> None:
    """Copy ``state`` into ``model`` (floats cast to the model's dtype) or raise a one-line ModelError.

    Shapes must always match; with ``strict`` the key sets must match too.
    """
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    problems = []
    if shapes:
        k = shapes[0]
        got, want = tuple(state[k].shape), tuple(own[k].shape)
        problems.append(f"{len(shapes)} shape mismatch(es), e.g. {k}: file {got} vs model {want}")
    if strict and missing:
        problems.append(f"{len(missing)} missing key(s), e.g. {missing[0]}")
    if strict and unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s), e.g. {unexpected[0]}")
    if problems:
        arch = getattr(model, "arch", type(model).__name__)
        raise ModelError(f"{source}: weights do not fit {arch}: " + "; ".join(problems))
    # fp16-stored checkpoints come back in the model's own dtype (float32).
    cast = {k: (v.to(own[k].dtype) if v.is_floating_point() else v) for k, v in state.items() if k in own}
    model.load_state_dict(cast, strict=strict)
