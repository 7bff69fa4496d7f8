"""A file forwarded from an account its owner hid from forwards' links (Telegram's forward_origin
of type hidden_user: a name, no id) was titled by that name, "Voice note by Carol, 5 Dec 2026", in
the request, the group's playlist and a journal entry, where Carol, known by no id, could never
/forget it. She chose not to be linked to her messages: such a file is titled as one whose sender
is not known, "Voice note, 5 Dec 2026", as her /forget would have made it."""
from __future__ import annotations

from storage.models import UserRef
from tests.frontends.test_playlists_as_used import INTERNAL_ID, SUPERGROUP, sad_playlist, voice_heard
from tests.frontends.test_telegram import ALICE
from tests.frontends.test_telegram_forget_races import open_prompt
from tests.frontends.test_telegram_note_titles import cached, day, media

CAROL = "Carol Hidden"
RECORDED = 1_795_000_000  # when Carol sent it: the day the title keeps


def from_carol() -> dict:
    """A message's forward_origin as Telegram gives it for an account hidden from forwards' links."""
    return {"forward_origin": {"type": "hidden_user", "sender_user_name": CAROL, "date": RECORDED}}


async def test_a_voice_note_forwarded_from_a_hidden_account_keeps_no_name_in_the_group(telegram, db):
    fake, _ = telegram
    mark = fake.mark()
    sent = await voice_heard(fake, db, SUPERGROUP, ALICE, b"OggS Carol singing", extra=from_carol())
    title = f"Voice note, {day(RECORDED)}"
    answer = await fake.wait_for_reply(lambda c: "Mood:" in c.text, after=mark)
    assert answer.text.startswith(f"🎵 {title}\n")
    assert await sad_playlist(fake, db, SUPERGROUP) == [
        f"1. {title} https://t.me/c/{INTERNAL_ID}/{sent['message_id']}"]
    asked, = (await db.privacy.export(UserRef("telegram", str(ALICE)))).requests
    assert (asked.title, asked.sender) == (title, None)


async def test_a_voice_note_forwarded_from_a_hidden_account_answers_a_prompt_without_its_name(telegram, db, usecases):
    fake, frontend = telegram
    prompt = await open_prompt(fake, frontend, db, usecases)
    mark = fake.mark()
    await fake.user_sends(reply_to=prompt["message_id"],
                          extra={**media(fake, "voice", await cached(db, b"OggS Carol again")), **from_carol()})
    saved = await fake.wait_for_reply(lambda c: "Saved to your journal" in c.text, after=mark)
    title = f"Voice note, {day(RECORDED)}"
    assert title in saved.text and CAROL not in saved.text
    entry, = (await db.privacy.export(UserRef("telegram", str(ALICE)))).journal
    assert (entry.track_title, entry.sender) == (title, None)
