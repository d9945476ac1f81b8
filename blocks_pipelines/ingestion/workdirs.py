"""Local scratch folders for a run (staging, downloaded sources, read-back), removed when the run ends, failed or
not, and swept at the start of the next run when a killed one (SIGKILL, OOM, a lost pod) could not remove them.

A folder is named `blocks-{kind}-{pid}-{random}` under the system temp dir: a folder whose process is gone on this
host is left over, whatever its age, and a live run's folder is never touched.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_NAME = re.compile(r"^blocks-[a-z]+-(\d+)-[a-z0-9_]+$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def sweep_stale(base: Path | None = None) -> list[Path]:
    """Remove the scratch folders of runs that are no longer alive; returns what was removed."""
    base = Path(base or tempfile.gettempdir())
    removed = []
    for d in base.glob("blocks-*-*-*"):
        m = _NAME.match(d.name)
        if m and d.is_dir() and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


@contextmanager
def run_workdir(kind: str) -> Iterator[Path]:
    """A fresh scratch folder for one run, removed on exit (exception included), after sweeping dead runs' ones."""
    sweep_stale()
    path = Path(tempfile.mkdtemp(prefix=f"blocks-{kind}-{os.getpid()}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
