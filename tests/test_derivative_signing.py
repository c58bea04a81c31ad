"""Signed derivative URLs: building, verifying, tampering, key rotation, sources."""

from __future__ import annotations

import json
import re
import sys
import types
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import FileSystemStorage, storages
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import FileField
from django.db.models.fields.files import FieldFile
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import Client
from django.urls import include, path, set_script_prefix

from fileresponse.derivatives import (
    DerivativeRequest,
    InvalidSignature,
    InvalidSpec,
    derivative,
    derivative_url,
    parse_spec,
    resolve_request,
)
from fileresponse.derivatives.signing import (
    SIGNATURE_LENGTH,
    format_options,
    normalize_version,
    resolve_path,
    sign,
    signed_path,
)
from fileresponse.exceptions import FileResponseError, SourceNotFound, UnsafePath
from fileresponse.views import error_response


def resolving_view(request: HttpRequest, signature: str, options: str, name: str) -> HttpResponse:
    """A stand-in for the derivative view: what resolve_request makes of the URL."""
    try:
        resolved = resolve_request(signature, options, name)
    except FileResponseError as error:
        return error_response(error)
    return JsonResponse(
        {
            "name": resolved.source_name,
            "spec": str(resolved.spec),
            "version": resolved.version,
            "storage": resolved.storage,
        }
    )


derivative_patterns = [
    path("<str:signature>/<str:options>/<path:name>", resolving_view, name="derivative"),
]
urlpatterns = [path("thumbs/", include((derivative_patterns, "fileresponse")))]


@pytest.fixture(autouse=True)
def sources(settings: Any, tmp_path: Path) -> dict[str, Path]:
    roots = {"default": tmp_path / "media", "uploads": tmp_path / "uploads"}
    for root in roots.values():
        root.mkdir()
    settings.ROOT_URLCONF = __name__
    settings.SECRET_KEY = "current-key"
    settings.SECRET_KEY_FALLBACKS = []
    settings.STORAGES = {
        alias: {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root)},
        }
        for alias, root in roots.items()
    } | {"private": {"BACKEND": "django.core.files.storage.InMemoryStorage"}}
    settings.FILERESPONSE = {"DERIVATIVES_SOURCE_STORAGES": ["default", "uploads"]}
    return roots


def fetch(url: str) -> tuple[int, dict[str, Any] | None]:
    response = Client().get(url)
    if response.status_code == 200:
        return 200, json.loads(response.content)
    return response.status_code, None


URL = re.compile(r"/thumbs/(?P<signature>[A-Za-z0-9_-]{27})/(?P<options>[^/]+)/(?P<name>.+)")


def test_url_format() -> None:
    url = derivative_url("photos/cat.jpg", "webp FILL 300x200 q=80", version=17)
    match = URL.fullmatch(url)
    assert match is not None, url
    assert match["options"] == "300x200,fill,webp,q=80,v=17"
    assert match["name"] == "photos/cat.jpg"
    assert match["signature"] == sign("300x200,fill,webp,q=80,v=17/photos/cat.jpg")
    assert len(match["signature"]) == SIGNATURE_LENGTH
    assert fetch(url) == (
        200,
        {
            "name": "photos/cat.jpg",
            "spec": "300x200 fill webp q=80",
            "version": "17",
            "storage": "default",
        },
    )


def test_equal_specs_give_equal_urls() -> None:
    assert derivative_url("a.jpg", "300x200 fill") == derivative_url("a.jpg", "FILL,300X200")
    assert derivative_url("a.jpg", "300x200 fill") == derivative_url(
        "a.jpg", parse_spec("300x200 fill")
    )
    assert derivative_url("a.jpg", "300x200") != derivative_url("b.jpg", "300x200")
    assert derivative_url("a.jpg", "300x200") != derivative_url("a.jpg", "300x200", version=1)
    assert derivative_url("a.jpg", "300x200", version=1) != derivative_url(
        "a.jpg", "300x200", version=2
    )


