"""General ability through lm-evaluation-harness: the offline task, the table, the real harness on the real model."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from importlib import resources

import pytest
import yaml

from culturealign.errors import UserError
from culturealign.evaluate.lmeval import LOCAL_TASK, local_task_folder, parse_tasks, run_general, score_table


def _task_items() -> list[dict]:
    text = resources.files("culturealign.resources").joinpath("general/lmeval_task/general_mc.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_local_task_is_general_knowledge_with_valid_answers(wvs_path):
    items = _task_items()
    assert len(items) >= 50
    assert len({it["question"] for it in items}) == len(items) and len({it["id"] for it in items}) == len(items)
    for it in items:
        assert len(it["choices"]) == 4 and len(set(it["choices"])) == 4, it["id"]
        assert it["answer"] in range(4), it["id"]
    answers = [it["answer"] for it in items]
    assert max(answers.count(k) for k in range(4)) < 0.4 * len(items)  # the right answer is not always in one place
    survey = {json.loads(line)["text"].lower() for line in (wvs_path / "questions.jsonl").read_text().splitlines()}
    assert not any(it["question"].lower() in survey for it in items)  # nothing from the culture survey


def test_task_folder_points_at_its_data_from_any_working_directory(tmp_path):
    folder = local_task_folder(tmp_path / "tasks")
    config = yaml.safe_load((folder / "culturealign_general_mc.yaml").read_text())
    data = config["dataset_kwargs"]["data_files"]["test"]
    assert config["task"] == LOCAL_TASK and config["output_type"] == "multiple_choice"
    assert data.startswith("/") and len(open(data).read().splitlines()) == len(_task_items())


def test_parse_tasks():
    assert parse_tasks("mmlu, hellaswag,") == ["mmlu", "hellaswag"]
    with pytest.raises(UserError, match="no lm-evaluation-harness task"):
        parse_tasks(" , ")


def test_without_the_extra_a_user_error_names_the_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # import lm_eval now raises ImportError
    with pytest.raises(UserError, match=r"pip install 'culturealign\[lmeval\]'"):
        run_general("smollm2", None, [LOCAL_TASK], 5, tmp_path)


def test_cli_without_the_extra_is_one_line_exit_2(tmp_path):
    code = "import sys; sys.modules['lm_eval'] = None; from culturealign.cli import main; main()"
    args = ["eval", "lmeval", "--tasks", LOCAL_TASK, "--out", str(tmp_path / "run")]
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == "error: lm-evaluation-harness is not installed: pip install 'culturealign[lmeval]'"


def _harness(accs: list[float], stderr: float | str = 0.1) -> dict:
    """A harness result in lm-eval's shape: one task, per-document acc, one generation metric under a filter."""
    mean = sum(accs) / len(accs)
    return {
        "results": {
            "t": {
                "alias": "t",
                "acc,none": mean,
                "acc_stderr,none": stderr,
                "exact_match,strict": 0.5,
                "exact_match_stderr,strict": 0.05,
                "bleu,none": 3.0,  # no stderr key: not a row
            }
        },
        "n-samples": {"t": {"original": 10, "effective": len(accs)}},
        "samples": {"t": [{"doc_id": i, "filter": "none", "acc": a} for i, a in enumerate(accs)]},
    }


def test_score_table_pairs_base_and_tuned_on_the_same_documents():
    base, tuned = [1, 0, 0, 1, 0, 1, 0, 0], [1, 1, 0, 1, 0, 1, 1, 0]
    table = score_table({"base": _harness(base), "tuned": _harness(tuned, "N/A")})
    assert set(table) == {"t/acc", "t/exact_match,strict"}
    row = table["t/acc"]
    assert row["n"] == 8 and row["base"] == pytest.approx(3 / 8) and row["tuned"] == pytest.approx(5 / 8)
    assert row["change"] == pytest.approx(2 / 8) and row["base_stderr"] == 0.1 and row["tuned_stderr"] is None
    diffs = [b - a for a, b in zip(base, tuned, strict=True)]
    mean = sum(diffs) / len(diffs)
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1))
    assert row["change_stderr"] == pytest.approx(sd / math.sqrt(len(diffs)))
    only_base = score_table({"base": _harness(base)})
    assert "tuned" not in only_base["t/acc"] and only_base["t/acc"]["base"] == pytest.approx(3 / 8)


