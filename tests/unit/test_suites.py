from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlbench.core.errors import UsageError
from dlbench.suites import Suite, load_suite, plan_cases, suite_names


def test_builtin_suites_load_and_seed_has_the_seed_grid() -> None:
    assert {"seed", "seed-cpu", "quick"} <= set(suite_names())
    seed = load_suite("seed")
    lstm, vgg = seed.experiments
    assert lstm.sizes == {"seq_len": [30, 60], "batch": [32, 128], "hidden": [128, 512, 1024]}
    assert vgg.sizes["batch"] == [32, 64, 128] and vgg.precisions == ["fp32", "fp16"]
    assert len(lstm.grid()) == 12 and lstm.modes == ["forward", "train"]


def test_seed_cpu_keeps_the_structure_and_says_it_is_scaled() -> None:
    """The same workloads, precision × mode pairs and size parameters as the seed (fewer values of some, to fit
    ten minutes with two processes per figure: the note says which, and how to get them back)."""

    def shape(suite: Suite) -> dict[str, tuple[set[tuple[str, str]], set[str]]]:
        """Per workload: its precision × mode pairs and its size parameters."""
        out: dict[str, tuple[set[tuple[str, str]], dict[str, set[int]]]] = {}
        for e in suite.experiments:
            pairs, values = out.setdefault(e.workload, (set(), {}))
            pairs.update((p, m) for p in e.precisions for m in e.modes)
            for key, vs in e.sizes.items():
                values.setdefault(key, set()).update(vs)
        return {w: (pairs, set(values)) for w, (pairs, values) in out.items()}

    seed, cpu = load_suite("seed"), load_suite("seed-cpu")
    assert shape(seed) == shape(cpu)
    assert "SCALED" in cpu.note and "Left out" in cpu.note and "--set seq_len=30,60" in cpu.note
    assert cpu.measure.repeat >= 2 and cpu.measure.min_iters >= 5


def test_plan_for_a_workload_uses_sets_and_defaults() -> None:
    suite, cases = plan_cases("lstm", backends=["numpy"], precisions=["fp32"], modes=["forward"],
                              sets={"seq_len": [30], "batch": [32, 128]}, device="cpu")  # fmt: skip
    assert [c.size for c in cases] == [{"seq_len": 30, "batch": 32, "hidden": 512},
                                       {"seq_len": 30, "batch": 128, "hidden": 512}]  # fmt: skip
    assert {c.key for c in cases} == {"lstm-seq_len=30,batch=32,hidden=512-numpy-fp32-forward-cpu",
                                      "lstm-seq_len=30,batch=128,hidden=512-numpy-fp32-forward-cpu"}  # fmt: skip


