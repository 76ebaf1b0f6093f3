"""`dlbench report` and `dlbench compare`: their argument parsers and commands. cli.py adds the parsers and
hands the parsed arguments here; the heavy modules load only when a command runs.

Both follow the CLI's rule for mistakes: everything is validated (names, numbers, paths, run ids, Chromium)
before anything is written; a mistake is one line naming the bad value and what is allowed, exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dlbench.core import arguments
from dlbench.core.errors import UsageError
from dlbench.core.text import printable

if TYPE_CHECKING:
    from dlbench.core.results import Run
    from dlbench.core.tables import Section

COMMANDS = ("report", "compare")
REPORT_FORMATS = ("html", "markdown")
COMPARE_FORMATS = ("table", "markdown", "json")
EXIT_REGRESSION = 1


def add_parsers(sub: Any, store_help: str) -> None:
    """Add `report` and `compare` to the CLI's subparsers."""
    report = sub.add_parser("report", help="the HTML (or Markdown) report of stored runs", description=(
        "Write one self-contained HTML file (no network needed to view it: inline CSS and SVG plots) with the "
        "seed's tables from the run(s), the 2016 figures beside them, plots, the recommendation computed from "
        "the raw samples, and each run's environment. Several run ids pool their results. --format markdown "
        "gives the tables and the recommendation as Markdown."))  # fmt: skip
    report.add_argument("run_ids", nargs="*", type=arguments.text, metavar="RUN_ID",
                        help="stored runs (default: the latest), or a cluster run's group id (cluster-...): its "
                        "machines side by side")
    report.add_argument("--store", type=arguments.text, metavar="PATH", help=store_help)
    report.add_argument("--format", default="html", choices=REPORT_FORMATS,
                        help="html (default) or markdown")
    report.add_argument("--out", type=arguments.text, metavar="PATH",
                        help="where to write it (html default: report.html; markdown "
                        "default: stdout; '-' for stdout)")  # fmt: skip
    report.add_argument("--weights", metavar="KEY=W,...",
                        help="how much regimes count in the summary, by "
                        "workload, mode, precision, device or size band, e.g. lstm=2,vgg16=1,train=2")  # fmt: skip
    report.add_argument("--screenshot", type=arguments.text, metavar="PNG",
                        help="also save a full-page screenshot of the HTML report "
                        "as headless Chromium renders it (needs chromium)")  # fmt: skip

    compare = sub.add_parser("compare", help="B ÷ A samples/s per matching case, with CIs and verdicts",
                             description=(
        "For every case the two runs share: B's samples/s ÷ A's, a 95% CI from the spread between each run's "
        "independent processes (--repeat; from one process a case is not tested), and a verdict (no significant "
        "difference / faster / slower / not tested, and why). A slowdown whose whole CI lies beyond "
        "--threshold is a regression. Between two separate runs each case is judged against the run-wide shift "
        "(the median B ÷ A), which is itself a regression only beyond --drift. Runs whose machines differ in "
        "what decides the figures (CPU model, GPU model) are refused unless --force. Two versions of one "
        "framework (two runs, or two envs: `dlbench envs`) compare as such: the header names the versions "
        "that changed."))  # fmt: skip
    compare.add_argument("run_a", type=arguments.text, metavar="RUN_A",
                         help="the baseline; RUN_ID:BACKEND takes one backend of the "
                         "run (e.g. RUN:torch@old, to compare two envs of one run)")  # fmt: skip
    compare.add_argument("run_b", type=arguments.text, metavar="RUN_B",
                         help="the run judged against it (RUN_ID:BACKEND as for RUN_A)")
    compare.add_argument("--store", type=arguments.text, metavar="PATH", help=store_help)
    compare.add_argument(
        "--threshold",
        default="5%",
        metavar="PERCENT",
        help="a slowdown whose whole 95%% CI lies beyond this is a regression (default 5%%)",
    )
    compare.add_argument(
        "--noise",
        default="2%",
        metavar="PERCENT",
        help="differences whose whole 95%% CI lies within ± this are not significant (default 2%%)",
    )
    compare.add_argument(
        "--drift",
        metavar="PERCENT",
        help="two separate runs: each case is judged against the run-wide shift (the median B ÷ A), and the shift "
        "itself is a regression only beyond this, what the machine's state may move a whole run by (default "
        "15%%: two quiet runs of seed-cpu on a shared 2-core VM moved x0.88)",
    )
    compare.add_argument("--fail-on-regression", action="store_true",
                         help="exit 1 if any case, or the whole run, regressed")  # fmt: skip
    compare.add_argument(
        "--force", action="store_true", help="compare even when the environments differ in a way that matters"
    )
    compare.add_argument("--format", default="table", choices=COMPARE_FORMATS, help="output format (default: table)")


def run_command(args: argparse.Namespace) -> int:
    if args.command == "report":
        return _cmd_report(args)
    return _cmd_compare(args)


