"""The search for the largest batch that fits. Pure: the probing is passed in (a fake in the unit tests).

Doubling from `start` until the first batch that runs out of memory, then bisection between the largest batch
that ran and the smallest that did not, until they are `within` a fraction of each other (0: exact, N ran and
N + 1 did not): about 2·log2(N) probes. Near the answer every probe that runs costs a whole step at the largest
batch, so a few percent saves most of the bisection where steps are slow (a CPU), and loses little.
It assumes that memory grows with the batch, as activations do; each probe is a case in a fresh process, so no
probe inherits another's memory. A probe that ends any other way (an error, a timeout, unsupported) says nothing
about memory: it ends the search, which is reported as stopped there, never as a fit or as a failure to fit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

FITS, DOES_NOT_FIT = "ok", "oom"
# What a search found: "found" (largest_ok ran, smallest_oom ran out of memory, and they are within the fraction
# asked for; adjacent when it is 0), "none fits" (not even batch 1),
# "max batch fits" (max_batch ran: the limit is higher still), "stopped" (a probe neither ran nor ran out of memory).
VERDICTS = ("found", "none fits", "max batch fits", "stopped")


@dataclass
class SearchResult:
    verdict: str
    largest_ok: int | None  # the largest batch that ran (None: none did)
    smallest_oom: int | None  # the smallest batch that ran out of memory (None: none did)
    probes: list[tuple[int, str]] = field(default_factory=list)  # (batch, status), in the order probed
    stopped_at: int | None = None  # the batch whose status ended a "stopped" search
    stopped_status: str | None = None


def find_max_batch(
    probe: Callable[[int], str], start: int = 1, max_batch: int | None = None, within: float = 0.0
) -> SearchResult:
    """Search with `probe(batch) -> status` ("ok", "oom", or anything else, which stops the search); bisection
    stops once smallest_oom - largest_ok <= max(1, within * largest_ok)."""
    if start < 1 or (max_batch is not None and max_batch < start) or not 0 <= within < 1:
        raise ValueError(f"need 1 ≤ start ≤ max_batch and 0 ≤ within < 1, got {start}, {max_batch}, {within}")
    probes: list[tuple[int, str]] = []
    ok, oom = 0, 0  # 0: none known yet

    def result(verdict: str, stopped: tuple[int, str] | None = None) -> SearchResult:
        return SearchResult(verdict, ok or None, oom or None, probes, *(stopped or (None, None)))

    def run(batch: int) -> str:
        status = probe(batch)
        probes.append((batch, status))
        return status

    batch = start
    while not oom:  # doubling
        status = run(batch)
        if status == FITS:
            ok = batch
            if max_batch is not None and batch >= max_batch:
                return result("max batch fits")
            batch = batch * 2 if max_batch is None else min(batch * 2, max_batch)
        elif status == DOES_NOT_FIT:
            oom = batch
        else:
            return result("stopped", (batch, status))
    while oom - ok > max(1, int(within * ok)):  # bisection: ok ran (or is 0), oom did not
        mid = (ok + oom) // 2
        status = run(mid)
        if status == FITS:
            ok = mid
        elif status == DOES_NOT_FIT:
            oom = mid
        else:
            return result("stopped", (mid, status))
    return result("found" if ok else "none fits")
