"""A voice note, a video note, or a video sent without a file name has no name of its own: the
answer and the group's playlists name it by whom and when ("Voice note by Alice, 5 Dec 2026"), not
by the name the bot saves it under ("voice", "video-note"); so is an audio or a document sent
without a name (an audio's tags name it, when it has them)."""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import pytest

from inference.result import too_long_words
from storage.models import StoredMood, TrackRecord
from tests.frontends.conftest import read  # a name in a refusal: unlinked, read the same

GROUP = -100888
ALICE, BOB = 42, 77


async def cached(db, audio: bytes) -> bytes:
    """`audio`, its mood (sad) in the cache under its hash: heard without a classifier."""
    await db.tracks.save(TrackRecord(
        key="sha256:" + hashlib.sha256(audio).hexdigest(), title="", artists=[], classified_at=datetime.now(timezone.utc),
        mood=StoredMood("sad", {"happy": 0.1, "energetic": 0.1, "sad": 0.7, "calm": 0.1}, -0.5, -0.2, "main", "v")))
    return audio


def media(fake, kind: str, audio: bytes) -> dict:
    """The `kind` field of a message, as Telegram sends it: a voice note and a video note carry no
    file name; here the others have none either (a video as a phone's camera sends it, an audio
    without tags)."""
    item = fake.audio_attachment(audio, kind="voice" if kind == "video_note" else kind)
    item.pop("file_name", None)
    if kind == "video_note":
        item.pop("mime_type")
        item.update(length=240, duration=30)
    return {kind: item}


def day(timestamp: int) -> str:
    at = datetime.fromtimestamp(timestamp, timezone.utc)
    return f"{at.day} {at:%b %Y}"


async def group_playlist(fake, db, mood: str) -> str:
    await db.requests.settled()
    mark = fake.mark()
    await fake.user_sends(f"/playlist {mood}", chat=GROUP, user=ALICE)
    return (await fake.wait_for("sendMessage", after=mark)).text


@pytest.mark.parametrize("kind, named", [("voice", "Voice note"), ("video_note", "Video note"), ("video", "Video"),
                                         ("audio", "Audio"), ("document", "File")])
async def test_a_note_is_named_by_its_sender_and_day_in_the_answer_and_the_group_playlist(telegram, db, kind, named):
    fake, _ = telegram
    audio = await cached(db, b"OggS " + kind.encode() * 8)
    mark = fake.mark()
    sent = await fake.user_sends("/mood", chat=GROUP, user=ALICE, first_name="Alice",
                                 extra=media(fake, kind, audio))
    title = f"{named} by Alice, {day(sent['message']['date'])}"
    answer = await fake.wait_for_reply(lambda c: "Mood:" in c.text, after=mark)
    assert answer.text.startswith(f"🎵 {title}\n")
    assert f"\n1. {title}" in await group_playlist(fake, db, "sad")


async def test_a_note_asked_about_by_another_member_or_forwarded_is_named_by_whose_voice_it_is(telegram, db):
    """A bare /mood in reply to Bob's voice note: Bob's; Bob's voice note forwarded by Alice: Bob's,
    on the day he recorded it."""
    fake, _ = telegram
    audio = await cached(db, b"OggS Bob singing")
    voice = media(fake, "voice", audio)
    bobs = {"message_id": 900, "date": 1_796_000_000, "chat": {"id": GROUP, "type": "supergroup", "title": "G"},
            "from": {"id": BOB, "is_bot": False, "first_name": "Bob"}, **voice}
    mark = fake.mark()
    await fake.user_sends("/mood", chat=GROUP, user=ALICE, extra={"reply_to_message": bobs})
    answer = await fake.wait_for_reply(lambda c: "Mood:" in c.text, after=mark)
    assert answer.text.startswith(f"🎵 Voice note by Bob, {day(1_796_000_000)}\n")

    other = await cached(db, b"OggS Bob singing again")
    forwarded = {"forward_origin": {"type": "user", "date": 1_795_000_000,
                                    "sender_user": {"id": BOB, "is_bot": False, "first_name": "Bob"}},
                 **media(fake, "voice", other)}
    mark = fake.mark()
    await fake.user_sends("/mood", chat=GROUP, user=ALICE, extra=forwarded)
    answer = await fake.wait_for_reply(lambda c: "Mood:" in c.text, after=mark)
    assert answer.text.startswith(f"🎵 Voice note by Bob, {day(1_795_000_000)}\n")


