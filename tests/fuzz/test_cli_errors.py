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

OUT = ["--out", "{tmp}/run"]
# name -> (command, text the one error line must hold); {tmp} is the folder of the broken files
CASES: dict[str, tuple[list[str], str]] = {
    "missing survey": ([*CLI, "eval", "wvs", "--survey", "{tmp}/nope", "--cultures", "DEU", *OUT], "survey not found"),
    "unknown culture": (
        [*CLI, "eval", "wvs", "--survey", str(WVS_SMALL), "--cultures", "XYZ", *OUT],
        "unknown culture 'XYZ'",
    ),
    "survey not UTF-8": ([*CLI, "eval", "wvs", "--survey", "{tmp}/latin1", "--cultures", "DEU", *OUT], "not UTF-8"),
    "unknown config key": (
        [*CLI, "run", "recipes/culturespa.yaml", "questions.per_topik=2", "out={tmp}/run"],
        "'questions.per_topik'",
    ),
    "config value of the wrong type": (
        [*CLI, "run", "recipes/culturespa.yaml", "questions.per_topic=abc", "out={tmp}/run"],
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
        f"surveyfit: {name}": ([*CLI, "run", "recipes/surveyfit.yaml", f"survey={WVS_SMALL}", "cultures=[DEU,JPN]",
                                "eval.cultures=[]", *args, "out={tmp}/run"], text)  # fmt: skip
        for name, args, text in [
            ("cultures not a list", ["cultures=5"], "'cultures' must be a list"),
            ("unknown target", ["train.target=soft"], "'train.target'"),
            ("K below 1", ["train.samples_per_item=0"], "'train.samples_per_item'"),
            ("seeds not whole numbers", ["train.seeds=[a,1]"], "'train.seeds'"),
            ("seeds not a list", ["train.seeds=3"], "'train.seeds'"),
            ("culture without answers", ["cultures=[USA]"], "no answers for ['USA']"),
            ("split leaves no eval", ["split.eval_fraction=0.01"], "no eval question"),
            ("split leaves no train", ["split.eval_fraction=0.99", "split.validation_fraction=0"], "no training"),
        ]
    },
}
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


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess]:
    tmp = tmp_path_factory.mktemp("cli")
    _files(tmp)

    def run(name: str) -> subprocess.CompletedProcess:
        cmd = [a.replace("{tmp}", str(tmp)) for a in CASES[name][0]]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)

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
