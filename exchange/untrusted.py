"""Numbers from the exchange are untrusted: the limits they must respect, and the check.

A hostile or broken reply can carry NaN, sNaN, Infinity, ``1e999``, a negative volume or
an absurd price. Decimal arithmetic on those either raises far from where the number came
in (``NaN >= target``) or silently misleads the planner (a volume of -500 "needs" 84
more trades). So every number field of ``exchange.models`` is annotated with one of the
kinds below, and ``check_numbers`` walks each decoded reply: a number outside its kind's
range raises ``BadNumber`` naming the field by its wire path, e.g.
``data.tradeVolumeInfoList[AOP].volume is NaN``; the client turns that into
``BadResponse`` prefixed with the endpoint.

The limits, in one place (``value`` must be finite, and):

==============  =========================  ==================================================
kind            range                      why that ceiling
==============  =========================  ==================================================
PRICE           0 <= p < 1e12              no token costs a trillion USDT
QUANTITY        0 <= q < 1e15              tiny-price tokens trade in billions of units
AMOUNT          0 <= a < 1e15              USDT: volumes, quote amounts, valuations
FEE             0 <= f < 1e15              fees may be in token units (like QUANTITY)
MUL_POINT       0 <= m < 100               seen: 1, 2, 4
FILTER          0 <= v < 1e20              symbol limits (maxQty, maxPrice ...), not money
CHANGE          -1e15 < c < 1e15           24h price changes and percentages (signed)
SCORE           0 <= s < 1e6               Alpha Points (a day's are about log2 of volume)
ID              digits only, < 20 digits   order, list and trade ids (numbers or strings)
UNANNOTATED     -1e20 < x < 1e20           a Decimal field a model forgot to annotate
==============  =========================  ==================================================

JSON has no NaN or Infinity literal, but a hostile server writes them anyway (bare
``NaN``); ``tolerant_json`` re-reads such a body with those tokens turned into strings,
so the same check names the field instead of failing on the whole reply.
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import msgspec


@dataclass(frozen=True, slots=True)
class Kind:
    """What a number is, and the range it must be in (``ceiling`` is exclusive)."""

    name: str
    ceiling: Decimal
    signed: bool = False


PRICE = Kind("price", Decimal("1e12"))
QUANTITY = Kind("quantity", Decimal("1e15"))
AMOUNT = Kind("USDT amount", Decimal("1e15"))
FEE = Kind("fee", Decimal("1e15"))
MUL_POINT = Kind("mulPoint", Decimal("100"))
FILTER = Kind("filter value", Decimal("1e20"))
CHANGE = Kind("change", Decimal("1e15"), signed=True)
SCORE = Kind("score", Decimal("1e6"))
ID = Kind("id", Decimal("1e19"))
UNANNOTATED = Kind("number", Decimal("1e20"), signed=True)

ID_MAX_DIGITS = 19
LABEL_FIELDS = ("tokenName", "filterType", "orderId", "symbol")
"""A list element is named by the first of these it has (``[AOP]``), else by its index."""
_SHORT = 40  # characters of a bad value quoted in a message


class BadNumber(ValueError):
    """A number outside its kind's range; ``field`` is the wire path, ``problem`` what
    is wrong (``is NaN``, ``is negative (-500)`` ...)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem


def _quote(value: object) -> str:
    s = str(value)
    return s if len(s) <= _SHORT else s[: _SHORT - 3] + "..."


def _bound(kind: Kind) -> str:
    c = kind.ceiling
    return format(c, "f") if c < 1_000_000 else f"{c.normalize():E}"


def number_problem(value: Decimal, kind: Kind) -> str | None:
    """Why ``value`` cannot be a ``kind``, or None when it can."""
    if value.is_snan():
        return "is sNaN"
    if value.is_nan():
        return "is NaN"
    if value.is_infinite():
        return "is -Infinity" if value.is_signed() else "is Infinity"
    if value < 0 and not kind.signed:
        return f"is negative ({_quote(value)})"
    if value.copy_abs() >= kind.ceiling:  # no context: abs() can overflow on 1E+999999999
        return f"is absurdly large ({_quote(value)}; a {kind.name} is below {_bound(kind)})"
    return None


def id_problem(value: object) -> str | None:
    """Why ``value`` cannot be an exchange id (a non-negative integer, as int or digits)."""
    if isinstance(value, bool):
        return f"is not an id ({value})"
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        return f"is not an id ({type(value).__name__})"
    if value.startswith("-") and value[1:].isdigit():
        return f"is negative ({_quote(value)})"
    if not (value.isascii() and value.isdigit()):
        return f"is not an id ({_quote(value)!r})"
    if len(value.lstrip("0")) > ID_MAX_DIGITS:
        return f"is absurdly large ({_quote(value)}; an id has at most {ID_MAX_DIGITS} digits)"
    return None


