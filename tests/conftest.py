"""Shared fixtures: the real embedded model (loaded once per session) and paths to the real data."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
WVS = SHARED / "wvs7"


@pytest.fixture(scope="session")
def engine():
    """SmolLM2-135M-Instruct in process, no cache (tests that need a cache make their own)."""
    from culturealign.llm.local import LocalEngine

    eng = LocalEngine(model="smollm2", batch_size=4)
    eng.load()
    return eng


@pytest.fixture(scope="session")
def wvs_path() -> Path:
    if not (WVS / "questions.jsonl").is_file():
        pytest.skip(f"real survey data not found at {WVS}: tests read ../shared/data beside the checkout")
    return WVS


@pytest.fixture
def blend_path() -> Path:
    if not (SHARED / "blend").is_dir():
        pytest.skip(f"BLEnD data not found at {SHARED / 'blend'}")
    return SHARED / "blend"


@pytest.fixture(autouse=True)
def _no_shared_cache(monkeypatch):
    """Tests count model calls per run: the user's shared call cache would carry answers between tests (and from
    the user's own runs). The tests of the shared cache turn it back on with a home of their own."""
    monkeypatch.setenv("CULTUREALIGN_SHARED_CACHE", "0")


@pytest.fixture(autouse=True)
def _restore_culture_registry():
    """Loaders register a survey's countries.csv in the global registry; undo that after each test."""
    from culturealign import cultures

    saved = dict(cultures._registry)
    yield
    cultures._registry.clear()
    cultures._registry.update(saved)


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch):
    """Retry back-off waits make tests slow and teach nothing: remove them everywhere."""
    try:
        import culturealign.llm.openai as oa
    except ImportError:
        return
    if hasattr(oa, "_sleep"):

        async def _instant(*_a, **_k):
            return None

        monkeypatch.setattr(oa, "_sleep", _instant)