@pytest.mark.parametrize(
    "name",
    [
        "Größe €.jpg",
        "with space/and%percent.jpg",
        "query?hash#semi;colon.jpg",
        "plus+comma,equals=at@.jpg",
        'it\'s & <b>"quoted"</b>,',
        "a/b/c/d/e/f.jpg",
        "v=1,storage=uploads.jpg",
        "..hidden/...jpg",
    ],
)
def test_unusual_names_round_trip(name: str) -> None:
    url = derivative_url(name, "100x100")
    # Nothing that means something in a query, an HTML attribute or a srcset.
    assert not set("?#&'\"<> ") & set(url)
    assert "," not in url.rsplit("/", 1)[-1]
    status, body = fetch(url)
    assert status == 200
    assert body is not None
    assert body["name"] == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "/etc/passwd",
        "../secret.jpg",
        "a/../../b.jpg",
        "a/./b.jpg",
        "a//b.jpg",
        "a\\b.jpg",
        "a\x00b",
        "tab\there",
    ],
)
def test_unsafe_names_are_refused_when_building(name: str) -> None:
    with pytest.raises(ValueError):
        signed_path(name, parse_spec("100x100"))


@pytest.mark.parametrize(
    "name", ["../secret.jpg", "a/../../b.jpg", "a/./b.jpg", "a//b.jpg", "a\\b.jpg"]
)
def test_unsafe_names_are_refused_when_resolving_even_if_signed(name: str) -> None:
    options = "100x100"
    with pytest.raises(UnsafePath):
        resolve_request(sign(f"{options}/{name}"), options, name)


def tampered(url: str) -> list[str]:
    """Variants of ``url`` with one part changed."""
    match = URL.fullmatch(url)
    assert match is not None
    signature, options, name = match["signature"], match["options"], match["name"]

    def build(sig: str = signature, opts: str = options, tail: str = name) -> str:
        return f"/thumbs/{sig}/{opts}/{tail}"

    flipped = [
        build(sig=signature[:index] + ("A" if char != "A" else "B") + signature[index + 1 :])
        for index, char in enumerate(signature)
    ]
    tokens = options.split(",")
    option_variants = [
        ",".join(tokens[:index] + tokens[index + 1 :]) for index in range(len(tokens))
    ] + [
        options.replace("300x200", "301x200"),
        options.replace("300x200", "3000x2000"),
        options.replace("fill", "crop"),
        options.replace("q=80", "q=81"),
        options.replace("v=7", "v=8"),
        options + ",storage=uploads",
        options + ",upscale",
        ",".join(reversed(tokens)),  # same meaning, different text: still not signed
        options.upper(),
    ]
    name_variants = [
        name + "x",
        "x" + name,
        name.replace("cat", "dog"),
        "photos/../" + name,
        "../" + name,
        name.upper(),
        "other/" + name,
    ]
    return [
        *flipped,
        build(sig=signature[:-1]),
        build(sig=signature + "A"),
        build(sig="A" * SIGNATURE_LENGTH),
        build(sig="-"),
        *(build(opts=variant) for variant in option_variants if variant != options),
        *(build(tail=variant) for variant in name_variants),
    ]


def test_every_tampered_part_is_refused() -> None:
    url = derivative_url("photos/cat.jpg", "300x200 fill webp q=80", version=7)
    assert fetch(url)[0] == 200
    variants = tampered(url)
    assert len(variants) > 45
    for variant in variants:
        assert variant != url
        assert fetch(variant) == (403, None), variant


@pytest.mark.parametrize(
    "path_after_prefix",
    [
        "",
        "photos/cat.jpg",
        "300x200/photos/cat.jpg",
        "nosig/300x200/photos/cat.jpg",
        "%00/300x200/a.jpg",
    ],
)
def test_unsigned_urls_are_refused(path_after_prefix: str) -> None:
    assert fetch("/thumbs/" + path_after_prefix)[0] in (403, 404)
    with pytest.raises((InvalidSignature, FileResponseError)):
        resolve_path(path_after_prefix)


def test_refused_before_any_parsing() -> None:
    # An unparseable spec with a wrong signature is a 403, not a 400: nothing is parsed unsigned.
    with pytest.raises(InvalidSignature) as caught:
        resolve_request("A" * SIGNATURE_LENGTH, "not-a-spec", "a.jpg")
    assert caught.value.status_code == 403
    from django.core.signing import BadSignature

    assert isinstance(caught.value, BadSignature)


