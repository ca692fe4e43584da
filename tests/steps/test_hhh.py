"""AlignCultura Stage I steps on scripted engines: reclassification thresholds, expansion, splits with leakage,
and two-stage rejection sampling on recorded critic outputs."""

from __future__ import annotations

import pytest

from culturealign.data.unesco import load_taxonomy
from culturealign.errors import UserError
from culturealign.llm.scripted import ScriptedEngine
from culturealign.records import HHHQuery
from culturealign.steps.hhh import (
    AssignSplits,
    Expand,
    LoadQueries,
    Reclassify,
    RejectionSample,
    label_set,
    read_questions,
)

SUBS = load_taxonomy()[:3]


def test_label_set_thresholds():
    assert label_set({"a": 0.7, "b": 0.5, "c": 0.49}, 0.5) == ["a", "b"]
    assert label_set({"a": 0.2, "b": 0.1}, 0.5) == ["none"]
    assert label_set({"a": 0.6, "b": 0.9}, 0.5) == ["b", "a"]  # most probable first


def test_reclassify_scores_every_subdomain_and_drops_none():
    first, second = SUBS[0], SUBS[1]

    def option_fn(messages, options):  # recorded P(Yes): q1 is about the first two subdomains, q2 about none
        text = messages[-1]["content"]
        yes = 0.8 if "q1" in text and (first.name in text or second.name in text) else 0.1
        return {"Yes": yes, "No": 1 - yes}

    engine = ScriptedEngine(outputs=["x"], option_fn=option_fn)
    step = Reclassify(engine, SUBS, threshold=0.5)
    out = list(step.run([HHHQuery("1", "q1 is this?"), HHHQuery("2", "q2 what?")]))
    assert [q.id for q in out] == ["1"]
    assert sorted(out[0].labels) == sorted([first.id, second.id])
    assert out[0].label_probs[SUBS[2].id] == pytest.approx(0.1)
    assert dict(step.stats["dropped_by_reason"]) == {"off the taxonomy (no subdomain with P >= threshold)": 1}
    assert len(engine.seen) == 2 * len(SUBS)  # scored, one Yes/No per (query, subdomain), nothing parsed
    kept = list(Reclassify(engine, SUBS, 0.5, keep_none=True).run([HHHQuery("2", "q2 what?")]))
    assert kept[0].labels == ["none"]


def test_expand_tops_up_thin_subdomains_only():
    counter = iter(range(1000))
    engine = ScriptedEngine(fn=lambda m: f"What is new question number {next(counter)} about this?")
    queries = [HHHQuery(f"q{i}", f"Existing question {i} here?", labels=[SUBS[0].id]) for i in range(2)]
    step = Expand(engine, SUBS[:2], target=2, max_attempts=2)
    out = list(step.run(queries))
    added = [q for q in out if q.source == "expanded"]
    assert len(added) == 2 and all(q.labels == [SUBS[1].id] for q in added)
    assert step.stats["added"] == {SUBS[1].id: 2} and step.stats["still_short"] == {}


def test_splits_are_seeded_and_leakage_is_reported():
    queries = [HHHQuery(str(i), f"distinct question number {i} about topic {i * 7}") for i in range(50)]
    a = [q.split for q in AssignSplits(seed=3).run([HHHQuery(q.id, q.text) for q in queries])]
    b = [q.split for q in AssignSplits(seed=3).run([HHHQuery(q.id, q.text) for q in queries])]
    assert a == b and a.count("train") == 40 and a.count("val") == 5 and a.count("test") == 5
    step = AssignSplits(seed=3, eval_sets={"bench": [queries[0].text, "something else entirely different"]})
    list(step.run(queries))
    assert step.stats["leakage"]["bench_vs_dataset"] == pytest.approx(0.5)
    assert set(step.stats["leakage"]) == {"val_vs_train", "test_vs_train", "bench_vs_dataset"}


def critic_engine(verdicts: dict[str, dict[str, float]]) -> ScriptedEngine:
    """A recorded critic: P(Yes) per answer text and axis; feedback names the answer it was given."""

    def option_fn(messages, options):
        text = messages[-1]["content"]
        answer = text.split("Answer: ", 1)[1].split("\n")[0]
        axis = next(ax for ax in ("helpful", "harmless", "honest") if f"Is this answer {ax}" in text)
        p = verdicts[answer][axis]
        return {"Yes": p, "No": 1 - p}

    return ScriptedEngine(fn=lambda m: "Be more specific.", option_fn=option_fn)


