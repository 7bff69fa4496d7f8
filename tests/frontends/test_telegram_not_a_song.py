"""Given a user sends the bot a sticker, a location, a contact, a poll, a dice, a story, a
checklist, a paid post, a game or a giveaway in their private chat, the bot says what it is and
what it listens to instead (as it does of a picture); in reply to a daily prompt, how to answer
the prompt. In a group, where nobody addressed it, it stays quiet."""
from __future__ import annotations

import asyncio

import pytest

from bot.frontends.telegram import ANSWER_WITH_A_SONG, SEND_A_SONG
from storage.models import UserRef
from tests.fakes.telegram_api import FakeTelegramBotAPI
from tests.frontends.conftest import journal_on_telegram

ALICE = 42
GROUP = -100600
CHANNEL = {"id": -100777, "type": "channel", "title": "Night Radio"}
QUIET_S = 1.0  # long enough for the bot to have answered whatever it was going to answer


def not_songs(fake: FakeTelegramBotAPI) -> dict[str, dict]:
    """What each kind says it is, and the fields of a message carrying it, as Telegram sends them."""
    sticker_id = fake.add_file(b"RIFF\x00\x00\x00\x00WEBP", ".webp")
    location = {"latitude": 38.7223, "longitude": -9.1393}
    return {
        "a sticker": {"sticker": {"file_id": sticker_id, "file_unique_id": sticker_id[1:9], "type": "regular",
                                  "width": 512, "height": 512, "is_animated": False, "is_video": False}},
        "a location": {"location": location},
        "a place": {"location": location,
                    "venue": {"location": location, "title": "Coliseu", "address": "Rua das Portas de Santo Antão"}},
        "a contact": {"contact": {"phone_number": "+351912345678", "first_name": "Bob"}},
        "a poll": {"poll": {"id": "5001", "question": "Tonight?", "total_voter_count": 0, "is_closed": False,
                            "is_anonymous": True, "type": "regular", "allows_multiple_answers": False,
                            "allows_revoting": True, "members_only": False,  # Bot API 10.0's fields
                            "options": [{"text": "Rock", "voter_count": 0, "persistent_id": "a"},
                                        {"text": "Jazz", "voter_count": 0, "persistent_id": "b"}]}},
        "a 🎲": {"dice": {"emoji": "🎲", "value": 4}},
        # Shared or forwarded to the bot: a channel's story (its chat and id only: a bot sees no more of
        # it), a checklist, a channel's paid post (a preview until bought), a game, a giveaway.
        "a story": {"story": {"chat": CHANNEL, "id": 5}},
        "a checklist": {"checklist": {"title": "Gig night", "tasks": [{"id": 1, "text": "Tickets"}]}},
        "a paid post": {"paid_media": {"star_count": 50, "paid_media": [{"type": "preview", "width": 640,
                                                                         "height": 360, "duration": 30}]}},
        "a game": {"game": {"title": "Guess the song", "description": "Name it in 5 s",
                            "photo": [{"file_id": "G1", "file_unique_id": "g1", "width": 64, "height": 64}]}},
        "a giveaway": {"giveaway": {"chats": [CHANNEL], "winners_selection_date": 1_900_000_000, "winner_count": 3}},
    }


KINDS = ("a sticker", "a location", "a place", "a contact", "a poll", "a 🎲", "a story", "a checklist", "a paid post",
         "a game", "a giveaway")


async def said_after(fake: FakeTelegramBotAPI, mark: int) -> list[str]:
    """The messages the bot sent after `mark`, once it has gone quiet."""
    await asyncio.sleep(QUIET_S)
    return [c.text for c in fake.calls_of("sendMessage", after=mark)]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_message_with_no_song_in_the_private_chat_is_named_and_answered_with_what_works(telegram, kind):
    fake, _ = telegram
    mark = fake.mark()
    await fake.user_sends(None, extra=not_songs(fake)[kind])
    assert await said_after(fake, mark) == [f"That's {kind}, and I listen to music: {SEND_A_SONG}"]
    assert not fake.calls_of("getFile", after=mark)  # a sticker is a file, and no song


@pytest.mark.parametrize("kind", KINDS)
async def test_a_message_with_no_song_in_a_group_gets_no_answer(telegram, kind):
    fake, _ = telegram
    mark = fake.mark()
    await fake.user_sends(None, chat=GROUP, user=ALICE, extra=not_songs(fake)[kind])
    assert await said_after(fake, mark) == []


async def test_a_sticker_answering_a_daily_prompt_says_to_answer_it_with_a_song(telegram, db, usecases):
    fake, frontend = telegram
    await journal_on_telegram(fake, frontend, db, usecases)
    await fake.user_sends("/journal prompt")
    prompt = await fake.wait_for("sendMessage", lambda c: "force_reply" in c.params.get("reply_markup", {}))
    kinds = not_songs(fake)
    for kind in ("a sticker", "a location"):
        mark = fake.mark()
        await fake.user_sends(None, reply_to=fake.message_of(prompt)["message_id"], extra=kinds[kind])
        assert await said_after(fake, mark) == [f"That's {kind}, and I listen to music: {ANSWER_WITH_A_SONG}"]
    assert await db.journal.count(UserRef("telegram", str(ALICE))) == 0


async def test_a_picture_answering_a_daily_prompt_with_no_caption_says_to_answer_it_with_a_song(telegram, db,
                                                                                               usecases):
    fake, frontend = telegram
    await journal_on_telegram(fake, frontend, db, usecases)
    await fake.user_sends("/journal prompt")
    prompt = await fake.wait_for("sendMessage", lambda c: "force_reply" in c.params.get("reply_markup", {}))
    mark = fake.mark()
    await fake.user_sends(None, reply_to=fake.message_of(prompt)["message_id"], photo=fake.photo_attachment())
    assert await said_after(fake, mark) == [f"That's a picture, and I listen to music: {ANSWER_WITH_A_SONG}"]
