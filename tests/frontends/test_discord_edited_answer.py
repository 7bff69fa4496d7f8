"""Discord: the bot did not listen to message edits, so a user who edited their DM answering the
daily prompt (a misspelled song corrected) was told nothing, and waited for an answer to the edit
or took the new song for saved. The edit is now answered as on Telegram (EDITED_ANSWER); an edit of
any other DM, and a link's preview Discord adds to one (no edit of the user's), are let be."""
from __future__ import annotations

import asyncio

import pytest

from bot.usecases.journal import EDITED_ANSWER
from bot.usecases.mood import SPOTIFY_OFF_ERROR
from storage.models import UserRef
from tests.frontends.test_discord import ALICE, SPOTIFY_TRACK, VIDEO, cache_video, dm_answer, open_a_prompt

PREVIEW = [{"type": "video", "url": VIDEO, "title": "Never Gonna Give You Up"}]


async def told_of_the_edit(fake, answer: dict, content: str) -> list[str]:
    """What the bot says in the DM once `answer` is edited to `content` (nothing: [])."""
    mark = fake.mark()
    await fake.user_edits(answer, content)
    for _ in range(20):  # a reply comes at once; none, within a second
        await asyncio.sleep(0.05)
        if said := fake.calls_of("send_message", after=mark):
            break
    return [c.content for c in said]


async def saved_songs(db) -> list[str]:
    return [e.reply_text for e in (await db.journal.page(UserRef("discord", str(ALICE)), 10)).entries]


@pytest.mark.parametrize("answer, said", [(VIDEO, None), (SPOTIFY_TRACK, SPOTIFY_OFF_ERROR)])
async def test_an_edited_answer_to_the_prompt_is_told_edits_are_not_read(scheduled, db, answer, said):
    """Saved, or refused (a song not found, whose name the user then corrects): either way the
    edit changes nothing, and the user is told so in the DM, as a reply to the edited message."""
    fake, _ = scheduled
    await cache_video(db)
    await open_a_prompt(fake)
    sent = await fake.user_dms(answer)
    reply = await dm_answer(fake)
    assert (reply.content == said) if said else reply.embeds[0]["description"].startswith("Saved to your journal")
    assert await told_of_the_edit(fake, sent, f"{answer} on the bus") == [EDITED_ANSWER]
    told = fake.calls_of("send_message")[-1]
    assert str(told.json["message_reference"]["message_id"]) == sent["id"]
    assert await saved_songs(db) == ([VIDEO] if not said else [])


async def test_an_edited_reply_to_the_prompt_is_told_after_a_restart(scheduled, db, restart):
    """The bot remembers none of the DMs it answered before a restart (nor does discord.py's cache,
    whose on_message_edit never comes for them): a reply to a prompt, and an answer it saved, are
    still known for answers."""
    fake, _ = scheduled
    await cache_video(db)
    await open_a_prompt(fake)
    prompt = fake.calls_of("send_message")[-1]
    sent = await fake.user_dms(SPOTIFY_TRACK, reply_to=prompt.result["id"])
    assert (await dm_answer(fake)).content == SPOTIFY_OFF_ERROR
    saved = await fake.user_dms(VIDEO)
    assert (await dm_answer(fake)).embeds[0]["description"].startswith("Saved to your journal")
    await restart()
    assert await told_of_the_edit(fake, sent, "Radiohead - Creep") == [EDITED_ANSWER]
    assert await told_of_the_edit(fake, saved, f"{VIDEO} again") == [EDITED_ANSWER]
    assert await saved_songs(db) == [VIDEO]


async def test_an_edited_dm_that_answered_no_prompt_is_let_be(scheduled):
    fake, _ = scheduled
    await fake.wait_for("sync_commands", after=0)
    words = await fake.user_dms("hello there")  # no prompt open: told how to get a song's mood
    await fake.wait_for("send_message")
    command = await fake.user_dms("/stats")  # a command sent as text: told how to run it
    await fake.wait_for("send_message")
    assert await told_of_the_edit(fake, words, "hello again") == []
    assert await told_of_the_edit(fake, command, "/stats now") == []


async def test_a_preview_discord_adds_to_an_answer_is_no_edit(scheduled, db):
    """Discord updates a DM with a link when it adds the link's preview: MESSAGE_UPDATE, as for an
    edit, though the user changed nothing. Nor is one edit told twice, its preview added after it."""
    fake, _ = scheduled
    await cache_video(db)
    await open_a_prompt(fake)
    sent = await fake.user_dms(VIDEO)
    await dm_answer(fake)
    mark = fake.mark()
    await fake.previews(sent, PREVIEW)
    await asyncio.sleep(0.5)
    assert fake.calls_of("send_message", after=mark) == []
    assert await told_of_the_edit(fake, sent, f"{VIDEO} <3") == [EDITED_ANSWER]
    mark = fake.mark()
    await fake.previews(sent, PREVIEW)
    await asyncio.sleep(0.5)
    assert fake.calls_of("send_message", after=mark) == []
