"""A member who leaves a place stops counting in its playlists and its mood of the week; one who
comes back (joins again, or asks /mood or writes there again) counts again, with their old songs."""
from __future__ import annotations

import asyncio
from datetime import timedelta

from storage.database import Database
from storage.models import Departure, JournalEntry, MoodRequest, UserRef
from tests.storage.conftest import T0

PLACE, OTHER_PLACE = "chat:g1", "chat:g2"
ALICE, BOB = UserRef("chat", "alice"), UserRef("chat", "bob")
H = timedelta(hours=1)


def ranking(items) -> list[tuple[str, int]]:
    return [(item.track_key, item.members) for item in items]


async def seed(db: Database) -> None:
    """Alice and Bob both asked for A in the group; Alice also for B, and for A in another group."""
    for who, place, track, at in [(ALICE, PLACE, "A", T0), (ALICE, PLACE, "B", T0 + H),
                                  (BOB, PLACE, "A", T0 + 2 * H), (ALICE, OTHER_PLACE, "A", T0)]:
        await db.requests.add(MoodRequest(who, place, f"spotify:{track}", "sad", at))


async def test_a_member_who_left_is_gone_from_the_playlist_and_the_mood_of_the_week(db: Database):
    await seed(db)
    await db.playlists.member_left(PLACE, ALICE, T0 + 3 * H)

    assert ranking(await db.playlists.playlist(PLACE, "sad")) == [("spotify:A", 1)]  # Bob's
    assert await db.playlists.server_mood_of_week(PLACE, T0 + 24 * H) == {"sad": 1}
    assert await db.playlists.members_seen(PLACE) == [BOB]
    # The other group she is still in counts her as before.
    assert ranking(await db.playlists.playlist(OTHER_PLACE, "sad")) == [("spotify:A", 1)]


async def test_a_member_who_joins_again_counts_again_with_their_old_songs(db: Database):
    await seed(db)
    await db.playlists.member_left(PLACE, ALICE, T0 + 3 * H)
    await db.playlists.member_returned(PLACE, ALICE)

    assert ranking(await db.playlists.playlist(PLACE, "sad")) == [("spotify:A", 2), ("spotify:B", 1)]
    assert await db.playlists.server_mood_of_week(PLACE, T0 + 24 * H) == {"sad": 3}


async def test_a_member_who_asks_there_again_after_leaving_counts_again(db: Database):
    await seed(db)
    await db.playlists.member_left(PLACE, ALICE, T0 + 3 * H)
    await db.requests.add(MoodRequest(ALICE, PLACE, "spotify:C", "sad", T0 + 4 * H))

    assert ranking(await db.playlists.playlist(PLACE, "sad")) == [
        ("spotify:A", 2), ("spotify:C", 1), ("spotify:B", 1)]


async def test_a_journal_entry_written_there_brings_a_member_back_but_one_written_privately_not(db: Database):
    await seed(db)
    await db.playlists.member_left(PLACE, ALICE, T0 + 3 * H)
    private = JournalEntry(user=ALICE, local_date=T0.date(), prompt_id="p1", phrase="Song?", reply_text="D",
                           track_key="spotify:D", track_title="D", mood="sad", valence=0.0, arousal=0.0,
                           created_at=T0 + 4 * H)
    await db.journal.add(private)
    assert await db.playlists.members_seen(PLACE) == [BOB]

    await db.journal.add(JournalEntry(**{**private.__dict__, "prompt_id": "p2", "created_at": T0 + 5 * H,
                                         "place": PLACE}))
    assert await db.playlists.members_seen(PLACE) == [ALICE, BOB]


async def test_leaving_again_after_coming_back_counts_the_last_departure(db: Database):
    await seed(db)
    await db.playlists.member_left(PLACE, ALICE, T0 + 3 * H)
    await db.requests.add(MoodRequest(ALICE, PLACE, "spotify:C", "sad", T0 + 4 * H))
    await db.playlists.member_left(PLACE, ALICE, T0 + 5 * H)
    # A departure said twice (a service message, then a membership update), the earlier time last.
    await db.playlists.member_left(PLACE, ALICE, T0 + 3 * H)

    assert await db.playlists.members_seen(PLACE) == [BOB]
    assert [d.left_at for d in (await db.privacy.export(ALICE)).departures] == [T0 + 5 * H]


async def test_one_departure_said_many_times_at_once_is_one_record(db: Database):
    await seed(db)
    await asyncio.gather(*(db.playlists.member_left(PLACE, ALICE, T0 + n * H) for n in range(3, 9)))

    assert await db.db["departures"].count_documents({}) == 1
    assert (await db.privacy.export(ALICE)).departures == [Departure(PLACE, T0 + 8 * H)]


async def test_a_departure_is_exported_and_forgotten(db: Database):
    await seed(db)
    await db.playlists.member_left(PLACE, ALICE, T0 + 3 * H)
    await db.playlists.member_left(OTHER_PLACE, ALICE, T0 + 4 * H)
    await db.playlists.member_left(PLACE, BOB, T0 + 5 * H)

    assert (await db.privacy.export(ALICE)).departures == [Departure(PLACE, T0 + 3 * H),
                                                           Departure(OTHER_PLACE, T0 + 4 * H)]
    await db.privacy.forget(ALICE)
    assert (await db.privacy.export(ALICE)).departures == []
    assert await db.db["departures"].count_documents({"user_id": "alice"}) == 0
    assert (await db.privacy.export(BOB)).departures == [Departure(PLACE, T0 + 5 * H)]


