"""CLCA training views: per-speaker samples whose loss falls on that speaker's tokens only, and intent samples."""

from __future__ import annotations

import pytest

from culturealign.records import Conversation, Persona, Scenario, Turn
from culturealign.steps.views import DialogueViews


def conversation() -> Conversation:
    agents = [
        Persona("Anna", 58, "teacher", "Anna grew up in Berlin.", "g0", "s0", "DEU", "p"),
        Persona("Ben", 29, "developer", "Ben grew up in Hamburg.", "g1", "s1", "DEU", "p"),
    ]
    turns = [
        Turn(0, "speak", "ANNA-ONE hello", "to greet", None),
        Turn(1, "non-verbal", "BEN-ONE nods", "to acknowledge", "nodding is polite"),
        Turn(0, "speak", "ANNA-TWO sit down", "to invite", None),
        Turn(1, "leave", "BEN-TWO bye", None, None),
    ]
    return Conversation(Scenario("family-01-DEU", "family", "DEU", "Lunch.", agents), turns, "left")


def test_one_view_per_speaker_with_their_persona_and_one_intent_view():
    step = DialogueViews()
    views = list(step.run([conversation()]))
    assert [v.meta["view"] for v in views] == ["speaker", "speaker", "intent"]
    anna, ben, intent = views
    assert "You are Anna" in anna.messages[0]["content"] and "g0" in anna.messages[0]["content"]
    assert "You are Ben" in ben.messages[0]["content"] and "g1" in ben.messages[0]["content"]
    assert [m["content"] for m in anna.messages if m["role"] == "assistant"] == ["ANNA-ONE hello", "ANNA-TWO sit down"]
    assert [m["content"] for m in ben.messages if m["role"] == "assistant"] == [
        "*BEN-ONE nods*",
        "*leaves* BEN-TWO bye",
    ]
    assert anna.messages[-1]["role"] == "assistant"  # Ben's trailing turn is not part of Anna's view
    assert intent.messages[-1]["content"] == (
        "Anna: to greet\nBen: to acknowledge (Cultural reason: nodding is polite)\nAnna: to invite"
    )
    assert step.stats["samples"] == {"speaker": 2, "intent": 1}


@pytest.mark.slow
def test_loss_falls_on_the_speakers_tokens_only():
    """Asserted on the token labels TRL trains on (it keeps a ``labels`` column as is)."""
    from transformers import AutoTokenizer

    from culturealign.llm.models import resolve_model
    from culturealign.train.lora import to_dataset

    tok = AutoTokenizer.from_pretrained(resolve_model("smollm2"))
    anna, ben, intent = list(DialogueViews().run([conversation()]))
    rows = to_dataset([anna, ben, intent], tok)
    assert set(rows.column_names) == {"input_ids", "labels"}

    def learned(row) -> str:
        return tok.decode([t for t, lab in zip(row["input_ids"], row["labels"], strict=True) if lab != -100])

    anna_text, ben_text = learned(rows[0]), learned(rows[1])
    assert "ANNA-ONE" in anna_text and "ANNA-TWO" in anna_text and "BEN" not in anna_text
    assert "BEN-ONE" in ben_text and "BEN-TWO" in ben_text and "ANNA" not in ben_text
    assert "You are" not in anna_text and "Lunch" not in anna_text  # no system prompt, no other speaker
    assert anna_text.count("<|im_end|>") == 2  # each learned turn ends with its end-of-turn token
    assert learned(rows[2]).startswith("Anna: to greet")
    # every label is the token itself or ignored, and the sequence is the model's own chat rendering
    for row, view in zip(rows, (anna, ben, intent), strict=True):
        assert all(lab in (-100, t) for t, lab in zip(row["input_ids"], row["labels"], strict=True))
        assert tok.decode(row["input_ids"]) == tok.apply_chat_template(view.messages, tokenize=False)


def test_single_reply_samples_stay_prompt_completion():
    from culturealign.records import ChatSample
    from culturealign.train.lora import to_dataset

    s = ChatSample([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}])
    assert to_dataset([s]).column_names == ["prompt", "completion"]
