"""Given a user with a long journal, /journal list pages through it on Telegram and Discord:
a page number, and ◀ Older / Newer ▶ buttons that show the next page in the same message. The
buttons answer their owner only, and never show a journal where others could see it."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from bot.frontends import render
from bot.frontends.discord import journal as journal_cog
from bot.frontends.discord.journal import NEWER_BUTTON, NOT_YOUR_BUTTON as DISCORD_NOT_YOURS, OLDER_BUTTON
from bot.frontends.telegram import NOT_YOUR_BUTTON
from bot.usecases.journal import BAD_LIST_WORDS
from storage.models import JournalEntry, UserRef
from tests.fakes.discord_api import EPHEMERAL
from tests.frontends.test_discord import DEFERRED_UPDATE, failures_logged, private_answer

ALICE, BOB = 42, 43
GROUP = -100777
GUILD = 777000000000000001
INTEGER, STRING = 4, 3  # a Discord option's types


async def write_days(db, platform: str, user: int, count: int, title: str = "Song ", note: str = "") -> None:
    """`count` entries of consecutive days from 2026-01-01, titled `title` and their number, "Song 0"
    (oldest) on, each with `note`."""
    ref = UserRef(platform, str(user))
    for n in range(count):
        day = date(2026, 1, 1) + timedelta(days=n)
        assert await db.journal.add(JournalEntry(
            user=ref, local_date=day, prompt_id=f"p{n}", phrase="Today sounded like", reply_text="x",
            track_key=f"spotify:{n}", track_title=f"{title}{n}", mood="calm", valence=0.1, arousal=-0.2,
            created_at=datetime(day.year, day.month, day.day, 21, tzinfo=timezone.utc), note=note))


def days_listed(text: str) -> list[str]:
    return [line[:10] for line in text.splitlines()[1:] if line[:4] == "2026"]


def newest(count: int, skip: int = 0) -> list[str]:
    """The dates of `count` entries after skipping `skip`, newest first, of a 23-day journal."""
    return [(date(2026, 1, 23) - timedelta(days=skip + n)).isoformat() for n in range(count)]


# Telegram -----------------------------------------------------------------------------------------


def buttons(call) -> list[tuple[str, str]]:
    markup = call.params.get("reply_markup") or {"inline_keyboard": []}
    return [(b["text"], b["callback_data"]) for row in markup["inline_keyboard"] for b in row]


async def test_telegram_pages_with_buttons_that_edit_the_list_in_place(telegram, db):
    fake, _ = telegram
    await write_days(db, "telegram", ALICE, 23)
    await fake.user_sends("/journal list", user=ALICE, chat=ALICE)
    first = await fake.wait_for("sendMessage")
    assert first.text.splitlines()[0] == "Your journal, entries 1–10 of 23 (newest first):"
    assert days_listed(first.text) == newest(10)
    [(label, older)] = buttons(first)
    assert label == "◀ Older" and older.startswith(f"journal:{ALICE}:older:") and len(older.encode()) <= 64

    await fake.user_clicks(older, message=first, user=ALICE)
    second = await fake.wait_for("editMessageText")
    assert int(second.params["message_id"]) == fake.message_of(first)["message_id"]  # the same message, edited
    assert second.text.splitlines()[0] == "Your journal, entries 11–20 of 23 (newest first):"
    assert days_listed(second.text) == newest(10, skip=10)
    assert [label for label, _ in buttons(second)] == ["◀ Older", "Newer ▶"]

    await fake.user_clicks(buttons(second)[0][1], message=second.params["_result"], user=ALICE)
    third = await fake.wait_for("editMessageText")
    assert days_listed(third.text) == newest(3, skip=20)
    [(label, newer)] = buttons(third)
    assert label == "Newer ▶"
    await fake.user_clicks(newer, message=third.params["_result"], user=ALICE)
    assert days_listed((await fake.wait_for("editMessageText")).text) == newest(10, skip=10)
    assert all(c.status == 200 for c in fake.calls_of("answerCallbackQuery"))


async def test_telegram_takes_a_page_number_and_refuses_a_wrong_one_plainly(telegram, db):
    fake, _ = telegram
    await write_days(db, "telegram", ALICE, 23)
    await fake.user_sends("/journal list 3", user=ALICE, chat=ALICE)
    third = await fake.wait_for("sendMessage")
    assert days_listed(third.text) == newest(3, skip=20)
    assert [label for label, _ in buttons(third)] == ["Newer ▶"]
    for page, answer in (("0", BAD_LIST_WORDS.format(page='0', limit=10)),
                         ("-1", BAD_LIST_WORDS.format(page='-1', limit=10)),
                         ("abc", BAD_LIST_WORDS.format(page='abc', limit=10)),
                         ("4", "Your journal has 3 pages (23 entries): there's no page 4. Page 3 holds the oldest.")):
        await fake.user_sends(f"/journal list {page}", user=ALICE, chat=ALICE)
        refusal = await fake.wait_for("sendMessage")
        assert refusal.text == answer and not buttons(refusal)


async def test_telegram_lists_from_a_month_or_a_day_with_buttons_that_go_on_from_there(telegram, db):
    # '/journal list january' and '/journal list 2026-01-05' were "isn't a page number".
    fake, _ = telegram
    await write_days(db, "telegram", ALICE, 40)  # 2026-01-01 to 2026-02-09
    await fake.user_sends("/journal list January 2026", user=ALICE, chat=ALICE)
    january = await fake.wait_for("sendMessage")
    assert january.text.splitlines()[0] == "Your journal, January 2026 and before: entries 10–19 of 40 (newest first):"
    assert days_listed(january.text) == [f"2026-01-{day:02}" for day in range(31, 21, -1)]
    assert [label for label, _ in buttons(january)] == ["◀ Older", "Newer ▶"]
    await fake.user_clicks(buttons(january)[0][1], message=january, user=ALICE)
    assert days_listed((await fake.wait_for("editMessageText")).text)[0] == "2026-01-21"
    await fake.user_sends("/journal list 5 Jan 2026", user=ALICE, chat=ALICE)
    assert days_listed((await fake.wait_for("sendMessage")).text)[:2] == ["2026-01-05", "2026-01-04"]


async def test_telegram_a_short_journal_has_no_buttons(telegram, db):
    fake, _ = telegram
    await write_days(db, "telegram", ALICE, 10)
    await fake.user_sends("/journal list", user=ALICE, chat=ALICE)
    listed = await fake.wait_for("sendMessage")
    assert listed.text.splitlines()[0] == "Your journal (10 of 10):" and "reply_markup" not in listed.params


async def test_telegram_a_page_button_pressed_by_someone_else_shows_no_journal(telegram, db):
    fake, _ = telegram
    await write_days(db, "telegram", ALICE, 23)
    await write_days(db, "telegram", BOB, 23)
    await fake.user_sends("/journal list", user=ALICE, chat=ALICE)
    first = await fake.wait_for("sendMessage")
    [(_, older)] = buttons(first)
    cursor = older.rsplit(":", 1)[1]
    for data, user in ((older, BOB),  # Alice's button, pressed by Bob
                       (f"journal:{BOB}:older:{cursor}", BOB),  # Bob's id put in Alice's data
                       (f"journal:{ALICE}:older:{cursor}'; $gt", ALICE),  # not data this bot made
                       (f"journal:{ALICE}:sideways:{cursor}", ALICE)):
        await fake.user_clicks(data, message=first, user=user)
        refused = await fake.wait_for("answerCallbackQuery")
        assert refused.params["text"] == NOT_YOUR_BUTTON and refused.params["show_alert"] in (True, "true")
    # The same button on a message in a group (where everyone would read the page) is refused too.
    in_group = {**fake.message_of(first), "chat": {"id": GROUP, "type": "supergroup", "title": "Group"}}
    await fake.user_clicks(older, message=in_group, user=ALICE)
    assert (await fake.wait_for("answerCallbackQuery")).params["text"] == NOT_YOUR_BUTTON
    assert not fake.calls_of("editMessageText")


async def test_telegram_a_button_on_a_page_deleted_since_says_so(telegram, db, usecases):
    fake, _ = telegram
    await write_days(db, "telegram", ALICE, 23)
    await fake.user_sends("/journal list", user=ALICE, chat=ALICE)
    first = await fake.wait_for("sendMessage")
    await db.privacy.forget(UserRef("telegram", str(ALICE)))
    await fake.user_clicks(buttons(first)[0][1], message=first, user=ALICE)
    gone = await fake.wait_for("editMessageText")
    assert gone.text == "Those entries are no longer in your journal. /journal list shows your latest."
    assert not (gone.params.get("reply_markup") or {}).get("inline_keyboard")


# Discord ------------------------------------------------------------------------------------------


def page_option(page: int) -> list[dict]:
    return [{"name": "list", "type": 1, "options": [{"name": "page", "type": INTEGER, "value": page}]}]


async def turned(fake) -> dict:
    """The page a button press shows: acknowledged at once (a deferred update, before the database
    is read), then the same private message edited."""
    acknowledged = await fake.wait_for("interaction_callback")
    assert acknowledged.json["type"] == DEFERRED_UPDATE
    return (await fake.wait_for("edit_original")).json


def discord_buttons(call) -> list[tuple[str, str, bool]]:
    payload = call if isinstance(call, dict) else call.json
    rows = (payload.get("data") or payload).get("components") or []
    return [(b["label"], b["custom_id"], bool(b.get("disabled"))) for row in rows for b in row["components"]]


def discord_button(call, label: str) -> str:
    """The custom_id of the button labelled `label`: what a press on it sends."""
    return next(custom_id for shown, custom_id, _ in discord_buttons(call) if shown == label)


def shown_buttons(call) -> list[tuple[str, bool]]:
    """The buttons shown, each with whether it is greyed out, as the user sees them."""
    return [(label, disabled) for label, _, disabled in discord_buttons(call)]


async def test_discord_pages_privately_with_buttons_and_a_page_option(discord_bot, db):
    fake, _ = discord_bot
    await write_days(db, "discord", ALICE, 23)
    await fake.slash("journal", [{"name": "list", "type": 1}], user=ALICE)
    first = await private_answer(fake)
    assert first.content.splitlines()[0] == "Your journal, entries 1–10 of 23 (newest first):"
    assert days_listed(first.content) == newest(10)
    assert shown_buttons(first) == [(OLDER_BUTTON, False), (NEWER_BUTTON, True)]
    older = discord_button(first, OLDER_BUTTON)
    assert older.startswith(f"journal:{ALICE}:older:") and len(older) <= 100  # Discord's limit

    message_id = first.result["id"]
    await fake.click(message_id, older, user=ALICE)
    second = await turned(fake)
    assert days_listed(second["content"]) == newest(10, skip=10)
    assert shown_buttons(second) == [(OLDER_BUTTON, False), (NEWER_BUTTON, False)]
    await fake.click(message_id, discord_button(second, OLDER_BUTTON), user=ALICE)
    third = await turned(fake)
    assert days_listed(third["content"]) == newest(3, skip=20)
    assert shown_buttons(third) == [(OLDER_BUTTON, True), (NEWER_BUTTON, False)]
    await fake.click(message_id, discord_button(third, NEWER_BUTTON), user=ALICE)
    assert days_listed((await turned(fake))["content"]) == newest(10, skip=10)

    await fake.slash("journal", page_option(3), user=ALICE)
    by_number = await private_answer(fake)
    assert days_listed(by_number.content) == newest(3, skip=20)
    for page in (0, -1, 4):
        await fake.slash("journal", page_option(page), user=ALICE)
        refusal = await private_answer(fake)
        assert ("isn't a page number" if page < 1 else "there's no page 4") in refusal.content
        assert not discord_buttons(refusal)


async def test_discord_page_buttons_answer_their_owner_only(discord_bot, db):
    fake, _ = discord_bot
    await write_days(db, "discord", ALICE, 23)
    await write_days(db, "discord", BOB, 23)
    await fake.slash("journal", [{"name": "list", "type": 1}], user=ALICE)
    first = await private_answer(fake)
    await fake.click(first.result["id"], discord_button(first, OLDER_BUTTON), user=BOB)
    refused = await fake.wait_for("interaction_callback")
    assert refused.content == DISCORD_NOT_YOURS and refused.flags & EPHEMERAL
    assert "2026" not in refused.content and len(fake.calls_of("interaction_callback")) == 2  # defer, refusal


async def test_discord_a_page_button_on_a_message_others_see_shows_no_journal(discord_bot, db):
    """The owner's own button, pressed on a message of the bot's in a channel (the bot puts page
    buttons on private answers only: a forged press) is refused, as on Telegram in a group."""
    fake, _ = discord_bot
    await write_days(db, "discord", ALICE, 23)
    await fake.slash("journal", [{"name": "list", "type": 1}], user=ALICE)
    first = await private_answer(fake)
    mark = fake.mark()
    await fake.click(fake.snowflake(), discord_button(first, OLDER_BUTTON), user=ALICE, guild=GUILD)
    refused = await fake.wait_for("interaction_callback")
    assert refused.content == DISCORD_NOT_YOURS and refused.flags & EPHEMERAL
    assert [c.name for c in fake.calls[mark:]] == ["interaction_callback"]


async def test_discord_a_page_that_cannot_be_shown_gets_a_polite_answer_and_is_logged(discord_bot, db, caplog):
    fake, _ = discord_bot
    await write_days(db, "discord", ALICE, 23)
    await fake.slash("journal", [{"name": "list", "type": 1}], user=ALICE)
    first = await private_answer(fake)
    fake.fail_next("edit_original", times=1, status=400)  # Discord refuses the next page
    await fake.click(first.result["id"], discord_button(first, OLDER_BUTTON), user=ALICE)
    apology = await fake.wait_for("followup")
    assert apology.content == render.GENERIC_ERROR and apology.flags & EPHEMERAL
    assert [(r.user, r.place) for r in failures_logged(caplog)] == [(str(ALICE), None)]


async def test_discord_a_second_press_before_the_page_is_redrawn_turns_to_the_same_page(discord_bot, db):
    """A double-click on ◀ Older: both presses come from the same button, so both show the page
    it leads to; neither is dropped (Discord's "This interaction failed")."""
    fake, _ = discord_bot
    await write_days(db, "discord", ALICE, 23)
    await fake.slash("journal", [{"name": "list", "type": 1}], user=ALICE)
    first = await private_answer(fake)
    older, mark = discord_button(first, OLDER_BUTTON), fake.mark()
    presses = [await fake.click(first.result["id"], older, user=ALICE) for _ in range(2)]
    for press in presses:
        page = await fake.wait_for("edit_original", lambda c, token=press["token"]: c.token == token, after=mark)
        assert days_listed(page.content) == newest(10, skip=10)


async def test_discord_a_short_journal_has_no_buttons(discord_bot, db):
    fake, _ = discord_bot
    await write_days(db, "discord", ALICE, 3)
    await fake.slash("journal", [{"name": "list", "type": 1}], user=ALICE)
    listed = await private_answer(fake)
    assert listed.content.splitlines()[0] == "Your journal (3 of 3):" and not discord_buttons(listed)


async def test_discord_older_goes_on_after_the_last_entry_that_fit_in_the_message(discord_bot, db):
    fake, _ = discord_bot
    ref = UserRef("discord", str(ALICE))
    for n in range(23):  # titles so long that ten entries cannot fit in one message
        day = date(2026, 1, 1) + timedelta(days=n)
        assert await db.journal.add(JournalEntry(
            user=ref, local_date=day, prompt_id=f"p{n}", phrase="Today sounded like", reply_text="x",
            track_key=f"spotify:{n}", track_title="A very long title " * 12 + f"#{n}", mood="calm",
            valence=0.1, arousal=-0.2, created_at=datetime(day.year, day.month, day.day, 21, tzinfo=timezone.utc)))
    await fake.slash("journal", [{"name": "list", "type": 1}], user=ALICE)
    first = await private_answer(fake)
    shown = len(days_listed(first.content))
    assert 1 <= shown < 10 and len(first.content) <= 2000
    assert first.content.splitlines()[0] == f"Your journal, entries 1–{shown} of 23 (newest first):"
    await fake.click(first.result["id"], discord_button(first, OLDER_BUTTON), user=ALICE)
    second = (await turned(fake))["content"]
    assert days_listed(second)[0] == newest(1, skip=shown)[0]  # none skipped
    assert second.splitlines()[0].startswith(f"Your journal, entries {shown + 1}–")


async def test_discord_page_buttons_go_away_even_when_the_list_s_own_token_has_expired(discord_bot, db, monkeypatch):
    """Each press keeps the buttons for another PAGES_TIMEOUT_S, so a journal read slowly outlives
    /journal list's token (15 minutes); they are then taken away through the last press's token,
    rather than left under the list, dead."""
    fake, _ = discord_bot
    monkeypatch.setattr(journal_cog, "PAGES_TIMEOUT_S", 2.0)
    await write_days(db, "discord", ALICE, 23)
    await fake.slash("journal", [{"name": "list", "type": 1}], user=ALICE)
    first = await private_answer(fake)
    press = await fake.click(first.result["id"], discord_button(first, OLDER_BUTTON), user=ALICE)
    await turned(fake)
    fake.expire(first.token)  # the list was asked for more than 15 minutes ago
    gone = await fake.wait_for("edit_original", lambda c: c.json.get("components") == [])
    assert gone.token == press["token"]


async def test_a_date_option_discord_cannot_read_is_no_date_nor_page_as_on_telegram(discord_bot, db):
    """A month misspelled in /journal list's date option was told "isn't a page number", of an option
    named date; it is now neither a date nor a page read, as the same words typed on Telegram are."""
    fake, _ = discord_bot
    await write_days(db, "discord", ALICE, 3)
    await fake.slash("journal", [{"name": "list", "type": 1, "options": [
        {"name": "date", "type": STRING, "value": "Decembr"}]}], user=ALICE)
    refusal = (await private_answer(fake)).content
    # Its examples in the date option: typed after '/journal list', Discord puts them in page (test_first_contact.py).
    assert refusal == BAD_LIST_WORDS.format(page="Decembr", limit=10).replace("/journal list ", "/journal list date:")
    assert refusal.startswith("“Decembr” isn't a date or a page number I can read.")


async def test_discord_lists_from_a_day_or_a_month_given_in_its_date_option(discord_bot, db):
    # Discord's /journal list took a page number alone: a month or a day could not be asked for.
    fake, _ = discord_bot
    await write_days(db, "discord", ALICE, 40)  # 2026-01-01 to 2026-02-09
    await fake.slash("journal", [{"name": "list", "type": 1, "options": [
        {"name": "date", "type": STRING, "value": "January 2026"}]}], user=ALICE)
    january = await private_answer(fake)
    assert january.content.splitlines()[0] == "Your journal, January 2026 and before: entries 10–19 of 40 (newest first):"
    assert days_listed(january.content)[0] == "2026-01-31"
    assert shown_buttons(january) == [(OLDER_BUTTON, False), (NEWER_BUTTON, False)]
    await fake.click(january.result["id"], discord_button(january, OLDER_BUTTON), user=ALICE)
    assert days_listed((await turned(fake))["content"])[0] == "2026-01-21"