def test_a_signed_invalid_spec_is_a_400() -> None:
    options = "300x200,sepia"
    with pytest.raises(InvalidSpec):
        resolve_request(sign(f"{options}/a.jpg"), options, "a.jpg")
    for options in ("300x200,v=1,v=2", "300x200,v=bad!", "300x200,storage=a.b"):
        with pytest.raises(InvalidSpec):
            resolve_request(sign(f"{options}/a.jpg"), options, "a.jpg")
    status = Client().get(f"/thumbs/{sign('300x200,sepia/a.jpg')}/300x200,sepia/a.jpg").status_code
    assert status == 400


def test_key_rotation_through_secret_key_fallbacks(settings: Any) -> None:
    old_url = derivative_url("photos/cat.jpg", "300x200")
    settings.SECRET_KEY = "next-key"
    settings.SECRET_KEY_FALLBACKS = ["current-key"]
    assert fetch(old_url)[0] == 200
    new_url = derivative_url("photos/cat.jpg", "300x200")
    assert new_url != old_url
    assert fetch(new_url)[0] == 200
    settings.SECRET_KEY_FALLBACKS = []
    assert fetch(old_url)[0] == 403
    assert fetch(new_url)[0] == 200


def test_the_signing_key_is_salted() -> None:
    from django.core.signing import Signer

    message = "300x200/photos/cat.jpg"
    assert sign(message) != sign(message, secret="other")
    assert sign(message) not in Signer(algorithm="sha256").sign(message)


VERSIONS: list[tuple[object, str | None]] = [
    (None, None),
    (0, "0"),
    (1732417200, "1732417200"),
    (datetime(2024, 11, 24, 3, 0, 0, 123456, tzinfo=UTC), "1732417200123456"),
    (
        datetime(2024, 11, 24, 4, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1))),
        "1732417200123456",
    ),
    (datetime(2024, 11, 24, 3, 0, 0, 123456), "1732417200123456"),  # naive: read as UTC
    (date(2024, 11, 24), "2024-11-24"),
    ("abc-1.2_3~", "abc-1.2_3~"),
]


@pytest.mark.parametrize(("value", "expected"), VERSIONS)
def test_normalize_version(value: object, expected: str | None) -> None:
    assert normalize_version(value) == expected


@pytest.mark.parametrize("value", ['"etag/with,unsafe chars"', "x" * 65, "", "\u00e9t\u00e9"])
def test_unsafe_versions_are_hashed(value: str) -> None:
    result = normalize_version(value)
    assert result is not None
    assert re.fullmatch(r"[0-9a-f]{16}", result)
    assert result == normalize_version(value)
    assert result != normalize_version(value + "!")


def test_version_must_not_be_a_bool() -> None:
    with pytest.raises(TypeError):
        normalize_version(True)
    with pytest.raises(ValueError):
        format_options(parse_spec("webp"), version="a,b")


def field_file(storage: Any, name: str) -> FieldFile:
    return FieldFile(None, FileField(storage=storage), name)  # type: ignore[arg-type]


def test_sources_field_files_names_and_paths(sources: dict[str, Path]) -> None:
    from django.core.files.storage import default_storage

    spec = "100x100"
    by_name = derivative("photos/cat.jpg", spec)
    assert (by_name.storage, by_name.source_name) == ("default", "photos/cat.jpg")
    assert derivative(field_file(default_storage, "photos/cat.jpg"), spec) == by_name
    assert derivative(field_file(storages["default"], "photos/cat.jpg"), spec) == by_name
    assert derivative(Path("photos/cat.jpg"), spec) == by_name
    assert derivative(str(sources["default"] / "photos" / "cat.jpg"), spec) == by_name
    assert derivative(sources["default"] / "photos" / "x" / ".." / "cat.jpg", spec) == by_name

    uploads = derivative(field_file(storages["uploads"], "cat.jpg"), spec)
    assert (uploads.storage, uploads.source_name) == ("uploads", "cat.jpg")
    assert ",storage=uploads/" in uploads.url
    # Another instance configured alike is found by its deconstruction.
    twin = FileSystemStorage(location=str(sources["uploads"]))
    assert derivative(field_file(twin, "cat.jpg"), spec) == uploads
    assert derivative(sources["uploads"] / "cat.jpg", spec) == uploads
    assert derivative("cat.jpg", spec, storage="uploads") == uploads
    assert fetch(uploads.url) == (
        200,
        {"name": "cat.jpg", "spec": "100x100", "version": None, "storage": "uploads"},
    )


