"""Faults survived, nothing lost: the openai engine and the recipe against the real server behind a faulty proxy.

Every test compares with a clean run of the same work: a fault may cost time, never an output. The proxy counts
what reached the server, so a resumed run that repeats finished calls is caught by number, not by guess.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from culturealign.llm import openai as openai_mod
from culturealign.llm.base import GenParams
from culturealign.llm.openai import OpenAIEngine

from .conftest import (
    MODEL_NAME,
    PLANTED_KEY,
    RETRY_AFTER,
    ROOT,
    FaultProxy,
    LlamaServer,
    RecipeRun,
    model_env,
    outputs,
    recipe_cmd,
    run_recipe,
    snapshot,
    survey_prompt,
)

pytestmark = pytest.mark.slow

SCORED = [survey_prompt("Germany", "family"), survey_prompt("Nigeria", "religion")]  # codes in the top 10 tokens
WRITE = [[{"role": "user", "content": f"Write one survey question about {t}."}] for t in ("trust", "religion")]


def workload(eng: OpenAIEngine) -> dict:
    """Generation, option scoring (the logprobs path and the sampling fallback) and completion scoring."""
    return {
        "generate": eng.generate(WRITE, GenParams(temperature=0.7, max_tokens=12, seed=4)),
        "options": eng.score_options([*SCORED, SCORED[0]], [["1", "2", "3", "4"]] * 2 + [["1", "Zebra"]]),
        "completions": eng.score_completions(SCORED, ["1", "4"]),
    }


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """The backoff waits the engine asks for, recorded instead of waited out."""
    asked: list[float] = []

    async def record(seconds: float) -> None:
        asked.append(seconds)

    monkeypatch.setattr(openai_mod, "_sleep", record)
    return asked


def test_http_faults_are_retried_with_backoff_to_the_clean_outputs(proxy: FaultProxy, waits: list[float]):
    def engine() -> OpenAIEngine:  # one request at a time: each fault of the plan hits the next request sent
        return OpenAIEngine(
            base_url=proxy.url,
            model=MODEL_NAME,
            concurrency=1,
            top_logprobs=20,
            samples_fallback=3,
            chat_template_from="smollm2",
        )

    clean = workload(engine())
    clean_upstream = list(proxy.upstream_bodies)
    assert [s.method for s in clean["options"]] == ["logprobs", "logprobs", "sampling"] and waits == []

    proxy.reset_counts()
    plan = ["429"] * 3 + [None] + ["500"] * 3 + [None, "drop", "drop", None, "truncate", "truncate", None]
    plan += ["malformed", "malformed", None, "429", "500", "drop", "truncate", "malformed"]
    proxy.plan(plan)
    faulty = workload(engine())

    assert faulty == clean
    faults = Counter(f for f in plan if f)
    assert proxy.injected == faults and sum(faults.values()) == 17
    # truncated answers had reached the server, so their requests went twice; nothing else did
    extra = Counter(proxy.upstream_bodies) - Counter(clean_upstream)
    assert set(proxy.upstream_bodies) == set(clean_upstream) and sum(extra.values()) == faults["truncate"]
    assert len(waits) == sum(faults.values())  # one backoff wait before each retry
    assert sum(w >= RETRY_AFTER for w in waits) >= faults["429"]  # a 429's Retry-After is honoured
    assert max(waits) <= openai_mod.MAX_BACKOFF


def test_timeouts_and_a_burst_on_one_request_back_off_more_each_time(proxy: FaultProxy, waits: list[float]):
    """A server that takes the request and never answers: the client gives up after ``timeout`` and asks again,
    waiting longer after each failure (1 s, 2 s, 4 s ... with jitter), at least what a 429's Retry-After says."""
    params = GenParams(temperature=0.7, max_tokens=4, seed=1)
    clean = OpenAIEngine(base_url=proxy.url, model=MODEL_NAME).generate(WRITE[:1], params)
    proxy.stall_seconds = 5.0  # the real answer takes well under 4 s: its prompt is in the server's KV cache
    proxy.plan(["429", "stall", "500", "drop", "500"])
    start = time.time()
    assert OpenAIEngine(base_url=proxy.url, model=MODEL_NAME, timeout=4.0).generate(WRITE[:1], params) == clean
    assert time.time() - start >= 4.0 and proxy.injected == {"429": 1, "stall": 1, "500": 2, "drop": 1}
    assert waits[0] == RETRY_AFTER  # the first backoff (0.5-1.5 s) is shorter than what the 429 asked for
    for attempt, wait in enumerate(waits[1:], 1):
        assert 2**attempt * 0.5 <= wait <= 2**attempt * 1.5, (attempt, waits)
    assert len(waits) == 5


