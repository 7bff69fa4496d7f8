"""A message edited to ask for a song's mood (a voice note captioned '/mood' afterwards, another
bot's command corrected to /mood) is answered, once: a message the bot answered already, or may
have (before this run started, where it cannot tell), is not answered again, nor a second edit."""
from __future__ import annotations

import time

import pytest

from bot.frontends import render
from bot.frontends.telegram import EDIT_NOT_ANSWERED, GROUP_MOOD_USAGE
from storage.inbox import Arrival
from tests.fakes.telegram_api import BOT_ID, BOT_USERNAME, FakeTelegramBotAPI
from tests.frontends.conftest import TELEGRAM_TOKEN, cache_upload, telegram_on
from tests.frontends.test_telegram_mentioned import named

GROUP = -100999
ALICE = 42
AUDIO = b"OggS a voice note Alice sang"
SOURCE = f"telegram:{BOT_ID}"


def moods_after(fake, mark: int) -> list:
    return [c for c in fake.calls[mark:] if c.method in ("sendMessage", "editMessageText") and "Mood:" in c.text]


async def all_handled(fake, chat: int = GROUP) -> None:
    """Return once the updates Alice sent so far are handled: her /help after them is answered
    (one sender's updates run in order)."""
    mark = fake.mark()
    await fake.user_sends("/help", chat=chat, user=ALICE)
    await fake.wait_for("sendMessage", lambda c: "/mood" in c.text, after=mark)


def never_delivered(fake, date: float, chat: int = GROUP, **media) -> dict:
    """A group message the bot was never given (privacy mode: no command in it), sent at `date`; or,
    `chat` Alice's, a private message the bot handled in a run before this one."""
    return {"message": {"message_id": 777_000 + int(date) % 1000, "date": int(date),
                        "chat": fake._chat(chat, "private" if chat > 0 else "supergroup"),
                        "from": {"id": ALICE, "is_bot": False, "first_name": "Alice"}, **media}}


async def test_a_voice_note_whose_caption_is_edited_to_ask_for_its_mood_is_answered_once(telegram, db):
    fake, _ = telegram
    sent = await fake.user_sends(None, chat=GROUP, user=ALICE,
                                 voice=fake.audio_attachment(await cache_upload(db, AUDIO, "sad"), kind="voice"))
    await all_handled(fake)  # a group's voice note without /mood: nobody asked the bot
    mark = fake.mark()
    await fake.user_edits(sent, "/mood")
    answer = await fake.wait_for_reply(lambda c: "Mood:" in c.text, after=mark)
    assert answer.params["reply_parameters"]["message_id"] == sent["message"]["message_id"]
    await fake.user_edits(sent, "/mood what is this?")  # edited again: answered already
    await all_handled(fake)
    assert len(moods_after(fake, mark)) == 1


async def test_another_bot_s_command_corrected_to_mood_is_answered(telegram):
    fake, _ = telegram
    sent = await fake.user_sends("/play", chat=GROUP, user=ALICE)  # another bot's: left to it
    await all_handled(fake)
    mark = fake.mark()
    await fake.user_edits(sent, "/mood")
    answer = await fake.wait_for_reply(after=mark)
    assert answer.text == GROUP_MOOD_USAGE
    assert answer.params["reply_parameters"]["message_id"] == sent["message"]["message_id"]


@pytest.mark.parametrize("where", [{"chat": GROUP, "caption": "/mood"}, {"chat": ALICE, "caption": None}],
                         ids=["group", "private"])
async def test_a_message_answered_already_is_not_answered_again_when_edited(telegram, db, where):
    """A voice note captioned /mood in a group, or sent privately (every private message is
    answered): its mood was told; an edit adding or changing '/mood' tells it no second time."""
    fake, _ = telegram
    mark = fake.mark()
    sent = await fake.user_sends(where["caption"], chat=where["chat"], user=ALICE,
                                 voice=fake.audio_attachment(await cache_upload(db, AUDIO, "sad"), kind="voice"))
    await fake.wait_for_reply(lambda c: "Mood:" in c.text, after=mark)
    await fake.user_edits(sent, "/mood again please")
    await all_handled(fake, where["chat"])
    assert len(moods_after(fake, mark)) == 1


