"""One user can never read, export or delete another's journal — through Telegram and Discord —
and server settings change only for admins.

Alice's entries are stored first; then Bob runs /journal list, /export and /forget (confirmed)
through each real front-end, and even forges a button that names Alice. Alice's entries survive,
unseen by Bob."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from bot.config import Settings
from bot.frontends.discord import DiscordFrontend
from bot.frontends.telegram import TelegramFrontend
from bot.usecases import build_usecases
from storage.models import JournalEntry, UserRef
from tests.fakes.discord_api import FakeDiscord
from tests.fakes.telegram_api import FakeTelegramBotAPI

TELEGRAM_TOKEN = "123456:TEST-token"
ALICE, BOB = 42, 43
TG_GROUP = -100777
GUILD = 777000000000000001
STRING, SUB_COMMAND = 3, 1
ALICE_SECRET = "alice-only-words-71c"
ALICE_TITLE = "Alice Private Song 5e2"


def entry(platform: str, user: int, prompt_id: str, title: str, note: str) -> JournalEntry:
    return JournalEntry(
        user=UserRef(platform, str(user)), local_date=date(2026, 11, 20), prompt_id=prompt_id,
        phrase="At lunch today, the song in my head was…", reply_text=f"{title} {note}",
        track_key=f"youtube:{prompt_id:_<11}"[:19], track_title=title, mood="calm", valence=0.4, arousal=-0.3,
        created_at=datetime(2026, 11, 20, 12, tzinfo=timezone.utc), note=note)


async def seed(db, platform: str) -> UserRef:
    alice = UserRef(platform, str(ALICE))
    await db.journal.add(entry(platform, ALICE, "alice-p1", ALICE_TITLE, ALICE_SECRET))
    await db.journal.add(entry(platform, ALICE, "alice-p2", ALICE_TITLE + " II", ALICE_SECRET))
    await db.journal.add(entry(platform, BOB, "bob-p1", "Bob's Song", "bob's words"))
    return alice


@pytest.fixture
async def telegram(db):
    fake = await FakeTelegramBotAPI(TELEGRAM_TOKEN).start()
    settings = Settings(_env_file=None, telegram_token=TELEGRAM_TOKEN, telegram_api_url=fake.base_url,
                        telegram_file_url=fake.base_file_url)
    frontend = TelegramFrontend(settings, build_usecases(db, classifier=None, fetcher=None), poll_timeout_s=1)
    await frontend.start()
    yield fake
    await frontend.stop()
    await fake.stop()


@pytest.fixture
async def discord_fake(db):
    fake = await FakeDiscord().start()
    settings = Settings(_env_file=None, discord_token="discord-test-token", discord_api_url=fake.api_url,
                        discord_gateway_url=fake.gateway_url)
    frontend = DiscordFrontend(settings, build_usecases(db, classifier=None, fetcher=None), guild_ready_timeout=0.05)
    await frontend.start()
    yield fake
    await frontend.stop()
    await fake.stop()


async def test_telegram_bob_cannot_see_export_or_delete_alices_journal(db, telegram):
    fake = telegram
    alice = await seed(db, "telegram")
    await fake.user_sends("/journal list", user=BOB, chat=BOB)
    listed = await fake.wait_for("sendMessage")
    assert "Bob's Song" in listed.text and ALICE_TITLE not in listed.text and ALICE_SECRET not in listed.text

    await fake.user_sends("/export", user=BOB, chat=BOB)
    exported = (await fake.wait_for("sendDocument")).files["document"]
    assert b"bob's words" in exported and ALICE_SECRET.encode() not in exported and ALICE_TITLE.encode() not in exported

    # A forged button naming Alice, pressed by Bob, deletes nothing.
    await fake.user_sends("/forget", user=BOB, chat=BOB)
    question = await fake.wait_for("sendMessage")
    await fake.user_clicks(f"forget:yes:{ALICE}", message=question, user=BOB)
    assert (await fake.wait_for("answerCallbackQuery")).params["text"] == "This button belongs to someone else."
    assert await db.journal.count(alice) == 2

    await fake.user_clicks(f"forget:yes:{BOB}", message=question, user=BOB)
    done = await fake.wait_for("editMessageText")
    assert done.text.startswith("Done: I deleted everything")
    assert await db.journal.count(UserRef("telegram", str(BOB))) == 0
    assert [e.note for e in await db.journal.list(alice)] == [ALICE_SECRET, ALICE_SECRET]


async def answer_after_defer(fake):
    """Commands that read the database acknowledge first (Discord's 3 s), then edit in the answer."""
    deferred = await fake.wait_for("interaction_callback")
    return await fake.wait_for("edit_original", lambda c: c.token == deferred.token)


async def test_discord_bob_cannot_see_export_or_delete_alices_journal(db, discord_fake):
    fake = discord_fake
    alice = await seed(db, "discord")
    await fake.slash("journal", [{"name": "list", "type": SUB_COMMAND}], user=BOB, guild=GUILD)
    listed = await answer_after_defer(fake)
    assert "Bob's Song" in listed.content and ALICE_TITLE not in listed.content

    await fake.slash("export", user=BOB, guild=GUILD)
    answer = await fake.wait_for("edit_original")
    (_, exported), = answer.files.items()
    assert b"bob's words" in exported and ALICE_SECRET.encode() not in exported

    # Bob answers a /forget question that Alice asked: refused. Then his own: only his data goes.
    await fake.slash("forget", user=ALICE, guild=GUILD)
    alices_question = await fake.wait_for("interaction_callback")
    await fake.click(alices_question.result["interaction"]["response_message_id"], "forget:yes", user=BOB)
    refused = await fake.wait_for("interaction_callback")
    assert "Done" not in refused.content
    assert await db.journal.count(alice) == 2
    assert await db.journal.count(UserRef("discord", str(BOB))) == 1  # nor were Bob's own deleted

    await fake.slash("forget", user=BOB, guild=GUILD)
    question = await fake.wait_for("interaction_callback")
    await fake.click(question.result["interaction"]["response_message_id"], "forget:yes", user=BOB)
    done = await answer_after_defer(fake)
    assert done.content.startswith("Done: I deleted everything")
    assert await db.journal.count(UserRef("discord", str(BOB))) == 0
    assert [e.note for e in await db.journal.list(alice)] == [ALICE_SECRET, ALICE_SECRET]


async def test_telegram_server_playlist_switch_is_admin_only(db, telegram):
    fake = telegram
    place = f"telegram:{TG_GROUP}"
    for state in ("off", "on", "off"):
        await fake.user_sends(f"/serverplaylist {state}", chat=TG_GROUP, user=BOB)
        assert "admin" in (await fake.wait_for("sendMessage")).text.lower()
        assert (await db.servers.get(place)).playlist_enabled is True
    fake.admins[str(TG_GROUP)] = {str(ALICE)}
    await fake.user_sends("/serverplaylist off", chat=TG_GROUP, user=ALICE)
    await fake.wait_for("sendMessage")
    assert (await db.servers.get(place)).playlist_enabled is False
    await fake.user_sends("/serverplaylist on", chat=TG_GROUP, user=BOB)  # Bob cannot undo it
    assert "admin" in (await fake.wait_for("sendMessage")).text.lower()
    assert (await db.servers.get(place)).playlist_enabled is False


async def test_discord_server_playlist_switch_is_admin_only(db, discord_fake):
    fake = discord_fake
    place = f"discord:{GUILD}"
    for state in ("off", "on"):
        await fake.slash("serverplaylist", [{"name": "state", "type": STRING, "value": state}], guild=GUILD, user=BOB)
        assert "admin" in (await answer_after_defer(fake)).content
    assert (await db.servers.get(place)).playlist_enabled is True
    fake.admins.add(ALICE)
    await fake.slash("serverplaylist", [{"name": "state", "type": STRING, "value": "off"}], guild=GUILD, user=ALICE)
    await answer_after_defer(fake)
    assert (await db.servers.get(place)).playlist_enabled is False
    await fake.slash("serverplaylist", [{"name": "state", "type": STRING, "value": "on"}], guild=GUILD, user=BOB)
    assert "admin" in (await answer_after_defer(fake)).content
    assert (await db.servers.get(place)).playlist_enabled is False