# --------------------------------------------------------------------------- the walk


@dataclass(frozen=True, slots=True)
class _Field:
    attr: str
    wire: str
    kind: Kind | None


_plans: dict[type, tuple[_Field, ...]] = {}


def kind_of(tp: Any) -> Kind | None:
    """The ``Kind`` an annotation carries (``Annotated[Decimal, PRICE] | None`` ...)."""
    if typing.get_origin(tp) is typing.Annotated:
        for meta in tp.__metadata__:
            if isinstance(meta, Kind):
                return meta
    for arg in typing.get_args(tp):
        k = kind_of(arg)
        if k is not None:
            return k
    return None


def plan(cls: type) -> tuple[_Field, ...]:
    """A reply model's fields with their wire names and kinds, built once per class."""
    plan = _plans.get(cls)
    if plan is None:
        plan = _plans[cls] = tuple(
            _Field(f.name, f.encode_name, kind_of(f.type)) for f in msgspec.structs.fields(cls)
        )
    return plan


def _label(item: object, index: int) -> str:
    if isinstance(item, msgspec.Struct):
        wire = {f.wire: f.attr for f in plan(type(item))}
        for name in LABEL_FIELDS:
            attr = wire.get(name)
            value = getattr(item, attr, None) if attr else None
            if isinstance(value, str) and 0 < len(value) <= 32 and value.isprintable():
                return value
    return str(index)


def _field_name(path: str, f: _Field) -> str:
    name = f"{path}.{f.wire}"
    return f"{name} ({f.attr})" if len(f.wire) <= 2 and f.attr != f.wire else name


def _check_value(value: object, kind: Kind | None, name: str) -> None:
    if isinstance(value, msgspec.Struct):
        check_numbers(value, name)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_value(item, kind, f"{name}[{_label(item, i)}]")
    elif kind is ID:
        if value is not None and (problem := id_problem(value)):
            raise BadNumber(name, problem)
    elif isinstance(value, Decimal):
        # every model field should carry its kind (a test checks); a forgotten one still
        # gets NaN, infinities and absurd sizes refused
        if problem := number_problem(value, kind or UNANNOTATED):
            raise BadNumber(name, problem)


def check_numbers(obj: object, path: str = "data", kind: Kind | None = None) -> None:
    """Raise ``BadNumber`` for the first number of ``obj`` (a decoded reply: a model
    struct, a list of them, or a plain value of ``kind``) outside its kind's range.
    Every reply and stream report goes through here: the common case (a finite Decimal
    in range, a string, None) costs a type test and two comparisons, and a field's name is
    only spelled out for a problem or a nested value."""
    if not isinstance(obj, msgspec.Struct):
        _check_value(obj, kind, path)
        return
    for f in plan(type(obj)):
        value = getattr(obj, f.attr)
        if value is None or (type(value) is str and f.kind is not ID):
            continue
        if type(value) is Decimal and value.is_finite():
            k = f.kind or UNANNOTATED
            if (k.signed or value >= 0) and value.copy_abs() < k.ceiling:
                continue
        _check_value(value, f.kind, _field_name(path, f))


# --------------------------------------------------------------------------- bodies

_number_encoder = msgspec.json.Encoder(decimal_format="number")


def tolerant_json(body: bytes | str) -> bytes | None:
    """``body`` with bare ``NaN`` / ``Infinity`` / ``-Infinity`` tokens rewritten as
    strings (every other number kept exactly), or None when it is not JSON even so."""
    try:
        obj = json.loads(body, parse_float=Decimal, parse_constant=str)
        return _number_encoder.encode(obj)
    except (ValueError, TypeError, OverflowError, RecursionError):
        return None


def msgspec_field(exc: msgspec.ValidationError, root: str = "data") -> str:
    """A msgspec error with its ``$`` path rewritten from ``root``:
    ``Expected `int`, got `str` - at `$[0].time``` -> ``data[0].time: Expected ...``."""
    text = str(exc)
    head, sep, where = text.rpartition(" - at `$")
    if not sep:
        return f"{root}: {text}"
    return f"{root}{where.rstrip('`')}: {head}"


GENERIC_SEGMENTS = frozenset({"list", "place", "cancel", "alpha"})


def endpoint_name(path: str) -> str:
    """A short name for an endpoint path, for messages: ``user-volume``, ``ticker``,
    ``token/list``, ``oto-order/place`` ..."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if not parts:
        return path or "reply"
    if parts[-1] in GENERIC_SEGMENTS and len(parts) > 1:
        return "/".join(parts[-2:])
    return parts[-1]
