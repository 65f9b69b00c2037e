"""PEP 562 lazy exports: a package names what it re-exports, and each name is imported on first use."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, exports: dict[str, str], *, defined: tuple[str, ...] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` whose public ``exports`` map name -> defining module.

    ``defined`` names public attributes the package defines itself (such as ``__version__``), listed by ``dir``.

    Example:
        >>> getattr_, dir_ = lazy_exports("pkg", {"sqrt": "math"})
        >>> getattr_("sqrt")(4.0), dir_()
        (2.0, ['sqrt'])
    """
    names = sorted([*exports, *defined])

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return names

    return __getattr__, __dir__
