"""The feature store: one HDF5 file per video, one dataset per modality, plus a manifest.

Layout: ``STORE/<video_id>.h5`` holds datasets such as ``rgb`` (T, 1024), ``flow`` (T, 1024),
``pose`` (T, 256), ``skeleton`` (frames, M, 25, 3) and ``skeleton_present`` (frames,), each with its
provenance attributes.
Every write goes to a temporary file in STORE that is fsynced and renamed over the old one, so an
interrupted run never leaves a half file and never loses datasets written before.
``STORE/manifest.json`` lists every video and modality with status done/failed and the reason.

Several processes may write one store at once (``extract rgb`` and ``extract flow`` of the same videos,
Ray workers, jobs of a cluster on a shared disk): each video's copy -> write -> rename runs under that
video's lock and starts from the file as it is once the lock is held, and the manifest's
read -> modify -> write runs under the manifest lock (``augrgb.core.locks``; lock files live in
``STORE/.locks``). Temporary files are named ``.<key>.<random>.tmp`` after the video's lock key, so a
later run can tell a killed writer's leftovers (lock free) from a live writer's (lock held) and sweep them.
Readers also accept released features: per-video ``.npy`` of shape (T, 1024) or (T, 1, 1, 1024).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from augrgb.core.errors import InputError
from augrgb.core.files import commit, is_temporary, write_text_atomic
from augrgb.core.locks import locked, try_lock
from augrgb.core.paths import path_in

MANIFEST = "manifest.json"
LOCKS = ".locks"


def _attr_value(value: Any) -> Any:
    """HDF5-storable form of an attribute value (None -> empty string, lists -> JSON)."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    return value


def _python_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    return value


class FeatureStore:
    """A folder of per-video HDF5 feature files with a manifest (see module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, video_id: str) -> Path:
        """The HDF5 file of ``video_id`` (ids that would escape the store are refused)."""
        return path_in(self.root, video_id, ".h5")

    def video_ids(self) -> list[str]:
        """Ids of all videos with a feature file, sorted."""
        return sorted(p.stem for p in self.root.glob("*.h5") if not p.name.startswith("."))

    def has(self, video_id: str, modality: str) -> bool:
        """True when ``video_id`` already has a complete ``modality`` dataset."""
        path = self.path(video_id)
        if not path.is_file():
            return False
        try:
            with h5py.File(path, "r") as h5:
                return modality in h5
        except OSError:
            return False

    # ---- locks and temporary files --------------------------------------------------------
    @staticmethod
    def lock_key(video_id: str) -> str:
        """A fixed-length name for ``video_id``'s lock and temporary files (ids may be long or odd)."""
        return hashlib.sha256(video_id.encode("utf-8", "surrogateescape")).hexdigest()[:24]

    def _lock_path(self, key: str) -> Path:
        return self.root / LOCKS / f"{key}.lock"

    def sweep(self) -> list[Path]:
        """Remove temporary files that killed writers left (their lock is free); live writers' files stay."""
        removed = []
        for tmp in sorted(self.root.iterdir()):
            if not (is_temporary(tmp) and tmp.is_file()):
                continue
            key = "manifest" if tmp.name.startswith(f".{MANIFEST}.") else tmp.name[1:].split(".", 1)[0]
            if key != "manifest" and len(key) != 24:
                continue  # not a name this store makes
            fd = try_lock(self._lock_path(key))
            if fd is None:
                continue  # a live writer's
            try:  # removed while the lock is held: a new writer waits for it
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
            finally:
                os.close(fd)
        return removed

    def write(self, video_id: str, modality: str, data: np.ndarray, attrs: Mapping[str, Any] | None = None) -> Path:
        """Add or replace dataset ``modality`` of ``video_id`` atomically, keeping its other datasets."""
        return self.write_datasets(video_id, {modality: (data, attrs or {})})

    def write_datasets(self, video_id: str, datasets: Mapping[str, tuple[np.ndarray, Mapping[str, Any]]]) -> Path:
        """Add or replace several datasets ``{name: (data, attrs)}`` of ``video_id`` in one atomic replacement.

        Runs under the video's lock and copies the file as it is once the lock is held, so datasets that
        other processes wrote meanwhile are kept.
        """
        path = self.path(video_id)
        arrays = {name: np.asarray(data) for name, (data, _) in datasets.items()}
        for name, data in arrays.items():
            if data.dtype.kind == "f" and not np.isfinite(data).all():
                raise InputError(video_id, f"refusing to store {name} features containing NaN or Inf")
        key = self.lock_key(video_id)
        with locked(self._lock_path(key)):
            fd, name = tempfile.mkstemp(dir=self.root, prefix=f".{key}.", suffix=".tmp")
            os.close(fd)
            tmp = Path(name)
            try:
                if path.is_file():
                    self._copy_existing(path, tmp)
                with h5py.File(tmp, "a") as h5:
                    for name, data in arrays.items():
                        if name in h5:
                            del h5[name]
                        dset = h5.create_dataset(name, data=data, compression="gzip" if data.size > 4096 else None)
                        for attr, value in datasets[name][1].items():
                            dset.attrs[attr] = _attr_value(value)
                    h5.attrs["video_id"] = video_id
                commit(tmp, path)
            finally:
                tmp.unlink(missing_ok=True)
        return path

    @staticmethod
    def _unreadable(path: Path) -> str | None:
        """Why the existing file ``path`` cannot be read as HDF5, or None when it can."""
        try:
            with h5py.File(path, "r"):
                return None
        except OSError as exc:
            return str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__

    def _copy_existing(self, path: Path, tmp: Path) -> None:
        """Start ``tmp`` from the existing file ``path``; an unreadable one is refused, never silently dropped."""
        why = self._unreadable(path)
        if why is not None:
            raise InputError(path, f"existing feature file is not readable HDF5 ({why}); rerun with --overwrite to replace it")
        shutil.copyfile(path, tmp)

    def discard_unreadable(self, video_id: str) -> bool:
        """Remove ``video_id``'s file if it exists and cannot be read (what ``--overwrite`` does); True if removed."""
        path = self.path(video_id)
        with locked(self._lock_path(self.lock_key(video_id))):
            if not path.is_file() or self._unreadable(path) is None:
                return False
            path.unlink()
        return True

    def read(self, video_id: str, modality: str) -> tuple[np.ndarray, dict[str, Any]]:
        """Dataset ``modality`` of ``video_id`` and its attributes."""
        return read_h5(self.path(video_id), modality)

    def attrs(self, video_id: str, modality: str) -> dict[str, Any]:
        """The attributes of dataset ``modality`` of ``video_id``, without reading the data."""
        return read_h5(self.path(video_id), modality, data=False)[1]

    # ---- manifest -------------------------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        """The manifest as a dict ``{"videos": {id: {"source": ..., "modalities": {...}}}}``."""
        path = self.root / MANIFEST
        if not path.is_file():
            return {"videos": {}}
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(path, f"manifest is not valid JSON ({exc})") from None

    def record(self, video_id: str, modality: str, status: str, source: str | None = None,
               reason: str | None = None, **details: Any) -> None:
        """Record the outcome of one video/modality in the manifest (under the manifest lock, rewritten atomically)."""
        with locked(self._lock_path("manifest")):
            manifest = self.manifest()
            entry = manifest["videos"].setdefault(video_id, {"modalities": {}})
            if source is not None:
                entry["source"] = source
            entry["modalities"][modality] = {
                "status": status, "reason": reason,
                "updated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), **details,
            }
            write_text_atomic(self.root / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))

    def log_error(self, source: str, details: str) -> None:
        """Append the traceback of an unexpected failure of ``source`` to ``STORE/errors.log`` (stderr keeps one line)."""
        stamp = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        with locked(self._lock_path("manifest")), (self.root / ERRORS).open("a", encoding="utf-8") as log:
            log.write(f"--- {stamp} {_log_line(source)}\n{_log_line(details.rstrip())}\n")


