"""Whatever users typed or stored (long song titles, long notes, emoji, which Telegram counts as
two), every message the bot sends stays within the platforms' hard limits: the fakes refuse what
Telegram and Discord refuse (400), so a message over a limit is a message the user never gets."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from storage.models import StoredMood, TrackRecord
from tests.fakes.discord_api import payload_refusal
from tests.fakes.telegram_api import MAX_TEXT, utf16_length
from tests.frontends.test_journal_pages import write_days

ALICE = 42
GUILD = 777000000000000001
STRING = 3  # a Discord option's type
VIDEO = "dQw4w9WgXcQ"


async def save_long_track(db, key: str = f"youtube:{VIDEO}") -> None:
    """A heard song whose stored names are far over every limit: a title of markdown (escaped, it
    doubles), thirty long artists, an album of 3 000 characters."""
    await db.tracks.save(TrackRecord(
        key=key, title="*_" * 1500, artists=[f"Orchestra {n} " + "of the long name " * 12 for n in range(30)],
        album="Complete Works " * 200, youtube_id=VIDEO, classified_at=datetime.now(timezone.utc),
        mood=StoredMood("calm", {"happy": 0.1, "energetic": 0.1, "sad": 0.1, "calm": 0.7}, 0.2, -0.4, "main", "v")))


def days_listed(text: str) -> list[str]:
    return [line[:10] for line in text.splitlines()[1:] if line[:4] == "2026"]


def buttons(call) -> list[tuple[str, str]]:
    markup = call.params.get("reply_markup") or {"inline_keyboard": []}
    return [(b["text"], b["callback_data"]) for row in markup["inline_keyboard"] for b in row]


async def test_telegram_a_journal_page_of_long_entries_shows_whole_entries_and_older_goes_on_after_them(telegram, db):
    """Ten entries of a 300-character title and a long note of emoji are over 4096 UTF-16 units:
    the page shows the entries that fit, whole, says which they are, and ◀ Older starts after the
    last one shown (none is skipped, as a page clipped at 4096 skipped those cut off)."""
    fake, _ = telegram
    await write_days(db, "telegram", ALICE, 23, "Symphonie " * 30 + "#", "🎻 " * 500)
    await fake.user_sends("/journal list", user=ALICE, chat=ALICE)
    first = await fake.wait_for("sendMessage")
    assert utf16_length(first.text) <= MAX_TEXT
    shown = len(days_listed(first.text))
    assert 1 <= shown < 10
    assert first.text.splitlines()[0] == f"Your journal, entries 1–{shown} of 23 (newest first):"
    assert all("(🌿 calm) – 🎻" in line for line in first.text.splitlines()[1:])  # whole entries
    [(_, older)] = buttons(first)
    await fake.user_clicks(older, message=first, user=ALICE)
    second = await fake.wait_for("editMessageText")
    assert utf16_length(second.text) <= MAX_TEXT
    assert days_listed(second.text)[0] == (date(2026, 1, 23) - timedelta(days=shown)).isoformat()  # none skipped
    assert second.text.splitlines()[0].startswith(f"Your journal, entries {shown + 1}–")


async def test_discord_a_song_of_long_stored_names_gets_its_mood_embed_within_discord_s_limits(discord_bot, db):
    fake, _ = discord_bot
    await save_long_track(db)
    await fake.slash("mood", [{"name": "query", "type": STRING, "value": f"https://youtu.be/{VIDEO}"}], guild=GUILD)
    answer = await fake.wait_for("edit_original", lambda c: bool(c.embeds))
    assert payload_refusal(answer.name, answer.json) == []
    [embed] = answer.embeds
    assert embed["title"].endswith("…") and embed["footer"]["text"].startswith("Complete Works")
    assert not [c for c in fake.calls if c.status == 400]


async def test_discord_a_playlist_of_long_names_shows_whole_lines_within_the_embed_s_limits(discord_bot, db):
    fake, _ = discord_bot
    for n in range(20):
        await save_long_track(db, key=f"youtube:{VIDEO[:-2]}{n:02d}")
        await fake.slash("mood", [{"name": "query", "type": STRING, "value": f"https://youtu.be/{VIDEO[:-2]}{n:02d}"}],
                         guild=GUILD)
        await fake.wait_for("edit_original", lambda c: bool(c.embeds))
    await db.requests.settled()
    await fake.slash("playlist", [{"name": "mood", "type": STRING, "value": "calm"}], guild=GUILD)
    playlist = await fake.wait_for("edit_original", lambda c: bool(c.embeds) and "playlist" in c.embeds[0]["title"])
    assert payload_refusal(playlist.name, playlist.json) == []
    assert playlist.embeds[0]["description"].splitlines()[-1].startswith("…and ")
    assert not [c for c in fake.calls if c.status == 400]


async def test_telegram_a_song_of_long_stored_names_still_says_its_mood_within_telegram_s_limit(telegram, db):
    """Titled with thousands of characters, the answer shortens the song's name, not the mood: a
    text clipped at 4096 kept the name and cut off what was asked."""
    fake, _ = telegram
    await save_long_track(db)
    await fake.user_sends(f"/mood https://youtu.be/{VIDEO}")
    answer = await fake.wait_for_reply(lambda c: c.text.startswith("🎵"))
    assert utf16_length(answer.text) <= MAX_TEXT
    assert "Mood: 🌿 calm" in answer.text and answer.text.splitlines()[0].endswith("…")
    assert not [c for c in fake.calls if c.status == 400]


async def test_telegram_a_playlist_of_names_with_at_signs_shows_whole_lines(telegram, db):
    """Each '@' that would ping a member gets a word joiner after it (one UTF-16 unit more): the
    playlist is fitted to 4096 with them, so no song is cut in half (nor its link) at the end."""
    fake, _ = telegram
    group = -100777
    for n in range(20):
        video = f"{VIDEO[:-2]}{n:02d}"
        await db.tracks.save(TrackRecord(
            key=f"youtube:{video}", title="@dj " * 60 + f"#{n}", artists=["@crew"], youtube_id=video,
            classified_at=datetime.now(timezone.utc),
            mood=StoredMood("calm", {"happy": 0.1, "energetic": 0.1, "sad": 0.1, "calm": 0.7}, 0.2, -0.4, "main", "v")))
        await fake.user_sends(f"/mood https://youtu.be/{video}", chat=group, user=ALICE)
        await fake.wait_for_reply(lambda c: c.text.startswith("🎵"))
    await db.requests.settled()
    await fake.user_sends("/playlist calm", chat=group, user=ALICE)
    playlist = await fake.wait_for_reply(lambda c: "playlist:" in c.text)
    assert utf16_length(playlist.text) <= MAX_TEXT
    assert playlist.text.splitlines()[-1].startswith("…and ") and "@\u2060dj" in playlist.text
    assert all(line.endswith(f"https://www.youtube.com/watch?v={VIDEO[:-2]}{line.split('#')[1].split()[0]:0>2}")
               for line in playlist.text.splitlines()[1:-1])


LONG_TYPED = "東京🎵" * 1400  # 4 200 characters, 7 000 UTF-16 units


async def test_telegram_answers_that_quote_long_typed_words_stay_within_the_limit(telegram):
    """A time zone, a mood and a page number of thousands of characters (CJK and emoji) are
    quoted back shortened: each answer arrives (none refused), within 4096 UTF-16 units."""
    fake, _ = telegram
    asked = [("/journal on 21:30 " + LONG_TYPED, ALICE), ("/journal list " + LONG_TYPED, ALICE),
             ("/playlist " + LONG_TYPED, -100777)]
    for text, chat in asked:
        await fake.user_sends(text, chat=chat, user=ALICE)
        answer = await fake.wait_for_reply()
        assert "東京🎵" in answer.text and utf16_length(answer.text) < 1000
    assert not [c for c in fake.calls if c.status >= 400]


async def test_discord_an_answer_that_quotes_a_long_typed_time_zone_stays_within_the_limit(discord_bot):
    fake, _ = discord_bot
    await fake.slash("journal", [{"name": "on", "type": 1, "options": [
        {"name": "time", "type": STRING, "value": "21:30"}, {"name": "timezone", "type": STRING, "value": LONG_TYPED}]}])
    answer = await fake.wait_for("edit_original", lambda c: "東京🎵" in c.content)
    assert len(answer.content) < 1000 and payload_refusal(answer.name, answer.json) == []
    await fake.slash("journal", [{"name": "on", "type": 1, "options": [
        {"name": "timezone", "type": STRING, "value": LONG_TYPED, "focused": True}]}], interaction_type=4)
    choices = await fake.wait_for("interaction_callback", lambda c: c.json.get("type") == 8)
    assert payload_refusal(choices.name, choices.json) == []
    assert not [c for c in fake.calls if c.status >= 400]
