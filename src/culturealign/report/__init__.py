"""Report: run folder(s) -> one self-contained HTML page with inline plots."""

from culturealign.report.html import load_run, render, write_report

__all__ = ["load_run", "render", "write_report"]
