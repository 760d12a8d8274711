"""`manage.py create_service_key NAME`: prints a new service key alone on stdout."""

from django.core.management.base import BaseCommand

from experiments.models import ServiceKey


class Command(BaseCommand):
    help = "Create a key for a service (assignments and observations only) and print it; only its hash is stored."

    def add_arguments(self, parser):
        parser.add_argument("name", help="What the service is, e.g. web-shop.")

    def handle(self, *args, name: str, **options):
        _, key = ServiceKey.objects.create_key(name=name)
        self.stdout.write(key)
