"""The spec language of derivatives: ``300x200 fill webp q=80``, ``poster t=2s``, ``mp4 360p``.

A spec is a few tokens separated by spaces or commas, in any order and any
case. :func:`parse_spec` infers its kind from the tokens and returns a
:class:`Spec`, a frozen value with one canonical text (``str(spec)``), so that
``parse_spec(str(spec)) == spec``. Pure: no Django, no I/O; a site's limits
are checked by the processors.

=========================  =======  ===================================================
token                      kind     meaning
=========================  =======  ===================================================
``300x200`` ``300x``       (image)  the box in pixels, 1..65535 (``300x``, ``x200``: one side)
``fit`` ``fill`` ``crop``  (image)  fit inside the box (default); cover it, cut the rest
                                    away; cut the box out unscaled (both need both sides)
``crop=north``             (image)  what ``fill`` and ``crop`` keep: ``center`` (default),
                                    ``north``, ``ne``, ``southwest``, ... (``centre``)
``upscale``                (image)  output larger than the source allowed
``jpeg`` ``png`` ``webp``  (image)  output format (``jpg`` is ``jpeg``); ``auto`` by ``Accept``;
``avif`` ``auto``                   none: the source's family (JPEG, else PNG)
``q=80``                   (image)  quality 1..100 of lossy formats
``page=2``                 pdf      the page (1..99999), then image tokens
``run=grayscale``          command  a command by name (``[a-z0-9_-]{1,40}``), then image tokens
``poster``                 video    a still at ``t=2s`` or ``t=50%``, then image tokens (JPEG)
``mp4`` ``webm``           video    a transcode: ``360p`` (16..4320, even), ``crf=23`` (0..63),
                                    ``fps=30`` (1..120), ``t=10s-15s`` (a clip)
``mp3`` ``aac`` ``opus``   audio    a transcode: ``128k`` (8..512 kbit/s), ``loudnorm``, a clip
``waveform``               audio    a picture of the sound in the box (both sides), PNG
``peaks 800`` ``json``     audio    800 peak values (1..100000) as JSON
=========================  =======  ===================================================

``(image)`` tokens say no kind: they apply to image, pdf, poster and command
specs (the box to ``waveform`` too); tokens of two kinds are refused. Times are
seconds to the millisecond (``t=1.5s``), fractions to 0.01% (``t=12.5%``).
Canonical order: :data:`ORDERS`; defaults (``fit``, ``crop=center``) are left out.
"""

from . import model
from .model import *  # noqa: F403 (the names of model.__all__)
from .parser import parse_spec

__all__ = [*model.__all__, "parse_spec"]
