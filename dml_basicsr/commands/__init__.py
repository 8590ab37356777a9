"""The ``basicsr`` subcommands. Each module has ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> exit status``; :mod:`dml_basicsr.cli` only dispatches to them."""


class UsageError(Exception):
    """A wrong combination of command-line arguments; the CLI prints it with the command's usage (exit 2)."""
