"""A journal answer whose summary the database refused after its entry was stored (her playlist
summary not written: a validator refused it), then the bot killed outright (SIGKILL, an OOM kill, a
power cut) before anything made her summaries again. The answer was told saved, so Telegram does not
hand it over again; the member was known in memory only, and her song stayed out of the group's
playlist until her next delete. The refusal marks her in the database (`journal_repairs`), and the
next start makes her summaries again, as after a delete (tests/faults/test_journal_delete_killed.py)."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from inference import predict
from storage.database import Database
from storage.models import MoodRequest
from storage.schema import JOURNAL_TRACKS
from tests.abuse.test_forget_cut_short import refusing_writes
from tests.bot.test_app import telegram_env
from tests.e2e.wiring import weights_dir
from tests.fakes.spotify_api import FakeSpotify
from tests.faults.support import CALM, classified_record
from tests.faults.test_journal_delete_killed import (ALICE, ALICE_REF, GROUP, a_bot, her_playlist_after_the_restart,
                                                      killed_once_it_answered, telegram_and_database)
from tests.frontends.conftest import CREEP
from tests.storage.conftest import T0


async def her_journal_on(db: Database) -> str:
    """Alice, seen in the group (a /mood there), with her journal on (its prompt hours away), and a
    Spotify song whose mood the cache holds (calm): its link (a file sent in a private chat, as an
    answer is, counts in no playlist)."""
    hours_away = (datetime.now(timezone.utc) + timedelta(hours=6)).time().replace(second=0, microsecond=0)
    await db.users.set_journal(ALICE_REF, enabled=True, prompt_time=hours_away, timezone="UTC", chat_id=str(ALICE))
    await db.requests.add(MoodRequest(ALICE_REF, f"telegram:{GROUP}", "spotify:asked", "happy", T0))
    await db.requests.settled()
    served = predict.cached_main_model(str(weights_dir()), 1).version  # else heard again: a download
    await db.tracks.save(classified_record(f"spotify:{CREEP.id}", CREEP.name, replace(CALM, model_version=served)))
    return f"https://open.spotify.com/track/{CREEP.id}"


def spotify_bot_env(fake, spotify: FakeSpotify, data_dir: Path, mongo_uri: str, db_name: str) -> dict[str, str]:
    """`python -m bot`'s environment: the fake Telegram, the test database and the fake Spotify."""
    return telegram_env(fake, data_dir, MONGODB_URI=mongo_uri, MONGODB_DATABASE=db_name,
                        SPOTIFY_CLIENT_ID=spotify.client_id, SPOTIFY_CLIENT_SECRET=spotify.client_secret,
                        SPOTIFY_API_URL=spotify.api_url, SPOTIFY_AUTH_URL=spotify.auth_url)


async def test_an_answer_whose_summary_was_refused_then_a_hard_kill_is_in_her_playlist_after_the_restart(
        tmp_path, mongo_uri, db_name):
    async with telegram_and_database(mongo_uri, db_name) as (db, fake):
        with FakeSpotify() as spotify:
            link = await her_journal_on(db)
            spotify.add(CREEP)
            env = spotify_bot_env(fake, spotify, tmp_path / "data", mongo_uri, db_name)
            async with a_bot(tmp_path / "first", env) as proc:
                await fake.user_sends("/journal prompt", user=ALICE, chat=ALICE)
                prompt = await fake.wait_for("sendMessage", lambda c: "force_reply" in c.params.get("reply_markup", {}),
                                             timeout=30)
                await refusing_writes(db, JOURNAL_TRACKS)
                mark = fake.mark()
                await fake.user_sends(link, user=ALICE, chat=ALICE, reply_to=fake.message_of(prompt)["message_id"])
                told = await fake.wait_for_reply(lambda c: "Creep" in c.text, timeout=30, after=mark)
                assert told.text.startswith("Saved to your journal"), told.text  # stored: saved, said so
                await killed_once_it_answered(db, tmp_path / "first", proc)

            shown = await her_playlist_after_the_restart(db, fake, tmp_path / "next", env, "calm")
            assert "Creep" in shown, shown
