"""The shared text rendering of reply models: what a user reads on Telegram (and in Discord text)."""
from __future__ import annotations

from datetime import date

import pytest

from bot.frontends import render
from bot.frontends.discord.rendering import MAX_CONTENT, clip, mood_embed
from bot.replies import (
    PLACE,
    PLACE_AT_START,
    ErrorReply,
    JournalDeletedReply,
    JournalEntryView,
    JournalListReply,
    JournalSavedReply,
    MoodReply,
    PlaylistReply,
    PlaylistTrackView,
    ServerMoodReply,
    TextReply,
    as_typed,
)
from bot.usecases.journal import split_answer

CREEP = MoodReply(
    track_key="spotify:1", title="Creep", artists=("Radiohead",), mood="sad",
    probabilities={"happy": 0.1, "energetic": 0.1, "sad": 0.7, "calm": 0.1}, valence=-0.6, arousal=-0.6,
    confidence=0.7, model="main", model_version="v3", spotify_url="https://open.spotify.com/track/1",
    art_url="https://i.scdn.co/image/x",
)


def test_a_mood_reply_names_song_mood_axes_confidence_model_and_link():
    text = render.mood_text(CREEP)
    assert text.splitlines() == [
        "🎵 Radiohead – Creep", "Mood: 😢 sad", "Valence -0.60 · Arousal -0.60", "Confidence: 70%",
        "Model: ResNet18+BiLSTM (v3)", "https://open.spotify.com/track/1",
    ]


def test_a_fallback_answer_says_why_the_ann_answered():
    text = render.mood_text(MoodReply(**{**CREEP.__dict__, "model": "ann", "fallback_reason": "timeout"}))
    assert "ANN fallback" in text and "(timeout)" in text


def test_the_embed_carries_the_same_facts_and_the_cover_art():
    embed = mood_embed(CREEP).to_dict()
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Mood"] == "😢 sad" and fields["Confidence"] == "70%"
    assert fields["Valence / Arousal"] == "-0.60 / -0.60" and fields["Spotify"] == CREEP.spotify_url
    assert embed["thumbnail"]["url"] == CREEP.art_url and embed["url"] == CREEP.spotify_url


def test_journal_list_shows_date_phrase_song_and_mood():
    entry = JournalEntryView(date(2026, 11, 24), "On the way home,", "Creep", ("Radiohead",), "sad", "rainy")
    text = render.journal_list_text(JournalListReply([entry], total=3))
    assert text.splitlines() == ["Your journal, entry 1 of 3 (newest first):",
                                 "2026-11-24 · On the way home, Radiohead – Creep (😢 sad) – rainy"]
    assert render.journal_list_text(JournalListReply([], 0)) == render.EMPTY_JOURNAL
    waiting = render.journal_list_text(JournalListReply([], 0, prompt_at="21:30 (Europe/Lisbon)"))
    assert "21:30 (Europe/Lisbon)" in waiting and "/journal on" not in waiting


def test_a_song_name_s_direction_marks_do_not_turn_its_entry_s_mood_and_note_around():
    """An upload's title is its file name, or its tags' title; a video's, its uploader's words: a
    right-to-left override in it ("mix\u202e3pm") reversed the rest of its line in /journal list, the
    mood and the user's note shown backwards (") das 😢( – ydnar"). The marks (overrides, embeddings,
    isolates) are left out, as from a file's name in a refusal; right-to-left letters stay."""
    entries = [JournalEntryView(date(2026, 11, 24), "On the way home,", "mix\u202e3pm", (), "sad", "rainy"),
               JournalEntryView(date(2026, 11, 23), "Today,", "\u2067תגידו לה\u2069", ("\u202bעומר אדם",), "calm")]
    lines = render.journal_list_text(JournalListReply(entries, total=2)).splitlines()
    assert lines[1:] == ["2026-11-24 · On the way home, mix3pm (😢 sad) – rainy",
                         "2026-11-23 · Today, עומר אדם – תגידו לה (🌿 calm)"]
    deleted = render.journal_deleted_text(JournalDeletedReply(entries[0]))
    assert deleted == "Deleted from your journal: 2026-11-24 · On the way home, mix3pm (😢 sad) – rainy"


