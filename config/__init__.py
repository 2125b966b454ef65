"""Configuration: the YAML schema and its layering, the credentials store, secret-safe logging."""

from config.richguard import keep_rich_out as _keep_rich_out

_keep_rich_out()  # before anything imports structlog: see config/richguard.py
