"""Exact parsing of the minimum c-value t (a number or a "p/q" string) into a Fraction."""

from __future__ import annotations

from fractions import Fraction
from numbers import Real

from .errors import SolverError
from .limits import MAX_FRACTION_DENOMINATOR

DEFAULT_MIN_C_VALUE = Fraction(1, 6)


def parse_min_c_value(value: object, field: str = "min_c_value") -> Fraction:
    """Return t as an exact Fraction in (0, 1]; decimals are read as written (0.25 -> 1/4)."""
    if value is None:
        return DEFAULT_MIN_C_VALUE
    if type(value) is Fraction and 0 < value.numerator <= value.denominator <= MAX_FRACTION_DENOMINATOR:
        return value  # already exact and in range (a parsed request's t): the checks below in integers
    if isinstance(value, bool):
        raise SolverError(field, "must be a number or a 'p/q' string, not a boolean")
    if not isinstance(value, (Real, str)):
        raise SolverError(field, "must be a number or a 'p/q' string")
    if isinstance(value, str) and len(value) > 64:  # the raw string, as the API schema's maxLength counts it
        raise SolverError(field, "is too long to be a fraction: at most 64 characters are accepted")
    try:
        if isinstance(value, (Fraction, int)):
            t = Fraction(value)
        elif isinstance(value, str):
            t = Fraction(value.strip())
        else:
            t = Fraction(repr(float(value)))
    except (ValueError, ZeroDivisionError, OverflowError):
        raise SolverError(field, f"cannot be read as a number or a 'p/q' fraction: {value!r}") from None
    if t.denominator > MAX_FRACTION_DENOMINATOR:
        raise SolverError(field, f"denominator must be at most {MAX_FRACTION_DENOMINATOR}")
    if not (0 < t <= 1):
        shown = (
            format_fraction(t)
            if t.numerator.bit_length() <= 64
            else ("a number above 1" if t > 1 else "a number below 0")
        )
        raise SolverError(field, f"must satisfy 0 < t <= 1 (a c-value never exceeds 1), got {shown}")
    return t


def format_fraction(value: Fraction) -> str:
    """Render a Fraction as 'p/q' (or 'p' when integral)."""
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
