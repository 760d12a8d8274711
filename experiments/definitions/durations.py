"""ISO 8601 durations as the API, the admin and the protocol write them."""

from datetime import timedelta


def iso_duration(value: timedelta) -> str:
    """A timedelta as a compact ISO 8601 duration: P14D, PT30S, P1DT2H; zero is PT0S."""
    total = value.total_seconds()
    sign, total = ("-", -total) if total < 0 else ("", total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    date_part = f"{int(days)}D" if days else ""
    time_part = "".join(
        f"{_number(amount)}{unit}" for amount, unit in ((hours, "H"), (minutes, "M"), (seconds, "S")) if amount
    )
    if not date_part and not time_part:
        return "PT0S"
    return f"{sign}P{date_part}" + (f"T{time_part}" if time_part else "")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6f}".rstrip("0")
