"""The ``flowtools`` command line: a thin shell over the library.

Results go to stdout; warnings and the one-line summary always go to stderr, so
``--format json`` output stays clean. Exit codes: 0 success (warnings allowed), 1 a data
or AWS error, 2 a usage error, 3 a ``--fail-on`` gate tripped (the command itself succeeded).

One module per group of commands, each with its ``EXAMPLES`` and a ``register`` that adds
its commands; :mod:`flowtools.cli.parser` holds what they share:

- :mod:`~flowtools.cli.read`: ``sample``, ``info``, ``sql``
- :mod:`~flowtools.cli.exposure`: ``exposure``, ``report``
- :mod:`~flowtools.cli.inputs`: ``fetch``, ``cache``, ``inventory``, ``ip-ranges``
- :mod:`~flowtools.cli.store`: ``store build|info``
- :mod:`~flowtools.cli.athena`: ``athena ddl|query|exposure``
- :mod:`~flowtools.cli.decisions`: ``diff``, ``watchlist``, ``egress``, ``scanners``, ``risk-policy``
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from flowtools.cli import athena, decisions, exposure, inputs, read, store
from flowtools.cli.parser import EXIT_ERROR, EXIT_OK, EXIT_USAGE, Command, Parser
from flowtools.errors import FlowtoolsError, UsageError

__all__ = ["build_parser", "main"]

#: Each command's example, shown in its ``--help`` (several commands: one a line).
_EXAMPLES: dict[str, str] = {
    **read.EXAMPLES, **exposure.EXAMPLES, **inputs.EXAMPLES, **store.EXAMPLES, **athena.EXAMPLES,
    **decisions.EXAMPLES,
}


def _version() -> str:
    from flowtools import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; a parsed command's ``func`` runs it (returns the exit code)."""
    parser = Parser(
        prog="flowtools",
        description="Analyse AWS VPC Flow Logs: load any S3 layout into DuckDB or Polars, "
                    "find what the internet really reaches.",
        epilog="Run 'flowtools COMMAND --help' for a command's options and an example.",
    )
    parser.add_argument("--version", action="version", version=f"flowtools {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True

    def add(name: str, func: Command, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, epilog=f"example:\n  {_EXAMPLES[name]}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=func)
        return p

    # The order of `flowtools --help`.
    read.register(add)
    exposure.register(add)
    inputs.register(add)
    store.register(add)
    athena.register(sub)
    decisions.register(add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit code.
    Errors of flowtools and of the file system print one line on stderr, never a traceback."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except UsageError as e:
        print(f"flowtools: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except FlowtoolsError as e:
        print(f"flowtools: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # e.g. `flowtools sql ... | head`
        return EXIT_OK
    except OSError as e:  # a file or folder that cannot be read or written (names it), not a traceback
        print(f"flowtools: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("flowtools: interrupted", file=sys.stderr)
        return 130