async def test_someone_never_seen_in_a_place_leaving_it_leaves_no_record_about_them(db: Database):
    """Telegram says so of everyone who leaves a group the bot is in (Discord too, with the members
    intent): a person who never used the bot there, or deleted everything with /forget, has no
    songs there to stop counting, and no record of their comings and goings is kept."""
    await seed(db)
    carol = UserRef("chat", "carol")  # never used the bot
    await db.playlists.member_left(PLACE, carol, T0 + 3 * H)
    await db.playlists.member_left("chat:g3", ALICE, T0 + 3 * H)  # Alice never used it in g3
    await db.privacy.forget(BOB)
    await db.playlists.member_left(PLACE, BOB, T0 + 4 * H)

    assert await db.db["departures"].count_documents({}) == 0
    assert (await db.privacy.export(carol)).departures == []
    assert (await db.privacy.export(BOB)).departures == []
    assert await db.playlists.members_seen(PLACE) == [ALICE]


async def test_departures_follow_a_group_that_got_a_new_id(db: Database):
    await seed(db)
    await db.playlists.member_left(PLACE, ALICE, T0 + 3 * H)
    await db.playlists.move_place(PLACE, "chat:g1-new")

    assert await db.playlists.members_seen("chat:g1-new") == [BOB]
    assert await db.db["departures"].count_documents({"place": PLACE}) == 0


async def test_a_group_that_got_a_new_id_has_its_songs_there_once_and_none_under_the_old_id(db: Database):
    """A song asked for under both ids (the new one's first message came before the move was
    seen) is one vote, for the member's last answer; the old id keeps nothing."""
    await seed(db)
    await db.requests.add(MoodRequest(BOB, "chat:g1-new", "spotify:A", "calm", T0 + 3 * H))
    await db.playlists.move_place(PLACE, "chat:g1-new")

    assert ranking(await db.playlists.playlist("chat:g1-new", "sad")) == [("spotify:B", 1), ("spotify:A", 1)]
    assert ranking(await db.playlists.playlist("chat:g1-new", "calm")) == [("spotify:A", 1)]
    assert await db.playlists.playlist(PLACE, "sad") == []
    assert await db.playlists.members_seen(PLACE) == []


async def test_a_request_recorded_after_its_group_got_a_new_id_counts_in_the_new_one(db: Database):
    """A /mood asked in the group just before Telegram gave it a new id (a supergroup), or read from
    the backlog after a restart, is answered seconds after the move: its song belongs to the group
    under its new id, not to the old id that no message can come from again."""
    await seed(db)
    await db.playlists.move_place(PLACE, "chat:g1-new")
    db.requests.record(MoodRequest(ALICE, PLACE, "spotify:C", "sad", T0 + 4 * H))

    assert ranking(await db.playlists.playlist("chat:g1-new", "sad")) == [
        ("spotify:A", 2), ("spotify:C", 1), ("spotify:B", 1)]
    assert await db.db["requests"].count_documents({"place": PLACE}) == 0


async def test_a_member_who_only_wrote_in_a_group_that_got_a_new_id_counts_there_with_the_file_they_sent(db: Database):
    """Carol never asked /mood in the group, she answered her journal prompt there with a file:
    under the group's new id she is still a member, and her file still one of its songs."""
    carol = UserRef("chat", "carol")
    await db.journal.add(JournalEntry(user=carol, local_date=T0.date(), prompt_id="p1", phrase="Song?",
                                      reply_text="b-side.ogg", track_key="sha256:cd34", track_title="b-side",
                                      mood="calm", valence=0.0, arousal=0.0, created_at=T0, place=PLACE))
    await db.playlists.move_place(PLACE, "chat:g1-new")

    assert await db.playlists.members_seen("chat:g1-new") == [carol]
    assert ranking(await db.playlists.playlist("chat:g1-new", "calm")) == [("sha256:cd34", 1)]
    assert await db.playlists.server_mood_of_week("chat:g1-new", T0 + H) == {"calm": 1}
    assert await db.playlists.members_seen(PLACE) == []


async def test_a_group_that_got_a_new_id_is_one_member_under_it_for_what_it_posted_as_itself(db: Database):
    """A Telegram group's posts as itself (an anonymous admin's /mood) are counted under the group's
    id, which changes with the move: its songs before the move, one still being answered then, and
    those after are one member's, under the new id."""
    old, new = UserRef("chat", "g1"), UserRef("chat", "g1-new")
    await db.requests.add(MoodRequest(old, PLACE, "spotify:A", "sad", T0))
    await db.requests.add(MoodRequest(new, "chat:g1-new", "spotify:A", "sad", T0 + H))
    await db.playlists.move_place(PLACE, "chat:g1-new", (old, new))
    db.requests.record(MoodRequest(old, PLACE, "spotify:B", "sad", T0 + 2 * H))  # asked before the move

    assert ranking(await db.playlists.playlist("chat:g1-new", "sad")) == [("spotify:B", 1), ("spotify:A", 1)]
    assert await db.playlists.members_seen("chat:g1-new") == [new]
    assert await db.db["requests"].count_documents({"user_id": "g1"}) == 0
