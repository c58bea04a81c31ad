"""Signed derivative URLs: their format, their signature, and their verification.

A derivative URL is the prefix where :mod:`fileresponse.derivatives.urls` is
included, then three parts::

    /derivatives/<signature>/<options>/<name>
    /derivatives/TfcBEUCm_-4pT6yxghLZAMrhZ68/300x200,fill,webp,q=80,v=1732417200000000/photos/cat.jpg

- ``options``: the canonical spec with its tokens joined by commas, then
  ``v=<version>`` when the caller gave a source version (a cache buster: a
  changed version gives a new URL), then ``storage=<alias>`` when the source
  is not in the ``"default"`` storage. The alias names an entry of Django's
  ``STORAGES`` listed in ``FILERESPONSE["DERIVATIVES_SOURCE_STORAGES"]``; no
  storage details travel in the URL.
- ``name``: the source's name in that storage, percent-encoded. Names are
  checked when a URL is built and again when it is resolved: no absolute
  names, no ``.`` or ``..`` segments, no backslashes or control characters.
- ``signature``: HMAC-SHA256 over ``<options>/<name>`` (the decoded name),
  truncated to 20 bytes and written in unpadded URL-safe base64 (27
  characters). The key is derived from ``SECRET_KEY`` and a salt by Django's
  :func:`~django.utils.crypto.salted_hmac`; ``SECRET_KEY_FALLBACKS`` are
  accepted when verifying, so keys can be rotated without breaking URLs
  already in pages and caches. The URL prefix is not signed, so the URLconf
  can move.

:func:`resolve_request` verifies the signature *before* it parses anything,
so a tampered or unsigned URL costs one HMAC per key and no other work.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote

from django.core.signing import BadSignature
from django.utils.crypto import constant_time_compare, salted_hmac

from fileresponse.conf import get_config
from fileresponse.derivatives.spec import InvalidSpec, Spec, parse_spec
from fileresponse.exceptions import FileResponseError, SourceNotFound, UnsafePath

if TYPE_CHECKING:
    from django.core.files.storage import Storage

__all__ = [
    "SALT",
    "DerivativeRequest",
    "InvalidSignature",
    "format_options",
    "normalize_version",
    "resolve_path",
    "resolve_request",
    "sign",
    "signed_path",
    "verify",
]

#: The salt of the signing key: a derivative URL's signature is worth nothing elsewhere.
SALT = "fileresponse.derivatives.url"
_DIGEST_BYTES = 20
SIGNATURE_LENGTH = 27  # unpadded base64 of 20 bytes

_MAX_NAME = 1024
_MAX_OPTIONS = 400
_VERSION = re.compile(r"[A-Za-z0-9._~-]{1,64}")
_ALIAS = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Kept as they are in names: RFC 3986 path characters that mean nothing in HTML
# attributes or in a srcset (so no ``&``, ``'`` or ``,``).
_NAME_SAFE = "/!$()*+;=:@~"
_OPTIONS_SAFE = ",="


class InvalidSignature(FileResponseError, BadSignature):
    """A derivative URL whose signature is missing, malformed or wrong: ``403``."""

    status_code = 403


@dataclass(frozen=True, slots=True)
class DerivativeRequest:
    """A verified derivative URL: which source, which spec, which version."""

    #: The source's name in its storage (checked: relative, no ``..``).
    source_name: str
    spec: Spec
    #: The version the URL was built with (a cache buster), or ``None``. The
    #: cache key uses the source's real version, from a stat at request time.
    version: str | None = None
    #: The alias of the source storage in Django's ``STORAGES``.
    storage: str = "default"

    @property
    def options(self) -> str:
        """The canonical options segment of this request's URL."""
        return format_options(self.spec, version=self.version, storage=self.storage)

    def source_storage(self) -> Storage:
        """The Django storage holding the source."""
        from django.core.files.storage import storages

        return storages[self.storage]


def sign(message: str, *, secret: str | bytes | None = None) -> str:
    """The signature of ``message`` under ``secret`` (default: ``SECRET_KEY``)."""
    if secret is None:
        from django.conf import settings

        secret = settings.SECRET_KEY
    digest = salted_hmac(SALT, message, secret=secret, algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest[:_DIGEST_BYTES]).rstrip(b"=").decode("ascii")


def verify(message: str, signature: str) -> bool:
    """Whether ``signature`` signs ``message`` under ``SECRET_KEY`` or one of its fallbacks."""
    from django.conf import settings

    if len(signature) != SIGNATURE_LENGTH:
        return False
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())]
    return any(constant_time_compare(signature, sign(message, secret=key)) for key in secrets)


