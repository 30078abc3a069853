"""Helpers of the container deployment (Dockerfile, docker-compose.yml): the image's requirement
lists, its health checks, and the generated configuration docs."""
