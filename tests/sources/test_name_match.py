"""Given a user types a song's name, moodbot takes one of Spotify's hits for it only when the hit is
that song: typos, "artist - title", "title by artist", "feat.", "official audio", remaster tags and
missing little words are forgiven; a hit one distinctive word away from what was typed is not."""
from __future__ import annotations

import pytest

from bot.sources.spotify import CLOSE_ENOUGH, Candidate, closeness, no_close_match, pick_match

TAKEN, REFUSED = True, False

CASES = [
    # (what the user typed, the hit's title, the hit's artists, taken?)
    # -- the forms tolerated before the matcher was a judgement --------------------------------
    ("Radiohead - Creep", "Creep", ("Radiohead",), TAKEN),
    ("Creep - Radiohead", "Creep", ("Radiohead",), TAKEN),
    ("creep by radiohead", "Creep", ("Radiohead",), TAKEN),
    ("Creep", "Creep", ("Radiohead",), TAKEN),
    ("bohemian rapsody", "Bohemian Rhapsody - Remastered 2011", ("Queen",), TAKEN),
    ("Hallo by Adel", "Hello", ("Adele",), TAKEN),
    ("The Weekend - Blinding Lights (official audio)", "Blinding Lights", ("The Weeknd",), TAKEN),
    ("Shape of You feat. Ed Sheeran", "Shape of You", ("Ed Sheeran",), TAKEN),
    ("acdc thunderstruck", "Thunderstruck", ("AC/DC",), TAKEN),
    ("mr bright side", "Mr. Brightside", ("The Killers",), TAKEN),
    ("Beyonce - Halo", "Halo", ("Beyoncé",), TAKEN),
    ("Despacito", "Despacito - Remix", ("Luis Fonsi", "Daddy Yankee"), TAKEN),
    ("Bohemian", "Bohemian Rhapsody", ("Queen",), TAKEN),  # the first half of a title
    ("rule the world tears for fears", "Everybody Wants To Rule The World", ("Tears For Fears",), TAKEN),
    ("Gangnam Style", "강남스타일 (Gangnam Style)", ("PSY",), TAKEN),
    ("yoru ni kakeru", "夜に駆ける", ("YOASOBI",), TAKEN),  # romanised: taken on Spotify's word
    ("💔", "💔", ("Heartbreak Band",), TAKEN),
    ("stairway heaven", "Stairway to Heaven - Remaster", ("Led Zeppelin",), TAKEN),
    ("Reborn in Blasphemy by Dismembe (official audio)", "Reborn in Blasphemy", ("Dismember",), TAKEN),
    # -- more of the same, as people type them ----------------------------------------------------
    ("Hey Jude", "Hey Jude - Remastered 2015", ("The Beatles",), TAKEN),
    ("creep radiohead 1992", "Creep", ("Radiohead",), TAKEN),  # a year need not be in the hit
    ("Hey Judy", "Hey Jude", ("The Beatles",), TAKEN),  # one letter off in a four-letter word: a typo
    ("Smells Like Teen Spirt", "Smells Like Teen Spirit", ("Nirvana",), TAKEN),
    ("Lose Yourself - Eminem [Official Music Video] HD", "Lose Yourself", ("Eminem",), TAKEN),
    ("Sweet Child O Mine", "Sweet Child O' Mine", ("Guns N' Roses",), TAKEN),
    ("dont stop me now", "Don't Stop Me Now - Remastered 2011", ("Queen",), TAKEN),
    ("Guns and Roses - November Rain", "November Rain", ("Guns N' Roses",), TAKEN),
    ("Uptown Funk ft. Bruno Mars", "Uptown Funk (feat. Bruno Mars)", ("Mark Ronson", "Bruno Mars"), TAKEN),
    ("Major Lazer - Lean On", "Lean On (feat. MØ & DJ Snake)", ("Major Lazer", "MØ", "DJ Snake"), TAKEN),
    ("Ｃｒｅｅｐ", "Creep", ("Radiohead",), TAKEN),  # full-width letters, as a Japanese keyboard types them
    ("Ich will by Ramstein", "Ich Will", ("Rammstein",), TAKEN),
    ("夜に駆ける", "夜に駆ける", ("YOASOBI",), TAKEN),
    ("YOASOBI 夜に駆ける", "夜に駆ける", ("YOASOBI",), TAKEN),
    ("Кино - Группа крови", "Группа крови", ("КИНО",), TAKEN),
    # -- another song, however many words it shares -------------------------------------------------
    ("Let it go", "Let It Be", ("The Beatles",), REFUSED),
    ("Let It Be", "Let It Go", ("Idina Menzel",), REFUSED),
    ("Let Her Go", "Let It Go", ("Idina Menzel",), REFUSED),
    ("Hey Joe", "Hey Jude", ("The Beatles",), REFUSED),  # three letters: no typo allowed
    ("Purple Pain", "Purple Rain", ("Prince",), REFUSED),  # a typo keeps the first letter
    ("Love Me Tender", "Love Me Do", ("The Beatles",), REFUSED),
    ("Let It Go", "Go Let It Out", ("Oasis",), REFUSED),  # every word typed, not this title
    ("Stand by Me", "Stand", ("R.E.M.",), REFUSED),
    ("Yellow Submarine", "Yellow", ("Coldplay",), REFUSED),
    ("Someone Like You", "Someone You Loved", ("Lewis Capaldi",), REFUSED),
    ("Shape of My Heart", "Shape of You", ("Ed Sheeran",), REFUSED),
    ("Dancing Queen", "Dancing On My Own", ("Robyn",), REFUSED),
    ("Crazy in Love", "Crazy", ("Gnarls Barkley",), REFUSED),
    ("Bad Guy", "Bad Blood", ("Taylor Swift",), REFUSED),
    ("Wonderwall", "Wonder", ("Shawn Mendes",), REFUSED),
    ("Toxic by Britney Spears", "Toxicity", ("System Of A Down",), REFUSED),
    ("Numb", "Numb Little Bug", ("Em Beihold",), REFUSED),
    ("Creep by TLC", "Creep", ("Radiohead",), REFUSED),  # TLC's Creep is another song
    ("Creep acoustic", "Creep", ("Radiohead",), REFUSED),  # a version Spotify did not offer
    ("Lost Mountain Tune by Joe Nobody", "Mountain Song", ("Jane's Addiction",), REFUSED),
    ("my favourite song that nobody knows", "Favourite Song", ("Chance the Rapper",), REFUSED),
    ("radiohead", "Creep", ("Radiohead",), REFUSED),  # an artist is not a song
    ("Heart", "Heartbreak Hotel", ("Elvis Presley",), REFUSED),
    ("Bohemian Rapsody Quen", "Rapsody in Blue", ("Gershwin Orchestra",), REFUSED),
    ("Reborn Something Else Entirely", "Reborn in Blasphemy", ("Dismember",), REFUSED),
    ("🔥", "💔", ("Heartbreak Band",), REFUSED),
    ("夜に駆ける", "夜を駆ける", ("スピッツ",), REFUSED),
    ("Кино - Звезда по имени Солнце", "Группа крови", ("КИНО",), REFUSED),
]


