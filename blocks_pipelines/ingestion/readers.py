"""Open one CUR / FOCUS data file (CSV, CSV.gz, zip, Parquet) as a lazy frame of its raw columns.

Text files are read with every column as text, so the normalizer decides how each value is parsed and can report
the exact cell that fails. Polars streams gzip itself (several times faster than Python's gzip); zips are extracted.
"""

from __future__ import annotations

import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from blocks_pipelines.ingestion.errors import (
    CorruptFileError,
    DuplicateColumnError,
    EmptyFileError,
    FormatDetectionError,
)
from blocks_pipelines.ingestion.guards import check_line_lengths, check_unique_header

DATA_SUFFIXES = (".csv", ".csv.gz", ".gz", ".zip", ".parquet")
# Literal nulls SQL-based exporters write into text files (SQL and Athena `NULL`, Hive/Spark `\N`): the CSV parser
# reads them as null at no measurable cost, where comparing every text cell afterwards cost ~40% more CPU. A null
# in a required column then fails as a blank required value, naming file, row and column. Parquet has real nulls:
# its text is taken as written.
NULL_MARKERS = ("NULL", "null", "Null", "\\N")


@dataclass(frozen=True)
class RawFile:
    name: str  # the source uri, for messages
    path: Path  # local, readable by polars
    kind: str  # csv | parquet

    @property
    def gzipped(self) -> bool:
        return self.kind == "csv" and self.path.name.lower().endswith(".gz")

    def scan(self, literal: bool = False) -> pl.LazyFrame:
        """The file's columns; literal: null markers as the text they are (to quote a cell in a message)."""
        if self.kind == "parquet":
            return pl.scan_parquet(self.path, hive_partitioning=False)
        return pl.scan_csv(
            self.path,
            infer_schema=False,
            truncate_ragged_lines=False,
            null_values=None if literal else list(NULL_MARKERS),
        )

    def schema(self) -> dict[str, pl.DataType]:
        return self._read(lambda: dict(self.scan().collect_schema()))

    def head(self, n: int) -> pl.DataFrame:
        return self._read(lambda: self.scan().head(n).collect())

    def _read(self, fn):
        try:
            return fn()
        except pl.exceptions.DuplicateError as exc:
            raise DuplicateColumnError(
                f"a column name appears more than once ({exc})",
                file=self.name,
                fix="AWS writes each column once; re-export the report",
            ) from exc
        except pl.exceptions.NoDataError as exc:
            raise EmptyFileError(
                "the file has no header and no rows",
                file=self.name,
                fix="re-deliver the report; AWS never writes an empty CUR file",
            ) from exc
        except (pl.exceptions.ComputeError, OSError) as exc:
            gz = " (gzip data truncated or damaged)" if self.name.lower().endswith(".gz") else ""
            raise CorruptFileError(
                f"cannot be read as {self.kind}{gz}: {exc}",
                file=self.name,
                fix="the file is damaged; re-download it or wait for the next delivery",
            ) from exc


# Legacy CUR with Athena integration writes its readiness flag as a one-column Parquet table beside the data:
# <report>/cost_and_usage_data_status/cost_and_usage_data_status.parquet (status READY or UPDATING).
ATHENA_STATUS_TABLE = "cost_and_usage_data_status"


def is_data_file(name: str) -> bool:
    """A CUR data file by its name; hidden and marker files that tools leave beside copies (`._x.parquet` from
    macOS, `_SUCCESS`, `.x.parquet.crc`) and the Athena integration's status table are not."""
    base = name.rsplit("/", 1)[-1]
    low = base.lower()
    return (
        low.endswith(DATA_SUFFIXES)
        and not low.endswith("manifest.json")
        and not base.startswith((".", "_"))
        and ATHENA_STATUS_TABLE not in name
    )


def _extract_zip(src: Path, workdir: Path, name: str) -> Path:
    try:
        with zipfile.ZipFile(src) as zf:
            members = [m for m in zf.namelist() if m.lower().endswith(".csv")]
            if len(members) != 1:
                raise CorruptFileError(
                    f"expected one .csv inside the zip, found {members or 'none'}",
                    file=name,
                    fix="legacy CUR zips hold exactly one CSV; re-deliver the report",
                )
            return Path(zf.extract(members[0], workdir))
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise CorruptFileError(f"not a readable zip ({exc})", file=name, fix="re-copy the file") from exc


def open_raw(name: str, local: Path, workdir: Path) -> RawFile:
    """A readable RawFile for one data file; raises EmptyFileError / CorruptFileError naming `name`."""
    if local.stat().st_size == 0:
        raise EmptyFileError(
            "the file is empty (0 bytes)", file=name, fix="remove it from the delivery or re-deliver the report"
        )
    low = name.lower()
    workdir.mkdir(parents=True, exist_ok=True)
    if low.endswith(".parquet"):
        raw = RawFile(name, local, "parquet")
    elif low.endswith(".gz"):
        raw = RawFile(name, local, "csv")
    elif low.endswith(".zip"):
        raw = RawFile(name, _extract_zip(local, workdir / f"zip-{abs(hash(name))}", name), "csv")
    elif low.endswith(".csv"):
        raw = RawFile(name, local, "csv")
    else:
        raise FormatDetectionError(
            f"unknown data file type {local.suffix!r}", file=name, fix=f"CUR data files end with one of {DATA_SUFFIXES}"
        )
    if raw.kind == "csv" and not raw.gzipped:  # gzip: only once a read failed (guards.blame_long_lines)
        check_line_lengths(raw.path, name, gzipped=False)
    check_unique_header(list(raw.schema()), name)  # fail here, naming the file, rather than mid-way through
    return raw
