"""``{% derivative %}`` and ``{% fileprocessor %}``: URLs only, no processing, no storage calls."""

from __future__ import annotations

import logging
import sys
import types
from pathlib import Path
from typing import Any, ClassVar

import pytest
from django.core.files.storage import FileSystemStorage, storages
from django.db.models import FileField
from django.db.models.fields.files import FieldFile
from django.template import Context, Template, TemplateSyntaxError
from django.urls import include, path

from fileresponse.derivatives import derivative, derivative_image, derivative_url


def never_called(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the derivative view is not reached in these tests")


urlpatterns = [
    path(
        "derivatives/",
        include(
            (
                [
                    path(
                        "<str:signature>/<str:options>/<path:name>", never_called, name="derivative"
                    )
                ],
                "fileresponse",
            )
        ),
    )
]


class CountingStorage(FileSystemStorage):
    """A storage that records every method looked up on it (so every call, and more)."""

    calls: ClassVar[list[str]] = []

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        if callable(value) and not name.startswith("__"):
            CountingStorage.calls.append(name)
        return value


@pytest.fixture(autouse=True)
def configured(settings: Any, tmp_path: Path) -> Path:
    media = tmp_path / "media"
    media.mkdir()
    settings.ROOT_URLCONF = __name__
    settings.DEBUG = False
    settings.STORAGES = {
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(media)},
        },
        "counted": {
            "BACKEND": f"{__name__}.CountingStorage",
            "OPTIONS": {"location": str(media)},
        },
    }
    settings.FILERESPONSE = {
        "DERIVATIVES_SOURCE_STORAGES": ["default", "counted"],
        "DERIVATIVES_ROOT": str(tmp_path / "derivatives"),
    }
    return tmp_path


def render(text: str, **context: Any) -> str:
    return Template("{% load fileresponse %}" + text).render(Context(context))


def field_file(name: str, alias: str = "default") -> FieldFile:
    return FieldFile(None, FileField(storage=storages[alias]), name)  # type: ignore[arg-type]


# ---------------------------------------------------------------- {% derivative %}


def test_derivative_writes_the_url() -> None:
    photo = field_file("photos/cat.jpg")
    assert render('{% derivative photo "300x200 fill webp" %}', photo=photo) == derivative_url(
        photo, "300x200 fill webp"
    )
    assert render('{% derivative "photos/cat.jpg" spec %}', spec="FILL 300x200 webp") == (
        derivative_url("photos/cat.jpg", "300x200 fill webp")
    )


@pytest.mark.parametrize(
    ("name", "spec", "canonical"),
    [
        ("podcast/episode.mp3", "mp3 128k", "mp3 128k"),
        ("podcast/episode.mp3", "800 peaks", "peaks 800"),
        ("talks/keynote.mp4", "poster t=2s 320x180 jpeg", "poster t=2s 320x180 jpeg"),
        ("talks/keynote.mp4", "360p mp4", "mp4 360p"),
        ("docs/report.pdf", "page=2 400x jpeg", "page=2 400x jpeg"),
    ],
)
def test_derivative_takes_media_specs_unchanged(name: str, spec: str, canonical: str) -> None:
    episode = field_file(name)
    url = render(f'{{% derivative episode "{spec}" %}}', episode=episode)
    assert url == derivative_url(episode, canonical)
    assert f"/{canonical.replace(' ', ',')}/{name}" in url  # the canonical spec, signed


def test_derivative_options_and_as_var() -> None:
    photo = field_file("photos/cat.jpg", "counted")
    text = (
        '{% derivative photo "300x200 fill" version=updated as thumb %}'
        '<img src="{{ thumb }}" width="{{ thumb.width }}" height="{{ thumb.height }}">'
    )
    expected = derivative(photo, "300x200 fill", version=5)
    assert render(text, photo=photo, updated=5) == (
        f'<img src="{expected.url}" width="300" height="200">'
    )
    assert ",v=5,storage=counted/" in expected.url
    assert render(
        '{% derivative name "x100" storage="counted" %}', name="photos/cat.jpg"
    ) == derivative_url("photos/cat.jpg", "x100", storage="counted")


@pytest.mark.parametrize(
    "text",
    [
        "{% derivative %}",
        "{% derivative photo %}",
        '{% derivative photo "300x200" width=3 %}',
        '{% derivative photo "300x200" extra %}',
        '{% derivative photo "300x200" as %}',
    ],
)
def test_derivative_syntax_errors(text: str) -> None:
    with pytest.raises(TemplateSyntaxError):
        render(text, photo="a.jpg")


