"""Typed dataclass configs, YAML presets and ``key=value`` overrides, validated.

Every mode defines a dataclass; :func:`load_config` builds one from (in order)
the dataclass defaults, a preset name or YAML file, and ``key=value`` strings.
Unknown keys, wrong types and out-of-range values raise :class:`ConfigError`
with a one-line message naming the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import UserError

T = TypeVar("T")


class ConfigError(UserError, ValueError):
    """A bad config value, key, preset or file (message is one line)."""


def preset_names() -> list[str]:
    """Names of the YAML presets shipped in ``rlmaml/presets``."""
    root = resources.files("rlmaml") / "presets"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def read_yaml_source(source: str | Path) -> dict[str, Any]:
    """Load a preset by name (``navigation``) or a YAML file path into a dict."""
    source = str(source)
    if source in preset_names():
        text = (resources.files("rlmaml") / "presets" / f"{source}.yaml").read_text()
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"unknown preset or missing config file {source!r}; presets: {', '.join(preset_names())}")
        text = path.read_text()
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {source!r} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {source!r} must be a mapping of key: value, got {type(data).__name__}")
    return data


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """``["fast_lr=0.05", "hidden_sizes=[64,64]"]`` -> ``{"fast_lr": 0.05, "hidden_sizes": [64, 64]}``."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key=value")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            out[key.strip()] = value
    return out


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Union or (origin is not None and str(origin) == "types.UnionType"):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(key, value, arg)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"config key {key!r}: bad value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"config key {key!r}: {value!r} is not allowed; allowed: {', '.join(map(str, args))}")
        return value
    if origin in (list, tuple):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {key!r}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_coerce(key, v, inner) for v in value]
        return tuple(items) if origin is tuple else items
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key!r}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise ConfigError(f"config key {key!r}: expected an integer, got {value!r}")
        return int(value)
    if annotation is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"config key {key!r}: expected a finite number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key {key!r}: expected a string, got {value!r}")
        return value
    return value


def build_config(cls: type[T], values: dict[str, Any]) -> T:
    """Instantiate dataclass ``cls`` from ``values`` with type coercion and key checking,
    then run its ``validate()`` method when it has one."""
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ConfigError(f"unknown config key {unknown[0]!r}; allowed: {', '.join(sorted(fields))}")
    kwargs = {k: _coerce(k, v, hints[k]) for k, v in values.items()}
    cfg = cls(**kwargs)
    validate = getattr(cfg, "validate", None)
    if validate is not None:
        validate()
    return cfg


def load_config(cls: type[T], source: str | Path | None = None, overrides: Iterable[str] | dict = ()) -> T:
    """defaults ← preset/YAML ``source`` ← ``key=value`` overrides, validated."""
    values: dict[str, Any] = {}
    if source is not None:
        values.update(read_yaml_source(source))
    values.update(overrides if isinstance(overrides, dict) else parse_overrides(overrides))
    return build_config(cls, values)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Plain dict of a config dataclass (tuples as lists, YAML-safe)."""
    def plain(v):
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v
    return {k: plain(v) for k, v in dataclasses.asdict(cfg).items()}


def save_config(cfg: Any, path: str | Path) -> None:
    """Write ``cfg`` as YAML to ``path``."""
    Path(path).write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


def require(condition: bool, key: str, allowed: str, value: Any) -> None:
    """Raise a one-line ConfigError for ``key`` when ``condition`` is false."""
    if not condition:
        raise ConfigError(f"config key {key!r}: {value!r} is not allowed; must be {allowed}")
