"""A prompt answered with more than one song's link ("https://youtu.be/A\nhttps://youtu.be/B", two
shares pasted together) was saved as one entry, the first link's song, the other link left in the
note, and nothing said: the answer now says that the journal keeps one song a prompt, which it kept,
and how to keep the other instead (`ONE_SONG_A_PROMPT`). Only links are told apart: a second line
naming a song reads as the user's own words, as the journal asks them to be written."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bot.replies import JournalSavedReply
from bot.usecases.journal import ONE_SONG_A_PROMPT
from storage.models import StoredMood, TrackRecord
from tests.bot.conftest import ALICE_DM, attachment
from tests.bot.test_journal import ALICE_REF
from tests.bot.test_journal_no_song import open_prompt

KEPT = "https://youtu.be/XFkzRNyygfk"
OTHER = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"


async def cache_video(db, counting, video_id: str = "XFkzRNyygfk", title: str = "Radiohead - Creep") -> None:
    """The video's mood in the cache, as the model serving now heard it: no download here."""
    await db.tracks.save(TrackRecord(
        key=f"youtube:{video_id}", title=title, youtube_id=video_id, classified_at=datetime.now(timezone.utc),
        mood=StoredMood("sad", {"happy": 0.1, "energetic": 0.1, "sad": 0.7, "calm": 0.1}, -0.4, -0.6, "main",
                        counting.main_model_version)))


async def saved_answer(db, counting, typed: str, file=None) -> JournalSavedReply:
    journal = await open_prompt(db, counting)
    reply = await journal.answer(ALICE_DM, typed, file, prompt_message_id="777")
    assert isinstance(reply, JournalSavedReply), reply
    return reply


@pytest.mark.parametrize("typed, note", [
    (f"{KEPT}\n{OTHER}", OTHER),
    (f"{KEPT} {OTHER} both on repeat today", f"{OTHER} both on repeat today"),
    (f"{KEPT}, {OTHER}", OTHER),
    (f"{KEPT}\nhttps://open.spotify.com/track/70LcF31zb1H0PyJoS1Sx1r", "https://open.spotify.com/track/70LcF31zb1H0PyJoS1Sx1r"),
    (f"two today: {KEPT} and youtu.be/dQw4w9WgXcQ", "two today: and youtu.be/dQw4w9WgXcQ"),
])
async def test_an_answer_with_two_song_links_says_the_journal_kept_one_and_how_to_keep_the_other(
        db, counting, typed, note):
    await cache_video(db, counting)
    reply = await saved_answer(db, counting, typed)
    assert reply.mood.title == "Radiohead - Creep"
    day = reply.local_date.isoformat()
    assert reply.aside == ONE_SONG_A_PROMPT.format(title="Radiohead - Creep", links="link", day=day), reply.aside
    assert f"/journal delete {day}" in reply.aside
    entry, = await (db.journal.list(ALICE_REF))
    assert entry.track_key == "youtube:XFkzRNyygfk" and entry.note == note


async def test_more_links_than_two_are_named_together(db, counting):
    await cache_video(db, counting)
    reply = await saved_answer(db, counting, f"{KEPT}\n{OTHER}\nhttps://youtu.be/9bZkp7q19f0")
    assert reply.aside == ONE_SONG_A_PROMPT.format(title="Radiohead - Creep", links="links",
                                                   day=reply.local_date.isoformat()), reply.aside


@pytest.mark.parametrize("typed", [
    KEPT,
    f"{KEPT}\nthe rain on the bus window",
    f"{KEPT}\nRadiohead - Karma Police was the other one",  # a song named in words: the user's own words
    f"{KEPT} {KEPT}",  # the same link twice (pasted twice, a preview's copy): one song
    f"{KEPT}\nhttps://youtu.be/XFkzRNyygfk?t=42",
    f"{KEPT}\nlyrics: https://genius.com/Radiohead-creep-lyrics and www.last.fm",  # links to no song
    f"{KEPT}\nhttps://open.spotify.com/album/6400dnyeDyD2mIFHfkwHXN",  # an album, no song of its own
])
async def test_an_answer_with_one_song_says_nothing_of_other_songs(db, counting, typed):
    await cache_video(db, counting)
    reply = await saved_answer(db, counting, typed)
    assert reply.aside is None, reply.aside


async def test_an_audio_file_with_a_song_link_in_its_words_says_the_file_was_kept(db, counting, clip_paths):
    """Telegram's audio captioned with a link, a Discord DM with a file and a link: the file is
    heard, as ever, and the link, left in the note, is said not to be the song saved."""
    file = attachment(clip_paths[0])
    reply = await saved_answer(db, counting, f"{OTHER} was stuck in my head too", file)
    day = reply.local_date.isoformat()
    assert reply.aside == ONE_SONG_A_PROMPT.format(title=reply.mood.title, links="link", day=day), reply.aside
    entry, = await db.journal.list(ALICE_REF)
    assert entry.note == f"{OTHER} was stuck in my head too"