EMPTY_FIELD_FILE = FieldFile(None, FileField(), "")  # type: ignore[arg-type]

BAD_CALLS: list[tuple[str, dict[str, Any], str]] = [
    ('{% derivative photo "300x200 sepia" %}', {"photo": "a.jpg"}, "unknown token"),
    ('{% derivative photo "fill" %}', {"photo": "a.jpg"}, "needs a width"),
    ('{% derivative photo "300x200" %}', {"photo": None}, "not NoneType"),
    ('{% derivative photo "300x200" %}', {"photo": EMPTY_FIELD_FILE}, "no file"),
    ('{% derivative photo "300x200" %}', {"photo": "../a.jpg"}, "segment"),
    ('{% derivative photo "300x200" storage="nope" %}', {"photo": "a.jpg"}, "nope"),
]


@pytest.mark.parametrize(("text", "context", "reason"), BAD_CALLS)
def test_errors_raise_in_debug(
    settings: Any, text: str, context: dict[str, Any], reason: str
) -> None:
    settings.DEBUG = True
    with pytest.raises(TemplateSyntaxError, match=reason):
        render(text, **context)


@pytest.mark.parametrize(("text", "context", "reason"), BAD_CALLS)
def test_errors_log_and_write_nothing_in_production(
    caplog: pytest.LogCaptureFixture, text: str, context: dict[str, Any], reason: str
) -> None:
    with caplog.at_level(logging.WARNING, logger="fileresponse.derivatives"):
        assert render("[" + text + "]", **context) == "[]"
    assert len(caplog.records) == 1
    assert caplog.records[0].name == "fileresponse.derivatives"
    assert reason in caplog.records[0].getMessage()


def test_errors_with_as_var_set_none(caplog: pytest.LogCaptureFixture) -> None:
    text = '{% derivative "a.jpg" "sepia" as thumb %}{% if thumb %}yes{% else %}no{% endif %}'
    with caplog.at_level(logging.WARNING, logger="fileresponse.derivatives"):
        assert render(text) == "no"


def test_missing_urlconf_is_always_raised(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from django.core.exceptions import ImproperlyConfigured

    without = types.ModuleType("urls_without_derivatives")
    without.urlpatterns = []  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, without.__name__, without)
    settings.ROOT_URLCONF = without.__name__
    with pytest.raises(ImproperlyConfigured):
        render('{% derivative "a.jpg" "300x200" %}')


# ---------------------------------------------------------------- {% fileprocessor %}


def test_fileprocessor_renders_an_img() -> None:
    photo = field_file("photos/cat.jpg")
    html = render(
        "{% fileprocessor photo alt=title class='thumb' %}\n"
        "  300x200 fill\n  webp q=80\n"
        "{% endfileprocessor %}",
        photo=photo,
        title='Cat & "dog"',
    )
    one = derivative_url(photo, "300x200 fill webp q=80")
    two = derivative_url(photo, "600x400 fill webp q=80")
    assert html == (
        f'<img src="{one}" srcset="{one} 1x, {two} 2x" width="300" height="200"'
        ' alt="Cat &amp; &quot;dog&quot;" loading="lazy" decoding="async" class="thumb">'
    )


def test_fileprocessor_spec_from_variables_and_densities() -> None:
    html = render(
        '{% fileprocessor "a.jpg" densities="1 1.5 3x" %}{{ size }} crop{% endfileprocessor %}',
        size="100x50",
    )
    urls = [
        derivative_url("a.jpg", spec) for spec in ("100x50 crop", "150x75 crop", "300x150 crop")
    ]
    assert f'srcset="{urls[0]} 1x, {urls[1]} 1.5x, {urls[2]} 3x"' in html
    assert 'width="100" height="50"' in html


def test_fileprocessor_fit_without_a_known_source_size_has_no_width() -> None:
    html = render('{% fileprocessor "a.jpg" %}300x200{% endfileprocessor %}')
    assert "width=" not in html
    assert "height=" not in html
    assert " 2x" in html


def test_fileprocessor_with_the_source_size() -> None:
    html = render(
        '{% fileprocessor "a.jpg" source_width=w source_height=h %}300x200{% endfileprocessor %}',
        w=4000,
        h=3000,
    )
    assert 'width="267" height="200"' in html
    assert " 2x" in html
    # A source too small for 2x: the 2x candidate would be the same image.
    small = render(
        '{% fileprocessor "a.jpg" source_width=320 source_height=200 %}'
        "300x200 fill{% endfileprocessor %}"
    )
    assert 'width="300" height="200"' in small
    assert " 1x" in small
    assert " 2x" not in small