def test_plan_groups_cases_by_backend() -> None:
    _, cases = plan_cases("quick", backends=["numpy", "torch"])
    backends = [c.backend for c in cases]
    assert backends == sorted(backends, key=["numpy", "torch"].index)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": "nosuch"}, r"unknown suite or workload 'nosuch' \(allowed: .*lstm"),
        ({"target": "quick", "backends": ["nosuch"]}, r"unknown backend 'nosuch' \(allowed: .*numpy"),
        ({"target": "quick", "precisions": ["fp8"]}, r"unknown precision 'fp8' \(allowed: bf16, fp16, fp32\)"),
        ({"target": "quick", "modes": ["backward"]}, r"unknown mode 'backward'"),
        ({"target": "quick", "device": "tpu"}, r"unknown device 'tpu'"),
        ({"target": "quick", "sets": {"depth": [1]}}, r"unknown size parameter 'depth'"),
        ({"target": "lstm", "sets": {"hidden": [-1]}}, r"hidden=-1"),
    ],
)
def test_plan_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        plan_cases(**kwargs)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("experiments = [", "malformed suite file"),
        ("description = 'x'", "needs at least one"),
        ("colour = 1\n[[experiments]]\nworkload='lstm'", "unknown key 'colour'"),
        ("[[experiments]]\nworkload='resnet'", "unknown workload 'resnet'"),
        ("[[experiments]]\nworkload='lstm'\nprecisions=['fp8']", "unknown precision 'fp8'"),
        ("[[experiments]]\nworkload='lstm'\n[experiments.sizes]\nhidden=[0]", "hidden=0"),
        ("[measure]\nwarmup=3\n[[experiments]]\nworkload='lstm'", r"unknown \[measure\] key 'warmup'"),
        ("[[experiments]]\nworkload='lstm'\nbackends=['nosuch']", "unknown backend 'nosuch'"),
        ("[[experiments]]\nworkload='lstm'\n[experiments.skip]\ntorch=''", "must map backend names to a reason"),
        ("[[experiments]]\nworkload='lstm'\n[experiments.skip]\nnosuch='why'", "unknown backend 'nosuch'"),
    ],
)
def test_malformed_suite_files(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        load_suite(str(path))


def test_a_user_suite_file_runs_its_grid(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text("[[experiments]]\nworkload='vgg16'\nmodes=['forward']\n[experiments.sizes]\nbatch=[1,2]\nimage=[32]")
    suite, cases = plan_cases(str(path), backends=["numpy"])
    assert suite.name == "mine" and [c.size["batch"] for c in cases] == [1, 2]


def test_a_suite_names_its_default_backends_and_flags_override_them(tmp_path: Path) -> None:
    _, cases = plan_cases("seed-cpu")
    assert {c.backend for c in cases} == {"torch", "tensorflow", "pytensor", "jax", "keras-jax"}
    _, cases = plan_cases("seed-cpu", backends=["torch-compile"])
    assert {c.backend for c in cases} == {"torch-compile"}
    path = tmp_path / "mine.toml"
    path.write_text("backends = ['nosuch']\n[[experiments]]\nworkload='lstm'")
    with pytest.raises(UsageError, match="unknown backend 'nosuch'"):
        load_suite(str(path))


def test_an_experiment_can_name_or_skip_backends_and_the_skip_reason_reaches_the_run_note(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text("note = 'scaled.'\n"
                    "[[experiments]]\nworkload='lstm'\nmodes=['forward']\n"
                    "[experiments.skip]\ntorch='too slow here'\n"
                    "[[experiments]]\nworkload='vgg16'\nmodes=['forward']\nbackends=['torch']\n"
                    "[experiments.sizes]\nbatch=[1]\nimage=[32]")  # fmt: skip
    suite, cases = plan_cases(str(path), backends=["numpy", "torch"])
    assert [(c.backend, c.workload) for c in cases] == [("numpy", "lstm"), ("torch", "vgg16")]
    assert suite.note == "scaled. Not run in this suite: torch leaves out lstm fp32: too slow here."
    suite, _ = plan_cases(str(path), backends=["numpy"])  # a skip of a backend not in the run is not mentioned
    assert suite.note == "scaled."


def test_seed_cpu_leaves_out_pytensor_fp16_vgg_and_says_why() -> None:
    suite, cases = plan_cases("seed-cpu", backends=["pytensor", "torch"])
    vgg = {(c.backend, c.precision) for c in cases if c.workload == "vgg16"}
    assert vgg == {("torch", "fp32"), ("torch", "fp16"), ("pytensor", "fp32")}
    assert "pytensor leaves out vgg16 fp16 at batch=2" in suite.note and "C linker" in suite.note


def test_seed_cpu_adds_the_real_theano_row_only_where_its_env_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    _, cases = plan_cases("seed-cpu")
    assert "theano" not in {c.backend for c in cases}
    env = tmp_path / "dlbench" / "envs" / "theano"
    env.mkdir(parents=True)
    (env / "dlbench-env.json").write_text(json.dumps({"name": "theano", "requirements": ["theano==1.0.5"], "env": {}}))
    _, cases = plan_cases("seed-cpu")
    assert "theano" in {c.backend for c in cases}
    _, cases = plan_cases("seed-cpu", backends=["torch"])  # the user's --backends win
    assert {c.backend for c in cases} == {"torch"}
