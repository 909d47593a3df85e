"""``date_heure``: today's date and the time, in French, from the context's clock."""

from __future__ import annotations

from datetime import datetime

WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
          "novembre", "décembre")


def french_date(moment: datetime) -> str:
    """``samedi 6 décembre 2026``; the first of the month is written ``1er``, as in French."""
    day = "1er" if moment.day == 1 else str(moment.day)
    return f"{WEEKDAYS[moment.weekday()]} {day} {MONTHS[moment.month - 1]} {moment.year}"


def date_and_time(moment: datetime) -> dict:
    """The result of ``date_heure``: ``{"date": "samedi 6 décembre 2026", "heure": "14:05"}``."""
    return {"date": french_date(moment), "heure": f"{moment.hour:02d}:{moment.minute:02d}"}