async def test_an_edit_while_the_message_is_still_being_answered_is_not_answered_too(telegram, db):
    fake, _ = telegram
    fake.delay_next("getFile", 2.0)  # the first answer takes a while: the edit comes meanwhile
    mark = fake.mark()
    sent = await fake.user_sends("/mood", chat=GROUP, user=ALICE,
                                 voice=fake.audio_attachment(await cache_upload(db, AUDIO, "sad"), kind="voice"))
    await fake.user_edits(sent, "/mood (my first song)")
    # The first answer, in the status message shown meanwhile ("Listening…").
    await fake.wait_for("editMessageText", lambda c: "Mood:" in c.text, after=mark, timeout=5)
    await all_handled(fake)
    assert len(moods_after(fake, mark)) == 1


async def test_a_message_the_bot_was_never_given_is_answered_when_edited_to_ask(telegram, db):
    """In privacy mode Telegram gives a bot a group's messages with a command only: its edit adding
    /mood is the first the bot hears of it."""
    fake, frontend = telegram
    voice = {"voice": fake.audio_attachment(await cache_upload(db, AUDIO, "sad"), kind="voice")}
    mark = fake.mark()
    await fake.user_edits(never_delivered(fake, frontend.edits_from + 1, **voice), "/mood")
    await fake.wait_for_reply(lambda c: "Mood:" in c.text, after=mark)


def replies_to(fake, message: dict, mark: int) -> list[str]:
    """The texts sent since `mark` under `message` (a `user_sends` update's), Telegram taking them."""
    return [c.text for c in fake.calls_of("sendMessage", after=mark) if c.status == 200
            and c.params.get("reply_parameters", {}).get("message_id") == message["message"]["message_id"]]


@pytest.mark.parametrize(("media", "edited", "how"), [
    (True, "/mood", "reply /mood to it"),
    (False, "/mood Creep", "send it again as a new message"),  # another bot's command, corrected
], ids=["a voice note", "a command"])
async def test_an_unknown_message_sent_before_this_run_is_told_why_its_edit_is_not_answered(
        telegram, db, media, edited, how):
    """A message sent before the bot started may have been answered by the run before (which
    remembered it, not this one): an edit of it is not answered, rather than maybe twice. It was
    dropped untold, the user waiting for a mood; they are told why and how to ask, once."""
    fake, frontend = telegram
    voice = {"voice": fake.audio_attachment(await cache_upload(db, AUDIO, "sad"), kind="voice")} if media else {
        "text": "/play"}
    sent = never_delivered(fake, frontend.edits_from - 60, **voice)
    mark = fake.mark()
    await fake.user_edits(sent, edited)
    await fake.wait_for_reply(after=mark)
    await fake.user_edits(sent, f"{edited} please")  # told already: not again
    await all_handled(fake)
    assert replies_to(fake, sent, mark) == [EDIT_NOT_ANSWERED.format(how=how)]
    assert not moods_after(fake, mark)


@pytest.mark.parametrize("chat", [GROUP, ALICE], ids=["group", "private"])
async def test_an_edit_whose_can_t_tell_notice_telegram_failed_is_told_at_the_next_edit(telegram, db, chat):
    """The notice that the bot can't tell whether it answered the message was noted as its answer
    before it was sent: Telegram failing it (a 502, twice: the transport tries a 5xx once more), the
    user got the apology alone, and their next edit nothing. It is noted once sent, told once. In a
    private chat it quotes the message, as in a group: edits come for messages far up the chat."""
    fake, frontend = telegram
    voice = {"voice": fake.audio_attachment(await cache_upload(db, AUDIO, "sad"), kind="voice")}
    sent = never_delivered(fake, frontend.edits_from - 60, chat=chat, **voice)
    fake.fail_next("sendMessage", times=2, status=502, description="Bad Gateway")
    mark = fake.mark()
    await fake.user_edits(sent, "/mood")
    await fake.wait_for("sendMessage", lambda c: c.text == render.GENERIC_ERROR, after=mark)
    await fake.user_edits(sent, "/mood please")
    await fake.wait_for("sendMessage", lambda c: c.text.startswith("I can't tell"), after=mark)
    await fake.user_edits(sent, "/mood please!")  # told now: not again
    await all_handled(fake, chat)
    assert replies_to(fake, sent, mark) == [EDIT_NOT_ANSWERED.format(how="reply /mood to it")]
    assert not moods_after(fake, mark)