@pytest.mark.parametrize("query, title, artists, taken", CASES, ids=[f"{q} ~ {t}" for q, t, _, _ in CASES])
def test_a_hit_is_taken_only_when_it_is_the_song_typed(query, title, artists, taken):
    assert (closeness(Candidate(title, artists), query) >= CLOSE_ENOUGH) is taken


def test_the_table_is_large_and_holds_both_answers():
    assert len(CASES) >= 40
    assert {taken for *_, taken in CASES} == {TAKEN, REFUSED}


def test_let_it_go_is_refused_when_spotify_has_only_let_it_be_and_the_reply_names_it():
    hits = [Candidate("Let It Be - Remastered 2009", ("The Beatles",), 80), Candidate("Let Go", ("Frou Frou",), 60)]
    assert pick_match("Let it go", hits) is None
    assert "The Beatles – Let It Be - Remastered 2009" in no_close_match("Let it go", hits).closest


def test_the_song_typed_wins_when_it_is_among_near_misses():
    hits = [Candidate("Let It Be", ("The Beatles",), 90), Candidate("Let It Go", ("Idina Menzel",), 70),
            Candidate("Let Her Go", ("Passenger",), 80)]
    assert pick_match("let it go frozen", hits) is None  # "frozen" is in none of them
    assert pick_match("let it go idina menzel", hits) == 1
    assert pick_match("Let Her Go", hits) == 2
