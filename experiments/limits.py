"""Sizes the platform accepts, in one place: the models' columns, the API's parsers and the import use them."""

# Identifiers a client chooses.
MAX_UNIT_LENGTH = 255          # a unit id (user id, request id)
MAX_ID_LENGTH = 255            # an observation's idempotency id
MAX_KEY_LENGTH = 100           # an experiment's or a variant's key (a slug)
MAX_NAME_LENGTH = 200          # an experiment's name
MAX_REASON_LENGTH = 2000       # why a test was stopped

# Batch sizes per request.
MAX_UNITS_PER_REQUEST = 10_000
MAX_OBSERVATIONS_PER_REQUEST = 10_000
