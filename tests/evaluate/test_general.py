"""General-ability check: written with what it was computed from, read back on a rerun, recomputed on a change."""

from __future__ import annotations

import json

import pytest

from culturealign.evaluate import general
from culturealign.llm.local import LocalEngine

pytestmark = pytest.mark.slow


def test_rerun_reads_the_result_back_and_a_new_adapter_recomputes(tmp_path, monkeypatch):
    calls = []
    real = general._general_check

    def counted(base, tuned, limit):
        calls.append(tuned.adapter)
        return real(base, tuned, limit)

    monkeypatch.setattr(general, "_general_check", counted)
    base = LocalEngine()
    first = general.general_check(base, base, limit=2, out=tmp_path)
    assert first["general_prompts"] == 2 and first["mean_kl_base_tuned"] == pytest.approx(0.0, abs=1e-9)
    stored = json.loads((tmp_path / "metrics.json").read_text())
    assert stored["inputs"]["limit"] == 2 and stored["mc_items"] == 2
    again = general.general_check(base, base, limit=2, out=tmp_path)
    assert again == first and len(calls) == 1
    general.general_check(base, base, limit=3, out=tmp_path)  # other inputs: computed again
    assert len(calls) == 2
    (tmp_path / "metrics.json").write_text("{broken")  # a damaged file is recomputed, not an error
    general.general_check(base, base, limit=3, out=tmp_path)
    assert len(calls) == 3