def generator(replies: dict[str, list[str]]) -> ScriptedEngine:
    """Answers by prompt: first candidates for the question, revisions when the prompt carries feedback."""
    queues = {k: iter(v) for k, v in replies.items()}

    def fn(messages):
        text = messages[-1]["content"]
        key = next(
            k for k in queues if text.startswith(k.split(" revise")[0]) and ("reviewer" in text) == ("revise" in k)
        )
        return next(queues[key])

    return ScriptedEngine(fn=fn)


GOOD = {"helpful": 0.9, "harmless": 0.9, "honest": 0.9}
BAD_HONEST = {"helpful": 0.9, "harmless": 0.9, "honest": 0.2}


def test_rejection_sampling_pass_fail_then_pass_fail_twice():
    verdicts = {
        "pass": GOOD,
        "pass2": {**GOOD, "helpful": 0.95},
        "liar": BAD_HONEST,
        "fixed": GOOD,
        "still": BAD_HONEST,
    }
    gen = generator(
        {
            "Q-pass": ["pass", "pass2"],  # both candidates pass at once
            "Q-retry": ["liar", "liar"],
            "Q-retry revise": ["fixed", "still"],  # round 1: one revision passes
            "Q-never": ["liar", "liar"],
            "Q-never revise": ["still", "still", "still", "still"],  # two rounds, never passes
        }
    )
    step = RejectionSample(gen, critic_engine(verdicts), k=2, rounds=2)
    out = list(step.run([HHHQuery("a", "Q-pass"), HHHQuery("b", "Q-retry"), HHHQuery("c", "Q-never")]))
    assert [s.query.id for s in out] == ["a", "b"]
    first, retried = out
    assert first.helpful == "pass2" and first.rounds == 0 and first.pass_hhh == [1, 1, 1]
    assert retried.helpful == retried.harmless == retried.honest == "fixed" and retried.rounds == 1
    (reason,) = dict(step.stats["dropped_by_reason"])
    assert reason == "no all-pass candidate after 2 rounds (fails: {'honest': 2})"
    assert step.stats["regenerated"] == 2 + 2 + 2  # round 1: b's two and c's two; round 2: c's two


def test_read_questions_finds_a_question_like_column(tmp_path):
    f = tmp_path / "q.csv"
    f.write_text("id,Query\n1,What is Holi?\n2,\n3,How is tea served?\n", encoding="cp1252")
    questions, skipped = read_questions(f)
    assert questions == ["What is Holi?", "How is tea served?"] and skipped == {"empty question": 1}
    j = tmp_path / "q.jsonl"
    j.write_text('{"prompt": "Why?"}\nnot json\n[1]\n', encoding="utf-8")
    questions, skipped = read_questions(j)
    assert questions == ["Why?"] and skipped == {"line is not JSON": 1, "line is not an object": 1}
    with pytest.raises(UserError, match="no answer column"):
        read_questions(f, "answer")
    assert [q.text for q in LoadQueries(f).run([])] == questions[:0] + ["What is Holi?", "How is tea served?"]


@pytest.mark.parametrize("encoding", ["cp1252", "utf-8", "utf-8-sig", "utf-16"])
def test_read_questions_decodes_cp1252_utf8_and_utf16(tmp_path, encoding):
    f = tmp_path / "q.csv"
    f.write_bytes("id,question\n1,It\u2019s Holi \u2014 may I?\n".encode(encoding))
    assert read_questions(f)[0] == ["It\u2019s Holi \u2014 may I?"]


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        # UTF-8 with one stray Latin-1 byte: read as cp1252 it would be "Itâ€™s" on every line
        ("id,question\n1,It\u2019s Holi?\n".encode() + b"2,Caf\xe9?\n", "line 3 of .* not UTF-8 \\(0xE9\\)"),
        (b"id,question\n1,What is \x81?\n", "line 2 of .* neither UTF-8 nor cp1252"),  # 0x81: no cp1252 character
    ],
)
def test_read_questions_refuses_bytes_it_would_garble(tmp_path, data, needle):
    f = tmp_path / "q.csv"
    f.write_bytes(data)
    with pytest.raises(UserError, match=f"^{needle}.*re-save the queries file as UTF-8"):
        read_questions(f)
