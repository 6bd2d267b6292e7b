"""Training configuration: nested dataclasses, YAML loading, ``--set`` overrides.

A config is plain YAML (or a shipped preset name) converted into the dataclasses below. The
conversion checks every key and type and names the full dotted key in its one-line error, e.g.
``train.gan.optimizer.lr: expected a number, got 'abc'``. Checks that need the outside world
(folders, model registry, losses) live in :mod:`gansr.train.build`.

Layout (see the presets in ``gansr/presets/*.yaml`` for complete examples)::

    name: mnist_x4              # run folder prefix: RUNS_DIR/<name>-<timestamp>/
    seed: 0
    deterministic: false        # bit-exact CPU runs (and exact resume)
    device: auto                # auto | cpu | cuda | cuda:N
    model: {g: {arch, kwargs}, d: {arch, kwargs}, sync_bn}
    data: {kind, root, scale, patch_size, batch_size, workers, degradation, val_folder, ...}
    train:
      pretrain: {iters, optimizer, schedule, losses, vgg_fallback}     # pixel losses only
      gan: {iters, optimizer, schedule, losses, vgg_fallback, d_optimizer, d_schedule, d_loss}
      ema_decay, amp, amp_scope, channels_last, compile, grad_clip, max_nonfinite,
      val_every, val_max_images, ckpt_every, keep_last, log_every, ...
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal

import yaml

from gansr.errors import ConfigError

PRESET_PACKAGE = "gansr"
PRESET_FOLDER = "presets"


# --------------------------------------------------------------------------------------------
# YAML: PyYAML implements YAML 1.1, where `1e-4` is a *string*; learning rates are written that
# way everywhere, so the loader also resolves exponent floats without a dot.
class _Loader(yaml.SafeLoader):
    pass


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def parse_yaml(text: str, *, source: str = "<config>") -> Any:
    """Parse YAML text with the float fix above; syntax errors become one-line ConfigErrors."""
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}: invalid YAML{where}: {problem}") from None


# --------------------------------------------------------------------------------------------
# The schema.
@dataclass
class ModelSpec:
    """One network: a registered architecture name plus keyword arguments for ``models.create``.

    ``init`` starts the network from trained weights instead of a random initialisation: a shipped
    model name (``srresnet-x4``) or a checkpoint file, whose architecture and configuration must
    match (BasicSR's ``pretrain_network_g``; e.g. GAN fine-tuning of a PSNR model).
    """

    arch: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    init: str | None = None


@dataclass
class ModelConfig:
    """Generator and (for a GAN phase) discriminator."""

    g: ModelSpec
    d: ModelSpec | None = None
    sync_bn: bool = False  # convert BatchNorm to SyncBatchNorm under DDP


@dataclass
class DataConfig:
    """Training data and the validation set.

    ``patch_size`` is the HR patch edge (a multiple of ``scale``); ``None`` uses whole images (MNIST,
    STL-10). ``degradation`` is a list of :class:`gansr.degrade.Pipeline` steps or a preset name;
    ``None`` means the dataset's default (MATLAB bicubic, or the MNIST protocol for MNIST at x4).
    ``val_folder`` is a folder of HR images; for MNIST/STL-10 it may be left out to validate on the
    dataset's test split.

    ``root`` is one folder or, for ``hr_folder``, a list of folders trained on together (DIV2K +
    Flickr2K, "DIV2F"); ``root_weights`` then gives each folder's repeat count per epoch (whole
    numbers, e.g. ``[3, 1]`` shows DIV2K's 800 images three times beside Flickr2K's 2,650).

    ``scale`` may be a non-integer number or a fraction string (``"28/26"``) for MNIST with an
    arbitrary-scale generator (``vae_cppn``): the degradation then has to shrink by that factor.
    ``mnist_file`` picks the IDX file MNIST trains on: ``t10k`` (its first 8,000 digits) or
    ``train`` (all 60,000 official training digits). Validation, and ``gansr eval``, always use the
    last 2,000 ``t10k`` digits, which neither choice trains on.
    """

    kind: Literal["hr_folder", "paired", "mnist", "stl10", "celeba"] = "hr_folder"
    root: str | list[str] | None = None
    root_weights: list[int] | None = None
    lr_root: str | None = None  # paired: the LR folder (root is then the HR folder)
    scale: int | float | str = 4  # a string only as a fraction "A/B"; stored as a number
    patch_size: int | None = None
    batch_size: int = 16  # per process
    workers: int = 0
    degradation: list[dict[str, Any]] | str | None = None
    augment: bool = True  # random flips and 90-degree rotations
    channels: Literal["rgb", "gray"] = "rgb"  # MNIST is always gray
    max_images: int | None = None  # use only the first N training images
    cache: bool = False  # keep decoded training images in memory (small sets)
    hr_size: int | None = None  # stl10: HR edge after resizing the 96x96 originals (default 48)
    # Unsharp-mask the HR targets (Real-ESRGAN's sharper targets); the LR is made from the plain HR.
    usm_target: bool = False
    val_folder: str | None = None
    mnist_file: Literal["t10k", "train"] = "t10k"

    def __post_init__(self) -> None:
        self.scale = parse_scale(self.scale, "data.scale")


def parse_scale(value: int | float | str, key: str) -> int | float:
    """A scale as an int when whole, else a float; ``"A/B"`` strings are fractions (``"28/26"``).

    Raises:
        ConfigError: not a positive finite number or fraction.
    """
    number: float
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*/\s*(\d+(?:\.\d*)?)\s*", value)
        if match is None or float(match[2]) == 0:
            raise ConfigError(f"{key}: expected a number or a fraction such as 28/26, got {value!r}")
        number = float(match[1]) / float(match[2])
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    else:
        number = value
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"{key}: must be a positive number, got {value!r}")
    if abs(number - round(number)) < 1e-9:
        return int(round(number))
    return float(number)


@dataclass
class OptimizerConfig:
    """Adam(W) settings."""

    type: Literal["adam", "adamw"] = "adam"
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0


@dataclass
class ScheduleConfig:
    """Learning-rate schedule over a phase's own iterations (0 .. iters-1).

    ``multistep``: multiply by ``gamma`` at each milestone; ``cosine``: half-cosine from the base
    rate down to ``min_lr_ratio`` times it; ``constant``. A linear warm-up over ``warmup_iters``
    multiplies any of them.
    """

    type: Literal["constant", "multistep", "cosine"] = "constant"
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.5
    warmup_iters: int = 0
    min_lr_ratio: float = 0.0


@dataclass
class PretrainConfig:
    """PSNR-oriented pre-training of G with pixel losses only (no discriminator)."""

    iters: int = 0
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    # A list of loss terms, or {terms: [...], adaptive: true, ...} (gansr.losses.build_mix).
    losses: list[dict[str, Any]] | dict[str, Any] = field(
        default_factory=lambda: [{"type": "l1", "weight": 1.0}]
    )
    vgg_fallback: list[dict[str, Any]] | None = None  # replaces perceptual terms without VGG weights


@dataclass
class GanConfig:
    """Adversarial training: D step(s) then a G step with the mix loss."""

    iters: int = 0
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    losses: list[dict[str, Any]] | dict[str, Any] = field(default_factory=list)
    vgg_fallback: list[dict[str, Any]] | None = None
    d_optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    d_schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    # D's adversarial loss; None: the adversarial term of `losses`. Its `n_critic` (D steps, each
    # on its own batch, per G step) and, for wgan_gp, `lambda_gp` are read from here.
    d_loss: dict[str, Any] | None = None


@dataclass
class TrainConfig:
    """Phases and the engine settings shared by both."""

    pretrain: PretrainConfig | None = None
    gan: GanConfig | None = None
    ema_decay: float = 0.999
    amp: Literal["none", "bf16", "fp16"] = "none"
    # Which forward passes run under `amp`: all, or only D's ("d": G's arithmetic, and so the PSNR
    # it learns, stays fp32 while D, about two thirds of an SRGAN step, runs at the faster rate).
    amp_scope: Literal["all", "d"] = "all"
    channels_last: bool = False
    compile: bool = False
    grad_clip: float | None = None  # max global grad norm; None = off
    max_nonfinite: int = 5  # this many non-finite losses in a row stop the run
    val_every: int = 1000
    val_max_images: int = 10
    sample_images: int = 4  # rows in the LR | bicubic | SR | HR grid
    ckpt_every: int = 1000
    keep_last: int = 3
    log_every: int = 50
    plot_every: int | None = None  # default: with every validation
    tensorboard: bool | None = None  # None: when the tensorboard package is installed


@dataclass
class Config:
    """A complete training run."""

    model: ModelConfig
    data: DataConfig
    train: TrainConfig
    name: str = "run"
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"

    @property
    def total_iters(self) -> int:
        """Iterations over both phases."""
        return self.pretrain_iters + (self.train.gan.iters if self.train.gan else 0)

    @property
    def pretrain_iters(self) -> int:
        """Iterations of the pre-training phase (0 when there is none)."""
        return self.train.pretrain.iters if self.train.pretrain else 0


# --------------------------------------------------------------------------------------------
# dict -> dataclass conversion with dotted-key errors.
def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _expected(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if tp is str:
        return "a string"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        return "a list"
    if origin is dict or dataclasses.is_dataclass(tp):
        return "a mapping"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_expected(a) for a in typing.get_args(tp))
    return str(tp)


def _convert(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        members = typing.get_args(tp)
        if value is None and type(None) in members:
            return None
        errors: list[ConfigError] = []
        for member in members:
            if member is type(None):
                continue
            try:
                return _convert(value, member, key)
            except ConfigError as exc:
                errors.append(exc)
        # One candidate type: its (possibly deeper) message is the useful one.
        if len(errors) == 1:
            raise errors[0]
        raise ConfigError(f"{key}: expected {_expected(tp)}, got {_describe(value)}")
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    elif origin is Literal:
        if value in typing.get_args(tp) and isinstance(value, str):
            return value
    elif origin is list:
        if isinstance(value, list):
            (item_tp,) = typing.get_args(tp)
            return [_convert(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    elif origin is tuple:
        args = typing.get_args(tp)
        if isinstance(value, list | tuple):
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
            if len(value) != len(args):
                raise ConfigError(f"{key}: expected a list of {len(args)} values, got {len(value)}")
            return tuple(
                _convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True))
            )
    elif origin is dict:
        if isinstance(value, dict):
            k_tp, v_tp = typing.get_args(tp)
            out = {}
            for k, v in value.items():
                if not isinstance(k, str):
                    raise ConfigError(f"{key}: keys must be strings, got {_describe(k)}")
                out[k] = _convert(v, v_tp, f"{key}.{k}")
            return out
    else:  # pragma: no cover - a schema type this converter does not know is a programming error
        raise TypeError(f"unsupported config type {tp!r} at {key}")
    raise ConfigError(f"{key}: expected {_expected(tp)}, got {_describe(value)}")


def from_dict(cls: type, data: Any, key: str = "") -> Any:
    """Build dataclass ``cls`` from a nested dict, checking keys and types.

    Raises:
        ConfigError: ``<dotted.key>: <problem>`` for an unknown key, a missing required key or a
            value of the wrong type.
    """
    where = key or "config"
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {_describe(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for k in data:
        if k not in fields:
            valid = ", ".join(fields)
            raise ConfigError(f"{_join(key, str(k))}: unknown key (valid keys: {valid})")
    kwargs = {}
    for name, f in fields.items():
        sub = _join(key, name)
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], sub)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{sub}: missing required key")
    return cls(**kwargs)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def to_dict(cfg: Any) -> Any:
    """A dataclass config as plain YAML-friendly data (tuples become lists)."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, list | tuple):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    return cfg


