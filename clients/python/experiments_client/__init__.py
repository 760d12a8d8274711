"""A client of the experiments platform that assigns units locally (standard library only).

    from experiments_client import Client
    client = Client("https://experiments.example.com", key="<service key>")
    answer = client.assign("checkout-button", "user-42")   # the REST endpoint's answer, computed here
    client.track("checkout-button", "user-42", 1)          # queued, sent in the background
    client.close()                                         # flushes (also done at exit)
"""

from experiments_client.client import Client
from experiments_client.errors import ClientError, ConfigurationUnavailable, UnknownExperiment

__all__ = ["Client", "ClientError", "ConfigurationUnavailable", "UnknownExperiment"]
__version__ = "0.1.0"