def test_recipe_survives_http_faults_and_a_server_restart(
    clean_recipe: RecipeRun, llama_server: LlamaServer, proxy: FaultProxy, wvs_path: Path, tmp_path: Path
):
    """The server is killed mid-step (a request in flight) and started again: the run retries and finishes."""
    plan = [None, "429", "500", None, "drop", "truncate", "malformed"]
    proxy.plan(plan)
    kill_at = len(plan) + 1  # the call after the faults: killed while the server answers it
    restarted, finished = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def kill_and_restart() -> None:
        while proxy.received < kill_at:
            if finished.wait(0.02):
                return
        try:
            llama_server.stop()
            time.sleep(1.0)
            llama_server.start()
            restarted.set()
        except BaseException as e:  # noqa: B036 - reported by the test, not lost in the thread
            errors.append(e)

    watcher = threading.Thread(target=kill_and_restart, daemon=True)
    watcher.start()
    run = run_recipe(tmp_path / "run", wvs_path, proxy)
    finished.set()
    watcher.join(timeout=120)
    assert not errors, errors
    assert restarted.is_set(), "the run ended before the server could be killed"
    assert run.returncode == 0, run.stderr[-3000:]
    assert proxy.upstream_errors >= 1  # requests did hit the dead server
    assert proxy.injected == Counter(f for f in plan if f)
    assert outputs(run.path) == outputs(clean_recipe.path)


def _is_generation(body: bytes) -> bool:
    """A question-writing request (not an option-scoring one: logprobs, or the short samples of the fallback)."""
    payload = json.loads(body)
    return not payload.get("logprobs") and payload.get("max_tokens") != 8


