"""A command typed in bold (or italic…) over the whole message: Telegram lists the formatting's
entity beside the command's, at the same offset, and may list it first (it sorts by offset, the
longer first). It is still the command."""
from __future__ import annotations

import pytest

from bot.replies import STAGE_DOWNLOADING, STAGE_FINDING, STAGE_LISTENING

GROUP = -100555
ALICE = 42
TEXT = "/mood song"


def entities(order: str, text: str = TEXT) -> list[dict]:
    bold = {"type": "bold", "offset": 0, "length": len(text)}
    command = {"type": "bot_command", "offset": 0, "length": len(text.split()[0])}
    return [bold, command] if order == "bold first" else [command, bold]


async def reply_to(fake, text: str, **sent) -> str:
    """The answer the chat shows in the end (past the progress stages)."""
    mark = fake.mark()
    await fake.user_sends(text, **sent)
    stages = (STAGE_FINDING, STAGE_DOWNLOADING, STAGE_LISTENING)
    return (await fake.wait_for_reply(lambda call: call.text not in stages, after=mark, timeout=5)).text


@pytest.mark.parametrize("order", ["bold first", "command first"])
@pytest.mark.parametrize("where", [{"chat": GROUP, "user": ALICE}, {}], ids=["group", "private"])
async def test_a_command_in_bold_is_the_command(telegram, order, where):
    fake, _ = telegram
    plain = await reply_to(fake, TEXT, **where)
    bold = await reply_to(fake, TEXT, **where, extra={"entities": entities(order)})
    assert bold == plain


@pytest.mark.parametrize("order", ["bold first", "command first"])
async def test_an_unknown_command_in_bold_is_still_a_command(telegram, order):
    """Not a private text's hint ('to get a song's mood, send /mood…'): the command is named."""
    fake, _ = telegram
    plain = await reply_to(fake, "/moood song")
    bold = await reply_to(fake, "/moood song", extra={"entities": entities(order, "/moood song")})
    assert bold == plain and "/mood" in bold
