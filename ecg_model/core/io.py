"""Settings (where the data and artifacts live) and atomic file writes.

Every file the package writes goes through :func:`atomic_write_bytes`: the bytes
go to a temporary file in the same folder, are flushed to disk, and the file is
renamed over the target. A crash or a full disk leaves either the old file or
the new one, never half of one.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .errors import EcgError

#: Environment variable naming the folder that holds ``mitdb/`` and ``vfdb/``.
DATA_ENV = "ECG_DATA_DIR"
#: Environment variable naming the artifacts folder (runs, datasets, default).
ARTIFACTS_ENV = "ECG_ARTIFACTS_DIR"

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: Environment variable listing more folders the dashboard may read datasets
#: from (separated by ``os.pathsep``); the artifacts and data folders always are.
ROOTS_ENV = "ECG_DATASET_ROOTS"


def data_dir(path: str | os.PathLike | None = None) -> Path:
    """The data folder: ``path``, else ``$ECG_DATA_DIR``, else ``../shared/data``."""
    if path is None:
        path = os.environ.get(DATA_ENV) or PROJECT_ROOT.parent / "shared" / "data"
    return Path(path)


def artifacts_dir(path: str | os.PathLike | None = None) -> Path:
    """The artifacts folder: ``path``, else ``$ECG_ARTIFACTS_DIR``, else artifacts/."""
    if path is None:
        path = os.environ.get(ARTIFACTS_ENV) or PROJECT_ROOT / "artifacts"
    return Path(path)


def readable_roots() -> list[Path]:
    """Folders a dashboard user may open: artifacts, data, and ``$ECG_DATASET_ROOTS``.

    Set on the server, never from the browser.
    """
    extra = [p for p in os.environ.get(ROOTS_ENV, "").split(os.pathsep) if p]
    return [Path(p).resolve() for p in (artifacts_dir(), data_dir(), *extra)]


def path_confine(path: str | os.PathLike, roots: list[Path] | None = None) -> Path:
    """``path`` with symlinks resolved, if it lies inside one of ``roots``.

    Raises
    ------
    EcgError
        The path leaves every root. The message is the same whether or not it
        exists, so it tells nothing about folders outside.
    """
    roots = readable_roots() if roots is None else roots
    p = Path(path).expanduser().resolve()
    if not any(p == r or r in p.parents for r in roots):
        raise EcgError(
            f"{path}: outside the folders this workbench may open "
            f"({', '.join(str(r) for r in roots)}; more with {ROOTS_ENV} on the server)"
        )
    return p


def default_model_dir() -> Path:
    """The committed default model (``artifacts/default``)."""
    return PROJECT_ROOT / "artifacts" / "default"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder + rename).

    Raises
    ------
    EcgError
        If the folder cannot be written (missing, read-only, disk full).
    """
    path = Path(path)
    fd, tmp = None, None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
        )
        with os.fdopen(fd, "wb") as f:
            fd = None
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise EcgError(f"{path}: cannot write file ({e.strerror or e})") from e
    finally:
        if fd is not None:
            os.close(fd)
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def utc_now() -> str:
    """Now, as the ISO time stamp status files keep (UTC, seconds)."""
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def status_merge(
    path: str | os.PathLike, fields: dict[str, Any], current: dict | None = None
) -> dict:
    """Merge ``fields`` (and an ``updated`` time stamp) into the status object
    ``current`` (default: the file's, or nothing where it is missing or not
    an object) and write it to ``path`` atomically; returns what was written.

    The one writer of the project's status files: a run's ``status.json`` and
    a dataset build's ``.build.json``.
    """
    if current is None:
        try:
            current = json_read(path) if Path(path).exists() else {}
        except EcgError:
            current = {}
    st = {**(current if isinstance(current, dict) else {}), **fields}
    st["updated"] = utc_now()
    atomic_write_json(path, st)
    return st


def atomic_write_csv(
    path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Write a CSV file with ``header`` and ``rows`` atomically."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


#: A JSON file of the project larger than this is damaged (the largest written,
#: a published metrics.json, is ~0.2 MB).
JSON_MAX_BYTES = 50_000_000


def json_read(path: str | os.PathLike) -> Any:
    """Read a JSON file, raising :class:`EcgError` naming the file on any problem
    (a file over :data:`JSON_MAX_BYTES` included: never read into memory)."""
    path = Path(path)
    try:
        if path.stat().st_size > JSON_MAX_BYTES:
            raise EcgError(f"{path}: damaged (over {JSON_MAX_BYTES // 10**6} MB)")
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EcgError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EcgError(f"{path}: not readable JSON ({e})") from None
