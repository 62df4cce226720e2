"""Crash-safe file writes: a kill -9 mid-write leaves the old file, never half of a new one.

Also the two things every loader of the studio's own files needs: setting a bad file aside
(renamed NAME.corrupt-<time>, kept for the user) and removing temp files a kill left behind.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

TEMP_SUFFIX = ".tmp"
# A temp file this old belongs to no running write (another studio window on the same folder may be
# in the middle of one, so a fresh one is left alone).
STALE_AFTER_S = 60.0


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, text.encode("utf-8"))


def set_aside(path: Path) -> str:
    """Rename a file (or folder) that cannot be read to NAME.corrupt-<time>; says where it went, for a message."""
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    n = 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
    try:
        path.replace(aside)
    except OSError:
        return "it was left in place"
    return f"it was moved to {aside.name}"


def remove_stale_temp_files(folder: Path, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Delete the temp files of ``write_atomic`` that a kill left in ``folder``; the paths removed."""
    removed = []
    cutoff = time.time() - older_than_s
    try:
        candidates = [p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(TEMP_SUFFIX)]
    except OSError:  # no folder yet, or one we cannot list: nothing of ours to clean
        return removed
    for path in candidates:
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
        except OSError:
            continue
    return removed
