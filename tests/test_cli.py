"""CLI error paths: one line, exit status 2, no traceback."""

import subprocess
import sys

import pytest


def run(*args: str) -> subprocess.CompletedProcess:
    code = "from culturealign.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["eval", "wvs", "--survey", "/nope", "--cultures", "DEU"], "survey not found"),
        (["eval", "wvs", "--survey", "{wvs}", "--cultures", "DEX"], "closest: "),
        (
            ["eval", "wvs", "--survey", "{wvs}", "--cultures", "DEU", "--model", "./no-such-model"],
            "model path not found",
        ),
        (["eval", "wvs", "--survey", "{wvs}", "--cultures", "DEU", "--adapter", "/no/adapter"], "adapter not found"),
        (["eval", "wvs", "--survey", "{wvs}", "--cultures", "DEU", "--engine", "openai"], "needs --base-url"),
    ],
)
def test_user_errors_are_one_line_exit_2(args, needle, wvs_path, tmp_path):
    args = [a.replace("{wvs}", str(wvs_path)) for a in args] + ["--out", str(tmp_path / "run")]
    proc = run(*args)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_malformed_survey_names_the_line(tmp_path):
    (tmp_path / "questions.jsonl").write_text('{"id": "Q1", "text": "x", "options": {"1": "a", "2": "b"}}\n{broken\n')
    (tmp_path / "distributions.csv").write_text("country,question,answer,proportion\n")
    proc = run("eval", "wvs", "--survey", str(tmp_path), "--cultures", "DEU", "--out", str(tmp_path / "r"))
    assert proc.returncode == 2 and "line 2" in proc.stderr


def test_debug_shows_the_traceback(tmp_path):
    proc = run("--debug", "eval", "wvs", "--survey", "/nope", "--cultures", "DEU", "--out", str(tmp_path / "r"))
    assert proc.returncode != 0 and "Traceback" in proc.stderr