def _check_out(path: str, what: str, store: str | None) -> Path:
    """Where a report or screenshot may be written: a file in an existing, writable folder, and never a store (the
    report would replace the results it reports on) nor any other SQLite file."""
    from dlbench.store import default_store_path

    out = Path(path)
    try:
        if not path.strip():
            raise UsageError(f"bad {what} {path!r}: give a file path")
        if out.is_dir():
            raise UsageError(f"bad {what} {path!r}: it is a directory; give a file path")
        if not out.parent.is_dir():
            raise UsageError(f"bad {what} {path!r}: directory {str(out.parent)!r} does not exist")
        if not os.access(out.parent, os.W_OK):
            raise UsageError(f"bad {what} {path!r}: directory {str(out.parent)!r} is not writable")
        store_path = Path(store) if store else default_store_path()
        if out.exists() and (store_path.exists() and out.samefile(store_path) or _is_sqlite(out)):
            raise UsageError(f"bad {what} {path!r}: that is a results store; writing the report there would "
                             "replace it (give another file)")  # fmt: skip
        os.stat(out.parent / out.name)  # an over-long name fails here, before any work
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise UsageError(f"bad {what} {path[:80]!r}: {exc.strerror or exc}") from None
    return out


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def _write(path: Path, data: str | bytes) -> None:
    """Write through a temporary file in the same directory, so a failure leaves no half-written report."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:100]}.", suffix=".tmp")
    except OSError as exc:
        raise UsageError(f"cannot write {str(path)[:80]!r}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UsageError(f"cannot write {str(path)[:80]!r}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load(store: str | None, run_ids: list[str | None]) -> list[Run]:
    """The stored runs (None: the latest), read through one store connection that is closed after."""
    return _load_with_sections(store, run_ids, sections=False)[0]


def _load_with_sections(
    store: str | None, run_ids: list[str | None], sections: bool = True
) -> tuple[list[Run], list[Section]]:
    """The stored runs and (if asked) the report sections built from the store's findings, through one connection."""
    from dlbench.report.sections import build_sections
    from dlbench.runs import api
    from dlbench.store import Store, default_store_path

    db = Store(store or default_store_path(), readonly=True)
    try:
        runs = [run for run_id in run_ids for run in _expand(api, db, run_id)]
        return runs, build_sections(db, runs) if sections else []
    finally:
        db.close()


def _expand(api: Any, db: Any, run_id: str | None) -> list[Run]:
    """A run id, or a cluster run's group id (`cluster-...`: every run of that `run --cluster` command)."""
    if run_id is None or not run_id.startswith("cluster-"):
        return [api.load_run(run_id, db)]
    runs = [api.load_run(r, db) for r in db.run_ids()]
    group = [r for r in runs if (r.settings.get("cluster") or {}).get("group") == run_id]
    if not group:
        raise UsageError(f"no cluster run {run_id!r} in store {str(db.path)!r}")
    return group


def _cmd_report(args: argparse.Namespace) -> int:
    from dlbench.report import content, markdown, page, screenshot
    from dlbench.report.recommend import parse_weights

    weights = parse_weights(args.weights)
    html = args.format == "html"
    out = args.out if args.out is not None else ("report.html" if html else "-")
    target = None if out == "-" else _check_out(out, "--out", args.store)
    shot = None
    if args.screenshot:
        if not html:
            raise UsageError("--screenshot needs --format html (it renders the HTML report)")
        if not args.screenshot.lower().endswith(".png"):
            raise UsageError(f"bad --screenshot {args.screenshot!r}: the screenshot is a PNG file (name it .png)")
        shot = _check_out(args.screenshot, "--screenshot", args.store)
        why_not = screenshot.missing()
        if why_not is not None:
            raise UsageError(f"--screenshot cannot be taken here: {why_not}")
        if target is None:
            raise UsageError("--screenshot needs --out FILE (the browser opens the HTML file)")
    runs, sections = _load_with_sections(args.store, args.run_ids or [None])
    report = content.build(runs, weights, sections)
    text = page.render(report) if html else markdown.render(report)
    # HTML escapes markup, not a store's escape sequences, which `cat report.html` would hand a terminal (core/text.py)
    text = printable(text, newlines=True)
    if target is None:
        sys.stdout.write(text)
        return 0
    _write(target, text)
    print(f"wrote {target} ({len(report.run.results)} results of run {report.run.run_id})", file=sys.stderr)
    if shot is not None:
        try:
            screenshot.screenshot(target, shot)
        except screenshot.ScreenshotError as exc:
            print(f"dlbench: screenshot failed: {exc}", file=sys.stderr)
            return 1
        print(f"wrote {shot}", file=sys.stderr)
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from dlbench.report import compare

    threshold = compare.parse_threshold(args.threshold)
    noise = compare.parse_threshold(args.noise, "--noise", zero=True)
    drift = compare.MACHINE_DRIFT if args.drift is None else compare.parse_threshold(args.drift, "--drift", zero=True)
    (id_a, spec_a), (id_b, spec_b) = compare.split_run_arg(args.run_a), compare.split_run_arg(args.run_b)
    a, b = _load(args.store, [id_a, id_b])
    a, b = (compare.select_backend(run, spec) if spec else run for run, spec in ((a, spec_a), (b, spec_b)))
    result = compare.compare_runs(a, b, threshold, force=args.force, noise=noise, drift=drift)
    if args.format == "json":
        print(compare.to_json(result))
    elif args.format == "markdown":
        print(compare.to_markdown(result), end="")
    else:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        console = Console(width=None if sys.stdout.isatty() else 200)
        title = Text(printable(f"dlbench compare {a.run_id} → {b.run_id}"))  # a store's text: no markup, no escapes
        table = Table(*compare.COLUMNS, title=title, title_justify="left")
        for row in compare.rows_text(result):
            table.add_row(*(Text(printable(cell)) for cell in row))
        console.print(table)
        for line in compare.summary_lines(result):
            console.print(printable(line), highlight=False, markup=False, soft_wrap=True)
    return EXIT_REGRESSION if args.fail_on_regression and result.regressed else 0
