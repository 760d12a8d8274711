"""The experiments app: models, services, REST API, admin and Celery tasks."""
