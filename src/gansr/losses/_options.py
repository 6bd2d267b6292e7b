"""Checking loss options from config dicts against the loss classes' keyword signatures.

Every loss takes its options as typed keyword arguments; the constructor's signature *is* the
option schema, so there is one place to read and nothing to keep in sync. :func:`build_from_options`
rejects unknown keys (listing the known ones) and values whose type does not match the
annotation, with a one-line :class:`~gansr.errors.ConfigError` naming the key. Value ranges are
checked by the constructors themselves (:func:`check_range`), so direct Python use is checked too.
"""

from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from gansr.errors import ConfigError

_FLOAT_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_SEQUENCE_ORIGINS = (list, tuple, Sequence, typing.Sequence)
_MAPPING_ORIGINS = (dict, Mapping, typing.Mapping)


def _matches(value: Any, annotation: Any) -> bool:
    """Whether a config value (plain YAML/JSON data) fits a type annotation."""
    if annotation is Any or annotation is inspect.Parameter.empty:
        return True
    if annotation is None or annotation is type(None):
        return value is None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        return any(_matches(value, arg) for arg in args)
    if origin is typing.Literal:
        return any(value == arg and type(value) is type(arg) for arg in args)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        # YAML writes 1 for 1.0: accept ints, never bools.
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if annotation is Path:
        return isinstance(value, str | Path)
    if origin in _SEQUENCE_ORIGINS:
        if not isinstance(value, list | tuple):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args, strict=True))
        return all(_matches(v, args[0]) for v in value) if args else True
    if origin in _MAPPING_ORIGINS:
        if not isinstance(value, Mapping):
            return False
        if not args:
            return True
        return all(_matches(k, args[0]) and _matches(v, args[1]) for k, v in value.items())
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


_NOUNS: dict[Any, tuple[str, str]] = {
    float: ("a number", "numbers"),
    int: ("an integer", "integers"),
    bool: ("true/false", "true/false values"),
    str: ("a string", "strings"),
    Path: ("a path", "paths"),
    type(None): ("null", "nulls"),
}


def describe(annotation: Any, plural: bool = False) -> str:
    """A short human name for an annotation, for error messages (``a number``, ``a list of strings``)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union or origin is types.UnionType:
        if str in args and Path in args:  # a path may be given as a string: say it once
            args = tuple(arg for arg in args if arg is not str)
        return " or ".join(describe(arg, plural) for arg in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(arg) for arg in args)
    if annotation is None:
        annotation = type(None)
    if annotation in _NOUNS:
        return _NOUNS[annotation][1 if plural else 0]
    if origin in _SEQUENCE_ORIGINS:
        return f"{'lists' if plural else 'a list'} of {describe(args[0], True) if args else 'values'}"
    if origin in _MAPPING_ORIGINS:
        noun = "mappings" if plural else "a mapping"
        return f"{noun} of {describe(args[0], True)} to {describe(args[1], True)}" if args else noun
    return getattr(annotation, "__name__", str(annotation))


def option_types(factory: Callable[..., Any]) -> dict[str, Any]:
    """The keyword options ``factory`` (a class or function) accepts, with their annotations."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    hints = typing.get_type_hints(target)
    options = {}
    for name, param in inspect.signature(target).parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        options[name] = hints.get(name, Any)
    return options


def _accepts_float(annotation: Any) -> bool:
    if annotation is float:
        return True
    origin = typing.get_origin(annotation)
    return (origin is typing.Union or origin is types.UnionType) and float in typing.get_args(annotation)


def check_options(where: str, options: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``options`` checked against ``schema``; raise ConfigError naming a bad key.

    PyYAML reads ``1e-3`` (no dot) as a string; such numeric strings are converted for options
    that take a number, as the user obviously meant a number.
    """
    checked = {}
    for key, value in options.items():
        if not isinstance(key, str) or key not in schema:
            known = ", ".join(sorted(schema)) or "none"
            raise ConfigError(f"{where}: unknown option {key!r} (known options: {known})")
        if isinstance(value, str) and _accepts_float(schema[key]) and _FLOAT_RE.fullmatch(value.strip()):
            value = float(value)
        if not _matches(value, schema[key]):
            raise ConfigError(
                f"{where}: option {key!r} must be {describe(schema[key])}, "
                f"got {type(value).__name__} {value!r}"
            )
        checked[key] = value
    return checked


def build_from_options(factory: Callable[..., Any], options: Mapping[str, Any], where: str) -> Any:
    """Check ``options`` against ``factory``'s keyword signature, then call it with them."""
    return factory(**check_options(where, options, option_types(factory)))


def check_range(
    owner: str,
    name: str,
    value: float,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``float(value)`` or raise ConfigError if it lies outside the given bounds."""
    value = float(value)
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high or value != value:  # value != value: NaN
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise ConfigError(f"{owner}: option {name!r} must be in {left}{lo}, {hi}{right}, got {value!r}")
    return value


def check_choice(owner: str, name: str, value: str, choices: Sequence[str]) -> str:
    """Return ``value`` or raise ConfigError if it is not one of ``choices``."""
    if value not in choices:
        raise ConfigError(
            f"{owner}: option {name!r} must be one of {', '.join(map(repr, choices))}, got {value!r}"
        )
    return value
