"""A value built from settings, kept until one of them changes (Django's ``setting_changed``)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from django.core.signals import setting_changed

__all__ = ["PerSettings", "per_settings"]

_Built = TypeVar("_Built")


class PerSettings(Generic[_Built]):
    """A value built on first use and kept until one of its Django settings changes.

    Call it for the value; ``peek()`` gives it only if it is built. ``reset()``
    forgets it (and calls ``close`` on the old value), and so does Django's
    ``setting_changed`` signal for one of ``names`` (sent by
    ``override_settings`` and pytest-django's ``settings``). The value is
    built once at a time, under a lock; a builder that raises is called
    again next time. Most uses are the decorator :func:`per_settings`.
    """

    def __init__(
        self,
        builder: Callable[[], _Built],
        names: Iterable[str] = (),
        *,
        close: Callable[[_Built], object] | None = None,
    ) -> None:
        self._builder = builder
        self._close = close
        self.names = frozenset(names)
        self._built: tuple[_Built] | None = None
        self._lock = threading.Lock()
        functools.update_wrapper(self, builder)
        if self.names:
            setting_changed.connect(self._setting_changed)

    def __call__(self) -> _Built:
        built = self._built
        if built is None:
            with self._lock:
                built = self._built
                if built is None:
                    built = self._built = (self._builder(),)
        return built[0]

    def peek(self) -> _Built | None:
        """The value if it is built, else ``None`` (builds nothing)."""
        built = self._built
        return None if built is None else built[0]

    def reset(self) -> None:
        with self._lock:
            built, self._built = self._built, None
        if built is not None and self._close is not None:
            self._close(built[0])

    def _setting_changed(self, *, setting: str, **kwargs: object) -> None:
        if setting in self.names:
            self.reset()


def per_settings(*names: str) -> Callable[[Callable[[], _Built]], PerSettings[_Built]]:
    """Decorate a builder: its value is made once, and again after one of ``names`` changed::

        @per_settings("FILERESPONSE", "MEDIA_ROOT")
        def get_store() -> DerivativeStore: ...

        get_store()        # built now, then the same object
        get_store.reset()  # built again on the next call

    Without names, the value lasts as long as the process (or until ``reset()``).
    A value that holds resources: ``PerSettings(builder, names, close=...)``.
    """

    def decorate(builder: Callable[[], _Built]) -> PerSettings[_Built]:
        return PerSettings(builder, names)

    return decorate
