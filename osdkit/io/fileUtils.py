"""Small file helpers every layer uses: atomic writes (temp file beside the target, then rename), JSON
with numpy values, figures, checksums. Nothing here knows about models, data or the app."""
import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np


class OutputError(Exception):
    """An output path that cannot be written; the message is one line naming it."""


STOP_SIGNALS = []  # signals a command received (cliUtils records them); once set, nothing is committed


@contextlib.contextmanager
def atomic_output(path):
    """Yield a temp path beside `path`; rename it over `path` only if the block succeeds and no stop
    signal came meanwhile (a library may swallow the KeyboardInterrupt a signal raises)."""
    path = Path(path)
    if path.parent.exists() and not path.parent.is_dir():
        raise OutputError(f"{path}: output folder {path.parent} is not a folder")
    if not path.parent.is_dir():
        raise OutputError(f"{path}: output folder {path.parent} does not exist")
    if path.is_dir():
        raise OutputError(f"{path}: output path is a folder")
    if not os.access(path.parent, os.W_OK):
        raise OutputError(f"{path}: output folder {path.parent} is not writable")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise OutputError(f"{path}: cannot write in {path.parent} ({err.strerror})") from None
    os.close(fd)
    umask = os.umask(0o022)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would stay on the renamed file
    try:
        yield Path(tmp)
        if STOP_SIGNALS:
            raise KeyboardInterrupt(f"signal {STOP_SIGNALS[0]}")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json_atomic(path, obj):
    """JSON written atomically; numpy values become plain numbers and lists, other objects their str."""
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_json_plain) + "\n")


def _json_plain(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def sha256_of(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_figure_atomic(fig, path):
    """A matplotlib Figure saved as PNG atomically (its folder made if needed)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_output(path) as tmp:
        fig.savefig(str(tmp), format="png", dpi=100, bbox_inches="tight")


def numbered_folder(base, number=0):
    """`base/<N>/`, the run folders' layout: a new N (1 + the highest there) when number is 0, else
    the existing folder N (OutputError when it is not there)."""
    base = Path(base)
    if number:
        folder = base / str(number)
        if not folder.is_dir():
            raise OutputError(f"{folder}: no such run to rerun")
        return folder
    base.mkdir(parents=True, exist_ok=True)
    numbers = [int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit()]
    folder = base / str(max(numbers, default=0) + 1)
    folder.mkdir()
    return folder
