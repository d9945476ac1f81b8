"""Errors for input the ingester refuses. Each names the file (and row/column where it applies) and how to fix it,
and is raised before the first lake write, so the lake keeps what it had."""

from __future__ import annotations


class IngestError(ValueError):
    """Bad CUR input: `file`, `row` (1-based data row, header excluded) and `column` locate it, `fix` says what
    to do."""

    def __init__(
        self, problem: str, *, file: str | None = None, row: int | None = None, column: str | None = None, fix: str = ""
    ):
        self.problem = problem
        self.file = file
        self.row = row
        self.column = column
        self.fix = fix
        where = ", ".join(
            p for p in (file and f"file {file}", row is not None and f"row {row}", column and f"column {column!r}") if p
        )
        super().__init__(f"{where}: {problem}" + (f". Fix: {fix}" if fix else "") if where else problem)


class MissingColumnError(IngestError):
    """A column the format requires is absent."""


class ParseError(IngestError):
    """A timestamp or number that cannot be read, or a blank required value."""


class CorruptFileError(IngestError):
    """Unreadable bytes: corrupt Parquet, truncated gzip, broken zip."""


class EmptyFileError(IngestError):
    """A data file with no bytes, no header or no rows."""


class MissingFileError(IngestError):
    """A manifest lists a data file that is not there, or the source holds no data."""


class MixedCurrencyError(IngestError):
    """More than one currency in one billing period."""


class UnknownLineItemTypeError(IngestError):
    """A line item type (or FOCUS charge category) the platform does not know."""


class WrongPayerError(IngestError):
    """Rows billed to a payer (or another provider's billing) account that is not this tenant's."""


class MalformedAccountIdError(IngestError):
    """A billing account id in the file that no provider issues (13 digits for AWS, a cut Azure id...)."""


class FormatDetectionError(IngestError):
    """The format is neither legacy CUR, CUR 2.0 nor FOCUS, or contradicts the requested one."""


class AmbiguousSourceError(IngestError):
    """A source holding several deliveries of one month and no manifest to say which is the newest."""


class UnsafeManifestKeyError(IngestError):
    """A manifest names a data file outside its own report: `..`, an absolute path or another prefix."""


class DuplicateColumnError(IngestError):
    """A header names one column twice: reading either would silently lose the other."""


class OversizedInputError(IngestError):
    """A line or a value over the documented bounds (ingestion/guards.py)."""


class PartialMonthError(IngestError):
    """Files without a manifest that cover only part of their billing month would replace the whole month."""
