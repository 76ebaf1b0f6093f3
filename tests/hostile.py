"""A hostile user's invocations: malformed values for every command and option, suite files of the wrong shape,
stores that are SQLite but wrong inside. Test support for tests/unit/test_hostile_inputs.py, not part of dlbench.

Each invocation is (argv, needle): dlbench must answer with exit status 2 and one line on stderr that contains
`needle` (the bad value, or for an empty value `''` or the option's name: alternatives are split by `|`; an
over-long value is found by its first 60 characters), write nothing and start no process. The
argv may hold `{W}` (the folder the fixtures are in, also the working folder) and names of the fixtures below.

The corpus is built by kind of value (seconds, counts, percentages, names, sizes, CPU lists, paths, stores,
suites), each kind applied to every option of that kind in every command: a new option joins by being listed in
OPTIONS, and gets every malformed value of its kind.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

LONG = "x" * 300  # longer than a file name may be (ENAMETOOLONG)

# Every malformed value of each kind. (value, needle): needle None means the value itself.
SECONDS = [("abc", None), ("", None), ("nan", None), ("inf", None), ("-inf", None), ("-1", None), ("0", None),
           ("1e999", None), ("-0.5", None)]  # fmt: skip
SECONDS_OR_ZERO = [("abc", None), ("", None), ("nan", None), ("-1", None), ("-inf", None), ("1e999", None)]
COUNT = [("abc", None), ("", None), ("1.5", None), ("0", None), ("-1", None), ("nan", None),
         ("99999999999999999999", None)]  # fmt: skip
COUNT_OR_ZERO = [("abc", None), ("", None), ("1.5", None), ("-1", None), ("nan", None), ("99999999999999999999", None)]
PERCENT = [("abc", None), ("", None), ("-5%", None), ("nan", None), ("inf", None), ("101%", None)]
NAMES = [("", None), (",", None), (" , ", None), ("nosuch", None), ("nosuch,numpy", "nosuch"), (LONG, None)]
DEVICE = [("", None), ("tpu", None), ("CUDA", None), ("cpu,cuda", None)]
CPUS = [("", None), ("abc", None), ("0-99999999999999", None), ("-1", None), ("5-2", None), ("999", None),
        ("0,,1", None), ("1-", None), ("0-1-2", None)]  # fmt: skip
MEMORY = [("", None), ("abc", None), ("-1", None), ("0", None), ("1XB", None), ("nan", None), ("1e999", None)]
SIZES = [("", None), ("batch", None), ("=1", None), ("batch=", None), ("batch=abc", None), ("batch=-1", None),
         ("batch=0", None), ("nosuch=1", "nosuch"), ("batch=1,1", None), ("batch=99999999999999999999", None),
         ("batch=1.5", None), ("batch=nan", None)]  # fmt: skip
BACKEND_OPTIONS = [("", None), ("nosuch=1", "nosuch"), ("=1", None), ("x", None), ("sleep_s=-1", None),
                   ("sleep_s=nan", None), ("fault=nosuch", None)]  # fmt: skip
PYTHONS = [("", None), ("numpy", None), ("numpy=", None), ("=x", None), ("nosuch=/usr/bin/python3", "nosuch"),
           ("numpy=/nonexistent/python", None), ("numpy={W}", None)]  # fmt: skip
ENVS = [("", None), ("numpy=nosuchenv", "nosuchenv"), ("nosuch=x", "nosuch"), ("numpy=../x", "../x"),
        ("numpy=", None)]  # fmt: skip
WEIGHTS = [("", None), ("forward=0,train=0", None), ("lstm=-1", None), ("nosuch=1", None), ("lstm", None),
           ("lstm=abc", None), ("lstm=nan", None), ("lstm=inf", None)]  # fmt: skip
OUT = [("store.sqlite", None), ("/proc/x.html", None), ("/sys/x.html", None), (LONG + ".html", None),
       ("{W}", None), ("missing-folder/x.html", None), ("", None)]  # fmt: skip

# command -> its base argv (what makes the rest valid) and its options, by kind
_RUN_BASE = ["run", "lstm", "--backends", "numpy", "--set", "seq_len=2", "--store", "fresh.sqlite"]
OPTIONS: dict[str, tuple[list[str], dict[str, list[tuple[str, str | None]]]]] = {
    "run": (_RUN_BASE, {
        "--timeout": SECONDS, "--min-time": SECONDS_OR_ZERO, "--max-time": SECONDS, "--wait-quiet": SECONDS_OR_ZERO,
        "--repeat": COUNT, "--retries": COUNT_OR_ZERO, "--quiet-threshold": PERCENT, "--backends": NAMES,
        "--precisions": NAMES, "--modes": NAMES, "--device": DEVICE, "--cpus": CPUS, "--memory-limit": MEMORY,
        "--device-memory": MEMORY, "--emulate": [("nosuch", None), ("", None), ("TITANX-PASCAL", None)],
        "--set": SIZES, "--option": BACKEND_OPTIONS, "--python": PYTHONS, "--env": ENVS,
        "--isolation": [("nosuch", None)],
        "--format": [("nosuch", None)], "--store": [("", None), ("{W}", None), (LONG, None)],
    }),
    "verify": (["verify", "--backends", "numpy", "--workloads", "lstm"], {
        "--timeout": SECONDS, "--backends": NAMES, "--workloads": NAMES, "--precisions": NAMES, "--device": DEVICE,
        "--cpus": CPUS, "--set": SIZES, "--option": BACKEND_OPTIONS, "--python": PYTHONS, "--env": ENVS,
        "--format": [("nosuch", None)],
    }),
    "maxbatch": (["maxbatch", "lstm", "--backends", "numpy", "--store", "fresh.sqlite"], {
        "--timeout": SECONDS, "--start": COUNT, "--max-batch": COUNT, "--steps": COUNT, "--within": PERCENT,
        "--backends": NAMES, "--precisions": NAMES, "--modes": NAMES, "--device": DEVICE, "--cpus": CPUS,
        "--memory-limit": MEMORY, "--option": BACKEND_OPTIONS, "--set": [("seq_len=abc", None), ("", None),
                                                                          ("nosuch=1", "nosuch"), ("seq_len=0", None)],
    }),
    "compile": (["compile", "lstm", "--backends", "numpy", "--store", "fresh.sqlite"], {
        "--timeout": SECONDS, "--backends": NAMES, "--precisions": NAMES, "--modes": NAMES, "--device": DEVICE,
        "--cpus": CPUS, "--set": SIZES, "--cache-root": [("", None), ("store.sqlite/sub", None),
                                                        ("store.sqlite", None), (LONG, None)],
    }),
    "usability": (["usability", "--backends", "numpy", "--store", "fresh.sqlite"], {
        "--timeout": SECONDS, "--backends": NAMES, "--workloads": NAMES, "--parts": NAMES, "--paths": NAMES,
    }),
    "probe": (["probe", "--backends", "numpy", "--store", "fresh.sqlite"], {
        "--timeout": SECONDS, "--backends": NAMES, "--precisions": NAMES, "--layers": NAMES, "--device": DEVICE,
        "--cpus": CPUS,
    }),
    "peak": (["peak", "--frameworks", "numpy", "--store", "fresh.sqlite"], {
        "--seconds": SECONDS, "--device": DEVICE, "--cpus": CPUS, "--frameworks": NAMES,
        "--format": [("nosuch", None)], "--store": [("", None), ("{W}", None), (LONG, None)],
    }),
    "report": (["report", "--store", "store.sqlite", "--out", "out.html"], {
        "--weights": WEIGHTS, "--out": OUT, "--screenshot": OUT[:-1] + [("shot.txt", None)],
        "--format": [("nosuch", None)],
    }),
    "compare": (["compare", "r1", "r2", "--store", "store.sqlite"], {
        "--threshold": PERCENT, "--noise": PERCENT, "--drift": PERCENT, "--format": [("nosuch", None)],
    }),
}  # fmt: skip

# Stores that exist but are wrong (the needle is the store's name)
STORES = ["bad-schema.sqlite", "newer.sqlite", "broken-plan.sqlite", "broken-settings.sqlite",
          "broken-result.sqlite", "other-columns.sqlite", "foreign.sqlite", "empty.sqlite", "text.sqlite",
          "no-meta-row.sqlite", "plan-not-list.sqlite", "result-not-object.sqlite"]  # fmt: skip
_SPOIL = {  # how each wrong store is made from a valid one
    "bad-schema.sqlite": "UPDATE meta SET value='abc' WHERE key='schema_version'",
    "newer.sqlite": "UPDATE meta SET value='99' WHERE key='schema_version'",
    "broken-plan.sqlite": "UPDATE runs SET plan='{'",
    "broken-settings.sqlite": "UPDATE runs SET settings='[1'",
    "broken-result.sqlite": "UPDATE results SET document='{'",
    "other-columns.sqlite": "ALTER TABLE runs RENAME COLUMN plan TO cases",
    "no-meta-row.sqlite": "DELETE FROM meta",
    "plan-not-list.sqlite": "UPDATE runs SET plan='5'",
    "result-not-object.sqlite": "UPDATE results SET document='[1, 2]'",
}
DAMAGED_INSIDE = {"broken-plan.sqlite", "broken-settings.sqlite", "broken-result.sqlite", "plan-not-list.sqlite",
                  "result-not-object.sqlite"}  # fmt: skip
READ_COMMANDS = [["show", "r1"], ["show"], ["runs"], ["report", "--out", "out.html"], ["compare", "r1", "r2"],
                 ["show", "--attempts"], ["report", "--format", "markdown", "--out", "out.md"]]  # fmt: skip

# Suite files of the wrong shape: name -> TOML text (bytes for the encoding cases), needle
_EXPERIMENT = '[[experiments]]\nworkload = "lstm"\n[experiments.sizes]\nseq_len = [2]\n'
SUITES: dict[str, tuple[str | bytes, str]] = {
    "description-list": ('description = ["a"]\n' + _EXPERIMENT, "description"),
    "note-table": ("note = {a = 1}\n" + _EXPERIMENT, "note"),
    "device-number": ("device = 5\n" + _EXPERIMENT, "device"),
    "device-list": ('device = ["cpu"]\n' + _EXPERIMENT, "device"),
    "device-unknown": ('device = "tpu"\n' + _EXPERIMENT, "tpu"),
    "timeout-text": ('timeout_s = "abc"\n' + _EXPERIMENT, "timeout_s"),
    "timeout-zero": ("timeout_s = 0\n" + _EXPERIMENT, "timeout_s"),
    "timeout-negative": ("timeout_s = -5\n" + _EXPERIMENT, "timeout_s"),
    "timeout-nan": ("timeout_s = nan\n" + _EXPERIMENT, "timeout_s"),
    "timeout-inf": ("timeout_s = inf\n" + _EXPERIMENT, "timeout_s"),
    "timeout-bool": ("timeout_s = true\n" + _EXPERIMENT, "timeout_s"),
    "measure-number": ("measure = 5\n" + _EXPERIMENT, "measure"),
    "measure-text": ('[measure]\nmin_time_s = "abc"\n' + _EXPERIMENT, "min_time_s"),
    "measure-negative": ("[measure]\nmin_time_s = -1.0\n" + _EXPERIMENT, "min_time_s"),
    "measure-max-iters-zero": ("[measure]\nmax_iters = 0\n" + _EXPERIMENT, "max_iters"),
    "measure-min-iters-zero": ("[measure]\nmin_iters = 0\n" + _EXPERIMENT, "min_iters"),
    "measure-repeat-zero": ("[measure]\nrepeat = 0\n" + _EXPERIMENT, "repeat"),
    "measure-nan": ("[measure]\nmax_time_s = nan\n" + _EXPERIMENT, "max_time_s"),
    "measure-bool": ("[measure]\nrepeat = true\n" + _EXPERIMENT, "repeat"),
    "measure-unknown": ("[measure]\nnosuch = 1\n" + _EXPERIMENT, "nosuch"),
    "experiments-number": ("experiments = 5\n", "experiments"),
    "experiments-empty": ("experiments = []\n", "experiments"),
    "experiments-strings": ('experiments = ["lstm"]\n', "experiments"),
    "workload-number": ("[[experiments]]\nworkload = 5\n", "workload"),
    "workload-unknown": ('[[experiments]]\nworkload = "nosuch"\n', "nosuch"),
    "workload-missing": ('[[experiments]]\nprecisions = ["fp32"]\n', "workload"),
    "sizes-number": ('[[experiments]]\nworkload = "lstm"\nsizes = 5\n', "sizes"),
    "sizes-text": ('[[experiments]]\nworkload = "lstm"\n[experiments.sizes]\nbatch = "abc"\n', "batch"),
    "sizes-empty-list": ('[[experiments]]\nworkload = "lstm"\n[experiments.sizes]\nbatch = []\n', "batch"),
    "sizes-negative": ('[[experiments]]\nworkload = "lstm"\n[experiments.sizes]\nbatch = [-1]\n', "batch"),
    "sizes-float": ('[[experiments]]\nworkload = "lstm"\n[experiments.sizes]\nbatch = [1.5]\n', "batch"),
    "sizes-bool": ('[[experiments]]\nworkload = "lstm"\n[experiments.sizes]\nbatch = [true]\n', "batch"),
    "sizes-unknown": ('[[experiments]]\nworkload = "lstm"\n[experiments.sizes]\nnosuch = [1]\n', "nosuch"),
    "sizes-nested": ('[[experiments]]\nworkload = "lstm"\n[experiments.sizes]\nbatch = [[1]]\n', "batch"),
    "sizes-duplicate": ('[[experiments]]\nworkload = "lstm"\n[experiments.sizes]\nbatch = [1, 1]\n', "batch"),
    "sizes-huge": ('[[experiments]]\nworkload = "lstm"\n[experiments.sizes]\nbatch = [99999999999]\n', "batch"),
    "grid-huge": ('[[experiments]]\nworkload = "lstm"\n[experiments.sizes]\nbatch = [' +
                  ", ".join(map(str, range(1, 3001))) + "]\nhidden = [" + ", ".join(map(str, range(1, 3001))) +
                  "]\n", "cases"),
    "precisions-number": ('[[experiments]]\nworkload = "lstm"\nprecisions = 5\n', "precisions"),
    "precisions-unknown": ('[[experiments]]\nworkload = "lstm"\nprecisions = ["fp99"]\n', "fp99"),
    "precisions-empty": ('[[experiments]]\nworkload = "lstm"\nprecisions = []\n', "precisions"),
    "modes-unknown": ('[[experiments]]\nworkload = "lstm"\nmodes = ["sideways"]\n', "sideways"),
    "modes-table": ('[[experiments]]\nworkload = "lstm"\nmodes = {a = 1}\n', "modes"),
    "experiment-backends-number": ('[[experiments]]\nworkload = "lstm"\nbackends = 5\n', "backends"),
    "experiment-backends-unknown": ('[[experiments]]\nworkload = "lstm"\nbackends = ["nosuch"]\n', "nosuch"),
    "experiment-unknown-key": ('[[experiments]]\nworkload = "lstm"\nnosuch = 1\n', "nosuch"),
    "skip-number": ('[[experiments]]\nworkload = "lstm"\nskip = 5\n', "skip"),
    "skip-unknown-backend": ('[[experiments]]\nworkload = "lstm"\n[experiments.skip]\nnosuch = "why"\n', "nosuch"),
    "backends-number": ("backends = 5\n" + _EXPERIMENT, "backends"),
    "backends-unknown": ('backends = ["nosuch"]\n' + _EXPERIMENT, "nosuch"),
    "backends-empty": ("backends = []\n" + _EXPERIMENT, "backends"),
    "backends-if-env-table": ("backends_if_env = {a = 1}\n" + _EXPERIMENT, "backends_if_env"),
    "envs-number": ("envs = 5\n" + _EXPERIMENT, "envs"),
    "envs-value-number": ("[envs]\nnumpy = 5\n" + _EXPERIMENT, "envs"),
    "pythons-list": ('pythons = ["/bin/sh"]\n' + _EXPERIMENT, "pythons"),
    "unknown-key": ("nosuch = 1\n" + _EXPERIMENT, "nosuch"),
    "not-toml": ("this is not [toml\n", "line"),
    "duplicate-key": ('device = "cpu"\ndevice = "cpu"\n' + _EXPERIMENT, "line 2"),
    "latin-1": ('description = "caf\xe9"\n'.encode("latin-1") + _EXPERIMENT.encode(), "UTF-8"),
    "binary": (b"\x00\x01\x02\xff\xfe" * 20, "UTF-8"),
    "empty": ("", "experiments"),
}  # fmt: skip


def invocations() -> list[tuple[list[str], str]]:
    """Every malformed invocation, as (argv, needle), with the fixtures' names as `make_fixtures` writes them."""
    out: list[tuple[list[str], str]] = []
    for base, options in OPTIONS.values():
        for option, values in options.items():
            for value, needle in values:
                argv = [a for i, a in enumerate(base) if not (a == option or (i and base[i - 1] == option))]
                given = [f"{option}={value}"] if value.startswith("-") else [option, value]  # as a user must type it
                out.append(([*argv, *given], needle or value or f"''|{option}"))
    for name in STORES:
        for command in READ_COMMANDS:
            if name not in DAMAGED_INSIDE or command != ["runs"]:  # `runs` reads ids only: fine where rows are bad
                out.append(([*command, "--store", name], name))
        if name not in DAMAGED_INSIDE:  # a new run into a store whose other runs' rows are bad: allowed
            out.append((["run", "lstm", "--backends", "numpy", "--store", name], name))
        out.append((["run", "--resume", "r1", "--store", name], name))
    for name, (_, needle) in SUITES.items():
        out.append((["run", f"suites/{name}.toml", "--backends", "numpy", "--store", "fresh.sqlite"], needle))
    out += [
        (["run", "", "--store", "fresh.sqlite"], "''"), (["run", "nosuch"], "nosuch"), (["run", LONG], LONG[:20]),
        (["run", LONG + ".toml"], LONG[:20]), (["run", "missing.toml"], "missing.toml"), (["run", "{W}"], "{W}"),
        (["run", "--resume", ""], "--resume"), (["run", "--resume", "nosuch", "--store", "store.sqlite"], "nosuch"),
        (["run", "--resume", "r1", "--backends", "numpy", "--store", "store.sqlite"], "--backends"),
        (["run", "--resume", "r1", "--timeout", "nan", "--store", "store.sqlite"], "nan"),
        (["run", "--resume", LONG, "--store", "store.sqlite"], LONG[:20]),
        (["run", "--resume", "r1", "--store", "missing.sqlite"], "missing.sqlite"),
        (["run", "lstm", "--set", "batch=" + ",".join(map(str, range(1, 3001))), "--set",
          "hidden=" + ",".join(map(str, range(1, 3001))), "--backends", "numpy", "--store", "fresh.sqlite"], "cases"),
        (["run", "lstm", "--backends", "numpy", "--max-time", "1", "--min-time", "5", "--store", "fresh.sqlite"],
         "max_time"),
        (["show", ""], "''"), (["show", "nosuch", "--store", "store.sqlite"], "nosuch"),
        (["show", LONG, "--store", "store.sqlite"], LONG[:20]), (["show", "--store", "missing.sqlite"], "missing"),
        (["runs", "--store", "missing.sqlite"], "missing"), (["runs", "--store", "/dev/null"], "/dev/null"),
        (["runs", "--store", "{W}"], "{W}"), (["runs", "--store", ""], "--store"),
        (["report", "nosuch", "--store", "store.sqlite", "--out", "out.html"], "nosuch"),
        (["report", "", "--store", "store.sqlite", "--out", "out.html"], "''"),
        (["report", "--store", "store.sqlite", "--out", "./store.sqlite"], "store.sqlite"),
        (["report", "--store", "store.sqlite", "--format", "markdown", "--out", "store.sqlite"], "store.sqlite"),
        (["report", "--store", "missing.sqlite", "--out", "out.html"], "missing"),
        (["compare", "r1", "nosuch", "--store", "store.sqlite"], "nosuch"),
        (["compare", "r1:nosuch", "r2", "--store", "store.sqlite"], "nosuch"),
        (["compare", ":", "r2", "--store", "store.sqlite"], "':'"),
        (["compare", "r1:", "r2", "--store", "store.sqlite"], "r1:"),
        (["compare", "", "r2", "--store", "store.sqlite"], "''"),
        (["compare", "r1", "r2", "--store", "missing.sqlite"], "missing"),
        (["maxbatch", "nosuch", "--backends", "numpy", "--store", "fresh.sqlite"], "nosuch"),
        (["maxbatch", "", "--backends", "numpy", "--store", "fresh.sqlite"], "''"),
        (["compile", "nosuch", "--backends", "numpy", "--store", "fresh.sqlite"], "nosuch"),
        (["compile", "", "--backends", "numpy", "--store", "fresh.sqlite"], "''"),
        (["envs", "create", ""], "''"), (["envs", "create", "../x"], "../x"), (["envs", "create", "a/b"], "a/b"),
        (["envs", "create", LONG], LONG[:20]), (["envs", "create", "nosuchrecipe"], "nosuchrecipe"),
        (["envs", "create", "theano", "--python", "/nonexistent/python"], "/nonexistent/python"),
        (["envs", "create", "x", "--requirements", ""], "--requirements"),
        (["envs", "remove", "nosuch"], "nosuch"), (["envs", "remove", ""], "''"), (["envs", "remove", "../x"], "../x"),
        (["nosuchcommand"], "nosuchcommand"), (["run", "--bogus"], "--bogus"), (["list", "extra"], "extra"),
    ]  # fmt: skip
    return out