def normalize_version(value: object) -> str | None:
    """The URL form of a source version, or ``None`` for no version.

    - ``datetime``: microseconds since the epoch (naive values are read as UTC,
      so the result does not depend on the server's time zone);
    - ``date``: ``YYYY-MM-DD``; ``int``: its digits;
    - anything else: its ``str()``, kept when it is short and URL-safe
      (``[A-Za-z0-9._~-]``, at most 64 characters), otherwise a 16-digit hash
      of it (still a faithful cache buster).
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("a version cannot be a bool")
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return str((moment - _EPOCH) // timedelta(microseconds=1))
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    if _VERSION.fullmatch(text):
        return text
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def format_options(spec: Spec, *, version: str | None = None, storage: str = "default") -> str:
    """The options segment: ``300x200,fill,webp,q=80[,v=<version>][,storage=<alias>]``."""
    tokens = spec.canonical().split(" ")
    if version is not None:
        if not _VERSION.fullmatch(version):
            raise ValueError(f"unsafe version {version!r}; pass it through normalize_version()")
        tokens.append(f"v={version}")
    if storage != "default":
        if not _ALIAS.fullmatch(storage):
            raise ValueError(f"unsafe storage alias {storage!r}")
        tokens.append(f"storage={storage}")
    return ",".join(tokens)


def _parse_options(options: str) -> tuple[Spec, str | None, str]:
    spec_tokens: list[str] = []
    version: str | None = None
    storage: str | None = None
    for token in options.split(","):
        if token.startswith("v="):
            if version is not None or not _VERSION.fullmatch(token[2:]):
                raise InvalidSpec(f"bad version token {token!r}")
            version = token[2:]
        elif token.startswith("storage="):
            if storage is not None or not _ALIAS.fullmatch(token[8:]):
                raise InvalidSpec(f"bad storage token {token!r}")
            storage = token[8:]
        else:
            spec_tokens.append(token)
    return parse_spec(" ".join(spec_tokens)), version, storage or "default"


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a source name in a URL, or ``None`` when it can."""
    if not name:
        return "empty name"
    if len(name) > _MAX_NAME:
        return f"name longer than {_MAX_NAME} characters"
    if name.startswith("/") or "\\" in name:
        return "absolute name or backslash"
    if _CONTROL.search(name):
        return "control character in name"
    if any(segment in ("", ".", "..") for segment in name.split("/")):
        return "empty, '.' or '..' segment in name"
    return None


def signed_path(
    source_name: str, spec: Spec, *, version: str | None = None, storage: str = "default"
) -> str:
    """``<signature>/<options>/<name>``, percent-encoded, to append to the URL prefix.

    ``version`` must already be normalized (:func:`normalize_version`).
    Raises :class:`ValueError` for an unsafe name.
    """
    problem = name_problem(source_name)
    if problem is not None:
        raise ValueError(f"cannot build a derivative URL for {source_name!r}: {problem}")
    options = format_options(spec, version=version, storage=storage)
    signature = sign(f"{options}/{source_name}")
    return f"{signature}/{quote(options, safe=_OPTIONS_SAFE)}/{quote(source_name, safe=_NAME_SAFE)}"


def resolve_request(signature: str, options: str, name: str) -> DerivativeRequest:
    """Verify and parse the three parts of a derivative URL (as decoded by the URLconf).

    Steps, in this order:

    1. the signature over ``<options>/<name>`` under ``SECRET_KEY`` or a
       fallback, else :class:`InvalidSignature` (``403``), before any parsing;
    2. the options (spec, version, storage), else
       :class:`~fileresponse.derivatives.spec.InvalidSpec` (``400``);
    3. the name, else :class:`~fileresponse.exceptions.UnsafePath` (``404``);
    4. the storage alias, which must still be listed in
       ``DERIVATIVES_SOURCE_STORAGES``, else
       :class:`~fileresponse.exceptions.SourceNotFound` (``404``).
    """
    if (
        len(options) > _MAX_OPTIONS
        or len(name) > _MAX_NAME
        or "/" in options
        or not verify(f"{options}/{name}", signature)
    ):
        raise InvalidSignature("bad or missing derivative signature")
    spec, version, storage = _parse_options(options)
    problem = name_problem(name)
    if problem is not None:
        raise UnsafePath(problem)
    if storage not in get_config().DERIVATIVES_SOURCE_STORAGES:
        raise SourceNotFound(f"storage {storage!r} is not a derivative source")
    return DerivativeRequest(source_name=name, spec=spec, version=version, storage=storage)


def resolve_path(path: str) -> DerivativeRequest:
    """:func:`resolve_request` for ``<signature>/<options>/<name>`` in one (decoded) string."""
    signature, _, rest = path.lstrip("/").partition("/")
    options, _, name = rest.partition("/")
    return resolve_request(signature, options, name)
