"""Why a run ended on a fault rather than finishing or being interrupted: the one exception the CLI turns into
exit status 1 and a single line. Standard library only, so the CLI can catch it without loading the runner."""

from __future__ import annotations


class RunFailed(Exception):
    """A run ended on a fault it cannot work around: its store became unwritable or unreadable (disk full, an I/O
    error, the file truncated or replaced under it), or a backend's serving worker kept dying. The message is one
    line: what happened, how many cases are stored, and how to finish the run if its store still holds it. The
    run's status is "failed" wherever the store could still record it."""

    def __init__(self, message: str, run_id: str | None = None, store_path: str | None = None) -> None:
        super().__init__(message)
        self.run_id, self.store_path = run_id, store_path


__all__ = ["RunFailed"]