def test_a_page_of_a_long_journal_says_where_it_stands_and_how_to_go_further_back():
    entries = [JournalEntryView(date(2026, 11, 20 - n), "Today,", f"Song {n}", (), "calm") for n in range(10)]
    hint = "Older: /journal list {page}"
    page_two = JournalListReply(entries, total=57, offset=10)
    assert render.journal_list_text(page_two).splitlines()[0] == "Your journal, entries 11–20 of 57 (newest first):"
    assert render.journal_list_text(page_two, older_hint=hint).splitlines()[-1] == "Older: /journal list 3"
    last = JournalListReply(entries[:7], total=57, offset=50)
    assert render.journal_list_text(last).splitlines()[0] == "Your journal, entries 51–57 of 57 (newest first):"
    assert not render.journal_list_text(last, older_hint=hint).endswith("/journal list 7")  # nothing older
    whole = JournalListReply(entries, total=10)
    assert render.journal_list_text(whole, older_hint=hint).splitlines() == render.journal_list_text(whole).splitlines()
    assert render.journal_list_text(whole).splitlines()[0] == "Your journal (10 of 10):"


def test_a_long_note_is_shortened_in_the_list_at_a_word_boundary():
    note = "we drove to the coast and " * 40  # ~1000 characters, as a chat message allows
    entries = [JournalEntryView(date(2026, 11, d), "On the way home,", "Creep", ("Radiohead",), "sad", note)
               for d in range(1, 11)]
    text = render.journal_list_text(JournalListReply(entries, total=10))
    lines = text.splitlines()
    assert len(lines) == 11 and lines[0] == "Your journal (10 of 10):"
    assert all(line.endswith("…") and len(line.split(" – ", 2)[2]) <= render.LIST_NOTE_CHARS for line in lines[1:])
    assert all(line.split(" – ", 2)[2][:-1].endswith(("drove", "to", "the", "coast", "and", "we"))
               for line in lines[1:])  # whole words only
    assert len(text) < 2000  # fits one Discord message, and Telegram's 4096


def test_an_error_quoting_what_the_user_typed_shows_it_as_typed_on_discord():
    from bot.frontends.discord.rendering import message_parts
    from bot.replies import ErrorReply

    parts = message_parts(ErrorReply("I couldn't find “__Intro__ *live*” on Spotify."))
    assert parts["content"] == "I couldn't find “\\_\\_Intro\\_\\_ \\*live\\*” on Spotify."


def test_the_console_says_a_queued_entry_is_safe_once():
    import io

    from bot.frontends.console import ConsoleFrontend

    out = io.StringIO()
    ConsoleFrontend(usecases=None, stdin=io.StringIO(), stdout=out).show(
        JournalSavedReply("At lunch,", CREEP, date(2026, 11, 24), queued=True))
    assert out.getvalue().count("your entry is safe") == 1


def test_a_prompt_says_where_the_user_s_own_words_go():
    # The answer's first line is the song: "Radiohead - Creep on the bus" is searched whole and not
    # found, and the prompt was the only place a chat user learns how an answer is written.
    song, words = split_answer("Radiohead - Creep\non the bus")
    assert (song, words) == ("Radiohead - Creep", "on the bus")
    assert "your own words on a new line" in render.prompt_text("At lunch…")


def test_a_note_written_on_several_lines_is_one_line_in_the_list():
    entry = JournalEntryView(date(2026, 6, 29), "Today felt like…", "Song", (), "happy",
                             "first line 🎉\nsecond line\n\nthird line")
    text = render.journal_list_text(JournalListReply([entry], total=1))
    assert text.splitlines()[1].endswith("– first line 🎉 second line third line") and len(text.splitlines()) == 2


def test_a_queued_journal_entry_says_it_will_appear_shortly():
    saved = JournalSavedReply("At lunch,", CREEP, date(2026, 11, 24), queued=True)
    assert render.QUEUED_NOTE in render.journal_saved_text(saved)
    assert render.QUEUED_NOTE not in render.journal_saved_text(
        JournalSavedReply("At lunch,", CREEP, date(2026, 11, 24)))


def test_playlist_numbers_songs_and_counts_members():
    reply = PlaylistReply("calm", [PlaylistTrackView("Teardrop", ("Massive Attack",), None, 3),
                                   PlaylistTrackView("Creep", ("Radiohead",), "https://s/1", 1)])
    assert render.playlist_text(reply).splitlines() == [
        "🌿 calm playlist:", "1. Massive Attack – Teardrop (3 members)", "2. Radiohead – Creep https://s/1"]


