"""Errors of derivative processing; the derivative view maps each to a ``4xx`` with its reason.

They cross process boundaries (a worker raises, the view catches), so each
takes a single message argument and pickles as it is.
"""

from __future__ import annotations

from fileresponse.exceptions import FileResponseError, SourceUnavailable

__all__ = [
    "BeyondSource",
    "CommandFailed",
    "CorruptImage",
    "CorruptMedia",
    "DerivativeLimitExceeded",
    "InsufficientStorage",
    "KindUnavailable",
    "NotAnImage",
    "ProcessingError",
    "ProcessingUnavailable",
    "SourceChanged",
    "SourceTooLarge",
    "SpecMismatch",
    "UnsupportedFormat",
]


class ProcessingError(FileResponseError):
    """A derivative cannot be made from this source with this spec: a ``4xx``.

    ``str(error)`` is a short reason, safe to show to the client.
    """

    status_code = 422


class NotAnImage(ProcessingError):
    """The source is not an image of a format the engine reads: ``422``."""


class CorruptImage(ProcessingError):
    """The source looks like an image but cannot be decoded (corrupt, truncated): ``422``."""


class CorruptMedia(ProcessingError):
    """The source is no PDF, video or audio file that can be read (corrupt, truncated): ``422``."""


class BeyondSource(ProcessingError):
    """The spec asks for what the source has not (a page past the end, a later time): ``422``."""


class SpecMismatch(ProcessingError, ValueError):
    """A spec of another kind than the source (``page=2`` for a video): ``400``.

    A :class:`ValueError` too, as :class:`~fileresponse.derivatives.spec.InvalidSpec`
    is: template tags treat both as a bad spec.
    """

    status_code = 400


class SourceTooLarge(ProcessingError):
    """The source has more bytes or pixels than the limits allow: ``422``.

    Checked before decoding, from the file size and the image header, so a
    decompression bomb costs no memory.
    """


class DerivativeLimitExceeded(ProcessingError):
    """The spec asks for an output larger than ``DERIVATIVES_MAX_WIDTH``/``_HEIGHT``: ``400``."""

    status_code = 400


class UnsupportedFormat(ProcessingError):
    """The output format is not supported by the engine here (e.g. AVIF): ``400``."""

    status_code = 400


class CommandFailed(ProcessingError):
    """An external command of a processor exited with an error: ``502``."""

    status_code = 502


class KindUnavailable(ProcessingError):
    """The kind of the spec is not enabled here (``DERIVATIVES_KINDS``) or lacks its library:
    ``501``, refused before any work.

    About the site, not the source: never remembered by the negative cache.
    """

    status_code = 501


class ProcessingUnavailable(SourceUnavailable):
    """No result in time (busy pool, lock wait over): ``503`` with ``Retry-After``."""


class SourceChanged(ProcessingUnavailable):
    """The source was replaced or moved between its stat and its processing: ``503``.

    Transient, and never remembered: the next request stats the new version.
    """


class InsufficientStorage(ProcessingUnavailable):
    """No space left for the derivative, or for the temporary copy of its source: ``507``.

    Nothing partial is kept and nothing is remembered: once there is space
    again, the next request makes the derivative.
    """

    status_code = 507
