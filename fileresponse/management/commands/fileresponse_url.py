"""``manage.py fileresponse_url SOURCE SPEC``: print the signed URL of a derivative.

::

    $ python manage.py fileresponse_url photos/cat.jpg "300x200 fill webp"
    /derivatives/VcxoP9WvY469MhffmOZj1OnUD_s/300x200,fill,webp/photos/cat.jpg

``SOURCE`` is a name in the source storage (``--storage``, default
``"default"``) or an absolute path inside a filesystem source storage.
Nothing is read or processed; the derivative is made when the URL is first
requested.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from fileresponse.derivatives.links import derivative_url


class Command(BaseCommand):
    help = "Print the signed URL (path) of the derivative of SOURCE by SPEC."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", help="a name in the source storage, or an absolute path")
        parser.add_argument("spec", help='the spec, e.g. "300x200 fill webp q=80"')
        parser.add_argument(
            "--source-version",
            dest="source_version",
            default=None,
            help="a version of the source carried in the URL (e.g. a timestamp)",
        )
        parser.add_argument(
            "--storage",
            default=None,
            help="alias of the source storage in STORAGES (default: default)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            url = derivative_url(
                options["source"],
                options["spec"],
                version=options["source_version"],
                storage=options["storage"],
            )
        except (ValueError, TypeError) as error:
            raise CommandError(str(error)) from error
        self.stdout.write(url)