def dump_yaml(cfg: Config) -> str:
    """The resolved config as YAML text (what ``config.yaml`` in a run folder holds)."""
    data = to_dict(cfg)
    first = ("name", "seed", "deterministic", "device")  # the run's identity before its sections
    data = {**{k: data[k] for k in first}, **{k: v for k, v in data.items() if k not in first}}
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


# --------------------------------------------------------------------------------------------
# Presets, files and overrides.
def preset_names() -> list[str]:
    """Names of the presets shipped in ``gansr/presets``."""
    folder = files(PRESET_PACKAGE) / PRESET_FOLDER
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def read_config_source(name_or_path: str | Path) -> tuple[dict[str, Any], str]:
    """The raw dict of a YAML file or a preset, and a label for error messages."""
    path = Path(name_or_path)
    if path.suffix.lower() in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        text, label = path.read_text(encoding="utf-8"), str(path)
    else:
        preset = files(PRESET_PACKAGE) / PRESET_FOLDER / f"{name_or_path}.yaml"
        if not preset.is_file():
            names = ", ".join(preset_names())
            raise ConfigError(f"unknown config '{name_or_path}': not a file and not a preset ({names})")
        text, label = preset.read_text(encoding="utf-8"), f"preset {name_or_path}"
    raw = parse_yaml(text, source=label)
    if not isinstance(raw, dict):
        raise ConfigError(f"{label}: expected a mapping at the top level, got {_describe(raw)}")
    return raw, label


