"""The ``command`` processor: external programs registered by name, run for ``run=name`` specs.

``DERIVATIVES_COMMANDS`` maps a name to ``argv`` (a list, never a shell line),
the output ``formats`` it writes, a ``timeout`` and whether it reads the source
on ``stdin``. Placeholders (``{input}``, ``{format}``, ``{width}``,
``{height}``, ``{quality}``) are filled with validated values only. The output
is the command's stdout, streamed to the first clients while it is made
(:mod:`fileresponse.derivatives.streaming`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, ClassVar

from fileresponse.derivatives.exceptions import (
    CommandFailed,
    ProcessingUnavailable,
    SpecMismatch,
    UnsupportedFormat,
)
from fileresponse.derivatives.spec import InvalidSpec

from .base import Command, JobInput, Output, Processor, check_box

if TYPE_CHECKING:
    from fileresponse.conf import Config
    from fileresponse.derivatives.spec import Spec

__all__ = ["CommandJob", "CommandProcessor", "CommandResult", "run_to_end"]

logger = logging.getLogger("fileresponse.derivatives")

_EXTENSIONS = {"jpeg": "jpg"}


#: The address space a command may use unless its entry says ``max_memory``.
DEFAULT_MAX_MEMORY = 4 * 1024**3


@dataclass(frozen=True, slots=True)
class CommandJob:
    """One run of a registered command: its ``argv`` filled in, where its input comes from."""

    name: str
    argv: tuple[str, ...]
    stdin: bool
    timeout: float
    output_format: str
    #: The source: a path (``{input}``, or opened as stdin).
    path: str
    #: ``RLIMIT_AS`` bytes and ``RLIMIT_CPU`` seconds of the command.
    max_memory: int = 0
    max_cpu: float = 0.0

    @property
    def processor(self) -> str:
        return "fileresponse.derivatives.processors.command.CommandProcessor"


@dataclass(frozen=True, slots=True)
class CommandResult:
    data: bytes
    name: str

    @property
    def summary(self) -> str:
        return f"command {self.name}"


def _entry(spec: Spec, config: Config) -> Mapping[str, Any]:
    name = getattr(spec, "command", None)
    entry = config.DERIVATIVES_COMMANDS.get(name or "")
    if entry is None:
        raise InvalidSpec(f"unknown command {name!r}")
    return entry


def _output(output_format: str, content_type: str) -> Output:
    return Output(output_format, _EXTENSIONS.get(output_format, output_format), content_type)


class CommandProcessor(Processor):
    """External commands (``run=grayscale``); it claims no source by name: specs route to it."""

    kind = "command"
    suffixes: ClassVar[frozenset[str]] = frozenset()

    def streams(self, spec: Spec) -> bool:
        return True

    def version(self, config: Config) -> str:
        """``command-<digest of the table>``: a changed command makes new derivatives."""
        table = json.dumps(config.DERIVATIVES_COMMANDS, sort_keys=True, default=list)
        return f"command-{hashlib.blake2b(table.encode(), digest_size=5).hexdigest()}"

    def check(self, spec: Spec, config: Config) -> None:
        """``400`` for another kind, an unknown command, a value its ``argv`` needs and lacks."""
        if spec.kind != "command":
            raise SpecMismatch(f"the command processor takes run=... specs, not {spec.kind}")
        entry = _entry(spec, config)
        check_box(spec, config)
        values = {"width": spec.width, "height": spec.height, "quality": spec.quality}
        for placeholder, value in values.items():
            if value is None and any(f"{{{placeholder}}}" in item for item in entry["argv"]):
                raise InvalidSpec(f"command {spec.command!r} needs a {placeholder}")

    def choose_output(
        self, spec: Spec, source_name: str, accept: str | None, config: Config
    ) -> tuple[Output, bool]:
        """The spec's format if the command writes it, else the command's first format."""
        formats: Mapping[str, str] = _entry(spec, config)["formats"]
        chosen: str = spec.format or next(iter(formats))
        if chosen not in formats:
            raise UnsupportedFormat(
                f"command {spec.command!r} writes {', '.join(formats)}, not {chosen}"
            )
        return _output(chosen, formats[chosen]), False

    def output(self, output_format: str, config: Config) -> Output:
        for entry in config.DERIVATIVES_COMMANDS.values():
            if output_format in entry["formats"]:
                return _output(output_format, entry["formats"][output_format])
        raise UnsupportedFormat(f"unsupported format: {output_format}")

    def output_choices(self, spec: Spec, source_name: str, config: Config) -> list[Output]:
        return [self.choose_output(spec, source_name, None, config)[0]]

    def job(self, spec: Spec, output: Output, source: JobInput, config: Config) -> CommandJob:
        if source.path is None:
            raise ValueError("a command job needs its source as a file (see streaming)")
        entry = _entry(spec, config)
        values = {
            "input": source.path,
            "format": output.format,
            "width": "" if spec.width is None else str(spec.width),
            "height": "" if spec.height is None else str(spec.height),
            "quality": "" if spec.quality is None else str(spec.quality),
        }
        stdin = bool(entry.get("stdin", False))
        timeout = float(entry.get("timeout") or config.DERIVATIVES_TIMEOUT)
        return CommandJob(
            name=str(spec.command),
            argv=tuple(item.format_map(values) for item in entry["argv"]),
            stdin=stdin,
            timeout=timeout,
            output_format=output.format,
            path=source.path,
            max_memory=int(entry.get("max_memory") or DEFAULT_MAX_MEMORY),
            # CPU seconds of all its threads: the wall-clock timeout on every core.
            max_cpu=float(entry.get("max_cpu") or timeout * (os.cpu_count() or 1)),
        )

    def command(self, job: CommandJob) -> Command:
        return Command(
            job.argv,
            stdin=job.stdin,
            timeout=job.timeout,
            max_memory=job.max_memory,
            max_cpu=job.max_cpu,
        )

    @staticmethod
    def run(job: CommandJob) -> CommandResult:
        """Run the command to its end (in a worker); the server streams it instead."""
        with open(job.path, "rb") if job.stdin else open("/dev/null", "rb") as stdin:
            try:
                process = subprocess.Popen(  # argv from the settings: no shell
                    job.argv,
                    stdin=stdin,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                )
            except OSError as error:
                raise CommandFailed(f"command {job.name!r} cannot start: {error}") from None
            CommandProcessor().command(job).limit(process.pid)
            try:
                stdout, _ = process.communicate(timeout=job.timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
                raise ProcessingUnavailable(
                    f"command {job.name!r} took longer than {job.timeout:g}s"
                ) from None
        if process.returncode != 0:
            raise CommandFailed(f"command {job.name!r} exited with status {process.returncode}")
        return CommandResult(stdout, job.name)


_STDERR_TAIL = 2000


def run_to_end(
    command: Command, source: int, stdout: IO[bytes], *, label: str, timeout: float
) -> None:
    """Run a streaming processor's ``command`` to its end, its output into ``stdout``.

    For a worker of a task queue (:mod:`fileresponse.derivatives.remote`), which streams
    nothing: ``source`` is the open source (its stdin, or ``/dev/fd/N`` in ``argv``). Its
    session is killed when it ends or times out; raises ``CommandFailed`` unless exit 0.
    """
    with tempfile.TemporaryFile() as stderr:
        try:
            process = subprocess.Popen(  # argv from the processor: no shell
                command.argv,
                stdin=source if command.stdin else subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                pass_fds=() if command.stdin else (source,),
                start_new_session=True,
            )
        except OSError as error:
            raise CommandFailed(f"command {label!r} cannot start: {error.strerror}") from None
        command.limit(process.pid)
        try:
            status = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ProcessingUnavailable(
                f"command {label!r} took longer than {timeout:g}s"
            ) from None
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if status != 0:
            stderr.seek(max(0, stderr.tell() - _STDERR_TAIL))
            logger.warning(
                "command %r exited with status %d: %s",
                label,
                status,
                stderr.read().decode(errors="replace").strip(),
            )
            raise CommandFailed(f"command {label!r} exited with status {status}")
