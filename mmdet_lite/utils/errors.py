"""User-facing errors: a mistake in the user's data or command, reported as one line."""
import functools
import sys


class UserError(Exception):
    """A mistake in the user's input (file, option, data) that the tools report as one line."""


def cli_main(func):
    """Wrap a tool's ``main`` so that a ``UserError`` prints ``error: <message>`` and exits 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper
