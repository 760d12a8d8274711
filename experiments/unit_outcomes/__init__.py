"""Each unit's observations summed (`UnitOutcome`): written at ingestion (`write`), aggregated by the analysis (`read`)."""
