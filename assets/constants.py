INGEST_GROUP = "ingest"
MEASURES_GROUP = "measures"
STRATIFICATION_GROUP = "stratification"
REPORTS_GROUP = "reports"
VALIDATION_GROUP = "validation"
OWNERS = ["team:equity-data-engineering"]
