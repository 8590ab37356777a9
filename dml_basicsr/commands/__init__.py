"""The ``basicsr`` subcommands. Each module has ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> exit status``; :mod:`dml_basicsr.cli` only dispatches to them."""
import sys


class UsageError(Exception):
    """A wrong combination of command-line arguments; the CLI prints it with the command's usage (exit 2)."""


def fail(command, message, status=2):
    """Print ``basicsr <command>: error: <message>``, the one line a user error gets; return the exit status."""
    print(f'basicsr {command}: error: {message}', file=sys.stderr)
    return status
