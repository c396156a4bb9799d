"""Shared by the management commands that have subcommands (s2s_pki, s2s_service, ...)."""

import argparse


def accept_global_options(subparsers) -> None:
    """Let Django's global options follow the subcommand's arguments too
    (``manage.py s2s_service add NAME --settings=...``): argparse hands everything
    after the subcommand to the subparser, which would not know them."""
    for parser in subparsers.choices.values():
        parser.add_argument("--settings", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        parser.add_argument("--pythonpath", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        parser.add_argument(
            "--traceback", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
        parser.add_argument(
            "-v", "--verbosity", type=int, default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
        parser.add_argument(
            "--no-color", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )
