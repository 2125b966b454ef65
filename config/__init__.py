"""Configuration: the YAML schema and its layering, the credentials store, secret-safe logging."""
