"""Where dlbench may write: one check for every folder a command will write in or make (a store's, a cache root)."""

from __future__ import annotations

import os
from pathlib import Path


def folder_problem(folder: Path) -> str | None:
    """Why files cannot be written in `folder` (None: they can): it must be a writable folder, or not exist yet under
    a nearest existing folder that is writable (so it can be made). Touches nothing."""
    try:
        existing = folder
        while not existing.exists():
            existing = existing.parent
        if existing.is_dir() and os.access(existing, os.W_OK | os.X_OK):
            return None
    except OSError as exc:  # a name too long for the file system, say
        return str(exc.strerror or exc)
    return f"{str(existing)[:200]!r} is not a writable folder"


__all__ = ["folder_problem"]
