"""`manage.py setup_demo`: a demo admin (login printed), a running demo experiment and a finished example."""

import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from experiments.demo import EXAMPLE_KEY, load_finished_example
from experiments.models import Experiment, UserToken
from experiments.services.definition import experiment_create
from experiments.services.lifecycle import experiment_start

DEMO_KEY = "checkout-button"


def demo_definition() -> dict:
    """DESIGN.md's example: does a green checkout button raise conversion from 10%?"""
    return {
        "key": DEMO_KEY, "name": "Checkout button colour",
        "hypothesis": "A green button raises checkout conversion",
        "design": "ab", "metric_name": "checkout_conversion", "metric_type": "binary",
        "metric_direction": "increase", "baseline_mean": 0.10, "baseline_sd": None, "mde": 0.01,
        "sample_size_per_variant": None, "alpha": 0.05, "power": 0.8, "alternative": "two-sided",
        "duration": timedelta(days=14), "grace_period": timedelta(0), "traffic_percent": 100.0,
        "auto_promote": False,
        "variants": [
            {"key": "control", "weight": 1.0, "is_control": True, "payload": {"color": "blue"}},
            {"key": "green", "weight": 1.0, "is_control": False, "payload": {"color": "green"}},
        ],
    }


class Command(BaseCommand):
    help = "Create (or reset the password of) the demo admin, print its login, and load a demo experiment."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username: str, **options):
        User = get_user_model()
        admin, _ = User.objects.get_or_create(username=username, defaults={"email": "admin@example.com"})
        password = secrets.token_urlsafe(12)
        admin.is_staff = admin.is_superuser = True
        admin.set_password(password)
        admin.save()
        _, token = UserToken.objects.create_key(name="demo", user=admin)

        if not Experiment.objects.filter(key=DEMO_KEY).exists():
            experiment = experiment_create(actor=admin, definition=demo_definition())
            experiment_start(experiment=experiment, actor=admin)
        if not Experiment.objects.filter(key=EXAMPLE_KEY).exists():
            self.stdout.write(f"Running the finished example {EXAMPLE_KEY!r} for real: a 10-second test and a "
                              "5-second grace period, then its analysis (about 15 seconds, once) ...")
            load_finished_example(actor=admin)

        self.stdout.write(
            "\n"
            f"  Admin:     http://127.0.0.1:8000/admin/  user {username}  password {password}\n"
            f"  API token: {token}\n"
            f"  Try:       curl -H 'Authorization: Bearer {token}' http://127.0.0.1:8000/api/v1/experiments/\n"
            f"  Finished:  http://127.0.0.1:8000/reports/{EXAMPLE_KEY}/  (several metrics, a guardrail that held)\n"
        )
