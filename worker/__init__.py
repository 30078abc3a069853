"""Celery workers: thin glue between the broker, the store and the training core."""
