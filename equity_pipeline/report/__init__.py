"""What people read: the equity officer's report, the workbook and the auditor's pack.

- ``render``: one self-contained ``report/index.html`` per run, built only from the public,
  already-suppressed tables and the run manifest's counts; it never sees member-level data. See
  :func:`render_report`.
- ``workbook``: ``report/equity_report.xlsx``, every public table as a sheet.
- ``completeness``: ``public/completeness.parquet``, REL data completeness (the one step here that
  reads member-level data, the validated members table, and publishes a suppressed aggregate).
- ``audit``: ``audit/``, validation summary, reconciliation, suppression log and lineage.
- ``trends``: this run's public rates with earlier runs' (config ``trend.history``) for the
  report's trend charts and the workbook's ``trends`` sheet.
- ``fhir_measure_report``: ``public/fhir/measure_reports.ndjson``, the public rates as FHIR R4
  ``MeasureReport`` resources.

See docs/reports.md.
"""
from equity_pipeline.report.render import build_context, render_html, render_report

__all__ = ["build_context", "render_html", "render_report"]
