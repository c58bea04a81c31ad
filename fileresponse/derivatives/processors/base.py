"""What a processor is: the specs it accepts, its limits, its outputs, and the job it runs.

A processor object lives in the server process and decides (which output,
within which limits); its job is a small picklable value that a worker
process runs with :meth:`Processor.run` (the job names its processor's class
by dotted path, so any worker can import it). Adding a kind of source is one
subclass and one :func:`~fileresponse.derivatives.processors.register_processor`.
"""

from __future__ import annotations

import abc
import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from fileresponse.derivatives.exceptions import DerivativeLimitExceeded, SourceChanged

if TYPE_CHECKING:
    from fileresponse.conf import Config
    from fileresponse.derivatives.spec import Spec

__all__ = [
    "Command",
    "Job",
    "JobInput",
    "Output",
    "Processor",
    "Result",
    "check_box",
    "open_checked",
]


@dataclass(frozen=True, slots=True)
class Output:
    """One output format of a processor."""

    format: str
    extension: str
    content_type: str


@dataclass(frozen=True, slots=True)
class JobInput:
    """Where a job finds its source: a local ``path`` (checked by ``identity``) or ``data``."""

    path: str | None = None
    data: bytes | None = None
    identity: tuple[int, int] | None = None
    #: An open descriptor of the source in this process (a streamed run), named by
    #: ``path`` as ``/dev/fd/N``: pass it to the programs that read ``path``.
    descriptor: int | None = None


@dataclass(frozen=True, slots=True)
class Command:
    """An external command whose standard output is the derivative (a streaming processor's).

    ``argv`` is run as is, never through a shell; with ``stdin`` the source is
    its standard input, else ``argv`` names it (the job's input path).
    """

    argv: tuple[str, ...]
    stdin: bool = False
    #: Seconds it may run; ``None``: ``DERIVATIVES_TIMEOUT``.
    timeout: float | None = None
    #: What the log calls it; ``None``: the program's name.
    name: str | None = None
    #: Resource limits of the process (``RLIMIT_AS`` bytes, ``RLIMIT_CPU`` seconds).
    max_memory: int | None = None
    max_cpu: float | None = None

    def limit(self, pid: int) -> None:
        """Set the limits on the process ``pid``, just started (Linux ``prlimit``).

        Applied from outside rather than between fork and exec, which is not
        safe in a threaded server; what the program allocates from its first
        instructions on counts, and its children inherit the limits.
        """
        import resource

        for which, value in (
            (resource.RLIMIT_AS, self.max_memory),
            (resource.RLIMIT_CPU, None if self.max_cpu is None else max(1, int(self.max_cpu))),
        ):
            if value is not None:
                with contextlib.suppress(ProcessLookupError):
                    resource.prlimit(pid, which, (value, value))


class Job(Protocol):
    """A picklable job; ``processor`` is the dotted path of the class that runs it."""

    @property
    def processor(self) -> str: ...


class Result(Protocol):
    """What a job returns: the derivative's bytes, and a few words for the log."""

    @property
    def data(self) -> bytes: ...

    @property
    def summary(self) -> str: ...


class Processor(abc.ABC):
    """Makes derivatives of one kind of source (``kind``: ``"image"``, ...)."""

    kind: ClassVar[str]
    #: Lower-case suffixes of the source names this processor takes (``.jpg``, ...).
    suffixes: ClassVar[frozenset[str]] = frozenset()

    def streams(self, spec: Spec) -> bool:
        """Whether the server process runs :meth:`command` for ``spec`` and streams the output
        to the first clients while it is made (:mod:`fileresponse.derivatives.streaming`),
        instead of :meth:`run` in a worker."""
        return False

    def claims(self, source_name: str) -> bool:
        """Whether a source of this name is of this processor's kind."""
        name = source_name.lower()
        return any(name.endswith(suffix) for suffix in self.suffixes)

    def unavailable(self, config: Config) -> str | None:
        """Why this kind cannot work here (its library is missing), or ``None``.

        Asked before each request's work and by the system checks; keep it cheap.
        """
        return None

    def preload(self, config: Config) -> Sequence[str]:
        """Modules worker processes import once, ahead of their first job."""
        return ()

    @abc.abstractmethod
    def version(self, config: Config) -> str:
        """The first segment of its derivatives' names; a new one when its output changes."""

    @abc.abstractmethod
    def check(self, spec: Spec, config: Config) -> None:
        """Refuse a spec this processor cannot make or that passes its limits (a ``4xx``)."""

    @abc.abstractmethod
    def choose_output(
        self, spec: Spec, source_name: str, accept: str | None, config: Config
    ) -> tuple[Output, bool]:
        """``(the output, whether it depends on the request's Accept header)``."""

    @abc.abstractmethod
    def output(self, output_format: str, config: Config) -> Output:
        """The output of this name (``"webp"``); ``UnsupportedFormat`` if there is none."""

    @abc.abstractmethod
    def output_choices(self, spec: Spec, source_name: str, config: Config) -> list[Output]:
        """Every output a request may get for this spec (the warm command makes them all)."""

    @abc.abstractmethod
    def job(self, spec: Spec, output: Output, source: JobInput, config: Config) -> Job:
        """The job that makes ``output`` of ``source`` by ``spec``."""

    def command(self, job: Any) -> Command:
        """The command that makes the derivative of ``job`` on its stdout (``streams`` only).

        Called in an I/O thread just before the run: it may read the source (a probe)
        and raise a ``ProcessingError``, which fails the run before its first byte.
        """
        raise NotImplementedError(f"{type(self).__name__} does not stream")

    @staticmethod
    @abc.abstractmethod
    def run(job: Any) -> Result:
        """Run a job of this processor (in a worker process); raises a ``ProcessingError``."""


def check_box(spec: Spec, config: Config) -> None:
    """``DerivativeLimitExceeded`` (``400``): a box over ``DERIVATIVES_MAX_WIDTH``/``_HEIGHT``."""
    if spec.width is not None and spec.width > config.DERIVATIVES_MAX_WIDTH:
        raise DerivativeLimitExceeded(
            f"width {spec.width} over the limit {config.DERIVATIVES_MAX_WIDTH}"
        )
    if spec.height is not None and spec.height > config.DERIVATIVES_MAX_HEIGHT:
        raise DerivativeLimitExceeded(
            f"height {spec.height} over the limit {config.DERIVATIVES_MAX_HEIGHT}"
        )


def open_checked(path: str, identity: tuple[int, int] | None) -> int:
    """A descriptor of the file at ``path``; ``SourceChanged`` if it is not the one stat'ed."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        raise SourceChanged("the source is gone since it was stat'ed") from None
    if identity is not None:
        info = os.fstat(descriptor)
        if (info.st_dev, info.st_ino) != identity:
            os.close(descriptor)
            raise SourceChanged("the source was replaced since it was stat'ed")
    return descriptor
