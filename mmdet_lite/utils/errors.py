"""User-facing errors: a mistake in the user's data or command, reported as one line."""
import functools
import sys


class UserError(Exception):
    """A mistake in the user's input (file, option, data) that the tools report as one line."""


def user_message(err):
    """The one-line message of the ``UserError`` ``err``.

    A ``UserError`` raised in a ``DataLoader`` worker is raised again in the main process with
    the worker's traceback as its message ("Caught UserError in DataLoader worker process 0. ...
    mmdet_lite.utils.errors.UserError: <message>"); this returns ``<message>``.
    """
    text = str(err)
    if text.startswith("Caught ") and "\nOriginal Traceback" in text:
        return text.rstrip().splitlines()[-1].partition(": ")[2]
    return text


def cli_main(func):
    """Wrap a tool's ``main`` so that a ``UserError`` prints ``error: <message>`` and exits 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except UserError as err:
            print(f"error: {user_message(err)}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper
