"""The long-lived service: decides who trades, runs one process per user, answers the CLI."""
