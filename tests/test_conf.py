"""Settings: read and validated once, built again when they change; types from annotations."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from fileresponse import conf
from fileresponse.conf import MinioConfig, PerSettings, get_config, per_settings, tables
from fileresponse.conf import minio as conf_minio


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (int, (int,)),
        (bool, (bool,)),
        (str | None, (str, type(None))),
        (int | None, (int, type(None))),
        (tuple[str, ...], (tuple, list)),
        (float, (int, float)),
    ],
)
def test_runtime_types_follow_the_annotation(
    annotation: object, expected: tuple[type, ...]
) -> None:
    assert tables.runtime_types(annotation) == expected


def test_every_setting_has_the_types_of_its_annotation() -> None:
    assert conf._TYPES["CACHE_CONTROL"] == (str, type(None))
    assert conf._TYPES["DERIVATIVES_DENSITIES"] == (tuple, list)
    assert set(conf._TYPES) == set(conf.DEFAULTS)
    assert conf_minio._MINIO_TYPES["CONNECT_TIMEOUT"] == (int, float)
    assert conf_minio._MINIO_TYPES["SECURE"] == (bool,)
    assert set(conf_minio._MINIO_TYPES) == set(conf.MINIO_DEFAULTS)


def test_the_settings_are_validated_once(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.FILERESPONSE = {"CHUNK_SIZE": 4096, "DERIVATIVES_DENSITIES": [1, 1.5]}
    calls: list[object] = []
    validate = conf.validate

    def counting(values: Any) -> list[str]:
        calls.append(dict(values))
        return validate(values)

    monkeypatch.setattr(conf, "validate", counting)
    first = get_config()
    assert get_config() is first
    assert first.CHUNK_SIZE == 4096
    assert first.DERIVATIVES_DENSITIES == (1, 1.5)
    assert len(calls) <= 1  # none when an earlier test built it already

    settings.FILERESPONSE = {"CHUNK_SIZE": 8192}
    assert get_config().CHUNK_SIZE == 8192
    assert calls[-1] == {"CHUNK_SIZE": 8192}


def test_overrides_are_checked_and_leave_the_settings_alone(settings: Any) -> None:
    settings.FILERESPONSE = {"MAX_RANGES": 3}
    assert get_config(CHUNK_SIZE=1024, CACHE_CONTROL=None).CHUNK_SIZE == 1024
    assert get_config(CHUNK_SIZE=None) is get_config()
    assert get_config().CHUNK_SIZE == 64 * 1024  # the default
    with pytest.raises(ImproperlyConfigured, match="CHUNK_SIZE must be positive"):
        get_config(CHUNK_SIZE=0)


def test_overrides_are_kept_per_set_and_bad_ones_fail_each_time(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.FILERESPONSE = {"MAX_RANGES": 3}
    calls: list[object] = []
    validate = conf.validate

    def counting(values: Any) -> list[str]:
        calls.append(dict(values))
        return validate(values)

    monkeypatch.setattr(conf, "validate", counting)
    first = get_config(CACHE_CONTROL="max-age=1", CHUNK_SIZE=1024)
    assert get_config(CHUNK_SIZE=1024, CACHE_CONTROL="max-age=1") is first
    assert calls.count({"CACHE_CONTROL": "max-age=1", "CHUNK_SIZE": 1024}) == 1
    assert (first.MAX_RANGES, first.CHUNK_SIZE) == (3, 1024)
    for _ in range(2):
        with pytest.raises(ImproperlyConfigured, match="CHUNK_SIZE must be int, not bool"):
            get_config(CHUNK_SIZE=True)  # equal to 1, and still refused
    settings.FILERESPONSE = {"MAX_RANGES": 4}
    assert get_config(CACHE_CONTROL="max-age=1", CHUNK_SIZE=1024).MAX_RANGES == 4
    unhashable = get_config(DERIVATIVES_MAX_RUNS={"image": 1})
    assert unhashable.DERIVATIVES_MAX_RUNS == {"image": 1}


def test_bad_settings_fail_on_every_read(settings: Any) -> None:
    settings.FILERESPONSE = {"MAX_RANGES": "many"}
    for _ in range(2):
        with pytest.raises(ImproperlyConfigured, match="MAX_RANGES must be int, not str"):
            get_config()
    settings.FILERESPONSE = {}
    assert get_config().MAX_RANGES == 16  # the default


def test_minio_settings_are_read_again_when_they_change(settings: Any) -> None:
    settings.FILERESPONSE_MINIO = {"ENDPOINT": "one.example:9000", "BUCKET": "media"}
    assert conf.get_minio_config().ENDPOINT == "one.example:9000"
    settings.FILERESPONSE_MINIO = {"ENDPOINT": "two.example:9000", "BUCKET": "media"}
    config = conf.get_minio_config(connect_timeout=2)
    assert config.ENDPOINT == "two.example:9000"
    assert config.CONNECT_TIMEOUT == 2.0
    assert isinstance(config.CONNECT_TIMEOUT, float)
    assert config == MinioConfig(ENDPOINT="two.example:9000", BUCKET="media", CONNECT_TIMEOUT=2.0)


# ---------------------------------------------------------------- per_settings


def test_per_settings_builds_once_and_again_after_its_settings_change() -> None:
    built: list[object] = []

    @per_settings("FILERESPONSE_TEST_ONE")
    def value() -> object:
        built.append(object())
        return built[-1]

    first = value()
    assert value() is first
    with override_settings(FILERESPONSE_TEST_OTHER=1):
        assert value() is first  # not one of its settings
    with override_settings(FILERESPONSE_TEST_ONE=1):
        second = value()
    assert second is not first
    third = value()  # leaving override_settings is a change too
    assert third is not second
    value.reset()
    assert value() is not third
    assert len(built) == 4
    assert value.__name__ == "value"


def test_per_settings_without_names_lasts_until_reset() -> None:
    value = per_settings()(object)
    first = value()
    with override_settings(FILERESPONSE={"CHUNK_SIZE": 1}):
        assert value() is first
    value.reset()
    assert value() is not first


def test_reset_closes_the_old_value() -> None:
    closed: list[list[int]] = []
    value = PerSettings(lambda: [1], ["FILERESPONSE_TEST_ONE"], close=closed.append)
    value.reset()  # nothing built: nothing to close
    first = value()
    with override_settings(FILERESPONSE_TEST_ONE=1):
        assert closed == [first]


def test_a_builder_that_fails_is_called_again() -> None:
    attempts: list[int] = []

    @per_settings()
    def value() -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise ImproperlyConfigured("not yet")
        return len(attempts)

    with pytest.raises(ImproperlyConfigured):
        value()
    assert value() == 2
    assert value() == 2


def test_per_settings_builds_once_under_concurrent_calls() -> None:
    started = threading.Barrier(8)
    built: list[int] = []

    @per_settings()
    def value() -> int:
        built.append(1)
        return len(built)

    def call() -> None:
        started.wait()
        value()

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert built == [1]


def test_peek_builds_nothing() -> None:
    built: list[int] = []
    value = PerSettings(lambda: built.append(1) or len(built))
    assert value.peek() is None
    assert value() == 1
    assert value.peek() == 1
    assert built == [1]
