"""Run folders: atomic writes, a lock, resumable steps, progress."""

from culturealign.runs.store import RunFolder, atomic_write_text, read_jsonl, write_json, write_jsonl

__all__ = ["RunFolder", "atomic_write_text", "read_jsonl", "write_json", "write_jsonl"]
