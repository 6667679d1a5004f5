"""Collection standards: race/ethnicity (OMB SPD 15 2024, CDC REC), language, geography, SDOH."""
