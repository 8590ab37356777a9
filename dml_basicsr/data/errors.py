"""Errors for bad dataset options or data; the CLI prints them as one line, without a traceback."""


class DatasetError(ValueError):
    """A dataset option or file is wrong; the message names the option or file and what is wrong."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A dataset folder or file does not exist; the message says where it was looked for."""
