"""Lazy backend registries: settings name a ``kind``; its module is imported only when used."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, NamedTuple


class Backend(NamedTuple):
    module: str
    attribute: str
    extra: str | None  # the pip extra that brings its third-party dependencies


def build_backend(
    backends: Mapping[str, Backend],
    kind: str,
    *,
    family: str,
    error: type[Exception],
    fallback_hint: str = "",
    **kwargs: Any,
) -> Any:
    """Import ``backends[kind]`` and construct it with ``kwargs``.

    Raises ``error`` for an unknown kind, a backend module this version does not ship,
    or a missing third-party dependency (naming the extra that installs it).
    """
    backend = backends.get(kind)
    if backend is None:
        raise error(f"unknown {family} kind {kind!r}; choose one of {', '.join(sorted(backends))}")
    try:
        module = importlib.import_module(backend.module)
    except ModuleNotFoundError as e:
        if e.name == backend.module:
            raise error(
                f"the {kind!r} {family} is not available in this version of Lantern yet"
                f"{fallback_hint}"
            ) from e
        install = (
            f"pip install 'lantern[{backend.extra}]'" if backend.extra else "reinstall Lantern"
        )
        raise error(
            f"the {kind!r} {family} needs {e.name!r}, which is not installed; {install}"
        ) from e
    return getattr(module, backend.attribute)(**kwargs)
