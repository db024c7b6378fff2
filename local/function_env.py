"""os.environ per function, for running several Lambda functions in one process.

Every function of the local stack runs in this process, but their Environment blocks differ (each has its own
POWERTOOLS_SERVICE_NAME, queue URL ... under the same variable name). `install_function_environ` replaces
os.environ once, at start-up, with a mapping that layers the running function's variables (a ContextVar set
by `function_environment`) over the process environment, so code reading os.environ / os.getenv sees what it
would see in its own Lambda container.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager

_function_env: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar("local_function_env", default=None)


class FunctionEnviron(MutableMapping[str, str]):
    """os.environ as the function running in this thread sees it: its variables over the process's. Writes go
    to the process environment. Threads a handler starts do not inherit the overlay (ContextVars are per thread)."""

    def __init__(self, base: MutableMapping[str, str]) -> None:
        self.base = base

    def __getitem__(self, key: str) -> str:
        overlay = _function_env.get()
        if overlay is not None and key in overlay:
            return overlay[key]
        return self.base[key]

    def __setitem__(self, key: str, value: str) -> None:
        self.base[key] = value

    def __delitem__(self, key: str) -> None:
        del self.base[key]

    def __iter__(self) -> Iterator[str]:
        overlay = _function_env.get() or {}
        yield from overlay
        yield from (key for key in self.base if key not in overlay)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def copy(self) -> dict[str, str]:
        return dict(self)


def install_function_environ() -> None:
    if not isinstance(os.environ, FunctionEnviron):
        os.environ = FunctionEnviron(os.environ)  # type: ignore[assignment]  # noqa: B003 - layered on purpose, nothing cleared


@contextmanager
def function_environment(variables: Mapping[str, str]) -> Iterator[None]:
    """While active, this thread's os.environ (once installed) shows `variables` over the process environment."""
    token = _function_env.set(variables)
    try:
        yield
    finally:
        _function_env.reset(token)