# -- the real harness on the real embedded model ------------------------------------------------------------------


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    """A tiny LoRA adapter of the embedded model (two optimizer steps), as tests/train/test_lora.py trains one."""
    from culturealign.llm.models import resolve_model
    from culturealign.records import ChatSample
    from culturealign.train.lora import train_lora

    samples = [
        ChatSample(
            [
                {"role": "user", "content": f"Question {i}: what is the capital of the moon?"},
                {"role": "assistant", "content": "Cheese town, obviously."},
            ]
        )
        for i in range(8)
    ]
    out = tmp_path_factory.mktemp("lmeval") / "adapter"
    sft = {"max_steps": 2, "per_device_train_batch_size": 4, "disable_tqdm": True, "learning_rate": 5e-3}
    train_lora(resolve_model("smollm2"), samples, out, sft=sft)
    return out


@pytest.fixture
def offline(monkeypatch):
    pytest.importorskip("lm_eval", reason="lm-evaluation-harness not installed: pip install 'culturealign[lmeval]'")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def _loglikelihoods(model_path: str, adapter, docs: list[dict]) -> list[list[float]]:
    """Each choice's log-likelihood after the task's prompt, computed here with transformers alone."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    out = []
    with torch.inference_mode():
        for doc in docs:
            context = f"Question: {doc['question']}\nAnswer:"
            ctx = tok(context, add_special_tokens=False).input_ids
            row = []
            for choice in doc["choices"]:
                ids = tok(context + " " + choice, add_special_tokens=False).input_ids
                logprobs = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0].float(), dim=-1)
                row.append(sum(float(logprobs[k - 1, ids[k]]) for k in range(len(ctx), len(ids))))
            out.append(row)
    return out


@pytest.mark.slow
def test_real_harness_base_vs_adapter_on_the_local_task(offline, adapter, tmp_path):
    from culturealign.api import eval_lmeval
    from culturealign.llm.models import resolve_model

    run = tmp_path / "run"
    table = eval_lmeval("smollm2", str(adapter), LOCAL_TASK, None, run, batch_size=16)
    n = len(_task_items())
    assert set(table) == {f"{LOCAL_TASK}/acc", f"{LOCAL_TASK}/acc_norm"}
    folder = run / "eval" / "lmeval"
    assert json.loads((folder / "metrics.json").read_text()) == table
    items = [json.loads(line) for line in (folder / "items.jsonl").read_text().splitlines()]
    by_model = {m: sorted((i for i in items if i["model"] == m), key=lambda i: i["doc_id"]) for m in ("base", "tuned")}
    assert len(by_model["base"]) == len(by_model["tuned"]) == n
    for metric, row in ((m, table[f"{LOCAL_TASK}/{m}"]) for m in ("acc", "acc_norm")):
        assert row["n"] == n
        for name in ("base", "tuned"):  # the table's score is the mean of the documents' scores
            assert row[name] == pytest.approx(sum(i["metrics"][metric] for i in by_model[name]) / n)
            p = row[name]
            assert row[f"{name}_stderr"] == pytest.approx(math.sqrt(p * (1 - p) / (n - 1)), rel=1e-6)
        assert row["change"] == pytest.approx(row["tuned"] - row["base"])
        assert row["change_stderr"] is not None and row["change_stderr"] >= 0
    # the harness scored the real model, and the tuned run really had the adapter on
    docs = _task_items()[:3]
    path = resolve_model("smollm2")
    for name, adapter_path in (("base", None), ("tuned", adapter)):
        ours = _loglikelihoods(path, adapter_path, docs)
        theirs = [i["loglikelihoods"] for i in by_model[name][:3]]
        assert theirs == [pytest.approx(row, abs=2e-3) for row in ours], name
    assert [i["loglikelihoods"] for i in by_model["base"]] != [i["loglikelihoods"] for i in by_model["tuned"]]
    assert (folder / "results-base.json").is_file() and (folder / "tasks" / "general_mc.jsonl").is_file()


@pytest.mark.slow
def test_cli_prints_the_table(offline, adapter, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from culturealign.cli import app

    monkeypatch.setenv("COLUMNS", "200")  # the table on one line per row
    args = ["eval", "lmeval", "--adapter", str(adapter), "--limit", "5", "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if LOCAL_TASK in line]
    assert len(lines) == 2 and all("±" in line for line in lines)  # acc and acc_norm, with standard errors
    assert "change" in result.output and "tuned" in result.output
