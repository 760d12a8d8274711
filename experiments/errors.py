"""The one domain error type that services raise; the API turns it into a JSON answer."""


class ExperimentError(Exception):
    """A rule of the platform was broken; `status_code` is the HTTP status that says which kind."""

    status_code = 400

    def __init__(self, detail: str, **extra):
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidDefinition(ExperimentError):
    """The definition breaks a protocol rule; `errors` maps each field path to its messages."""

    status_code = 400

    def __init__(self, errors: dict[str, list[str]]):
        first_field, messages = next(iter(errors.items()))
        super().__init__(f"{first_field}: {messages[0]}", errors=errors)
        self.errors = errors


class MalformedItems(ExperimentError):
    """Items of a batch are not of the expected shape; `errors` maps each item field to its messages."""

    status_code = 400

    def __init__(self, detail: str, errors: dict[str, list[str]], indexes: list[int]):
        super().__init__(detail, errors=errors, indexes=indexes)


class WrongState(ExperimentError):
    """The experiment is not in a state that allows this action."""

    status_code = 409


class RuleViolation(ExperimentError):
    """The request is well formed but breaks a rule (e.g. an observation for an unassigned unit)."""

    status_code = 422


class Locked(ExperimentError):
    """Results stay hidden until the test period and its grace period are over."""

    status_code = 423