ERRORS = "errors.log"


def _log_line(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def read_h5(path: str | Path, modality: str, data: bool = True) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Read one dataset (unless not ``data``) and its attributes from a per-video HDF5 file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "feature file not found")
    try:
        with h5py.File(path, "r") as h5:
            if modality not in h5:
                raise InputError(path, f"no '{modality}' dataset (has: {', '.join(h5.keys()) or 'none'})")
            dset = h5[modality]
            return (dset[()] if data else None), {k: _python_value(v) for k, v in dset.attrs.items()}
    except OSError as exc:
        raise InputError(path, f"not a readable HDF5 file ({exc})") from None


def load_npy(path: str | Path) -> np.ndarray:
    """A ``.npy`` array, refusing (before allocating anything) a header whose shape needs more bytes than the file
    holds: a 400-byte file may not ask for terabytes."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(handle)
            offset = handle.tell()
        if dtype.hasobject:
            raise ValueError("Object arrays cannot be loaded when allow_pickle=False")
        declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
        available = path.stat().st_size - offset
        if declared > available:
            raise ValueError(f"header declares shape {shape} of {dtype} ({declared} bytes) but the file holds {available}")
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise InputError(path, f"cannot read as a .npy array ({reason})") from None


def read_features(path: str | Path, modality: str = "rgb") -> np.ndarray:
    """(T, C) float32 features from our HDF5 files or released per-video ``.npy`` files."""
    path = Path(path)
    if path.suffix == ".npy":
        array = load_npy(path)
        if array.ndim == 4 and array.shape[1:3] == (1, 1):
            array = array[:, 0, 0, :]
        if array.ndim != 2:
            raise InputError(path, f"expected features of shape (T, C) or (T, 1, 1, C), got {array.shape}")
    else:
        array, _ = read_h5(path, modality)
    array = np.asarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise InputError(path, "features contain NaN or Inf")
    return array

