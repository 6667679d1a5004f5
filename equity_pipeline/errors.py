"""Errors that stop a run. Messages are one line and never carry data values (PHI)."""
from __future__ import annotations


class PipelineError(Exception):
    """A fault the user must fix; the CLI prints ``str(exc)`` on one line and exits non-zero."""


class StructuralError(PipelineError):
    """An input file cannot be used at all (unreadable, missing required column, wrong types)."""

    def __init__(self, file: str, message: str, *, row: int | None = None, column: str | None = None):
        self.file, self.row, self.column = file, row, column
        where = file + (f", row {row}" if row is not None else "") + (f", column {column}" if column else "")
        super().__init__(f"{where}: {message}")


class ConfigError(PipelineError):
    """The program configuration is invalid."""
