"""The local engine on the real embedded model: option scoring against a plain reference, generation, cache."""

from __future__ import annotations

import math

import pytest
import torch

from culturealign.llm.base import GenParams
from culturealign.llm.cache import CallCache
from culturealign.llm.local import LocalEngine

pytestmark = pytest.mark.slow

SYSTEMS = [
    "You are a real person with a German cultural background. Answer survey questions by your values.",
    "You are a real person with a Kenyan cultural background. Answer survey questions by your values.",
]
QUESTIONS = [
    ("How important is family in your life?\n1. Very\n2. Rather\n3. Not very\n4. Not at all", list("1234")),
    ("How much do you trust strangers?\n1. Completely\n2. Somewhat\n3. Not at all", list("123")),
    ("On a scale of 1 to 10, how important is God in your life? Answer 1-10.", [str(i) for i in range(1, 11)]),
]


def _msgs(system: str, user: str):
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def _reference(engine: LocalEngine, messages, codes) -> dict[str, float]:
    """Whole-continuation probabilities with one plain unpadded forward per (prompt + code)."""
    model, tok = engine.load()
    prompt = engine.render(messages)
    raw = {}
    for code in codes:
        code_ids = tok(code, add_special_tokens=False).input_ids
        ids = torch.tensor([prompt + code_ids])
        with torch.inference_mode():
            lp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
        logp = sum(float(lp[len(prompt) - 1 + k, t]) for k, t in enumerate(code_ids))
        longer = [c for c in codes if len(c) > len(code) and c.startswith(code)]
        onward = {tok(c, add_special_tokens=False).input_ids[len(code_ids)] for c in longer}
        stop = 1 - sum(math.exp(float(lp[len(prompt) - 1 + len(code_ids), t])) for t in onward)
        raw[code] = math.exp(logp) * stop
    total = sum(raw.values())
    return {c: v / total for c, v in raw.items()}


def test_batched_prefix_scoring_matches_plain_forward(engine):
    prompts = [_msgs(s, q) for s in SYSTEMS for q, _ in QUESTIONS]
    options = [o for _ in SYSTEMS for _, o in QUESTIONS]
    scores = engine.score_options(prompts, options)
    for p, o, s in zip(prompts, options, scores, strict=True):
        ref = _reference(engine, p, o)
        assert s.method == "logits"
        assert 0 < s.mass <= 1
        assert sum(s.probs.values()) == pytest.approx(1.0)
        for code in o:
            assert s.probs[code] == pytest.approx(ref[code], abs=1e-4), (code, s.probs, ref)


def test_ten_is_not_scored_by_its_first_token(engine):
    (s,) = engine.score_options([_msgs(SYSTEMS[0], QUESTIONS[2][0])], [QUESTIONS[2][1]])
    assert s.probs["1"] != pytest.approx(s.probs["10"], rel=1e-3)
    assert s.probs["1"] + s.probs["10"] <= 1.0


def test_generate_is_seeded_batched_and_returns_n(engine):
    prompts = [_msgs(SYSTEMS[0], "Name a colour."), _msgs(SYSTEMS[1], "Count from 1 to 5.")]
    params = GenParams(temperature=0.8, max_tokens=12, n=2, seed=3)
    first = engine.generate(prompts, params)
    assert [len(x) for x in first] == [2, 2]
    assert all(isinstance(t, str) and t for x in first for t in x)
    assert engine.generate(prompts, params) == first
    greedy = engine.generate(prompts[:1], GenParams(max_tokens=12))
    alone = engine.generate(prompts[:1] * 3, GenParams(max_tokens=12))
    assert alone[0] == greedy[0]


def test_second_run_makes_no_model_call(engine, tmp_path):
    cached = LocalEngine(model="smollm2", cache=CallCache(tmp_path / "c.sqlite"))
    cached._model, cached._tok = engine.load()
    prompts = [_msgs(SYSTEMS[0], q) for q, _ in QUESTIONS]
    options = [o for _, o in QUESTIONS]
    first = cached.score_options(prompts, options)
    assert cached.stats.calls == 3
    again = LocalEngine(model="smollm2", cache=CallCache(tmp_path / "c.sqlite"))
    again._model = "must not be used"  # any model call would fail
    second = again.score_options(prompts, options)
    assert again.stats.calls == 0 and again.stats.cache_hits == 3
    assert [s.probs for s in second] == [s.probs for s in first]


def test_completion_logprob_is_sum_over_tokens(engine):
    (lp_short, lp_long) = engine.score_completions([_msgs(SYSTEMS[0], "Say yes.")] * 2, ["Yes", "Yes, of course"])
    assert lp_short < 0 and lp_long < lp_short


def test_growing_cache_generates_what_the_dynamic_cache_does(engine):
    """The engine's buffer-backed KV cache changes nothing: greedy and seeded sampled outputs equal plain generate."""
    from transformers import DynamicCache

    from culturealign.llm.local import cache_kwarg, growing_cache

    model, tok = engine.load()
    prompts = [_msgs(SYSTEMS[i % 2], q) for i, (q, _) in enumerate(QUESTIONS)]
    ids = [engine.render(p) for p in prompts]
    width, pad = max(map(len, ids)), tok.pad_token_id
    inputs = torch.tensor([[pad] * (width - len(x)) + x for x in ids])
    mask = (torch.arange(width)[None, :] >= torch.tensor([width - len(x) for x in ids])[:, None]).long()
    sampled = {"do_sample": True, "temperature": 0.9, "top_k": 0, "num_return_sequences": 2}
    for kwargs in ({"do_sample": False}, sampled):
        outs = []
        for cache in (DynamicCache(config=model.config), growing_cache(model.config)):
            torch.manual_seed(3)
            with torch.inference_mode():
                outs.append(
                    model.generate(
                        input_ids=inputs,
                        attention_mask=mask,
                        max_new_tokens=40,
                        pad_token_id=pad,
                        **{cache_kwarg(): cache},
                        **kwargs,
                    )  # fmt: skip
                )
            assert cache.get_seq_length() == outs[-1].shape[1] - 1  # generate used the cache given
        assert type(cache.layers[0]).__name__ == "GrowingLayer" and cache.layers[0]._kbuf.shape[-2] > width
        assert outs[0].shape[1] > width + 8 and torch.equal(outs[0], outs[1])


def test_growing_cache_layer_survives_crop_and_reorder():
    """Keys and values equal torch.cat's after growth past the buffer, a crop and a batch reorder."""
    from transformers import AutoConfig

    from culturealign.llm.local import growing_cache
    from culturealign.llm.models import resolve_model

    layer = growing_cache(AutoConfig.from_pretrained(resolve_model("smollm2"))).layers[0]
    ref_k = ref_v = None
    torch.manual_seed(0)
    for step, n in enumerate([5, 1, 70, 1, 1, 3]):
        k, v = torch.randn(2, 3, n, 4), torch.randn(2, 3, n, 4)
        if step == 3:  # crop the last two positions, then reorder the batch
            layer.crop(-2)
            ref_k, ref_v = ref_k[..., :-2, :], ref_v[..., :-2, :]
            layer.reorder_cache(torch.tensor([1, 0]))
            ref_k, ref_v = ref_k[[1, 0]], ref_v[[1, 0]]
        ref_k = k if ref_k is None else torch.cat([ref_k, k], -2)
        ref_v = v if ref_v is None else torch.cat([ref_v, v], -2)
        got_k, got_v = layer.update(k, v)
        assert torch.equal(got_k, ref_k) and torch.equal(got_v, ref_v)
        assert layer.get_seq_length() == ref_k.shape[-2]
