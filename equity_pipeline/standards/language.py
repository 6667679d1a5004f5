"""Preferred language: BCP 47 tags (validated with the maintained ``langcodes`` registry data)."""
from __future__ import annotations

from functools import lru_cache

import polars as pl

from equity_pipeline.standards.race_ethnicity import DECLINED, UNKNOWN


@lru_cache(maxsize=4096)
def language_name(primary_subtag: str) -> str | None:
    """English display name of a primary language subtag ('es' -> 'Spanish'); None if not a valid tag."""
    import langcodes

    if not langcodes.tag_is_valid(primary_subtag):
        return None
    name = langcodes.Language.get(primary_subtag).display_name()
    # 'und' (undetermined) and private-use tags (qaa-qtz) have no language name: they are Unknown
    return None if name.startswith("Unknown language") else name


def language_strata(languages: pl.Series) -> pl.Series:
    """Stratum label per value: the language name of the primary subtag ('es-MX' -> 'Spanish');
    'Declined' for ASKU; 'Unknown' for UNK, empty or an invalid tag. Names are looked up once per
    distinct tag, so this is cheap on millions of members."""
    mapping: dict[str, str] = {}
    for tag in languages.drop_nulls().unique().to_list():
        if tag == "ASKU":
            mapping[tag] = DECLINED
        elif tag == "UNK":
            mapping[tag] = UNKNOWN
        else:
            mapping[tag] = language_name(tag.split("-")[0]) or UNKNOWN
    return languages.replace_strict(mapping, default=UNKNOWN, return_dtype=pl.String).fill_null(UNKNOWN)
