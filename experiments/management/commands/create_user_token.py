"""`manage.py create_user_token USERNAME`: prints a new personal API token alone on stdout."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from experiments.models import UserToken


class Command(BaseCommand):
    help = "Create a personal API token for an existing user and print it; only its hash is stored."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="cli", help="A label for the token (default: cli).")

    def handle(self, *args, username: str, name: str, **options):
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user named {username!r}.")
        _, token = UserToken.objects.create_key(name=name, user=user)
        self.stdout.write(token)
