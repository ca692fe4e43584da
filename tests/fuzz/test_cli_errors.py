"""Broken inputs through the real command line: exit status 2, one stderr line starting with "error:", no traceback.

Each case is a separate process (the promise is about what a user sees in a terminal); they start together in a
thread pool, so the whole file costs about as much as its slowest few imports.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WVS_SMALL = ROOT / "tests" / "fixtures" / "wvs_small"
CLI = [sys.executable, "-c", "from culturealign.cli import main; main()"]
TRAIN = [sys.executable, "-m", "culturealign.train"]
GOOD_CHAT = '{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}\n'

OUT = ["--out", "{run}"]
# name -> (command, text the one error line must hold); {tmp} is the folder of the broken files, {run} the case's
# own run folder (which must not be left behind: every case fails before any work)
CASES: dict[str, tuple[list[str], str]] = {
    "missing survey": ([*CLI, "eval", "wvs", "--survey", "{tmp}/nope", "--cultures", "DEU", *OUT], "survey not found"),
    "unknown culture": (
        [*CLI, "eval", "wvs", "--survey", str(WVS_SMALL), "--cultures", "XYZ", *OUT],
        "unknown culture 'XYZ'",
    ),
    "survey not UTF-8": ([*CLI, "eval", "wvs", "--survey", "{tmp}/latin1", "--cultures", "DEU", *OUT], "not UTF-8"),
    "unknown config key": (
        [*CLI, "run", "recipes/culturespa.yaml", "questions.per_topik=2", "out={run}"],
        "'questions.per_topik'",
    ),
    "config value of the wrong type": (
        [*CLI, "run", "recipes/culturespa.yaml", "questions.per_topic=abc", "out={run}"],
        "must be a whole number",
    ),
    "missing recipe": ([*CLI, "run", "{tmp}/none.yaml"], "cannot read recipe"),
    "respondents in UTF-16": (
        [
            *CLI,
            "build-survey",
            "--respondents",
            "{tmp}/utf16.csv",
            "--questions",
            str(WVS_SMALL / "questions.jsonl"),
            *OUT,
        ],
        "not UTF-8",
    ),
    "training data of the wrong shape": (
        [*TRAIN, "--model", "{tmp}/model", "--data", "{tmp}/bad.jsonl", "--out", "{tmp}/adapter"],
        "record 1",
    ),
    "bad YAML": ([*CLI, "run", "{tmp}/bad.yaml"], "cannot read recipe"),
    "recipe in UTF-16": ([*CLI, "run", "{tmp}/utf16.yaml"], "UTF-8"),
    "--lora not JSON": (
        [*TRAIN, "--model", "{tmp}/model", "--data", "{tmp}/good.jsonl", "--out", "{tmp}/adapter", "--lora", "{bad"],
        "--lora",
    ),
    **{
        f"surveyfit: {name}": (
            [
                *CLI,
                "run",
                "recipes/surveyfit.yaml",
                f"survey={WVS_SMALL}",
                "cultures=[DEU,JPN]",
                "eval.cultures=[]",
                *args,
                "out={run}",
            ],
            text,
        )  # fmt: skip
        for name, args, text in [
            ("cultures not a list", ["cultures=5"], "'cultures' must be a list"),
            ("unknown target", ["train.target=soft"], "'train.target'"),
            ("K below 1", ["train.samples_per_item=0"], "'train.samples_per_item'"),
            ("seeds not whole numbers", ["train.seeds=[a,1]"], "'train.seeds[0]' must be a whole number"),
            ("seeds not a list", ["train.seeds=3"], "'train.seeds'"),
            ("culture without answers", ["cultures=[USA]"], "no answers for ['USA']"),
            ("split leaves no eval", ["split.eval_fraction=0.01"], "no eval question"),
            ("split leaves no train", ["split.eval_fraction=0.99", "split.validation_fraction=0"], "no training"),
        ]
    },
}
WVS_EVAL = [*CLI, "eval", "wvs", "--survey", str(WVS_SMALL), "--cultures", "DEU", *OUT]
RECIPE = [*CLI, "run", "recipes/culturespa.yaml", f"survey={WVS_SMALL}", "cultures=[DEU]", "out={run}"]
# issue 20: options and keys checked before any work or model load, elements of lists included
CASES.update(
    {
        "--limit -1 (eval wvs)": ([*WVS_EVAL, "--limit", "-1"], "Invalid value for '--limit'"),
        "--limit 0 names --limit": ([*WVS_EVAL, "--limit", "0"], "'--limit'"),
        "--limit -1 (eval blend)": ([*CLI, "eval", "blend", "--limit", "-1", *OUT], "Invalid value for '--limit'"),
        "--limit -1 (eval hhh)": ([*CLI, "eval", "hhh", "--limit", "-1", *OUT], "Invalid value for '--limit'"),
        "--batch-size 0": ([*WVS_EVAL, "--batch-size", "0"], "Invalid value for '--batch-size'"),
        "--batch-size -1": ([*WVS_EVAL, "--batch-size", "-1"], "Invalid value for '--batch-size'"),
        "--icl -1": ([*WVS_EVAL, "--icl", "-1"], "Invalid value for '--icl'"),
        "unknown option": ([*WVS_EVAL, "--bogus"], "No such option: --bogus"),
        "cultures: 5": ([*RECIPE, "cultures=5"], "'cultures' must be a list"),
        "cultures nested": ([*RECIPE, "cultures=[[DEU], CHN]"], "'cultures[0]'"),
        "eval.limit=abc": ([*RECIPE, "eval.limit=abc"], "'eval.limit' must be a whole number"),
        "questions.topics as text": (
            [*RECIPE, "questions.topics=Economic Values"],
            "'questions.topics' must be a list",
        ),
        "questions.per_topic=-3": ([*RECIPE, "questions.per_topic=-3"], "'questions.per_topic' must be >= 1"),
        "dedup.threshold=7": ([*RECIPE, "dedup.threshold=7"], "'dedup.threshold' must be in (0, 1]"),
        "questions.temperature=-1": ([*RECIPE, "questions.temperature=-1"], "'questions.temperature' must be >= 0"),
        "filter.bad_max=9 (clca)": (
            [*CLI, "run", "recipes/clca.yaml", "filter.bad_max=9", "out={run}"],
            "'filter.bad_max' must be in [1, 4]",
        ),
        "empty adapter folder": ([*WVS_EVAL, "--adapter", "{tmp}/empty_adapter"], "no readable adapter_config.json"),
        "broken adapter_config.json": ([*WVS_EVAL, "--adapter", "{tmp}/broken_adapter"], "not valid JSON"),
        "merge of an empty adapter folder": (
            [*CLI, "merge", "--adapter", "{tmp}/empty_adapter", "--out", "{run}"],
            "no readable adapter_config.json",
        ),
        "a .gguf of random bytes": ([*WVS_EVAL, "--model", "{tmp}/random.gguf"], "not a GGUF file"),
        "unknown recipe": ([*CLI, "run", "{tmp}/unknown_recipe.yaml"], "unknown recipe 'nope'"),
        "unknown ablation": ([*CLI, "ablate", "{tmp}/clca_run", "--what", "quantity"], "clca runs have no ablation"),
    }
)
KNOWN_BUGS: dict[str, str] = {}  # cases that still fail, with the reason (strict xfail: drop the entry once fixed)


def _files(tmp: Path) -> None:
    (tmp / "latin1").mkdir()
    (tmp / "latin1" / "questions.jsonl").write_bytes(
        '{"id": "Q1", "text": "Größe?", "options": {}}\n'.encode("latin-1")
    )
    (tmp / "latin1" / "distributions.csv").write_text("country,question,answer,proportion\n")
    (tmp / "utf16.csv").write_bytes("B_COUNTRY_ALPHA,Q57\nDEU,1\n".encode("utf-16"))
    (tmp / "bad.yaml").write_text("recipe: culturespa\nquestions: [1, 2\n")
    (tmp / "utf16.yaml").write_bytes("recipe: culturespa\n".encode("utf-16"))
    (tmp / "model").mkdir()
    (tmp / "model" / "config.json").write_text("{}")  # a model folder in name only: the data fails first
    (tmp / "bad.jsonl").write_text('{"messages": "hello"}\n')
    (tmp / "good.jsonl").write_text(GOOD_CHAT)
    (tmp / "empty_adapter").mkdir()
    (tmp / "broken_adapter").mkdir()
    (tmp / "broken_adapter" / "adapter_config.json").write_text('{"peft_type": "LORA", ')
    (tmp / "broken_adapter" / "adapter_model.safetensors").write_bytes(b"0" * 16)
    (tmp / "random.gguf").write_bytes(bytes(range(256)) * 4)
    (tmp / "unknown_recipe.yaml").write_text("recipe: nope\n")
    (tmp / "clca_run").mkdir()
    (tmp / "clca_run" / "config.yaml").write_text("recipe: clca\n")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess]:
    tmp = tmp_path_factory.mktemp("cli")
    _files(tmp)

    def run(name: str) -> subprocess.CompletedProcess:
        out = tmp / "runs" / str(list(CASES).index(name))
        cmd = [a.replace("{run}", str(out)).replace("{tmp}", str(tmp)) for a in CASES[name][0]]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
        proc.left_behind = sorted(p.name for p in out.iterdir()) if out.exists() else None  # type: ignore[attr-defined]
        return proc

    with ThreadPoolExecutor(4) as pool:
        return dict(zip(CASES, pool.map(run, CASES), strict=True))


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[n])) if n in KNOWN_BUGS else n
        for n in CASES
    ],
)
def test_broken_input_is_one_error_line_and_exit_2(results, name):
    proc = results[name]
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    assert CASES[name][1] in lines[0]
    assert proc.left_behind is None, f"a stub run folder was left behind: {proc.left_behind}"
