"""One registry shape for every backend family: settings name a ``kind``; its module is
imported only when that kind is built.

Standard library only, so ``llm`` and ``ingestion`` can use it without pulling in
retrieval's dependencies (numpy, faiss): it is the one module of ``retrieval`` that
``llm`` imports.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Generic, NamedTuple, TypeVar, cast

T = TypeVar("T")


class Backend(NamedTuple):
    module: str
    attribute: str
    extra: str | None  # the pip extra that brings its third-party dependencies


class Registry(Generic[T]):
    """The implementations of one family by ``kind``; ``create`` imports and builds one."""

    def __init__(
        self,
        family: str,
        backends: Mapping[str, Backend],
        *,
        error: type[Exception],
        fallback_hint: str = "",
    ) -> None:
        self.family = family
        self._backends = dict(backends)
        self._error = error
        self._fallback_hint = fallback_hint

    def kinds(self) -> list[str]:
        """Every kind the registry knows (whether or not its dependencies are installed)."""
        return sorted(self._backends)

    def check(self, kind: str, *, also: tuple[str, ...] = ()) -> str:
        """``kind`` if the registry (or ``also``) knows it, else ``ValueError`` listing the
        kinds: what settings validators call."""
        if kind in self._backends or kind in also:
            return kind
        choices = ", ".join([*also, *self.kinds()])
        raise ValueError(f"unknown {self.family} kind {kind!r}; choose one of {choices}")

    def create(self, kind: str, /, context: Mapping[str, Any] | None = None, **kwargs: Any) -> T:
        """Import ``kind``'s module and construct it with ``kwargs`` (its own settings) and
        those entries of ``context`` (what the caller knows: directories, device, seed) that
        its constructor accepts, so callers never branch on the kind; ``kwargs`` win.

        Raises the family's error for an unknown kind, a backend module this version does
        not ship, or a missing third-party dependency (naming the extra that installs it).
        """
        backend = self._backends.get(kind)
        if backend is None:
            raise self._error(
                f"unknown {self.family} kind {kind!r}; choose one of {', '.join(self.kinds())}"
            )
        try:
            module = importlib.import_module(backend.module)
        except ModuleNotFoundError as e:
            if e.name == backend.module:
                raise self._error(
                    f"the {kind!r} {self.family} is not available in this version of Lantern "
                    f"yet{self._fallback_hint}"
                ) from e
            install = (
                f"pip install 'lantern[{backend.extra}]'" if backend.extra else "reinstall Lantern"
            )
            raise self._error(
                f"the {kind!r} {self.family} needs {e.name!r}, which is not installed; {install}"
            ) from e
        factory = getattr(module, backend.attribute)
        return cast(T, factory(**(_accepted(factory, context or {}) | kwargs)))


def _accepted(factory: Callable[..., Any], context: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``context`` that ``factory`` takes as keyword arguments."""
    params = inspect.signature(factory).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return dict(context)
    names = {p.name for p in params if p.kind is not inspect.Parameter.POSITIONAL_ONLY}
    return {k: v for k, v in context.items() if k in names}
