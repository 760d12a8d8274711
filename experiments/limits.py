"""Sizes the platform accepts, in one place: the models' columns, the API's parsers and the import use them."""

# Identifiers a client chooses.
MAX_UNIT_LENGTH = 255          # a unit id (user id, request id)
MAX_ID_LENGTH = 255            # an observation's idempotency id
MAX_KEY_LENGTH = 100           # an experiment's or a variant's key (a slug)
MAX_NAME_LENGTH = 200          # an experiment's name
MAX_REASON_LENGTH = 2000       # why a test was stopped

# Metrics per experiment: the primary and up to 19 secondary metrics and guardrails.
MAX_METRICS = 20

# Batch sizes per request.
MAX_UNITS_PER_REQUEST = 10_000
MAX_OBSERVATIONS_PER_REQUEST = 10_000

# Request bodies (bytes), checked from Content-Length before a byte is read and again while
# reading (experiments/api/middleware.py, experiments/api/renderers.py). 10,000 observations
# with 255-character units and ids take about 5.5 MB; the bulk limit leaves room to spare.
MAX_BODY_BYTES = 2_621_440             # Django's DATA_UPLOAD_MAX_MEMORY_SIZE default (2.5 MiB)
MAX_BULK_BODY_BYTES = 16 * 1024 * 1024  # observations and batch assignments (16 MiB)
MAX_JSON_DEPTH = 64                     # nesting levels of arrays and objects in a JSON body

# Numbers. Every bound keeps the analysis's sums and squares finite: 10^12 squared is 10^24,
# times billions of rows stays far below a double's 1.8e308.
MAX_ABS_VALUE = 1e12                    # an observation's value, |value| <= this
MAX_LATENCY_MS = 1e9                    # an observation's latency_ms, in [0, this]
MAX_WEIGHT = 1e6                        # a variant's weight, in (0, this]
MAX_ABS_BASELINE = 1e12                 # |baseline_mean|, baseline_sd, |mde| <= this
MIN_SAMPLE_SIZE = 2                     # sample_size_per_variant, in [MIN, MAX]
MAX_SAMPLE_SIZE = 1_000_000_000
MAX_TRAFFIC_PERCENT = 100.0             # traffic_percent, in (0, this]
MAX_DURATION_DAYS = 5 * 366             # duration and grace_period, at most 1830 days (5 years)


def text_problem(text: str) -> str | None:
    """Why a text cannot be stored (PostgreSQL refuses NUL; UTF-8 has no lone surrogates), or None."""
    if "\x00" in text:
        return "Must not contain NUL characters (\\u0000)."
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "Must not contain unpaired surrogates (\\ud800-\\udfff)."
    return None
