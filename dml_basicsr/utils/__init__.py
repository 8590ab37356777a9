"""Helpers below everything else in the package: checkpoint files, atomic writes, option files."""