async def test_a_file_with_a_name_keeps_it(telegram, db):
    fake, _ = telegram
    audio = await cached(db, b"OggS a named song")
    mark = fake.mark()
    await fake.user_sends("/mood", chat=GROUP, user=ALICE,
                          video=fake.audio_attachment(audio, kind="video", file_name="Live at the park.mp4"))
    answer = await fake.wait_for_reply(lambda c: "Mood:" in c.text, after=mark)
    assert answer.text.startswith("🎵 Live at the park\n")


@pytest.mark.parametrize("kind", ["document", "audio", "voice", "video_note", "video"])
async def test_a_file_sent_without_a_name_is_refused_naming_whose_it_is_and_the_day(telegram, kind):
    """Refused before its download (a PDF sent as a document, a note or song Telegram says lasts
    three hours), it is named as its answer would name it, by whom and when: not by a name of the
    bot's own ("audio", "voice.ogg") that the chat never showed."""
    fake, frontend = telegram
    sent = media(fake, kind, b"OggS three hours of it")
    if kind == "document":
        sent[kind]["mime_type"] = "application/pdf"
    else:
        sent[kind]["duration"] = 3 * 3600
    mark = fake.mark()
    message = await fake.user_sends("/mood", chat=GROUP, user=ALICE, first_name="Alice", extra=sent)
    refusal = await fake.wait_for_reply(after=mark)
    named = f"The file sent by Alice on {day(message['message']['date'])}"
    assert read(refusal.text) == (f"{named} is not audio we can read." if kind == "document" else
                            too_long_words(named[len("The file "):], frontend.settings.max_audio_duration_s))
    assert not fake.calls_of("getFile", after=mark)


async def refusals_naming(fake, first_name: str, file_name: str) -> tuple[str, str]:
    """The refusals of a three-hour voice note sent by `first_name` and of a PDF named `file_name`."""
    sent = media(fake, "voice", b"OggS three hours of it")
    sent["voice"]["duration"] = 3 * 3600
    mark = fake.mark()
    await fake.user_sends("/mood", chat=GROUP, user=ALICE, first_name=first_name, extra=sent)
    voice = (await fake.wait_for_reply(after=mark)).text
    named = {"document": {**fake.audio_attachment(b"%PDF", kind="document", file_name=file_name),
                          "mime_type": "application/pdf"}}
    mark = fake.mark()
    await fake.user_sends("/mood", chat=GROUP, user=ALICE, extra=named)
    return read(voice), read((await fake.wait_for_reply(after=mark)).text)


async def test_a_name_in_a_refusal_is_shown_as_telegram_shows_it(telegram):
    """A name may hold any character, those private ones too that a reply's words use to mark
    where people share the bot (replies.PLACE_MARKS, 'group'): they named the file 'sent by
    DJgroup AliceGroup', or 'Groupmix.pdf'. They are left out, as from anything else a user typed
    (`as_typed`)."""
    fake, _ = telegram
    voice, document = await refusals_naming(fake, "DJ\ue000 Alice\ue001", "\ue001mix.pdf")
    assert voice.startswith("The file sent by DJ Alice on ")
    assert document == "The file mix.pdf is not audio we can read."


async def test_a_name_s_direction_marks_do_not_turn_the_refusal_around(telegram):
    """A right-to-left override (U+202E) in a sender's name, or a file's ("mix\\u202e3pm.exe"),
    reversed the rest of the refusal's line as shown ('The file sent by .daer nac ew oidua ton si…');
    such marks (overrides, embeddings, isolates) are left out of the name, as a song's name typed
    loses them (query.clean_text). Right-to-left letters themselves stay."""
    fake, _ = telegram
    voice, document = await refusals_naming(fake, "\u202eAlice \u2067سارا\u2069", "mix\u202e3pm.pdf")
    assert voice.startswith("The file sent by Alice سارا on ")
    assert document == "The file mix3pm.pdf is not audio we can read."
