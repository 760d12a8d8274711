"""The single error type raised by the analysis package."""


class AnalysisError(ValueError):
    """An input to a statistical computation is invalid, or no valid answer exists for it.

    It subclasses ValueError so callers that already treat bad values as ValueError keep
    working; the Django layer turns it into a 422 with its message.
    """