async def test_an_edit_asking_for_a_mood_during_the_stop_is_told_to_be_sent_again(telegram, db):
    """As a message asking it would be: the bot stops before it answers."""
    fake, frontend = telegram
    sent = await fake.user_sends(None, chat=GROUP, user=ALICE,
                                 voice=fake.audio_attachment(await cache_upload(db, AUDIO, "sad"), kind="voice"))
    await all_handled(fake)
    frontend.flow.stopping = True  # the stop's grace is over: what arrives now is not started
    mark = fake.mark()
    await fake.user_edits(sent, "/mood")
    told = await fake.wait_for("sendMessage", after=mark, timeout=3)
    frontend.flow.stopping = False
    assert told.text == render.RESTARTING
    assert told.params["reply_parameters"]["message_id"] == sent["message"]["message_id"]


@pytest.mark.parametrize(("chat", "first", "picture"), [
    (ALICE, "/moood Creep", False),  # "Did you mean /mood?"
    (ALICE, "mood Creep", False),  # "Commands start with a slash: did you mean /mood Creep?"
    (ALICE, "Creep", False),  # how to get a song's mood
    (GROUP, "/mood", False),  # the usage
    (GROUP, f"@{BOT_USERNAME} Creep", False),  # how the bot is asked in a group
    (ALICE, None, True),  # "That's a picture, and I listen to music: send /mood with a song's name…"
    (GROUP, "/mood", True),  # the same, of a picture captioned so
], ids=["a command mistyped", "no slash", "a song's name alone", "a bare mood", "the bot's name first", "a picture",
        "a picture captioned mood"])
async def test_a_message_told_how_to_ask_is_answered_when_edited_to_ask(telegram_and_spotify, chat, first, picture):
    """The bot's answer said what to type instead; the user corrected the message they sent, as
    Telegram lets them, rather than send another: the edit got no answer, the message having one."""
    fake, _ = telegram_and_spotify
    mark = fake.mark()
    sent = await fake.user_sends(first, chat=chat, user=ALICE, photo=fake.photo_attachment() if picture else None,
                                 extra=named(first) if (first or "").startswith("@") else None)
    await fake.wait_for("sendMessage", after=mark)  # how to ask
    mark = fake.mark()
    await fake.user_edits(sent, "/mood Creep")
    answer = await fake.wait_for_reply(lambda c: "Mood:" in c.text, after=mark, timeout=5)
    assert "Creep" in answer.text
    mark = fake.mark()
    await fake.user_edits(sent, "/mood Creep please")  # answered now: a second edit is not
    await all_handled(fake, chat)
    assert not moods_after(fake, mark)


@pytest.mark.parametrize("shown", [True, False], ids=["its status shown", "no status shown"])
async def test_an_edit_a_killed_run_was_answering_is_answered_in_its_status_or_told(usecases, db, shown):
    """A voice note's caption edited to '/mood', the bot killed outright while it handled the edit:
    the start hands the edit over again. With the status the killed run showed for it ("Listening…")
    the mood goes in that message; with none, the killed run may have answered it (a cached mood
    comes before any status) or left it be (its message answered already): it was dropped untold,
    and is now told why and how to ask."""
    fake = FakeTelegramBotAPI(TELEGRAM_TOKEN)
    voice = {"voice": fake.audio_attachment(await cache_upload(db, AUDIO, "sad"), kind="voice")}
    sent = never_delivered(fake, time.time() - 60, **voice)
    edit = await fake.user_edits(sent, "/mood")
    fake._updates.clear()  # acknowledged by the killed run's getUpdates
    status = 555_001  # the killed run's "Listening…" (the fake edits any message of the chat)
    await db.inbox.keep(SOURCE, [Arrival(edit["update_id"], edit, "telegram", str(ALICE),
                                         shown=(str(GROUP), str(status)) if shown else None)])
    mark = fake.mark()
    async with telegram_on(fake, usecases):
        answer = await fake.wait_for_reply(after=mark)
        await all_handled(fake)
    if shown:
        assert answer.method == "editMessageText" and "Mood:" in answer.text
        assert int(answer.params["message_id"]) == status
    else:
        assert replies_to(fake, sent, mark) == [EDIT_NOT_ANSWERED.format(how="reply /mood to it")]
        assert not moods_after(fake, mark)
