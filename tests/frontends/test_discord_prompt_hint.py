"""Discord's daily prompt said "Reply to this message with a song…", Telegram's words, though in a
DM any next message answers it (a reply too); it now says to send the song there
(`rendering.PROMPT_HINT`). Telegram's, where a reply is the only way, is unchanged. A prompt sent by
an older version, worded the old way, is still a prompt where the bot recognises one by its text:
the DMs read back after a restart (`missed.unanswered`) and a prompt whose DM was cut short by a
kill, found in the DM rather than sent again (`DiscordFrontend.find_prompt`)."""
from __future__ import annotations

import pytest

from bot.frontends import render
from bot.frontends.discord import rendering
from bot.frontends.discord.missed import is_prompt, unanswered
from bot.replies import PromptMessage
from tests.frontends.test_discord import ALICE
from tests.frontends.test_discord_prompt_delivery import (killed_while_sending, resent_at_restart, scheduler_for,
                                                          ten_minutes_ago)
from tests.frontends.test_telegram import ALICE as TELEGRAM_ALICE

OLD_HINT = "Reply to this message with a song (name, link or audio file), and your own words on a new line if you like."
HINTS = pytest.mark.parametrize("hint", [rendering.PROMPT_HINT, OLD_HINT], ids=["today's", "before 2026-12-06"])


async def test_discord_s_prompt_says_to_send_the_song_in_the_dm(discord_bot):
    fake, frontend = discord_bot
    await frontend.send_prompt(PromptMessage("discord", str(ALICE), str(ALICE), "p1", "At lunch…"))
    sent = fake.calls_of("send_message")[-1]
    assert sent.content == "At lunch…\n\n" + rendering.PROMPT_HINT
    assert "Send me a song here" in sent.content and "Reply to this message" not in sent.content
    assert "your own words on a new line" in sent.content


async def test_telegram_s_prompt_still_says_to_reply_to_it(telegram):
    fake, frontend = telegram
    await frontend.send_prompt(PromptMessage("telegram", str(TELEGRAM_ALICE), str(TELEGRAM_ALICE), "p1", "At lunch…"))
    sent = await fake.wait_for("sendMessage")
    assert sent.text == f"At lunch…\n\n{OLD_HINT}" == render.prompt_text("At lunch…")


@HINTS
def test_a_prompt_read_back_is_known_by_either_hint(hint):
    def said(n: int, content: str, *, bot: bool = False) -> dict:
        return {"id": str(n), "type": 0, "content": content, "author": {"id": "1" if bot else str(ALICE), "bot": bot}}

    prompt = f"What song fits today?\n\n{hint}"
    assert is_prompt(said(3, prompt, bot=True))
    history = [said(4, "Creep"), said(3, prompt, bot=True), said(2, "Saved: …", bot=True)]
    assert [(int(m.data["id"]), m.prompt) for m in unanswered(history, bot_id=1)] == [(4, 3)]


@HINTS
async def test_a_prompt_cut_short_by_a_kill_is_found_in_the_dm_in_either_wording(discord_bot, restart, db, usecases,
                                                                                hint):
    fake, frontend = discord_bot
    scheduler = await scheduler_for(fake, frontend, db, usecases, at=ten_minutes_ago())
    killed = await killed_while_sending(fake, scheduler, "send_message")
    shown, = [m for m in fake.channel_messages[str(fake.dm_channel_id(ALICE))] if m.get("content", "").startswith(
        killed.phrase)]
    shown["content"] = f"{killed.phrase}\n\n{hint}"  # as the version that sent it worded it
    assert await resent_at_restart(fake, restart, db, usecases, killed) == 0
