"""The versioned JSON protocol between the runner (parent) and its workers.

Workers write newline-delimited JSON messages to a dedicated pipe (never stdout: framework chatter goes to
the case's log). Every message carries `"protocol": PROTOCOL_VERSION`.

History:
  1 — messages: request {task: measure|verify, case, measure, log_path}; ready {ok, error, import_s, rss_bytes};
      started {pid}; result {result}; finished {pid, exit_status, result|null}.

Worker-side module: standard library only.
"""

from __future__ import annotations

import json
import os
import signal
from typing import Any

PROTOCOL_VERSION = 1


class ProtocolError(Exception):
    pass


def encode(kind: str, **fields: Any) -> bytes:
    return (json.dumps({"protocol": PROTOCOL_VERSION, "kind": kind, **fields}, allow_nan=True) + "\n").encode()


def decode(line: bytes) -> dict[str, Any]:
    try:
        message = json.loads(line)
    except ValueError as exc:
        raise ProtocolError(f"worker sent a line that is not JSON: {line[:200]!r}") from exc
    if not isinstance(message, dict) or message.get("protocol") != PROTOCOL_VERSION:
        raise ProtocolError(f"worker speaks protocol {message.get('protocol')!r}, expected {PROTOCOL_VERSION}")
    return message


def kill_group(pid: int) -> None:
    """SIGKILL the process group led by `pid` (a case and anything it started, or a worker, each started as a group
    leader), else the process alone; never raises. How the runner ends its workers and a worker ends itself."""
    try:
        os.killpg(pid, signal.SIGKILL)
        return
    except OSError:
        pass
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def write_message(fd: int, kind: str, **fields: Any) -> None:
    data = encode(kind, **fields)
    while data:
        data = data[os.write(fd, data) :]
