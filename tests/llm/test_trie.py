"""The option trie: the trainer's differentiable reading equals the evaluator's, and the soft-label loss is the
cross-entropy a hand computation gives (a two-token code included)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from culturealign.llm.trie import option_log_probs, probe_paths, soft_cross_entropy, trie_probs
from culturealign.records import SoftLabel

CODES = {"1": (1,), "10": (1, 0), "2": (2,)}  # token 0 = "0", 1 = "1", 2 = "2"


def test_probes_are_the_deepest_internal_nodes():
    assert probe_paths(CODES) == [(1,)]
    assert probe_paths({"1": (1,), "2": (2,)}) == [()]


def test_torch_reading_equals_the_evaluators():
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        nodes = {(): torch.log_softmax(torch.randn(5, generator=g), 0), (1,): torch.log_softmax(torch.randn(5), 0)}
        probs, mass = trie_probs(CODES, nodes)
        log_q, log_mass = option_log_probs(CODES, nodes)
        assert torch.allclose(log_q.exp(), torch.tensor([probs[c] for c in CODES]), atol=1e-6)
        assert math.isclose(float(log_mass.exp()), mass, rel_tol=1e-5)


class TableModel(torch.nn.Module):
    """Next-token logits that depend on the last token only: a table anyone can compute the answer from."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = torch.nn.Parameter(table)

    def forward(self, input_ids, attention_mask, position_ids, logits_to_keep, **_):
        return SimpleNamespace(logits=self.table[input_ids][:, -logits_to_keep:])


def test_soft_label_loss_is_the_hand_computed_cross_entropy():
    from culturealign.train.distribution import batch_loss

    table = torch.tensor(
        [
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [0.7, 0.2, 0.0, 0.0, 0.3],  # after "1": p("0"|"1") decides 1 vs 10
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [0.1, 1.5, 0.9, 0.0, 0.2],  # after the prompt's last token (4)
        ]
    )
    encoded = [{"codes": CODES, "rows": [((1,), [3, 4, 1])], "target": {"1": 0.5, "10": 0.3, "2": 0.2}}]
    model = TableModel(table.clone())
    loss, mass = batch_loss(model, 3, encoded, share_prefix=False)
    first = torch.softmax(table[4], 0)
    after_one = torch.softmax(table[1], 0)
    p = {"1": first[1] * (1 - after_one[0]), "10": first[1] * after_one[0], "2": first[2]}
    total = sum(p.values())
    expected = -(0.5 * math.log(p["1"] / total) + 0.3 * math.log(p["10"] / total) + 0.2 * math.log(p["2"] / total))
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-6)
    assert mass == pytest.approx(float(total), rel=1e-6)
    loss.backward()  # and it trains: gradients reach the rows the loss read, and only those
    grad = model.table.grad
    assert grad[4].abs().sum() > 0 and grad[1].abs().sum() > 0 and grad[[0, 2, 3]].abs().sum() == 0


def test_soft_cross_entropy_of_a_perfect_fit_is_the_entropy():
    t = [0.25, 0.75]
    log_q = torch.log(torch.tensor(t))
    assert float(soft_cross_entropy(t, log_q)) == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))


def test_soft_label_records_round_trip(tmp_path):
    from culturealign.errors import UserError
    from culturealign.train.distribution import read_soft_labels, write_soft_labels

    items = [SoftLabel([{"role": "user", "content": "Q?"}], {"1": 0.4, "2": 0.6}, {"culture": "DEU"})]
    path = write_soft_labels(items, tmp_path, "x")
    back = read_soft_labels(path)
    assert back[0].target == {"1": 0.4, "2": 0.6} and back[0].messages == items[0].messages
    path.write_text('{"messages": [{"role": "user", "content": "Q?"}], "target": {"1": 7.5}}\n')
    with pytest.raises(UserError, match="record 1 .* is not a soft label"):
        read_soft_labels(path)
