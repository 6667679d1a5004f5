"""The equity officer's report: one self-contained ``report/index.html`` per run.

Built only from the public, already-suppressed rates table and the run manifest's counts; it never
sees member-level data. See :func:`render_report`.
"""
from equity_pipeline.report.render import build_context, render_html, render_report

__all__ = ["build_context", "render_html", "render_report"]
