#!/usr/bin/env python
"""A local S3 server for ``make demo STORAGE=minio``: a development helper, not in the package.

Runs the JuiceFS gateway of the test suite (``tests/s3server.py``) on
``MINIO_ENDPOINT`` with ``MINIO_ACCESS_KEY``, ``MINIO_SECRET_KEY`` and
``MINIO_BUCKET`` of ``settings.ini`` (or the environment), until Ctrl-C::

    make demo-s3                  # this script, in one terminal
    make demo STORAGE=minio       # the example project on its bucket, in another

The volume is temporary unless ``--workdir`` names a directory to keep.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT / "example"), str(REPO_ROOT)]

from example.config import load_config  # noqa: E402  (the example's settings.ini reader)

from tests.s3server import JuiceFSGateway  # noqa: E402  (test infrastructure, not installed)

LOOPBACK = ("127.0.0.1", "localhost")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="keep the volume here (default: temporary)")
    args = parser.parse_args(argv)

    minio = load_config().minio
    host, _, port = minio.endpoint.rpartition(":")
    if host not in LOOPBACK or not port.isdigit():
        parser.error(f"MINIO_ENDPOINT must be 127.0.0.1:<port> here, not {minio.endpoint!r}")
    if minio.secure:
        parser.error("the gateway speaks http: set MINIO_SECURE=false")
    if not (minio.access_key and minio.secret_key):
        parser.error("set MINIO_ACCESS_KEY and MINIO_SECRET_KEY (settings.ini has defaults)")

    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    gateway = JuiceFSGateway(
        args.workdir,
        access_key=minio.access_key,
        secret_key=minio.secret_key,
        port=int(port),
    )
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        gateway.start()
        gateway.make_bucket(minio.bucket)
        print(f"S3 server on {gateway.url}, bucket {minio.bucket!r} (Ctrl-C stops it)")
        print("in another terminal: make demo STORAGE=minio")
        assert gateway.process is not None
        return gateway.process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        gateway.close()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
