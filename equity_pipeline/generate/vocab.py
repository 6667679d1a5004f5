"""Code lists the generator draws from: real ICD-10-CM / CPT / HCPCS / revenue / DRG / PCS / NDC / LOINC codes.

Everything here is a small hand-picked list of real, currently valid codes with a sampling weight and,
for billable services, a rough Medicare-like base price in cents. Codes that any planted measure looks
for (mammography, hospice, mastectomy, ...) are listed in ``RESERVED_CODES`` and never appear in the
background utilisation: only the planting modules (``plant_*.py``) emit them, so the truth stays exact.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# --------------------------------------------------------------------------------------------------
# Race / ethnicity (CDC REC codes) by SPD 15 minimum category. Weights are within-category.
REL_CODES: dict[str, tuple[tuple[str, float], ...]] = {
    "WHITE": (("2106-3", 0.86), ("2108-9", 0.04), ("2113-9", 0.04), ("2114-7", 0.03), ("2112-1", 0.03)),
    "BLACK": (("2054-5", 0.80), ("2058-6", 0.12), ("2060-2", 0.05), ("2056-0", 0.03)),
    "HISPANIC": (("2135-2", 0.78), ("2148-5", 0.10), ("2180-8", 0.06), ("2182-4", 0.02), ("2184-0", 0.04)),
    "ASIAN": (
        ("2028-9", 0.55), ("2029-7", 0.10), ("2034-7", 0.10), ("2036-2", 0.08), ("2047-9", 0.07),
        ("2040-4", 0.05), ("2039-6", 0.05),
    ),
    "AIAN": (("1002-5", 0.85), ("1004-1", 0.10), ("1735-0", 0.05)),
    "NHPI": (("2076-8", 0.60), ("2079-2", 0.25), ("2080-0", 0.10), ("2086-7", 0.05)),
    "MENA": (("2118-8", 0.55), ("2129-1", 0.20), ("2123-8", 0.10), ("2120-4", 0.08), ("2121-2", 0.07)),
    "OTHER": (("2131-1", 1.0),),
}
ROOT_CODE = {cat: codes[0][0] for cat, codes in REL_CODES.items()}
NOT_HISPANIC_CODE = "2186-5"  # legacy two-question answer; carries no race

# Race/ethnicity answer profiles (sets of minimum categories) with per-state weights in percent.
REL_PROFILES: tuple[tuple[str, ...], ...] = (
    ("WHITE",), ("BLACK",), ("HISPANIC",), ("ASIAN",), ("AIAN",), ("NHPI",), ("MENA",), ("OTHER",),
    ("HISPANIC", "WHITE"), ("BLACK", "WHITE"), ("ASIAN", "WHITE"), ("AIAN", "WHITE"),
    ("BLACK", "HISPANIC"), ("NHPI", "ASIAN"), ("NHPI", "ASIAN", "WHITE"), ("AIAN", "HISPANIC"),
)
REL_PROFILE_WEIGHTS: dict[str, tuple[float, ...]] = {
    #      W     B     H     A    AIAN  NHPI MENA  OTH  H+W  B+W  A+W  AI+W B+H  NH+A NAW  AI+H
    "MD": (46.0, 29.0, 6.0, 6.3, 0.3, 0.1, 1.2, 0.8, 3.0, 1.8, 0.8, 0.5, 0.5, 0.05, 0.02, 0.05),
    "NY": (45.0, 17.0, 15.0, 5.0, 0.3, 0.05, 1.0, 1.5, 6.0, 1.5, 0.7, 0.4, 2.0, 0.05, 0.02, 0.1),
    "NM": (34.0, 2.0, 26.0, 1.8, 10.0, 0.1, 0.4, 1.0, 18.0, 0.6, 0.4, 1.5, 0.3, 0.05, 0.02, 1.5),
    "HI": (21.0, 1.8, 4.0, 36.0, 0.3, 10.0, 0.3, 0.5, 3.0, 0.6, 6.0, 0.3, 0.2, 8.0, 5.0, 0.1),
}
REL_DECLINED_SHARE = 0.035  # 'ASKU'
REL_UNKNOWN_SHARE = 0.04    # 'UNK' (a missing value, null/empty, is injected as the missing_rel defect)
REL_IMPUTED_SHARE = 0.12    # of known answers: indirect (BISG-style) estimate, one root code
REL_LEGACY_NOT_HISPANIC_SHARE = 0.05  # single non-Hispanic race answered with '|2186-5' appended

# Preferred language (BCP 47) by dominant category.
LANGUAGES: dict[str, tuple[tuple[str, float], ...]] = {
    "WHITE": (("en", 0.962), ("ru", 0.015), ("pl", 0.008), ("yi", 0.008), ("it", 0.007)),
    "BLACK": (("en", 0.93), ("ht", 0.03), ("fr", 0.02), ("am", 0.01), ("so", 0.01)),
    "HISPANIC": (("en", 0.56), ("es", 0.38), ("es-MX", 0.04), ("es-PR", 0.02)),
    "ASIAN": (
        ("en", 0.55), ("zh", 0.07), ("zh-Hant", 0.03), ("zh-Hans", 0.03), ("yue", 0.02), ("vi", 0.08),
        ("ko", 0.06), ("tl", 0.06), ("ilo", 0.02), ("hi", 0.02), ("ja", 0.03), ("bn", 0.02), ("gu", 0.01),
    ),
    "AIAN": (("en", 0.88), ("nv", 0.12)),
    "NHPI": (("en", 0.85), ("sm", 0.06), ("to", 0.04), ("haw", 0.02), ("chk", 0.02), ("mh", 0.01)),
    "MENA": (("en", 0.60), ("ar", 0.30), ("fa", 0.10)),
    "OTHER": (("en", 0.70), ("es", 0.20), ("pt-BR", 0.10)),
    "NONE": (("en", 0.88), ("es", 0.08), ("zh", 0.02), ("ar", 0.01), ("ru", 0.01)),
}
LANGUAGE_DECLINED_SHARE = 0.01
LANGUAGE_UNK_SHARE = 0.02
LANGUAGE_MISSING_SHARE = 0.03

FIRST_NAMES_F = (
    "Mary", "Patricia", "Jennifer", "Linda", "Elizabeth", "Barbara", "Susan", "Jessica", "Sarah", "Karen",
    "Nancy", "Lisa", "Betty", "Sandra", "Ashley", "Dorothy", "Maria", "Guadalupe", "Ana", "Rosa",
    "Mei", "Linh", "Ji-woo", "Priya", "Aisha", "Fatima", "Keisha", "Tamika", "Leilani", "Malia",
    "Emma", "Olivia", "Sophia", "Isabella", "Mia", "Ava", "Grace", "Naomi", "Yolanda", "Esperanza",
)
FIRST_NAMES_M = (
    "James", "Robert", "John", "Michael", "David", "William", "Richard", "Joseph", "Thomas", "Charles",
    "Christopher", "Daniel", "Matthew", "Anthony", "Mark", "Jose", "Juan", "Luis", "Carlos", "Miguel",
    "Wei", "Minh", "Min-jun", "Raj", "Ahmed", "Omar", "Malik", "Darnell", "Kai", "Keoni",
    "Liam", "Noah", "Ethan", "Mateo", "Elijah", "Lucas", "Benjamin", "Samuel", "Andre", "Tyrone",
)
LAST_NAMES: dict[str, tuple[str, ...]] = {
    "WHITE": ("Smith", "Miller", "Anderson", "Wilson", "Taylor", "Moore", "Clark", "Wright", "Murphy",
              "Sullivan", "Kowalski", "Schmidt", "Olsen", "Baker", "Walsh", "Russo"),
    "BLACK": ("Washington", "Jefferson", "Jackson", "Williams", "Johnson", "Brown", "Jones", "Davis",
              "Harris", "Robinson", "Banks", "Mosley", "Okafor", "Pierre"),
    "HISPANIC": ("Garcia", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Perez", "Sanchez",
                 "Ramirez", "Torres", "Romero", "Chavez", "Baca", "Montoya"),
    "ASIAN": ("Nguyen", "Kim", "Lee", "Wang", "Chen", "Patel", "Tran", "Li", "Park", "Singh", "Zhang",
              "Tanaka", "Santos", "Reyes", "Nakamura", "Shah"),
    "AIAN": ("Begay", "Yazzie", "Benally", "Tsosie", "Nez", "Etsitty", "Lente", "Chee", "Harjo"),
    "NHPI": ("Kealoha", "Kahale", "Akana", "Kamakau", "Tuiasosopo", "Fifita", "Kahananui", "Leota"),
    "MENA": ("Haddad", "Khalil", "Nasser", "Hakimi", "Saleh", "Mansour", "Aziz", "Farah", "Rahimi"),
    "OTHER": ("Silva", "Costa", "Pereira", "Smith", "Lee"),
    "NONE": ("Smith", "Johnson", "Garcia", "Brown", "Lee", "Miller", "Davis", "Martinez", "Nguyen"),
}

# --------------------------------------------------------------------------------------------------
# Chronic conditions: member-level flags, each with the ICD-10-CM codes (no dot) used on claims.
@dataclass(frozen=True)
class Condition:
    name: str
    codes: tuple[str, ...]
    # prevalence by age band (0-17, 18-44, 45-64, 65-74, 75+)
    prevalence: tuple[float, float, float, float, float]
    ndc_slots: int = 1  # number of maintenance drugs (pharmacy fills) this condition brings


CONDITIONS: tuple[Condition, ...] = (
    Condition("diabetes", ("E119", "E1165", "E1122", "E1140"), (0.003, 0.04, 0.15, 0.24, 0.25), 2),
    Condition("hypertension", ("I10",), (0.005, 0.10, 0.38, 0.58, 0.70), 2),
    Condition("hyperlipidemia", ("E785", "E782"), (0.002, 0.08, 0.30, 0.45, 0.45), 1),
    Condition("asthma", ("J45909", "J4520"), (0.08, 0.08, 0.08, 0.07, 0.06), 1),
    Condition("copd", ("J449",), (0.0, 0.01, 0.06, 0.11, 0.13), 1),
    Condition("depression", ("F329", "F331"), (0.03, 0.10, 0.10, 0.09, 0.08), 1),
    Condition("anxiety", ("F419", "F411"), (0.04, 0.10, 0.08, 0.06, 0.05), 1),
    Condition("ckd", ("N1830", "N184", "N189"), (0.0, 0.01, 0.05, 0.12, 0.20), 0),
    Condition("heart_failure", ("I509", "I5022"), (0.0, 0.002, 0.02, 0.06, 0.12), 1),
    Condition("cad", ("I2510",), (0.0, 0.005, 0.06, 0.14, 0.22), 1),
    Condition("afib", ("I4891", "I480"), (0.0, 0.002, 0.02, 0.07, 0.14), 1),
    Condition("hypothyroidism", ("E039",), (0.005, 0.04, 0.08, 0.12, 0.14), 1),
    Condition("osteoarthritis", ("M1711", "M170"), (0.0, 0.02, 0.12, 0.25, 0.33), 0),
    Condition("obesity", ("E6601", "E669"), (0.05, 0.12, 0.15, 0.12, 0.07), 0),
    Condition("tobacco", ("F17210",), (0.005, 0.12, 0.12, 0.08, 0.04), 0),
    Condition("adhd", ("F902",), (0.07, 0.02, 0.0, 0.0, 0.0), 1),
)

ACUTE_OFFICE_DX: tuple[tuple[str, float], ...] = (
    ("J069", 0.16), ("J029", 0.07), ("J0190", 0.06), ("N390", 0.07), ("R051", 0.06), ("R509", 0.03),
    ("M25561", 0.05), ("R109", 0.05), ("R42", 0.03), ("L309", 0.04), ("B349", 0.05), ("J209", 0.06),
    ("K5900", 0.03), ("M5450", 0.08), ("H6690", 0.04), ("K219", 0.05), ("R079", 0.03), ("Z79899", 0.04),
)
PREVENTIVE_DX_CHILD = ("Z00129", "Z00121")
LAB_DX_FALLBACK = "Z0189"  # encounter for other specified special examinations (not a well-care code)
WCV_AGE = (3, 21)          # well-care visits at these ages (Dec 31 MY) in MY come only from plant_wcv
W30_MAX_AGE = 3            # every well-child visit of members this old or younger (Dec 31 MY) comes from plant_w30
PREVENTIVE_DX_ADULT = ("Z0000", "Z0001")
ED_DX: tuple[tuple[str, float], ...] = (
    ("R079", 0.10), ("R0789", 0.04), ("R109", 0.10), ("R55", 0.04), ("R519", 0.06), ("S93401A", 0.06),
    ("S61411A", 0.05), ("S060X0A", 0.04), ("T784XXA", 0.03), ("K529", 0.06), ("R1110", 0.05),
    ("J45901", 0.04), ("J441", 0.04), ("I5023", 0.02), ("R0602", 0.05), ("J069", 0.07), ("N390", 0.07),
    ("R509", 0.04), ("M5450", 0.04),
)
SDOH_Z_CODES = {"food": "Z5941", "housing": "Z5900", "transportation": "Z5982", "utilities": "Z5912"}

# --------------------------------------------------------------------------------------------------
# Professional services: (code, weight, base price in cents, modifier or "").
OFFICE_EM_EST = (("99212", 0.12, 5700, ""), ("99213", 0.45, 9200, ""), ("99214", 0.35, 13100, ""),
                 ("99215", 0.08, 18500, ""))
OFFICE_EM_NEW = (("99203", 0.6, 11200, ""), ("99204", 0.4, 16800, ""))
PREVENTIVE_BY_AGE = (  # (max age inclusive, code, price)
    (0, "99391", 10500), (4, "99392", 11200), (11, "99393", 11000), (17, "99394", 11800),
    (39, "99395", 12000), (64, "99396", 12900), (200, "99397", 13800),
)
ANCILLARY = (("36415", 0.35, 300, ""), ("81002", 0.15, 350, ""), ("93000", 0.12, 1700, ""),
             ("96127", 0.12, 450, ""), ("90471", 0.13, 1700, ""), ("99406", 0.05, 1500, ""),
             ("97110", 0.04, 3000, "GP"), ("97140", 0.04, 2800, "GP"))
TELEHEALTH_EM = (("99213", 0.6, 9200, "95"), ("99214", 0.4, 13100, "95"))
BEHAVIORAL = (("90834", 0.5, 10200, ""), ("90837", 0.35, 13600, ""), ("90791", 0.15, 17400, ""))
LAB_TESTS = (("80053", 0.16, 1050, ""), ("80061", 0.14, 1300, ""), ("85025", 0.18, 750, ""),
             ("84443", 0.10, 1650, ""), ("80048", 0.10, 850, ""), ("81001", 0.08, 320, ""),
             ("82306", 0.06, 2950, ""), ("87086", 0.05, 800, ""), ("85610", 0.04, 430, ""),
             ("82043", 0.03, 550, ""), ("82570", 0.03, 500, ""))
HBA1C_LAB = ("83036", 950)
ED_PROF = (("99283", 0.35, 7500, ""), ("99284", 0.40, 12000, ""), ("99285", 0.25, 17500, ""))
IP_PROF_FIRST = ("99223", 21000)
IP_PROF_SUBSEQUENT = ("99232", 8600)
IP_PROF_DISCHARGE = ("99238", 7500)

# Institutional revenue-code lines: (revenue code, hcpcs or "", weight, price cents)
ED_FACILITY_EM = (("0450", "99283", 0.35, 45000), ("0450", "99284", 0.40, 75000), ("0450", "99285", 0.25, 110000))
ED_FACILITY_EXTRA = (
    ("0300", "85025", 0.5, 4500), ("0301", "80048", 0.45, 6000), ("0320", "71046", 0.3, 18000),
    ("0351", "70450", 0.12, 90000), ("0250", "", 0.35, 2500), ("0636", "J2405", 0.15, 1500),
    ("0636", "J1885", 0.12, 1200), ("0730", "93005", 0.2, 9000),
)
OP_IMAGING = (  # outpatient hospital (bill type 131)
    ("0352", "74177", 0.25, 95000), ("0610", "72148", 0.2, 120000), ("0483", "93306", 0.2, 60000),
    ("0402", "76700", 0.2, 35000), ("0610", "73721", 0.15, 110000),
)


@dataclass(frozen=True)
class InpatientCase:
    drg: str
    dx: tuple[str, ...]          # principal then secondary
    pcs: tuple[str, ...]         # ICD-10-PCS procedures
    weight: float
    price: int                   # cents
    surgical: bool = False
    age_min: int = 18
    age_max: int = 200
    female_only: bool = False


INPATIENT_CASES: tuple[InpatientCase, ...] = (
    InpatientCase("871", ("A419", "N179"), (), 0.12, 2000000),
    InpatientCase("291", ("I5023", "I10"), (), 0.10, 1250000, age_min=45),
    InpatientCase("193", ("J189", "J449"), (), 0.05, 1150000),
    InpatientCase("194", ("J189",), (), 0.07, 800000),
    InpatientCase("190", ("J441", "J449"), (), 0.06, 900000, age_min=40),
    InpatientCase("470", ("M1711",), ("0SRC0J9",), 0.06, 1500000, surgical=True, age_min=45),
    InpatientCase("807", ("O80", "Z370"), ("10E0XZZ",), 0.08, 600000, age_min=18, age_max=44, female_only=True),
    InpatientCase("392", ("K529",), (), 0.06, 600000),
    InpatientCase("683", ("N179", "N1830"), (), 0.05, 800000, age_min=45),
    InpatientCase("065", ("I639", "I10"), (), 0.05, 900000, age_min=45),
    InpatientCase("280", ("I214", "I2510"), (), 0.05, 1400000, age_min=40),
    InpatientCase("418", ("K8000",), ("0FT44ZZ",), 0.04, 1300000, surgical=True),
    InpatientCase("885", ("F209",), (), 0.05, 900000),
    # (no alcohol/drug detoxification, DRG 896/897: every SUD diagnosis comes from plant_iet)
    InpatientCase("638", ("E1110",), (), 0.04, 700000),
    InpatientCase("343", ("K3580",), ("0DTJ4ZZ",), 0.04, 900000, surgical=True, age_min=5),
    InpatientCase("208", ("J9601", "J189"), ("5A1945Z",), 0.03, 2500000),
)
NEWBORN_CASE = InpatientCase("795", ("Z3800",), (), 1.0, 150000, age_min=0, age_max=0)
IP_REVENUE_ROOM = ("0120", 250000)  # per day, cents (semi-private room and board)
IP_REVENUE_EXTRA = (("0250", 0.8, 90000), ("0300", 0.9, 60000), ("0320", 0.4, 40000),
                    ("0450", 0.35, 120000), ("0360", 0.0, 800000))  # 0360 added for surgical cases
DISCHARGE_STATUS = (("01", 0.72), ("06", 0.12), ("03", 0.10), ("02", 0.03), ("07", 0.03))

# --------------------------------------------------------------------------------------------------
# Pharmacy: real 11-digit NDCs (package level), with a typical quantity per 30 days and a price.
MAINTENANCE_NDCS = (
    ("12634056259", 30, 4100), ("60505025301", 30, 8100), ("63739057210", 30, 2600),
    ("28595012049", 30, 22600), ("50090539602", 30, 39500), ("59651043799", 30, 9200),
    ("49999057690", 30, 11200), ("50090514802", 30, 540), ("50090469401", 30, 2250),
    ("63629454905", 90, 3200), ("58602073834", 30, 420), ("55700023028", 30, 2100),
    ("72603010502", 30, 31500), ("65862032730", 60, 7800),
)
ACUTE_NDCS = (
    ("00440509685", 14, 900), ("43547039705", 20, 700), ("43063081298", 10, 1100),
    ("68084051101", 12, 600), ("10702019210", 3, 16300), ("10019095616", 1, 82000),
    ("59011041020", 3, 29900), ("63629543609", 3, 32300),
)

# --------------------------------------------------------------------------------------------------
# Clinical observations (LOINC, unit)
LOINC_HBA1C = ("4548-4", "%")
LOINC_SYSTOLIC = ("8480-6", "mm[Hg]")
LOINC_DIASTOLIC = ("8462-4", "mm[Hg]")
LOINC_BMI = ("39156-5", "kg/m2")

# SDOH screening: AHC HRSN core questions with LOINC answer codes; ``positive`` marks a need.
@dataclass(frozen=True)
class SdohQuestion:
    domain: str
    loinc: str
    answers: tuple[str, ...]
    positive: tuple[bool, ...]


AHC_HRSN_QUESTIONS: tuple[SdohQuestion, ...] = (
    SdohQuestion("housing", "71802-3", ("LA31993-1", "LA31994-9", "LA31995-6"), (False, True, True)),
    SdohQuestion("food", "88122-7", ("LA28398-8", "LA6729-3", "LA28397-0"), (False, True, True)),
    SdohQuestion("food", "88123-5", ("LA28398-8", "LA6729-3", "LA28397-0"), (False, True, True)),
    SdohQuestion("transportation", "93030-5", ("LA32-8", "LA33-6"), (False, True)),
    SdohQuestion("utilities", "96779-4", ("LA32-8", "LA33-6", "LA32002-0"), (False, True, True)),
)
PRAPARE_QUESTIONS: tuple[SdohQuestion, ...] = (
    SdohQuestion("housing", "71802-3", ("LA30189-7", "LA30190-5"), (False, True)),  # I have housing / I do not have housing
    SdohQuestion("transportation", "93030-5", ("LA32-8", "LA30133-5", "LA30134-3"), (False, True, True)),
)

# --------------------------------------------------------------------------------------------------
# SDOH domains (the five CMS core domains) and the generator's question -> domain table.
SDOH_DOMAINS = ("food", "housing", "transportation", "utilities", "interpersonal_safety")
# AHC HRSN interpersonal safety items 7-10 (LOINC) answered Never=1 .. Frequently=5; positive above 10.
AHC_SAFETY_QUESTIONS = ("95618-5", "95617-7", "95616-9", "95615-1")
AHC_SAFETY_ANSWERS = ("LA6270-8", "LA10066-1", "LA10082-8", "LA16644-9", "LA6482-9")  # score 1..5
AHC_SAFETY_THRESHOLD = 10
SDOH_QUESTION_DOMAINS: dict[tuple[str, str], tuple[str, ...]] = {
    ("ahc_hrsn", "71802-3"): ("housing",), ("ahc_hrsn", "96778-6"): ("housing",),
    ("ahc_hrsn", "88122-7"): ("food",), ("ahc_hrsn", "88123-5"): ("food",),
    ("ahc_hrsn", "93030-5"): ("transportation",), ("ahc_hrsn", "96779-4"): ("utilities",),
    **{("ahc_hrsn", q): ("interpersonal_safety",) for q in AHC_SAFETY_QUESTIONS},
    ("prapare", "71802-3"): ("housing",), ("prapare", "93033-9"): ("housing",),
    ("prapare", "93031-3"): ("food", "utilities"), ("prapare", "93030-5"): ("transportation",),
    ("prapare", "93026-3"): ("interpersonal_safety",), ("prapare", "76501-6"): ("interpersonal_safety",),
}

# --------------------------------------------------------------------------------------------------
# The generator's own reading of the code families planted measures look for (``X*`` = prefix),
# used by ``evidence.Evidence`` to read what other producers emitted. Kept independent of the
# pipeline's value sets on purpose: a mismatch shows up as a truth the pipeline does not reproduce.
DX_FAMILIES: dict[str, tuple[str, ...]] = {
    "hypertension": ("I10",),
    "diabetes": ("E10*", "E11*", "E13*"),
    "esrd": ("N186", "Z992", "I120", "I1311", "I132"),
    "pregnancy": ("O*", "Z33*", "Z34*"),
    "depression_or_bipolar": ("F32*", "F33*", "F31*", "F341"),
    "sexual_activity": ("Z30*", "Z3A*", "O*", "Z320*", "Z34*", "Z113", "Z202", "A5*", "A6*"),
    "well_care": ("Z0000", "Z0001", "Z00110", "Z00111", "Z00121", "Z00129", "Z002", "Z003", "Z025", "Z761", "Z762"),
}
OUTPATIENT_ENCOUNTER_CODES = (
    "99202", "99203", "99204", "99205", "99211", "99212", "99213", "99214", "99215",
    *(f"9938{i}" for i in range(1, 8)), *(f"9939{i}" for i in range(1, 8)),
    "90791", "90792", "90832", "90834", "90837", "92625", "96105", "96110", "96112", "96116", "96125", "96136",
    "96138", "96156", "96158", "97161", "97162", "97163", "97165", "97166", "97167", "99078", "99339", "99340",
    "G0101", "G0402", "G0438", "G0439", "G0444",
)
WELL_CARE_CODES = ("99381", "99382", "99383", "99384", "99385", "99391", "99392", "99393", "99394", "99395", "99461",
                   "G0438", "G0439", "S0302", "S0610", "S0612", "S0613")
SEXUAL_ACTIVITY_CODES = ("81025", "84702", "84703", "58300", "11981", "J7300", "J7307", "J1050")

# --------------------------------------------------------------------------------------------------
# Codes only planting modules may emit (never in background utilisation).
MAMMOGRAPHY_CPT = ("77067", "77066", "77065")
MAMMOGRAPHY_HCPCS = ("G0202", "G0204", "G0206")
MAMMOGRAPHY_REVENUE = ("0403",)
BILATERAL_MASTECTOMY_DX = ("Z9013",)
BILATERAL_MASTECTOMY_PCS = ("0HTV0ZZ",)
UNILATERAL_MASTECTOMY_DX = ("Z9011", "Z9012")
HOSPICE_REVENUE = ("0115", "0125", "0135", "0145", "0155", "0650", "0651", "0652", "0655", "0656",
                   "0657", "0658", "0659")
HOSPICE_HCPCS = ("G9473", "G9474", "G9475", "G9476", "G9477", "G9478", "G9479", "Q5003", "Q5004",
                 "Q5005", "Q5006", "Q5007", "Q5008", "Q5009", "Q5010", "S9126", "T2042", "T2043",
                 "T2044", "T2045", "T2046")
LINE_CODE_SETS: dict[str, dict[str, tuple[str, ...]]] = {
    "hospice": {"revenue": HOSPICE_REVENUE, "hcpcs": HOSPICE_HCPCS, "pos": ("34",)},
    "outpatient_encounter": {"hcpcs": OUTPATIENT_ENCOUNTER_CODES},
    "well_care": {"hcpcs": WELL_CARE_CODES},
    "sexual_activity": {"hcpcs": SEXUAL_ACTIVITY_CODES},
}
# Cervical cancer screening (CCS)
CERVICAL_CYTOLOGY = ("88141", "88142", "88143", "88147", "88148", "88150", "88152", "88153", "88164", "88165",
                     "88166", "88167", "88174", "88175", "G0123", "G0124", "G0141", "G0143", "G0144", "G0145",
                     "G0147", "G0148", "P3000", "P3001", "Q0091")
HPV_TESTS = ("87624", "87625", "G0476")
HYSTERECTOMY_CPT = ("51925", "56308", "57540", "57545", "57550", "57555", "57556", "58150", "58152", "58200",
                    "58210", "58240", "58260", "58262", "58263", "58267", "58270", "58275", "58280", "58285",
                    "58290", "58291", "58292", "58293", "58294", "58548", "58550", "58552", "58553", "58554",
                    "58570", "58571", "58572", "58573", "58575", "58951", "58953", "58954", "58956", "59135")
HYSTERECTOMY_DX = ("Z90710", "Z90712", "Q515")
HYSTERECTOMY_PCS = ("0UTC0ZZ", "0UTC4ZZ", "0UTC7ZZ", "0UTC8ZZ")
# Colorectal cancer screening (COL)
FOBT = ("82270", "82274", "G0328")
STOOL_DNA = ("81528",)
FLEX_SIG = ("45330", "45331", "45332", "45333", "45334", "45335", "45337", "45338", "45340", "45341", "45342",
            "45346", "45347", "45349", "45350", "G0104")
CT_COLONOGRAPHY = ("74261", "74262", "74263")
COLONOSCOPY = ("44388", "44389", "44390", "44391", "44392", "44394", "44401", "44402", "44403", "44404", "44405",
               "44406", "44407", "44408", "45378", "45379", "45380", "45381", "45382", "45384", "45385", "45386",
               "45388", "45389", "45390", "45391", "45392", "45393", "45398", "G0105", "G0121")
COLORECTAL_CANCER_DX = ("C180", "C182", "C187", "C189", "C19", "C20", "C218", "Z85038", "Z85048")
TOTAL_COLECTOMY_CPT = ("44150", "44151", "44152", "44153", "44155", "44156", "44157", "44158", "44210", "44211", "44212")
TOTAL_COLECTOMY_PCS = ("0DTE0ZZ", "0DTE4ZZ", "0DTE7ZZ", "0DTE8ZZ")
# Chlamydia screening (CHL)
CHLAMYDIA_TESTS = ("87110", "87270", "87320", "87490", "87491", "87492", "87810")
CONTRACEPTION_DX = ("Z3009", "Z3041", "Z30011", "Z3042", "Z30430")
# Results on claims (CPT II): blood pressure (CBP) and HbA1c (HBD)
CPT2_SYSTOLIC = {"lt_130": "3074F", "130_139": "3075F", "ge_140": "3077F"}
CPT2_DIASTOLIC = {"lt_80": "3078F", "80_89": "3079F", "ge_90": "3080F"}
CPT2_HBA1C = {"lt_7": "3044F", "7_8": "3051F", "8_9": "3052F", "gt_9": "3046F"}
ESRD_DX = ("N186", "Z992", "I120", "I1311", "I132")
# Childhood vaccines (CIS): product codes any of the CIS value sets lists
VACCINE_CODES = ("90633", "90644", "90647", "90648", "90655", "90657", "90661", "90670", "90671", "90673", "90674",
                 "90677", "90680", "90681", "90685", "90686", "90687", "90688", "90689", "90697", "90698", "90700",
                 "90707", "90710", "90713", "90716", "90723", "90740", "90744", "90747", "90748", "90756", "G0008",
                 "G0009", "G0010")
# Substance use disorder treatment (IET): services, medications, long-acting medications
SUD_SERVICES = ("H0001", "H0005", "H0007", "H0015", "H0016", "H0022", "H0047", "H0050", "H2035", "H2036", "T1006",
                "T1012", "G2074", "G2076", "G2077", "G2080")
SUD_MEDICATIONS = ("H0020", "J0570", "J0571", "J0572", "J0573", "J0574", "J0575", "J2315", "Q9991", "Q9992", "G2067",
                   "G2068", "G2069", "G2070", "G2071", "G2072", "G2073")
SUD_LONG_ACTING = ("J0570", "J2315", "Q9991", "Q9992", "G2069", "G2070", "G2072", "G2073")
SUD_CODES = SUD_SERVICES + SUD_MEDICATIONS + ("H0035", "S9480", "G0410", "G0411")
# Depression screening (CDF): G8431 positive with plan, G8510 negative; G8432 / G8511 do not count
DEPRESSION_SCREEN_CODES = {"negative": "G8510", "positive_with_plan": "G8431", "not_screened": "G8432",
                           "positive_no_plan": "G8511"}

RESERVED_CODES = frozenset(
    MAMMOGRAPHY_CPT + MAMMOGRAPHY_HCPCS + MAMMOGRAPHY_REVENUE + BILATERAL_MASTECTOMY_DX
    + BILATERAL_MASTECTOMY_PCS + UNILATERAL_MASTECTOMY_DX + HOSPICE_REVENUE + HOSPICE_HCPCS
    + ("77061", "77062", "77063", "0401", "Z1231", "Z1239", "Z515", "R54")
    + CERVICAL_CYTOLOGY + HPV_TESTS + HYSTERECTOMY_CPT + HYSTERECTOMY_DX + HYSTERECTOMY_PCS
    + FOBT + STOOL_DNA + FLEX_SIG + CT_COLONOGRAPHY + COLONOSCOPY + COLORECTAL_CANCER_DX + TOTAL_COLECTOMY_CPT
    + TOTAL_COLECTOMY_PCS + CHLAMYDIA_TESTS + CONTRACEPTION_DX + SEXUAL_ACTIVITY_CODES
    + tuple(CPT2_SYSTOLIC.values()) + tuple(CPT2_DIASTOLIC.values()) + tuple(CPT2_HBA1C.values()) + ESRD_DX
    + tuple(DEPRESSION_SCREEN_CODES.values())
    + VACCINE_CODES + ("3E0234Z",) + SUD_CODES
    + ("99490", "99091")  # planted care-management and monitoring payments (TCOC_PMPM, PRIMARY_CARE_SHARE)
)
# Code families (prefixes) background utilisation never emits either: colorectal cancer, STIs,
# contraception and pregnancy-test families that planted measures read.
RESERVED_PREFIXES = ("C18", "C19", "C20", "C21", "Z85038", "Z85048", "A5", "A6", "Z30", "Z3A", "Z320", "Z113",
                     "Z202", "Z33", "Z34", "N186", "Z992", "I12", "I13",
                     "B01", "B02", "B05", "B06", "B15", "B16", "B170", "B18", "B19", "B26",  # illness histories (CIS)
                     "F10", "F11", "F12", "F13", "F14", "F15", "F16", "F18", "F19",          # substance use (IET)
                     "Z51", "Z52")                                                           # planned care (PCR)
# Codes background utilisation may emit only outside the measurement year or outside an age band:
# well-care visits (members 3-21 in MY: WCV plants them), ED visits in MY (ED_VISITS plants them) and
# inpatient stays with a PQI principal diagnosis in MY (PQI90 plants them; background cases of these
# DRGs are not drawn in MY).
PQI_DRGS = frozenset({"291", "193", "194", "190", "638"})
# The generator's reading of the AHRQ PQI 90 composite (principal diagnosis; age on the admission date).
PQI_DX: dict[str, tuple[tuple[str, ...], int, int]] = {
    "diabetes_short_term": (("E1010", "E1011", "E10641", "E1100", "E1101", "E11641", "E1110", "E1111", "E1300",
                             "E1301", "E1310", "E1311", "E13641"), 18, 200),
    "diabetes_long_term": (("E102*", "E103*", "E104*", "E105*", "E1061*", "E1062*", "E1063*", "E1069", "E108",
                            "E112*", "E113*", "E114*", "E115*", "E1161*", "E1162*", "E1163*", "E1169", "E118",
                            "E132*", "E133*", "E134*", "E135*", "E1361*", "E1362*", "E1363*", "E1369", "E138"), 18, 200),
    "copd_asthma": (("J41*", "J42", "J43*", "J44*", "J47*", "J45*"), 40, 200),
    "hypertension": (("I10", "I119", "I129", "I1310", "I150", "I151", "I152", "I158", "I159", "I160", "I161", "I169"), 18, 200),
    "heart_failure": (("I0981", "I110", "I130", "I132", "I50*"), 18, 200),
    "pneumonia": (("J13", "J14", "J153", "J154", "J157", "J159", "J160", "J168", "J180", "J181", "J188", "J189"), 18, 200),
    "uti": (("N10", "N119", "N12", "N151", "N159", "N16", "N2884", "N2885", "N2886", "N3000", "N3001", "N3090",
             "N3091", "N390"), 18, 200),
    "uncontrolled_diabetes": (("E10649", "E1065", "E11649", "E1165", "E13649", "E1365"), 18, 200),
    "asthma_young": (("J45*",), 18, 39),
}


def weights(pairs) -> np.ndarray:
    """Normalised weight vector from the second element of each tuple."""
    w = np.array([p[1] for p in pairs], dtype=float)
    return w / w.sum()
