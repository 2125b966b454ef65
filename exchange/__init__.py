"""Binance Alpha web API: REST client, user stream, order maths, and a simulated exchange."""