@pytest.mark.parametrize(
    ("source", "kwargs", "error"),
    [
        (lambda roots: field_file(storages["default"], ""), {}, ValueError),
        (lambda roots: field_file(storages["private"], "a.jpg"), {}, ValueError),
        (
            lambda roots: field_file(FileSystemStorage(location="/elsewhere"), "a.jpg"),
            {},
            ValueError,
        ),
        (
            lambda roots: field_file(storages["default"], "a.jpg"),
            {"storage": "uploads"},
            ValueError,
        ),
        (lambda roots: "a.jpg", {"storage": "private"}, ValueError),
        (lambda roots: "/not/in/any/storage.jpg", {}, ValueError),
        (lambda roots: str(roots["default"]), {}, ValueError),
        (lambda roots: roots["default"].parent / "secret.jpg", {}, ValueError),
        (lambda roots: 42, {}, TypeError),
        (lambda roots: None, {}, TypeError),
        (lambda roots: b"a.jpg", {}, TypeError),
    ],
)
def test_bad_sources(
    sources: dict[str, Path], source: Any, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        derivative_url(source(sources), "100x100", **kwargs)


def test_a_storage_removed_from_the_sources_is_a_404(settings: Any) -> None:
    url = derivative_url("cat.jpg", "100x100", storage="uploads")
    settings.FILERESPONSE = {"DERIVATIVES_SOURCE_STORAGES": ["default"]}
    assert fetch(url)[0] == 404
    match = URL.fullmatch(url)
    assert match is not None
    with pytest.raises(SourceNotFound):
        resolve_request(match["signature"], match["options"], match["name"])


def test_derivative_request_value() -> None:
    url = derivative_url("cat.jpg", "100x100 webp", storage="uploads", version="3")
    match = URL.fullmatch(url)
    assert match is not None
    request = resolve_request(match["signature"], match["options"], match["name"])
    assert request == DerivativeRequest("cat.jpg", parse_spec("100x100 webp"), "3", "uploads")
    assert request.options == match["options"]
    assert request.source_storage() is storages["uploads"]
    assert resolve_path(f"/{match['signature']}/{match['options']}/{match['name']}") == request


def test_base_url_and_script_prefix(settings: Any) -> None:
    relative = derivative_url("a.jpg", "100x100").removeprefix("/thumbs/")
    set_script_prefix("/app/")
    try:
        assert derivative_url("a.jpg", "100x100") == "/app/thumbs/" + relative
    finally:
        set_script_prefix("/")
    assert derivative_url("a.jpg", "100x100") == "/thumbs/" + relative
    settings.FILERESPONSE = {"DERIVATIVES_BASE_URL": "https://cdn.example.test/d"}
    assert derivative_url("a.jpg", "100x100") == "https://cdn.example.test/d/" + relative


def test_missing_urlconf_is_improperly_configured(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    without = types.ModuleType("urls_without_derivatives")
    without.urlpatterns = []  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, without.__name__, without)
    settings.ROOT_URLCONF = without.__name__
    with pytest.raises(ImproperlyConfigured, match="include"):
        derivative_url("a.jpg", "100x100")


def test_management_command_prints_the_url(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("fileresponse_url", "photos/cat.jpg", "300x200 FILL webp")
    printed = capsys.readouterr().out.strip()
    assert printed == derivative_url("photos/cat.jpg", "300x200 fill webp")
    assert fetch(printed)[0] == 200
    call_command(
        "fileresponse_url", "cat.jpg", "x50", "--source-version", "9", "--storage", "uploads"
    )
    printed = capsys.readouterr().out.strip()
    assert printed.endswith("/x50,v=9,storage=uploads/cat.jpg")
    with pytest.raises(CommandError, match="unknown token"):
        call_command("fileresponse_url", "photos/cat.jpg", "300x200 sepia")
    with pytest.raises(CommandError, match="segment"):
        call_command("fileresponse_url", "../cat.jpg", "300x200")


def test_quoting_of_the_url() -> None:
    url = derivative_url("dir/Größe €.jpg", "100x100")
    assert url.endswith("/100x100/dir/" + quote("Größe €.jpg"))
    assert url.isascii()