def test_a_song_name_s_direction_marks_do_not_turn_its_playlist_line_or_journal_answer_around():
    """A playlist line is the song, then its member count: a title's right-to-left override turned
    the count around ("(srebmem 3)"); a saved journal answer's line goes on after the song too."""
    reply = PlaylistReply("calm", [PlaylistTrackView("mix\u202e3pm", ("\u202bעומר אדם",), None, 3)])
    assert render.playlist_text(reply).splitlines()[1] == "1. עומר אדם – mix3pm (3 members)"
    odd = MoodReply(**{**CREEP.__dict__, "title": "Creep\u202e", "artists": ("Radio\u2067head",)})
    saved = render.journal_saved_text(JournalSavedReply("At lunch,", odd, date(2026, 11, 24)))
    assert "Radiohead – Creep" in saved and not set(saved) & set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
    assert "Creep" in render.mood_text(odd) and "\u202e" not in render.mood_text(odd)


def test_a_playlist_of_long_titles_fits_a_telegram_message_and_a_discord_embed_in_whole_lines():
    from bot.frontends.discord.rendering import message_parts
    from bot.frontends.telegram import text_of

    track = PlaylistTrackView("Symphony_No._9_in_D_minor,_Op._125_*Choral*: IV. Presto – Allegro assai " * 2,
                              ("Berliner Philharmoniker", "Herbert von Karajan", "Gundula Janowitz"),
                              "https://open.spotify.com/track/6b2oQwSGFkzsMtQruIWm2p", 2)
    reply = PlaylistReply("calm", [track] * 20)

    for text in (text_of(reply), "\n" + message_parts(reply)["embed"].description):  # the embed's title heads it
        assert len(text.encode("utf-16-le")) <= 2 * 4096
        *songs, more = text.splitlines()[1:]
        assert songs and all(song.endswith(track.url) for song in songs)  # no song cut in half
        assert more == render.MORE_NOT_SHOWN.format(count=20 - len(songs))


def test_server_mood_without_songs_invites_to_try():
    assert render.server_mood_text(ServerMoodReply(None, {})) == render.NO_SERVER_MOOD


def test_errors_show_the_message_and_when_to_retry():
    assert render.reply_text(ErrorReply("Slow down.", retry_after_s=12.4)) == "Slow down. (try again in 12 s)"


def test_unknown_replies_are_a_programming_error():
    with pytest.raises(TypeError):
        render.reply_text(object())


def test_long_text_is_clipped_to_discord_s_limit():
    assert len(clip("x" * 5000)) == MAX_CONTENT


def test_a_rate_limit_message_says_when_to_retry_once():
    text = render.reply_text(ErrorReply("You're going fast — try again in 7 s.", retry_after_s=7))
    assert text.count("try again in") == 1


def test_where_people_share_the_bot_is_named_in_each_front_end_s_word():
    """A use case's reply names no platform: a Discord server, a Telegram group, as rendered."""
    switched = TextReply(f"{PLACE_AT_START} playlists are on: a {PLACE} member's songs count.")
    assert render.reply_text(switched) == "Server playlists are on: a server member's songs count."
    assert render.reply_text(switched, "group") == "Group playlists are on: a group member's songs count."
    assert render.reply_text(ErrorReply(f"Only the {PLACE}'s admins can."), "group") == "Only the group's admins can."


@pytest.mark.parametrize("typed, quoted", [
    ("{place}/Olympus", "{place}/Olympus"), ("{Place}", "{Place}"),  # what a user may type, as typed
    (f"Mars{PLACE}/Olympus{PLACE_AT_START}", "Mars/Olympus"),  # the marks themselves, dropped
])
def test_a_user_s_words_quoted_in_a_reply_are_not_read_as_where_people_share_the_bot(typed, quoted):
    """Only the reply's own words name the place: the user's, quoted, come back as they were typed."""
    refused = ErrorReply(f"I don't know the time zone “{as_typed(typed, 40)}”. Only the {PLACE}'s admins can.")
    assert render.reply_text(refused, "group") == f"I don't know the time zone “{quoted}”. Only the group's admins can."
