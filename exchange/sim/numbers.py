"""Decimal helpers and the JSON encoder, so the sim writes numbers the way Binance does.

Binance mixes styles: most amounts are strings with 8 decimals (``"869.56000000"``), the
tiny-price tokens need 9, user-volume uses bare JSON numbers, order ids are strings in
one place and numbers in another. These helpers keep that in one spot.
"""

from __future__ import annotations

import json
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal, InvalidOperation
from typing import Any

EIGHT = Decimal("0.00000001")
ZERO = Decimal(0)


def dec(value: Any) -> Decimal:
    """Parse a number that arrived as a JSON number, a string or a Decimal."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or value is None:
        raise ValueError("not a number")
    try:
        d = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError("not a number") from exc
    if not d.is_finite():
        raise ValueError("not a number")
    return d


def trunc8(d: Decimal) -> Decimal:
    return d.quantize(EIGHT, rounding=ROUND_DOWN)


def floor_to(d: Decimal, step: Decimal) -> Decimal:
    return (d / step).to_integral_value(rounding=ROUND_DOWN) * step


def ceil_to(d: Decimal, step: Decimal) -> Decimal:
    return (d / step).to_integral_value(rounding=ROUND_CEILING) * step


def is_multiple(d: Decimal, step: Decimal) -> bool:
    return (d % step) == 0


def plain(d: Decimal) -> str:
    """No exponent, no trailing zeros: ``Decimal('1E+1')`` -> ``'10'``."""
    if d == 0:
        return "0"
    s = format(d, "f")
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return s


def s8(d: Decimal) -> str:
    """Binance's fixed 8-decimal string, widened when a 1e-9 tick needs more digits."""
    if d == 0:
        return "0"
    exp = d.normalize().as_tuple().exponent
    if isinstance(exp, int) and exp < -8:
        return plain(d)
    return format(d.quantize(EIGHT), "f")


class _Encoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, Decimal):
            return float(o)  # only where the real API uses JSON numbers
        return super().default(o)


def dumps(obj: Any) -> str:
    return json.dumps(obj, cls=_Encoder, ensure_ascii=False, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    """Parse JSON keeping every non-integer number exact."""
    return json.loads(text, parse_float=Decimal)
