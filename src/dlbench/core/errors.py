"""Errors a user can cause. The CLI prints them as one line and exits with status 2."""

from __future__ import annotations

from collections.abc import Iterable


class UsageError(Exception):
    """A user's mistake: an unknown name, a bad size, a malformed suite file, an unreadable store.

    The message names the bad value and what is allowed; nothing has been written when it is raised.
    """


def unknown(kind: str, value: str, allowed: Iterable[str]) -> UsageError:
    """`unknown backend 'nosuch' (allowed: numpy, torch)`."""
    return UsageError(f"unknown {kind} {value!r} (allowed: {', '.join(sorted(allowed))})")


def check_names(kind: str, values: Iterable[object], allowed: Iterable[str]) -> list[str]:
    """`values` as names, each one of `allowed`; else UsageError `unknown KIND 'value' (allowed: ...)`."""
    values, allowed = list(values), tuple(allowed)
    for value in values:
        if value not in allowed:
            raise unknown(kind, str(value), allowed)
    return [str(v) for v in values]
