"""The ``cnnplan`` command line (click): `main` is the console script; `jobs` adds the job commands."""

from cnnplan.service.cli.main import main

__all__ = ["main"]
