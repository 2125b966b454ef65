"""The per-user trading process: batch loop, OTO round trips, order tracking, journal."""
