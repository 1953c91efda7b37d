"""Config values that name an entry of a registry, with Gymnasium's ``module:name`` form for the user's own.

``meta_optimizer=my_algos:sgd`` imports ``my_algos`` (which registers ``sgd`` on import) and then takes ``sgd``
from the registry; a run's ``config.yaml`` keeps the whole value, so resuming or evaluating the run imports the
module again. The same holds for ``sampler`` and ``inner_loss``, and for ``env`` (:func:`rlmaml.envs.family`).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TypeVar

from .config import ConfigError

T = TypeVar("T")


def lookup(registry: Mapping[str, T], value: str, key: str) -> T:
    """``registry[name]`` for ``value`` = ``name`` or ``module:name`` (``module`` is imported first).

    A module that does not import, or a name the registry does not hold, is a one-line :class:`~rlmaml.config.ConfigError`
    naming the key, the value and what is allowed."""
    module, _, name = str(value).rpartition(":")
    if module:
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - any failure is the user's module's; say which
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(f"config key {key!r}: {value!r}: module {module!r} does not import ({first})") from None
    if name not in registry:
        where = f"; module {module!r} registers no {name!r}" if module else ""
        raise ConfigError(f"config key {key!r}: {value!r} is not allowed{where}; allowed: {', '.join(registry)} "
                        "(or module:name for one a module registers on import)")
    return registry[name]


__all__ = ["lookup"]
