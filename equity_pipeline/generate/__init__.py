"""Synthetic multi-payer claims, enrollment, REL and SDOH data with planted, known truth.

``generate(members, seed, out)`` writes one file per input table (``members``, ``enrollment``,
``medical_claims``, ``pharmacy_claims``, ``sdoh_screenings``, ``clinical_observations``,
``providers``) with exactly the columns of ``expectations/<table>.json``, plus ``truth.json``: the
planted measure rates by stratum (every packaged measure), the exact counts a correct pipeline should
find, and the count of every injected defect class. See ``docs/generator.md``.
"""
from .core import CHUNK_MEMBERS, GENERATOR_VERSION, generate
from .defects import DEFECT_CLASSES
from .schema import TABLE_COLUMNS, TABLES

__all__ = ["CHUNK_MEMBERS", "DEFECT_CLASSES", "GENERATOR_VERSION", "TABLES", "TABLE_COLUMNS", "generate"]
