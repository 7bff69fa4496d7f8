"""A daily prompt time that no test run meets, whatever the hour the suite runs at.

A scheduler started on the real clock sends at once the prompt of a user whose time passed under 3
hours ago (the catch-up after a restart), and APScheduler fires a job whose time comes during a
test: a test with a fixed time (21:30 in Lisbon) failed from 21:30 to 00:30 there, and passed the
rest of the day. Twelve hours from the suite's start is far from both.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


def far_from_now(zone: str = "Europe/Lisbon") -> time:
    local = datetime.now(ZoneInfo(zone)) + timedelta(hours=12)
    return time(local.hour, local.minute)


FAR_IN_LISBON = far_from_now()
FAR_IN_LISBON_TEXT = FAR_IN_LISBON.strftime("%H:%M")
