"""Cache-Status (RFC 9211) and Server-Timing (W3C) serialization: pure tables."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fileresponse.derivatives.diagnostics import Provenance, diagnostic_headers
from fileresponse.http.diagnostics import CacheStatus, Metric, server_timing
from tests.fields import outcome_of, parse_cache_status, parse_server_timing


@pytest.mark.parametrize(
    ("status", "serialized", "parameters"),
    [
        (CacheStatus("fileresponse", hit=True), "fileresponse; hit", {"hit": True}),
        (
            CacheStatus("fileresponse", fwd="miss", stored=True),
            "fileresponse; fwd=miss; stored",
            {"fwd": "miss", "stored": True},
        ),
        (
            CacheStatus("fileresponse", fwd="miss", collapsed=True, stored=True),
            "fileresponse; fwd=miss; collapsed; stored",
            {"fwd": "miss", "collapsed": True, "stored": True},
        ),
        (
            CacheStatus("fileresponse", fwd="miss", detail="streaming"),
            "fileresponse; fwd=miss; detail=streaming",
            {"fwd": "miss", "detail": "streaming"},
        ),
        # RFC 9211 section 2: the identifier is a Token or else a String.
        (CacheStatus("Example CDN", hit=True), '"Example CDN"; hit', {"hit": True}),
        (
            CacheStatus("cache-3.example.com", fwd="uri-miss"),
            "cache-3.example.com; fwd=uri-miss",
            {"fwd": "uri-miss"},
        ),
        (
            CacheStatus("c", fwd="miss", detail='said "no" \\ twice'),
            'c; fwd=miss; detail="said \\"no\\" \\\\ twice"',
            {"fwd": "miss", "detail": 'said "no" \\ twice'},
        ),
    ],
)
def test_cache_status(status: CacheStatus, serialized: str, parameters: dict[str, object]) -> None:
    assert status.serialize() == serialized
    assert parse_cache_status(serialized) == [(status.cache, parameters)]


@pytest.mark.parametrize(
    "status",
    [
        CacheStatus("c"),  # neither a hit nor forwarded
        CacheStatus("c", hit=True, fwd="miss"),
        CacheStatus("c", fwd="not a token"),
        CacheStatus("café", hit=True),  # a String is printable ASCII
        CacheStatus("c", fwd="miss", detail="\n"),
    ],
)
def test_cache_status_refuses_what_it_cannot_say(status: CacheStatus) -> None:
    with pytest.raises(ValueError):
        status.serialize()


@pytest.mark.parametrize(
    ("metrics", "serialized"),
    [
        ([Metric("lookup", 0.4321)], "lookup;dur=0.4"),
        (
            [Metric("lookup", 0.3), Metric("process", 123.44, "image")],
            'lookup;dur=0.3, process;dur=123.4;desc="image"',
        ),
        ([Metric("first-byte", 45.06, 'a "b"')], 'first-byte;dur=45.1;desc="a \\"b\\""'),
        ([Metric("miss")], "miss"),
        ([Metric("clock", -0.01)], "clock;dur=0.0"),  # a clock step never says negative
    ],
)
def test_server_timing(metrics: list[Metric], serialized: str) -> None:
    assert server_timing(metrics) == serialized
    parsed = parse_server_timing(serialized)
    assert [name for name, _ in parsed] == [metric.name for metric in metrics]
    for (_, parameters), metric in zip(parsed, metrics, strict=True):
        if metric.description is not None:
            assert parameters["desc"] == metric.description


@pytest.mark.parametrize("metric", [Metric("two words"), Metric("m", 1, "é"), Metric("")])
def test_server_timing_refuses_what_it_cannot_say(metric: Metric) -> None:
    with pytest.raises(ValueError):
        metric.serialize()


@pytest.mark.parametrize(
    "value",
    [
        "fileresponse; hit,",
        "fileresponse; hit; hit",
        "fileresponse;; hit",
        "fileresponse; HIT",
        '"unterminated; hit',
        "1; hit",
    ],
)
def test_the_test_parser_is_strict(value: str) -> None:
    with pytest.raises(ValueError):
        parse_cache_status(value)


def test_the_test_parser_reads_the_rfc_examples() -> None:
    """RFC 9211 section 3."""
    assert parse_cache_status("ExampleCache; hit; ttl=-412") == [
        ("ExampleCache", {"hit": True, "ttl": -412})
    ]
    assert parse_cache_status('OriginCache; hit; ttl=1100,\t"CDN Company Here"; hit; ttl=545') == [
        ("OriginCache", {"hit": True, "ttl": 1100}),
        ("CDN Company Here", {"hit": True, "ttl": 545}),
    ]
    assert parse_cache_status("ExampleCache; fwd=uri-miss; collapsed=?0; x=1.5") == [
        ("ExampleCache", {"fwd": "uri-miss", "collapsed": False, "x": Decimal("1.5")})
    ]
    assert parse_server_timing(
        'miss, db;dur=53, app;dur=47.2, cache;desc="Cache Read";dur=23.2'
    ) == [
        ("miss", {}),
        ("db", {"dur": "53"}),
        ("app", {"dur": "47.2"}),
        ("cache", {"desc": "Cache Read", "dur": "23.2"}),
    ]


@pytest.mark.parametrize(
    ("provenance", "outcome", "headers"),
    [
        (
            Provenance("hit", "image", 0.0004),
            "hit",
            {"Cache-Status": "fileresponse; hit", "Server-Timing": "lookup;dur=0.4"},
        ),
        (
            Provenance("miss", "image", 0.0003, 0.1234),
            "miss",
            {
                "Cache-Status": "fileresponse; fwd=miss; stored",
                "Server-Timing": 'lookup;dur=0.3, process;dur=123.4;desc="image"',
            },
        ),
        (
            Provenance("collapsed", "pdf", 0.001, 0.5),
            "collapsed",
            {
                "Cache-Status": "fileresponse; fwd=miss; collapsed; stored",
                "Server-Timing": 'lookup;dur=1.0, process;dur=500.0;desc="pdf"',
            },
        ),
        (
            Provenance("miss", "video", 0.001, 0.25, streamed=True),
            "streamed",
            {
                "Cache-Status": "fileresponse; fwd=miss; detail=streaming",
                "Server-Timing": 'lookup;dur=1.0, first-byte;dur=250.0;desc="video"',
            },
        ),
        (
            Provenance("collapsed", "command", 0.001, 0.25, streamed=True),
            "streamed-collapsed",
            {
                "Cache-Status": "fileresponse; fwd=miss; collapsed; detail=streaming",
                "Server-Timing": 'lookup;dur=1.0, first-byte;dur=250.0;desc="command"',
            },
        ),
    ],
)
def test_a_derivatives_headers(
    provenance: Provenance, outcome: str, headers: dict[str, str]
) -> None:
    made = diagnostic_headers(provenance)
    assert made == headers
    assert outcome_of(made.get) == outcome
