"""A simulated Binance Alpha exchange (aiohttp): same paths, envelopes, stream and quirks."""
