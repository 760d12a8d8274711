"""Request bodies shared by the API tests: DESIGN.md's example definition."""

URL = "/api/v1/experiments/"


def valid_body(**overrides) -> dict:
    body = {
        "key": "checkout-button",
        "name": "Checkout button colour",
        "hypothesis": "A green button raises checkout conversion",
        "design": "ab",
        "metric": {"name": "checkout_conversion", "type": "binary", "direction": "increase"},
        "baseline_mean": 0.10, "baseline_sd": None, "mde": 0.01,
        "alpha": 0.05, "power": 0.8, "alternative": "two-sided",
        "duration": "P14D", "grace_period": "PT0S", "traffic_percent": 100,
        "auto_promote": False,
        "variants": [
            {"key": "control", "weight": 1, "is_control": True, "payload": {"color": "blue"}},
            {"key": "green", "weight": 1, "payload": {"color": "green"}},
        ],
    }
    body.update(overrides)
    return body
