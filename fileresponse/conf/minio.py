"""The settings of :class:`~fileresponse.storage.MinioStorage` (``FILERESPONSE_MINIO``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from .lazy import per_settings
from .tables import settings_table, type_problem, types_of, unknown_keys

__all__ = [
    "DELIVERY_MODES",
    "MINIO_DEFAULTS",
    "MinioConfig",
    "get_minio_config",
    "minio_settings",
    "validate_minio",
    "validate_minio_types",
]


#: How a storage view delivers an object's bytes.
DELIVERY_MODES = ("stream", "presigned", "public")

_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True, slots=True)
class MinioConfig:
    """The effective settings of one :class:`~fileresponse.storage.MinioStorage`.

    Read from ``settings.FILERESPONSE_MINIO``, then the ``OPTIONS`` of its
    entry in ``STORAGES`` (or keyword arguments), which win.
    """

    #: ``host:port`` of the S3 API, without a scheme (``SECURE`` picks https).
    ENDPOINT: str = ""
    ACCESS_KEY: str = ""
    SECRET_KEY: str = field(default="", repr=False)
    BUCKET: str = ""
    #: https (``True``) or http.
    SECURE: bool = True
    #: ``None`` asks the server once per client (one ``GetBucketLocation``).
    REGION: str | None = None
    #: Key prefix under which the storage keeps its files (``"media"`` -> ``media/<name>``).
    PREFIX: str = ""
    #: ``stream`` through Django, or a ``302`` to a ``presigned`` or ``public`` URL.
    DELIVERY: str = "stream"
    #: Lifetime of presigned URLs, in seconds (at most 7 days).
    PRESIGNED_TTL: int = 3600
    #: Base URL of public objects (a CDN, or a public-read bucket); ``None``: the endpoint's.
    PUBLIC_URL: str | None = None
    #: What ``url()`` returns in ``stream`` delivery (the URL of the serving view), or ``None``.
    BASE_URL: str | None = None
    #: Seconds to wait for a connection to the storage.
    CONNECT_TIMEOUT: float = 5.0
    #: Seconds to wait for each read from the storage.
    READ_TIMEOUT: float = 30.0
    #: Connections kept to the storage per process (and per event loop).
    MAX_CONNECTIONS: int = 100

    @property
    def endpoint_url(self) -> str:
        return f"{'https' if self.SECURE else 'http'}://{self.ENDPOINT}"


MINIO_DEFAULTS: Mapping[str, Any] = {item.name: item.default for item in fields(MinioConfig)}

_MINIO_TYPES = types_of(MinioConfig)


def validate_minio_types(values: Mapping[str, Any]) -> list[str]:
    """Unknown keys and values of the wrong type in MinIO settings, as sentences."""
    problems = unknown_keys(values, MINIO_DEFAULTS)
    for key, value in values.items():
        expected = _MINIO_TYPES.get(key)
        if expected is not None and (wrong_type := type_problem(key, value, expected)):
            problems.append(wrong_type)
    return problems


def validate_minio(values: Mapping[str, Any]) -> list[str]:
    """Problems with complete MinIO settings (keys as in :class:`MinioConfig`), as sentences."""
    problems = validate_minio_types(values)
    if problems:
        return problems
    merged = {**MINIO_DEFAULTS, **values}
    endpoint = merged["ENDPOINT"]
    if not endpoint:
        problems.append("ENDPOINT is required (host:port of the S3 API)")
    elif "://" in endpoint or "/" in endpoint:
        problems.append(f"ENDPOINT must be host:port without scheme or path, not {endpoint!r}")
    if not _BUCKET_NAME.match(merged["BUCKET"]) or ".." in merged["BUCKET"]:
        problems.append(f"BUCKET must be a valid S3 bucket name, not {merged['BUCKET']!r}")
    if bool(merged["ACCESS_KEY"]) != bool(merged["SECRET_KEY"]):
        problems.append("ACCESS_KEY and SECRET_KEY go together")
    prefix = merged["PREFIX"].strip("/")
    if prefix and any(part in ("", ".", "..") or "\\" in part for part in prefix.split("/")):
        problems.append(f"PREFIX must be a key prefix like 'a/b', not {merged['PREFIX']!r}")
    if merged["DELIVERY"] not in DELIVERY_MODES:
        problems.append(
            f"DELIVERY must be one of {', '.join(DELIVERY_MODES)}, not {merged['DELIVERY']!r}"
        )
    if not 1 <= merged["PRESIGNED_TTL"] <= 7 * 24 * 3600:
        problems.append("PRESIGNED_TTL must be between 1 second and 7 days")
    for key in ("PUBLIC_URL", "BASE_URL"):
        url = merged[key]
        if url is not None and not (url.startswith(("http://", "https://", "/"))):
            problems.append(f"{key} must be an http(s) URL or start with '/', not {url!r}")
    for key in ("CONNECT_TIMEOUT", "READ_TIMEOUT", "MAX_CONNECTIONS"):
        if merged[key] <= 0:
            problems.append(f"{key} must be positive, not {merged[key]}")
    return problems


@per_settings("FILERESPONSE_MINIO")
def minio_settings() -> Mapping[str, Any]:
    """``settings.FILERESPONSE_MINIO`` (empty when unset), read once (again when it changes)."""
    return MappingProxyType(dict(settings_table("FILERESPONSE_MINIO")))


def get_minio_config(**overrides: Any) -> MinioConfig:
    """MinIO settings: defaults, then ``settings.FILERESPONSE_MINIO``, then ``overrides``.

    Override names are case-insensitive (``bucket=`` or ``BUCKET=``), so the
    ``OPTIONS`` of a ``STORAGES`` entry can use either; ``None`` values are
    left out.
    """
    values = {
        **minio_settings(),
        **{key.upper(): value for key, value in overrides.items() if value is not None},
    }
    problems = validate_minio(values)
    if problems:
        raise ImproperlyConfigured("MinIO storage: " + "; ".join(problems))
    values["PREFIX"] = values.get("PREFIX", "").strip("/")
    for key, value in values.items():
        if float in _MINIO_TYPES[key]:
            values[key] = float(value)
    return MinioConfig(**values)
