"""Program config: stratifiers, intersections, regions, reference groups, multiplicity; clear errors."""
from __future__ import annotations

from datetime import date

import pytest

from equity_pipeline.config import KNOWN_KEYS, config_from_dict, load_config
from equity_pipeline.errors import ConfigError
from equity_pipeline.stratify import DEFAULT_STRATIFIERS

RUN = date(2026, 11, 22)


def cfg(**settings):
    return config_from_dict(settings, run_date=RUN)


def test_defaults():
    c = cfg()
    assert c.stratifiers == DEFAULT_STRATIFIERS and c.intersections == () and c.regions == ()
    assert c.age_bands == (0, 18, 45, 65, 75)
    assert c.reference_for("race_ethnicity") == "largest" and c.multiple_comparisons == "holm"
    assert c.disparity_min_denominator == 30
    assert {"intersections", "age_bands", "regions", "reference_group", "multiple_comparisons",
            "disparity_min_denominator"} <= KNOWN_KEYS


def test_full_settings_round_trip(tmp_path):
    path = tmp_path / "program.yaml"
    path.write_text(
        "measurement_year: 2025\n"
        "stratifiers: [race_ethnicity, rurality, region, payer]\n"
        "intersections: [[race_ethnicity, rurality]]\n"
        "age_bands: [0, 21, 65]\n"
        "regions:\n  Capital: ['24031', '24033', '11001']\n  Shore: ['24039']\n"
        "reference_group: {default: largest, race_ethnicity: White, 'race_ethnicity x rurality': overall}\n"
        "multiple_comparisons: bh\n"
        "disparity_min_denominator: 50\n"
    )
    c = load_config(path, run_date=RUN)
    assert c.intersections == (("race_ethnicity", "rurality"),)
    assert c.region_map == {"Capital": ("24031", "24033", "11001"), "Shore": ("24039",)}
    assert c.reference_for("race_ethnicity") == "White"
    assert c.reference_for("race_ethnicity x rurality") == "overall"
    assert c.reference_for("payer") == "largest"
    assert (c.multiple_comparisons, c.disparity_min_denominator, c.age_bands) == ("bh", 50, (0, 21, 65))
    d = c.to_dict()
    assert d["regions"]["Capital"] == ["24031", "24033", "11001"] and d["intersections"] == [["race_ethnicity", "rurality"]]


@pytest.mark.parametrize("settings, message", [
    ({"stratifiers": ["race", "county"]}, "unknown stratifier(s) ['race']"),
    ({"stratifiers": ["race_ethnicity x rurality"]}, "intersections go under 'intersections'"),
    ({"stratifiers": ["county", "county"]}, "listed more than once"),
    ({"intersections": [["race_ethnicity"]]}, "must be a pair of stratifier names"),
    ({"intersections": [["race_ethnicity", "zip"]]}, "unknown stratifier(s) ['zip']"),
    ({"intersections": [["sex", "sex"]]}, "crosses a stratifier with itself"),
    ({"intersections": [["sex", "payer"], ["payer", "sex"]]}, "listed more than once"),
    ({"intersections": "race_ethnicity x rurality"}, "must be a list of pairs"),
    ({"stratifiers": ["region"]}, "needs a 'regions' setting"),
    ({"intersections": [["region", "sex"]]}, "needs a 'regions' setting"),
    ({"regions": {"Capital": [24031]}}, "must be quoted text"),
    ({"regions": {"Capital": ["2403"]}}, "not a 5-digit county FIPS"),
    ({"regions": {"Capital": ["99999"]}}, "not a county valid in 2025"),
    ({"regions": {"A": ["24031"], "B": ["24031"]}}, "is in both region 'A' and 'B'"),
    ({"regions": {"Unknown": ["24031"]}}, "region name 'Unknown'"),
    ({"regions": {"Capital": []}}, "non-empty list"),
    ({"regions": ["24031"]}, "regions must be a mapping"),
    ({"age_bands": [18, 65]}, "starting at 0"),
    ({"age_bands": [0, 65, 18]}, "increasing"),
    ({"reference_group": "white"}, "must be one of best, largest, overall"),
    ({"reference_group": {"race_ethnicity": "Whites"}}, "'Whites' not found in stratifier 'race_ethnicity'"),
    ({"reference_group": {"race_ethnicity": "Unknown"}}, "cannot be a reference"),
    ({"reference_group": {"sdoh_need": "Not screened"}}, "cannot be a reference"),
    ({"reference_group": {"zip": "best"}}, "not a configured stratifier"),
    ({"multiple_comparisons": "bonferroni"}, "must be one of holm, bh"),
    ({"disparity_min_denominator": 0}, "at least 1"),
    ({"disparity_min_denominator": "30"}, "whole number"),
    ({"strata": ["x"]}, "unknown setting(s) ['strata']"),
])
def test_bad_settings_say_what_is_allowed(settings, message):
    with pytest.raises(ConfigError) as err:
        cfg(**settings)
    assert message in str(err.value)


def test_named_reference_for_open_stratifiers_is_not_checked_against_a_list():
    # language strata depend on the data: any name is accepted (a missing one gives status no_reference)
    assert cfg(reference_group={"language": "English"}).reference_for("language") == "English"
    assert cfg(reference_group={"payer": "commercial"}).reference_for("payer") == "commercial"
    with pytest.raises(ConfigError, match="one of medicare, medicaid, commercial"):
        cfg(reference_group={"payer": "Commercial"})