def _start(run: Path, survey: Path, proxy: FaultProxy) -> subprocess.Popen:
    return subprocess.Popen(
        recipe_cmd(run, survey, proxy.url),
        cwd=ROOT,
        env=model_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _kill_on_request(run: Path, survey: Path, proxy: FaultProxy, nth: int) -> list[bytes]:
    """Start the recipe, SIGKILL it when its ``nth`` server call arrives (held: it never reaches the server).

    Returns the requests that this process got to the server.
    """
    start = len(proxy.upstream_bodies)
    proxy.hold(nth)
    child = _start(run, survey, proxy)
    try:
        while not proxy.held.wait(0.1):
            assert child.poll() is None, "the run ended before its kill point"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    finally:
        child.kill()
        proxy.release()
    time.sleep(0.5)  # requests the child sent just before it died reach the proxy's books
    return proxy.upstream_bodies[start:]


def _kill_after_file(run: Path, survey: Path, proxy: FaultProxy, marker: str, delay: float) -> list[bytes]:
    """Start the recipe, SIGKILL it ``delay`` seconds after ``marker`` appears in the run folder."""
    start = len(proxy.upstream_bodies)
    child = _start(run, survey, proxy)
    try:
        while not (run / marker).exists():
            assert child.poll() is None, f"the run ended before {marker} appeared"
            time.sleep(0.05)
        time.sleep(delay)
        assert child.poll() is None, "the run ended before its kill point"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    finally:
        child.kill()
    time.sleep(0.5)
    return proxy.upstream_bodies[start:]


def test_sigkilled_five_times_then_resumed_repeats_no_finished_call(
    clean_recipe: RecipeRun, proxy: FaultProxy, wvs_path: Path, tmp_path: Path
):
    """SIGKILL at 5 random points, each in another phase, then resume: the clean run's outputs and calls.

    Kills 1 and 2 land on a random question-writing call, 3 in the dedup step (no server call), 4 on a random
    option-scoring call, 5 in the evaluation (local model). Calls are counted at the proxy. Every finished call is
    committed to the run's cache as it returns and never made again; the only calls a resume may repeat are those
    in flight when a kill landed (sent, answer not yet committed): at most the engine's concurrency (8) less the
    held one, and only from a kill that landed on a server call.
    """
    rng = random.Random(1129)
    run = tmp_path / "run"
    n_gen = sum(_is_generation(b) for b in clean_recipe.bodies)
    n_score = len(clean_recipe.bodies) - n_gen
    assert n_gen >= 2 and n_score >= 2, clean_recipe.bodies

    first = _kill_on_request(run, wvs_path, proxy, rng.randint(2, n_gen))
    left = n_gen - len(first)
    second = _kill_on_request(run, wvs_path, proxy, rng.randint(1, left))
    third = _kill_after_file(run, wvs_path, proxy, "steps/01-generate-questions/stats.json", rng.uniform(0, 0.5))
    fourth = _kill_on_request(run, wvs_path, proxy, rng.randint(1, n_score))
    fifth = _kill_after_file(run, wvs_path, proxy, "steps/05-training-data/stats.json", rng.uniform(0, 0.5))
    assert not (run / "eval" / "comparison.json").exists()
    final = run_recipe(run, wvs_path, proxy)
    assert final.returncode == 0, final.stderr[-3000:]

    assert outputs(run) == outputs(clean_recipe.path)
    for f in run.glob("steps/*/data.jsonl"):
        rows = f.read_text().splitlines()
        assert len(rows) == len(set(rows)), f"duplicated records in {f}"
    clean, sent = Counter(clean_recipe.bodies), Counter(proxy.upstream_bodies)
    scoring = Counter(b for b in clean_recipe.bodies if not _is_generation(b))
    assert all(map(_is_generation, first + second + third))  # the third run wrote what was left, then deduped
    assert not any(map(_is_generation, fourth))
    assert Counter(fifth) + Counter(fourth) >= scoring  # the fifth scored what the fourth had not
    assert final.bodies == []  # the final run found every call in the cache
    assert set(sent) == set(clean)  # every call of the clean run was made, and no other
    repeated = sent - clean
    assert repeated <= Counter(first) + Counter(second) + Counter(fourth)  # only calls a kill interrupted
    assert sum(repeated.values()) <= 7, repeated  # question writing sends one call at a time (batch_size=1)


def test_second_process_on_a_busy_run_folder_is_refused(proxy: FaultProxy, wvs_path: Path, tmp_path: Path):
    run = tmp_path / "run"
    proxy.hold(1)  # the first process holds the folder, waiting on its first server call
    first = _start(run, wvs_path, proxy)
    try:
        assert proxy.held.wait(300), "the first run made no server call"
        before = snapshot(run)
        second = subprocess.run(
            recipe_cmd(run, wvs_path, proxy.url),
            cwd=ROOT,
            env=model_env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert second.returncode == 2
        assert _error_lines(second.stderr) == [
            f"error: run folder {run} is in use by another culturealign process; wait for it or use another --out"
        ]
        assert snapshot(run) == before  # the second wrote nothing: no config, no log line, no cache row
        assert first.poll() is None
    finally:
        first.kill()
        first.wait(timeout=60)
        proxy.release()


def _error_lines(stderr: str) -> list[str]:
    """The CLI's own message lines; a traceback would show up as more than one."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert not any("Traceback" in line for line in lines), stderr
    return [line for line in lines if line.startswith("error:")]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 4 MiB file system (tmpfs) to fill up or make read-only; skips where mounting is not allowed."""
    disk = tmp_path / "disk"
    disk.mkdir()
    try:
        _mount(["-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)])
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): {e}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _mount(args: list[str]) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


def _stopped_after_dedup(disk: Path, clean: RecipeRun) -> tuple[Path, dict[str, bytes]]:
    """The clean run as if stopped after its first two steps, on ``disk``; and the step files that must survive.

    Resuming it makes no server call (all are in its cache): what fails is the disk alone.
    """
    run = disk / "run"
    shutil.copytree(clean.path, run)
    for later in [*sorted(run.glob("steps/0[3-9]-*")), run / "eval"]:
        shutil.rmtree(later)
    (run / "cost.json").unlink()
    return run, {k: v for k, v in snapshot(run).items() if k.startswith("steps/")}


def _fill(disk: Path, leave_kib: int) -> Path:
    """Fill ``disk`` to the last byte, then free ``leave_kib`` KiB."""
    filler = disk / "filler"
    with filler.open("wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass
    if leave_kib:
        os.truncate(filler, max(0, filler.stat().st_size - leave_kib * 1024))
    return filler


@pytest.mark.parametrize("free_kib", [0, 48], ids=["at-the-first-write", "mid-run"])
def test_full_disk_fails_in_one_line_and_keeps_earlier_outputs(
    small_disk: Path, free_kib: int, clean_recipe: RecipeRun, wvs_path: Path
):
    """No space at all (config.yaml cannot be written), or room for the cache but not for every step's output."""
    run, kept = _stopped_after_dedup(small_disk, clean_recipe)
    filler = _fill(small_disk, free_kib)
    full = _resume(run, wvs_path, clean_recipe)
    assert full.returncode == 2
    [message] = _error_lines(full.stderr)
    assert "No space left on device" in message and "free disk space" in message, message
    assert {k: v for k, v in snapshot(run).items() if k in kept} == kept  # earlier outputs intact
    assert not list(run.rglob(".*.tmp*")), "a temporary file was left behind"

    filler.unlink()  # room again: the run resumes to the clean outputs
    resumed = _resume(run, wvs_path, clean_recipe)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert outputs(run) == outputs(clean_recipe.path)


def test_full_disk_when_the_cache_opens_fails_in_one_line(small_disk: Path, clean_recipe: RecipeRun, wvs_path: Path):
    """24 KiB free: config.yaml is written, the cache's 32 KiB shared-memory file is not."""
    run, _ = _stopped_after_dedup(small_disk, clean_recipe)
    _fill(small_disk, 24)
    full = _resume(run, wvs_path, clean_recipe)
    assert full.returncode == 2 and len(_error_lines(full.stderr)) == 1


def test_read_only_run_folder_fails_in_one_line_and_changes_nothing(
    small_disk: Path, clean_recipe: RecipeRun, wvs_path: Path
):
    run, _ = _stopped_after_dedup(small_disk, clean_recipe)
    before = snapshot(run)
    _mount(["-o", "remount,ro", str(small_disk)])
    read_only = _resume(run, wvs_path, clean_recipe)
    assert read_only.returncode == 2
    assert _error_lines(read_only.stderr) == [
        f"error: cannot use run folder {run}: Read-only file system; pick a writable --out"
    ]
    assert snapshot(run) == before


def _resume(run: Path, survey: Path, clean: RecipeRun) -> subprocess.CompletedProcess:
    """Resume ``run`` with the clean run's settings (same base_url: its cache answers every server call)."""
    return subprocess.run(
        recipe_cmd(run, survey, clean.base_url), cwd=ROOT, env=model_env(), capture_output=True, text=True, timeout=600
    )


def test_api_key_is_sent_but_never_written(clean_recipe: RecipeRun, tmp_path: Path):
    """The clean run had OPENAI_API_KEY set: the server got it, no file of the run folder or its report has it."""
    assert clean_recipe.auth_headers and set(clean_recipe.auth_headers) == {f"Bearer {PLANTED_KEY}"}
    report = tmp_path / "report.html"
    cli = [sys.executable, "-c", "from culturealign.cli import main; main()"]
    proc = subprocess.run(
        [*cli, "report", str(clean_recipe.path), "--out", str(report)],
        cwd=ROOT,
        env=model_env(OPENAI_API_KEY=PLANTED_KEY),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = [p for p in clean_recipe.path.rglob("*") if p.is_file()] + [report]
    assert len(files) > 10
    leaks = [str(p) for p in files if PLANTED_KEY.encode() in p.read_bytes()]
    assert leaks == []
    assert PLANTED_KEY not in clean_recipe.stdout + clean_recipe.stderr + proc.stdout + proc.stderr
