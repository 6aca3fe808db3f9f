"""User-facing errors: a mistake in the user's data or command, reported as one line."""
import functools
import re
import sys

# torch's ExceptionWrapper.reraise (data-loader workers) rebuilds an exception as
# ``type("Caught T in DataLoader worker process N.\nOriginal Traceback ...\nmodule.T: message")``.
_REBUILT = re.compile(r"^Caught (\w+) in .*?\nOriginal Traceback.*?\n(?:[\w.]+\.)?\1: (.*)$",
                      re.DOTALL)


class UserError(Exception):
    """A mistake in the user's input (file, option, data) that the tools report as one line.

    Raised in a data-loader worker, it reaches the main process as itself with its own message
    (torch would otherwise prepend the worker's traceback to the message).
    """

    def __init__(self, *args):
        if len(args) == 1 and isinstance(args[0], str):
            match = _REBUILT.match(args[0])
            if match:
                args = (match.group(2).strip(),)
        super().__init__(*args)


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