def test_fileprocessor_leaves_out_densities_beyond_the_limits(settings: Any) -> None:
    html = render('{% fileprocessor "a.jpg" %}3000x2000 fill{% endfileprocessor %}')
    assert " 1x" in html
    assert " 2x" not in html
    settings.FILERESPONSE = {**settings.FILERESPONSE, "DERIVATIVES_MAX_WIDTH": 8000}
    html = render('{% fileprocessor "a.jpg" %}3000x2000 fill{% endfileprocessor %}')
    assert " 2x" in html


def test_derivative_with_the_source_size() -> None:
    text = (
        '{% derivative "a.jpg" "300x300" source_width=800 source_height=600 as thumb %}'
        "{{ thumb.width }}x{{ thumb.height }}"
    )
    assert render(text) == "300x225"


def test_fileprocessor_without_a_size_has_no_srcset() -> None:
    html = render('{% fileprocessor "a.jpg" %}webp{% endfileprocessor %}')
    assert html == (
        f'<img src="{derivative_url("a.jpg", "webp")}" alt="" loading="lazy" decoding="async">'
    )


def test_fileprocessor_attributes() -> None:
    html = render(
        '{% fileprocessor "a.jpg" loading=None decoding=False hidden=True aria_label="x"'
        " data_id=3 %}"
        "300x200 fill{% endfileprocessor %}"
    )
    assert "loading=" not in html
    assert "decoding=" not in html
    assert ' hidden aria-label="x" data-id="3">' in html


def test_fileprocessor_as_var() -> None:
    html = render(
        '{% fileprocessor "a.jpg" as image %}300x200 fill{% endfileprocessor %}'
        "{{ image.width }}|{{ image.srcset }}|{{ image }}"
    )
    image = derivative_image("a.jpg", "300x200 fill")
    assert html == f"300|{image.srcset}|{image.html()}"


def test_fileprocessor_errors(settings: Any, caplog: pytest.LogCaptureFixture) -> None:
    text = '{% fileprocessor "a.jpg" %}300x200 sepia{% endfileprocessor %}'
    with caplog.at_level(logging.WARNING, logger="fileresponse.derivatives"):
        assert render(text) == ""
    assert "unknown token" in caplog.records[0].getMessage()
    settings.DEBUG = True
    with pytest.raises(TemplateSyntaxError, match="unknown token"):
        render(text)
    with pytest.raises(ValueError, match="bad HTML attribute"):
        derivative_image("a.jpg", "300x200").html({'x" onload="alert(1)': "y"})
    with pytest.raises(TemplateSyntaxError):
        render("{% fileprocessor %}300x200{% endfileprocessor %}")
    with pytest.raises(TemplateSyntaxError):
        render('{% fileprocessor "a.jpg" %}300x200')


# ---------------------------------------------------------------- no work at render time


def test_a_page_of_100_derivatives_does_no_processing_and_no_storage_calls(
    configured: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import PIL.Image

    from fileresponse.derivatives import executor, processors

    monkeypatch.setattr(executor, "get_executor", never_called)
    monkeypatch.setattr(processors, "run_job", never_called)
    monkeypatch.setattr(PIL.Image, "open", never_called)
    media = configured / "media"
    for index in range(100):
        (media / f"photo-{index}.jpg").write_bytes(b"not even an image")
    photos = [field_file(f"photo-{index}.jpg", "counted") for index in range(100)]
    CountingStorage.calls.clear()

    html = render(
        "{% for photo in photos %}"
        '<a href="{% derivative photo "1200x" version=forloop.counter %}">'
        "{% fileprocessor photo alt=photo.name %}300x200 fill webp{% endfileprocessor %}</a>\n"
        "{% endfor %}",
        photos=photos,
    )

    assert CountingStorage.calls == []
    assert html.count("<img ") == 100
    # href, src, and 1x and 2x in srcset
    assert html.count(",storage=counted/photo-") == 400
    assert not (configured / "derivatives").exists()
    assert sorted(path.name for path in media.iterdir()) == sorted(
        f"photo-{index}.jpg" for index in range(100)
    )


def test_counting_storage_counts() -> None:
    storage = storages["counted"]
    CountingStorage.calls.clear()
    storage.exists("x")
    field_file("x.jpg", "counted").url  # noqa: B018 - the lookup is the point
    assert CountingStorage.calls[0] == "exists"
    assert "url" in CountingStorage.calls