def apply_override(raw: dict[str, Any], assignment: str) -> None:
    """Apply one ``dotted.key=value`` to a raw config dict in place.

    The value is parsed as a YAML scalar (or flow collection): ``1e-4`` is a float, ``null`` is
    None, ``[1, 2]`` a list. Missing intermediate mappings are created; a numeric part indexes a
    list (``train.gan.losses.0.weight=1``). Unknown keys are reported later by :func:`from_dict`.
    """
    key, sep, text = assignment.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(
            f"--set {assignment!r}: expected KEY=VALUE with a dotted key, e.g. train.gan.iters=100"
        )
    value = parse_yaml(text, source=f"--set {key}") if text.strip() else ""
    parts = key.split(".")
    node: Any = raw
    for i, part in enumerate(parts[:-1]):
        here = ".".join(parts[: i + 1])
        if isinstance(node, list):
            node = node[_list_index(node, part, here)]
        else:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
        if not isinstance(node, dict | list):
            raise ConfigError(f"--set {key}: {here} is {_describe(node)}, not a mapping")
    last = parts[-1]
    if isinstance(node, list):
        node[_list_index(node, last, key)] = value
    else:
        node[last] = value


def _list_index(node: list, part: str, key: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(f"--set {key}: expected a list index below {len(node)}, got {part!r}")
    return int(part)


def load_config(name_or_path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Load a preset name or YAML file, apply ``--set`` overrides and convert to :class:`Config`.

    This checks structure and types only; :func:`gansr.train.validate.validate` checks folders,
    architectures, scales and losses.
    """
    raw, _label = read_config_source(name_or_path)
    for assignment in overrides:
        apply_override(raw, assignment)
    return config_from_dict(raw)


def config_from_dict(raw: dict[str, Any]) -> Config:
    """Convert and range-check a raw config dict (no file-system or registry checks)."""
    cfg = from_dict(Config, raw)
    check_ranges(cfg)
    return cfg


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


def check_ranges(cfg: Config) -> None:
    """Value checks that need no outside information (positive sizes, known devices, ...)."""
    _require(
        bool(re.fullmatch(r"[A-Za-z0-9_.+-]+", cfg.name)),
        "name",
        f"use letters, digits, '._+-' only, got {cfg.name!r}",
    )
    _require(
        bool(re.fullmatch(r"auto|cpu|cuda(:\d+)?", cfg.device)),
        "device",
        f"expected auto, cpu, cuda or cuda:N, got {cfg.device!r}",
    )
    d = cfg.data
    _require(d.scale >= 1, "data.scale", f"must be >= 1, got {d.scale}")
    if isinstance(d.scale, float):
        # Whole images of one size, and an LR size the degradation fixes: MNIST's 28x28 digits.
        _require(
            d.kind == "mnist",
            "data.scale",
            f"a non-integer scale ({d.scale:g}) needs data.kind 'mnist' and an arbitrary-scale "
            f"generator such as vae_cppn; data.kind is {d.kind!r}",
        )
        _require(
            d.val_folder is None,
            "data.val_folder",
            "a non-integer data.scale validates on MNIST's held-out digits; leave it unset",
        )
    _check_roots(d)
    _require(d.batch_size >= 1, "data.batch_size", f"must be >= 1, got {d.batch_size}")
    _require(d.workers >= 0, "data.workers", f"must be >= 0, got {d.workers}")
    if d.patch_size is not None:
        _require(isinstance(d.scale, int), "data.patch_size", "needs an integer data.scale")
        _require(d.patch_size >= d.scale, "data.patch_size", f"must be >= data.scale, got {d.patch_size}")
        _require(
            d.patch_size % d.scale == 0,
            "data.patch_size",
            f"must be a multiple of data.scale ({d.scale}), got {d.patch_size}",
        )
    if d.max_images is not None:
        _require(d.max_images >= 1, "data.max_images", f"must be >= 1, got {d.max_images}")
    if d.kind == "paired":
        _require(d.lr_root is not None, "data.lr_root", "required when data.kind is 'paired'")
    t = cfg.train
    _require(t.pretrain is not None or t.gan is not None, "train", "needs a 'pretrain' or a 'gan' phase")
    for phase_name in ("pretrain", "gan"):
        phase = getattr(t, phase_name)
        if phase is None:
            continue
        key = f"train.{phase_name}"
        _require(phase.iters >= 0, f"{key}.iters", f"must be >= 0, got {phase.iters}")
        _check_optimizer(phase.optimizer, f"{key}.optimizer")
        _check_schedule(phase.schedule, f"{key}.schedule")
        terms = phase.losses.get("terms") if isinstance(phase.losses, dict) else phase.losses
        _require(
            isinstance(terms, list) and bool(terms), f"{key}.losses", "needs a non-empty list of loss terms"
        )
        for i, term in enumerate(terms):
            _require(
                isinstance(term, dict) and "type" in term, f"{key}.losses[{i}]", "expected {type: ..., ...}"
            )
        if isinstance(phase, GanConfig):
            _check_optimizer(phase.d_optimizer, f"{key}.d_optimizer")
            _check_schedule(phase.d_schedule, f"{key}.d_schedule")
    _require(cfg.total_iters >= 1, "train", "the phases have 0 iterations in total")
    if t.gan is not None and t.gan.iters > 0:
        _require(cfg.model.d is not None, "model.d", "required for the train.gan phase")
    _require(0.0 <= t.ema_decay < 1.0, "train.ema_decay", f"must be in [0, 1), got {t.ema_decay}")
    if t.grad_clip is not None:
        _require(t.grad_clip > 0, "train.grad_clip", f"must be > 0 (or null for off), got {t.grad_clip}")
    for name in ("max_nonfinite", "val_every", "val_max_images", "ckpt_every", "keep_last", "log_every"):
        value = getattr(t, name)
        _require(value >= 1, f"train.{name}", f"must be >= 1, got {value}")
    _require(t.sample_images >= 0, "train.sample_images", f"must be >= 0, got {t.sample_images}")
    if t.plot_every is not None:
        _require(t.plot_every >= 1, "train.plot_every", f"must be >= 1, got {t.plot_every}")


def _check_roots(d: DataConfig) -> None:
    """``data.root`` as a list (hr_folder only, distinct non-empty paths) and its weights."""
    if isinstance(d.root, list):
        _require(bool(d.root), "data.root", "an empty list; give a folder or a list of folders")
        _require(
            d.kind == "hr_folder" or len(d.root) == 1,
            "data.root",
            f"a list of {len(d.root)} folders needs data.kind 'hr_folder', not {d.kind!r}",
        )
        for i, root in enumerate(d.root):
            _require(bool(root.strip()), f"data.root[{i}]", "an empty path")
        seen: dict[str, int] = {}
        for i, root in enumerate(d.root):
            key = str(Path(root).expanduser())
            _require(
                key not in seen, f"data.root[{i}]", f"the same folder as data.root[{seen.get(key)}]: {root}"
            )
            seen[key] = i
    elif d.root is not None:
        _require(bool(d.root.strip()), "data.root", "an empty path")
    if d.root_weights is not None:
        count = len(d.root) if isinstance(d.root, list) else 1
        _require(
            isinstance(d.root, list),
            "data.root_weights",
            "needs data.root to be a list of folders (one weight per folder)",
        )
        _require(
            len(d.root_weights) == count,
            "data.root_weights",
            f"{len(d.root_weights)} weight(s) for {count} folder(s) in data.root",
        )
        for i, weight in enumerate(d.root_weights):
            _require(weight >= 1, f"data.root_weights[{i}]", f"must be a whole number >= 1, got {weight}")


def _check_optimizer(opt: OptimizerConfig, key: str) -> None:
    _require(opt.lr > 0, f"{key}.lr", f"must be > 0, got {opt.lr}")
    for i, beta in enumerate(opt.betas):
        _require(0.0 <= beta < 1.0, f"{key}.betas[{i}]", f"must be in [0, 1), got {beta}")
    _require(opt.eps > 0, f"{key}.eps", f"must be > 0, got {opt.eps}")
    _require(opt.weight_decay >= 0, f"{key}.weight_decay", f"must be >= 0, got {opt.weight_decay}")


def _check_schedule(s: ScheduleConfig, key: str) -> None:
    _require(s.warmup_iters >= 0, f"{key}.warmup_iters", f"must be >= 0, got {s.warmup_iters}")
    _require(s.gamma > 0, f"{key}.gamma", f"must be > 0, got {s.gamma}")
    _require(0.0 <= s.min_lr_ratio <= 1.0, f"{key}.min_lr_ratio", f"must be in [0, 1], got {s.min_lr_ratio}")
    _require(
        all(m >= 1 for m in s.milestones) and s.milestones == sorted(s.milestones),
        f"{key}.milestones",
        f"must be increasing positive iterations, got {s.milestones}",
    )
