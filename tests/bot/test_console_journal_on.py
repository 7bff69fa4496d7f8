"""`/journal on <HH:MM> <zone>` as typed with a Chinese or Japanese input method in full-width mode:
its digits, colon and letters look like the ASCII ones and mean the same time and zone."""
from __future__ import annotations

import pytest

from storage.models import UserRef
from tests.bot.test_console import chat


@pytest.mark.parametrize("typed, said", [
    ("/journal on ２１：３０ Asia/Tokyo", "every day at 21:30 (Asia/Tokyo)"),
    ("/journal on 7：05 Asia/Shanghai", "every day at 07:05 (Asia/Shanghai)"),
    ("/journal on ２１:３０ ＵＴＣ＋９", "every day at 21:30 (UTC+09:00)"),
    ("/journal on 21:30 Ａｓｉａ/Ｔｏｋｙｏ", "every day at 21:30 (Asia/Tokyo)"),
    ("/journal on ２１：３０\u3000Asia/Tokyo", "every day at 21:30 (Asia/Tokyo)"),  # an ideographic space
])
async def test_a_full_width_time_or_zone_is_the_time_and_zone_it_looks_like(db, counting, tmp_path, typed, said):
    out = await chat(db, counting, tmp_path, [typed, "/quit"])
    assert f"Journal on: {said}" in out, out
    user = await db.users.get(UserRef("console", "local"))
    assert user.journal_enabled and f"{user.prompt_time:%H:%M}" == said.split()[3]