def make_fixtures(folder: Path) -> None:
    """The files the invocations name: a valid store with runs r1 and r2, the wrong stores, the suite files."""
    from dlbench.core.cases import Case
    from synthetic import make_run

    plan = [Case("lstm", {"seq_len": 2, "batch": 2, "hidden": 4}, "numpy", "fp32", mode) for mode in ("forward",
                                                                                                     "train")]
    make_run(folder / "store.sqlite", plan, run_id="r1")
    make_run(folder / "store.sqlite", plan, run_id="r2")
    for name in STORES:
        if name in ("empty.sqlite", "text.sqlite", "foreign.sqlite"):
            continue
        make_run(folder / name, plan, run_id="r1")
        make_run(folder / name, plan, run_id="r2")
        db = sqlite3.connect(folder / name)
        with db:
            db.execute(_SPOIL[name])
        db.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
        db.close()
    (folder / "empty.sqlite").write_bytes(b"")
    (folder / "text.sqlite").write_text("hello, I am not SQLite\n" * 50)
    foreign = sqlite3.connect(folder / "foreign.sqlite")
    foreign.execute("CREATE TABLE people (name TEXT)")
    foreign.commit()
    foreign.close()
    db = sqlite3.connect(folder / "store.sqlite")
    db.execute("PRAGMA journal_mode=DELETE")
    db.close()
    suites = folder / "suites"
    suites.mkdir()
    for name, (text, _) in SUITES.items():
        path = suites / f"{name}.toml"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    (folder / "shot.txt").write_text("not a png\n")
