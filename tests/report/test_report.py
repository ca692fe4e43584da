"""The HTML report: every plot a folder can give, self-contained, escaped; and a real browser renders it."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from culturealign.errors import UserError
from culturealign.report import write_report

FULL_PLOTS = {"alignment-one_minus_jsd", "alignment-culturespa", "topic-heatmap", "funnel", "loss", "cultural-map"}
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


def plots_in(page: str) -> list[str]:
    return re.findall(r'<figure class="plot" data-plot="([^"]+)"', page)


def test_full_run_has_every_plot_and_nothing_external(make_run, tmp_path):
    run = make_run(tmp_path / "full")
    out = write_report([run], tmp_path / "out" / "report.html")
    page = out.read_text(encoding="utf-8")
    assert set(plots_in(page)) == FULL_PLOTS
    assert plots_in(page).count("topic-heatmap") == 2  # wvs-before, wvs-after; not the ablation variants
    assert page.count("<svg") == len(plots_in(page))
    assert not EXTERNAL.search(page)
    assert "<script" not in page.lower() and '<link rel="stylesheet"' not in page
    assert "&lt;b&gt;not bold&lt;/b&gt; &amp; co" in page  # config text escaped
    assert "1h 02m 06s" in page and "cache hits" in page  # cost
    assert "ablation-quantity/quantity-10pct" in page and "mean_kl_base_tuned" in page  # every eval's metrics
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # atomic: no temporary file left behind


def test_the_page_leads_with_the_answer_and_ends_with_configs_and_costs(make_run, tmp_path):
    run = make_run(tmp_path / "full")
    page = write_report([run], tmp_path / "r.html").read_text(encoding="utf-8")
    sections = re.findall(r"<h2>(.*?)</h2>", page)
    assert sections[0] == "Result: before → after tuning" and sections[1] == "Data funnel"
    assert sections[-1] == "Runs: configs and costs"
    headline = re.search(r"<p class='headline'>(.*?)</p>", page).group(1)
    # the fixture's tuned run is much better: the change and its interval, which excludes 0
    assert re.search(r"1 − JSD 0\.\d{3} → 0\.\d{3} \(\+0\.\d{3}\), 95% CI \[\+0\.\d{3}, \+0\.\d{3}\]", headline), (
        headline
    )
    assert "a change beyond noise" in headline
    assert re.search(r"<td>DEU</td><td>0\.\d{3} → 0\.\d{3} \([+-]0\.\d{3}\) \[", page)  # per culture, with CI


def test_a_headline_says_when_the_change_is_noise_or_nothing_was_trained():
    from culturealign.report.html import headline

    row = {"before": 0.5, "after": 0.51, "diff": 0.01}
    noise = {"trained": True, "wvs": {"overall": {"one_minus_jsd": row}},
             "intervals": {"wvs": {"overall": {"one_minus_jsd": {"ci": [-0.01, 0.03], "p": 0.4}}}}}  # fmt: skip
    assert "within noise: the interval includes 0" in headline(noise)
    assert headline({"trained": False, "examples": 2}).startswith("Nothing was trained (2 examples kept)")


def test_eval_only_run_says_what_is_missing(make_run, tmp_path):
    run = make_run(tmp_path / "eval-only", full=False)
    page = write_report([run], tmp_path / "r.html").read_text(encoding="utf-8")
    assert set(plots_in(page)) == {"alignment-one_minus_jsd", "alignment-culturespa", "topic-heatmap"}
    for message in ("No data steps", "No training logs", "No cultural-relations evaluation"):
        assert message in page
    assert "wvs-aware" in page


def test_several_runs_side_by_side(make_run, tmp_path):
    a = make_run(tmp_path / "a" / "run", full=True, seed=1)
    b = make_run(tmp_path / "b" / "run", full=False, seed=2)
    page = write_report([a, b], tmp_path / "cmp.html").read_text(encoding="utf-8")
    assert "run · wvs-after" in page and "run #2 · wvs-aware" in page  # same folder names told apart
    assert plots_in(page).count("topic-heatmap") == 3
    assert plots_in(page).count("funnel") == 1


def test_empty_folder_and_missing_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    page = write_report([tmp_path / "empty"], tmp_path / "r.html").read_text(encoding="utf-8")
    assert plots_in(page) == []
    assert "No WVS evaluation" in page and "No config.yaml" in page and "No evaluation results" in page
    with pytest.raises(UserError, match="does not exist"):
        write_report([tmp_path / "nope"], tmp_path / "r.html")
    with pytest.raises(UserError, match="at least one"):
        write_report([], tmp_path / "r.html")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"http.server did not listen on port {port}")


def _chromium(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # the page must not need the internet
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
    ]
    return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=120)


def test_chromium_renders_every_plot_without_errors(chromium, make_run, tmp_path):
    report = write_report([make_run(tmp_path / "run")], tmp_path / "site" / "report.html")
    port = _free_port()
    server_log = tmp_path / "server.log"
    with server_log.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(report.parent)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(port)
        url = f"http://127.0.0.1:{port}/report.html"
        dom = _chromium(chromium, tmp_path / "profile", "--dump-dom", url)
        shot = tmp_path / "shot.png"
        png = _chromium(chromium, tmp_path / "profile", "--window-size=1280,4000", f"--screenshot={shot}", url)
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert re.findall(r"<h2>(.*?)</h2>", dom.stdout)[0] == "Result: before → after tuning"  # rendered first
    assert set(plots_in(dom.stdout)) == FULL_PLOTS
    assert dom.stdout.count("<svg") == len(plots_in(dom.stdout))
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == [], console
    requests = re.findall(r'"GET (\S+) HTTP', server_log.read_text())
    assert requests and set(requests) == {"/report.html"}, requests  # the page loads nothing but itself
    assert png.returncode == 0, png.stderr[-2000:]
    assert shot.stat().st_size > 10_000
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_evaluation_under_variants_shows_its_sensitivity_and_spread(wvs_path, make_run, tmp_path):
    from culturealign.cultures import parse_cultures
    from culturealign.data.survey import load_survey
    from culturealign.evaluate.wvs import WVS
    from culturealign.llm.scripted import ScriptedEngine
    from culturealign.runs import write_json

    def first_shown(messages, options):
        return {next(x.split(".")[0] for x in messages[-1]["content"].splitlines() if x[:1].isdigit()): 1.0}

    wvs = WVS(load_survey(wvs_path), parse_cultures("DEU,CHN"), limit=6, variants=["default", "reversed"])
    wvs.run(ScriptedEngine(option_fn=first_shown), progress=False).save(tmp_path / "run" / "eval" / "wvs-aware")
    write_json(tmp_path / "run" / "cost.json", {"wall_seconds": 1.0})
    page = write_report([tmp_path / "run"], tmp_path / "r.html").read_text(encoding="utf-8")
    assert "Sensitivity to presentation" in page and "variant-sensitivity" in plots_in(page)
    assert "the variants default, reversed" in page and "<th>SD</th>" in page
    plain = write_report([make_run(tmp_path / "plain", full=False)], tmp_path / "p.html").read_text(encoding="utf-8")
    assert "Sensitivity to presentation" not in plain  # one presentation: nothing to show
