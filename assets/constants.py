INGEST_GROUP = "ingest"
MEASURES_GROUP = "measures"
STRATIFICATION_GROUP = "stratification"
REPORTS_GROUP = "reports"
EQUITY_PLANS_GROUP = "equity_plans"
VALIDATION_GROUP = "validation"
OWNERS = ["team:equity-data-engineering"]
