"""What `Client.assign` raises when it cannot answer as the server would."""


class ClientError(Exception):
    """Base class of the client's errors."""


class ConfigurationUnavailable(ClientError):
    """No configuration was ever fetched (the server has not answered since the client started).

    The client cannot know the control without one: show your default and try again later.
    """


class UnknownExperiment(ClientError, KeyError):
    """The configuration has no such experiment: unknown, or a draft (the server answers 404 or 409)."""
