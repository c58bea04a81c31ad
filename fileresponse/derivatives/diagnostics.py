"""How a derivative was obtained: the ``Cache-Status`` and ``Server-Timing`` of its response.

``Cache-Status`` (RFC 9211) names the derivative store ``fileresponse``: ``hit``
(section 2.1), else ``fwd=miss`` (2.2), ``collapsed`` (2.6) when the request
waited for another's run, ``stored`` (2.5) once stored, ``detail=streaming`` (2.8)
for a body sent while it is made; no ``ttl`` (2.4: derivatives have no freshness
lifetime). ``Server-Timing``: ``lookup``, then ``process``, or ``first-byte`` when
streamed (no trailers: the whole run's time is in the log line of each derivative
made). Neither ``Timing-Allow-Origin`` nor ``Access-Control-Expose-Headers`` is
sent: pages of the same origin only read them, unless a site adds those (by a
middleware, or ``FAST_PATH_HEADERS``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from fileresponse.http.diagnostics import CacheStatus, Metric, server_timing

if TYPE_CHECKING:
    from .originals import SourceState
    from .spec import Spec

__all__ = ["CACHE_NAME", "Provenance", "diagnostic_headers", "log_generated", "logger"]

logger = logging.getLogger("fileresponse.derivatives")

#: The cache's identifier in ``Cache-Status`` (RFC 9211 section 2: a Token).
CACHE_NAME = "fileresponse"


@dataclass(frozen=True, slots=True)
class Provenance:
    """How one request obtained its derivative, timed."""

    #: ``"hit"``: stored already; ``"miss"``: this request's run made it; ``"collapsed"``:
    #: a miss that waited for the run of another request (of this or another process).
    outcome: Literal["hit", "miss", "collapsed"]
    #: The processor's kind (``image``, ``video``, ``command``...).
    kind: str
    #: Seconds to resolve the spec and look the derivative up.
    look_up: float
    #: Seconds from the miss to the stored derivative, or to a stream's first byte.
    production: float = 0.0
    #: Whether the body is sent as it is made (not stored yet).
    streamed: bool = False


def diagnostic_headers(provenance: Provenance) -> dict[str, str]:
    """The ``Cache-Status`` and ``Server-Timing`` fields of a derivative's response."""
    metrics = [Metric("lookup", provenance.look_up * 1000)]
    if provenance.outcome == "hit":
        status = CacheStatus(CACHE_NAME, hit=True)
    else:
        status = CacheStatus(
            CACHE_NAME,
            # The store cannot tell a target it never saw (uri-miss) from an output it
            # did not make for this Accept (vary-miss): RFC 9211 section 2.2's "miss".
            fwd="miss",
            collapsed=provenance.outcome == "collapsed",
            stored=not provenance.streamed,
            detail="streaming" if provenance.streamed else None,
        )
        name = "first-byte" if provenance.streamed else "process"
        metrics.append(Metric(name, provenance.production * 1000, provenance.kind))
    return {"Cache-Status": status.serialize(), "Server-Timing": server_timing(metrics)}


def log_generated(
    name: str,
    state: SourceState,
    spec: Spec,
    *,
    seconds: float,
    size: int,
    summary: str,
    worker_pid: int | None = None,
) -> None:
    """The one INFO line of a derivative made: its name, time, size, source and spec
    (and the pid of the task queue's worker that made it)."""
    source = f"{state.storage_alias}:{state.name}"
    canonical = spec.canonical()
    logger.info(
        "generated %s in %.1f ms (%s, %d bytes%s) from %r by %r",
        name,
        seconds * 1000,
        summary,
        size,
        "" if worker_pid is None else f", worker pid {worker_pid}",
        source,
        canonical,
        extra={
            "derivative": name,
            "duration": seconds,
            "size": size,
            "source": source,
            "spec": canonical,
        },
    )
