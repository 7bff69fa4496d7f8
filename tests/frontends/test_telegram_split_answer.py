"""Telegram clients send a message longer than 4 096 characters as several, back to back (same
chat, ids in order, a second or so apart). A journal answer that long, the song then a day's worth
of words, kept only its first part's words in the note; the next part, a reply to the prompt too
as Telegram Desktop sends it, was read as a second answer ("You've already answered that prompt —
your journal keeps one…"), or, sent as no reply, got the hint for stray text, its words lost. The
parts that follow a long answer within `SPLIT_WINDOW_S` are its note's rest, said once; one later
is handled as before."""
from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager

import pytest

from bot.frontends.telegram import TEXT_HINT
from bot.frontends.telegram_flow import TURN_S
from bot.frontends.telegram_split import SPLIT_ANSWER_JOINED, SPLIT_ANSWER_NOT_SAVED, SPLIT_HOLD_S, SPLIT_WINDOW_S
from bot.usecases.journal import EDITED_ANSWER, NOTE_FULL, NOTE_PART_NOT_ADDED
from storage.inbox import Arrival
from storage.journal import MAX_NOTE_CHARS
from storage.models import UserRef
from storage.schema import INBOX, JOURNAL, PROMPTS
from tests.fakes.telegram_api import DEFAULT_USER, FakeTelegramBotAPI, client_parts
from tests.fakes.wire_gate import gated_database
from tests.frontends.conftest import TELEGRAM_TOKEN, telegram_on, usecases_with_creep
from tests.frontends.test_telegram_forget_races import open_prompt
from tests.frontends.test_telegram_inbox import SOURCE, STAGES, _empty, inbox_numbers, until

ALICE = UserRef("telegram", str(DEFAULT_USER))
WORDS = " ".join(f"Hour {hour}: the radio in the corridor played song number {hour}, and grandma hummed along."
                 for hour in range(1, 110))  # 9 157 characters, none of its parts found twice
ANSWER = f"Radiohead - Creep\n{WORDS}"
DAY_TOLD = SPLIT_ANSWER_JOINED.split("{")[0]


@asynccontextmanager
async def prompt_open(db, fake: FakeTelegramBotAPI | None = None):
    """Today's prompt sent on the fake Telegram (`fake`, else a new one; Spotify knows Creep): the
    fake, and the prompt's id."""
    async with usecases_with_creep(db) as (_, usecases):
        async with telegram_on(fake or FakeTelegramBotAPI(TELEGRAM_TOKEN), usecases) as (fake, frontend):
            prompt = await open_prompt(fake, frontend, db, usecases)
            yield fake, prompt["message_id"]


async def send_parts(fake, parts: list[str], prompt: int, *, every_part_replies: bool = True) -> list[dict]:
    """`parts` sent back to back as a client sends a long message: the first in reply to `prompt`,
    the others too (`every_part_replies`, as Telegram Desktop does) or as no reply."""
    return [await fake.user_sends(part, reply_to=prompt if every_part_replies or index == 0 else None)
            for index, part in enumerate(parts)]


def shown(fake, mark: int) -> list[str]:
    """What the chat shows since `mark`, status lines left out."""
    return [c.text for c in fake.calls[mark:] if c.method in ("sendMessage", "editMessageText")
            and c.status == 200 and c.text not in STAGES]


async def note_of_today(db) -> str:
    entry, = await db.journal.list(ALICE)
    assert entry.track_title == "Radiohead – Creep"
    return entry.note


@pytest.mark.parametrize("every_part_replies", [True, False], ids=["parts_reply", "first_replies"])
async def test_a_long_answer_telegram_split_is_one_entry_with_every_part_in_its_note(db, every_part_replies):
    parts = client_parts(ANSWER)
    assert len(parts) == 3
    async with prompt_open(db) as (fake, prompt):
        mark = fake.mark()
        await send_parts(fake, parts, prompt, every_part_replies=every_part_replies)
        await fake.wait_for_reply(lambda c: c.text.startswith(DAY_TOLD), after=mark)
        await asyncio.sleep(0.5)  # a reply to the third part would have come by now
        said = shown(fake, mark)
    assert await note_of_today(db) == WORDS
    assert len(said) == 2 and said[0].startswith("Saved to your journal"), said
    assert said[1] == SPLIT_ANSWER_JOINED.format(day=said[0].split(" for ")[1][:10]), said


async def test_a_part_cut_at_a_word_break_keeps_the_break(db):
    """Telegram Desktop cuts at the last line (or word) break past half the limit and trims the
    parts: the note puts a line break back between them, not the words run together."""
    first, rest = ANSWER[:3000].rsplit(" ", 1)
    async with prompt_open(db) as (fake, prompt):
        mark = fake.mark()
        await send_parts(fake, [first, rest + ANSWER[3000:]], prompt)
        await fake.wait_for_reply(lambda c: c.text.startswith(DAY_TOLD), after=mark)
    assert await note_of_today(db) == f"{first.partition(chr(10))[2]}\n{rest}{ANSWER[3000:]}"


async def test_the_parts_of_a_long_answer_that_saved_nothing_are_not_read_as_answers(db):
    """A first part that saves nothing (a paragraph on one line, no song on a line of its own): the
    next part, a reply to the prompt too, is said to be its rest, not searched as a song of its own."""
    parts = client_parts(WORDS)
    async with prompt_open(db) as (fake, prompt):
        mark = fake.mark()
        await send_parts(fake, parts[:2], prompt)
        await fake.wait_for_reply(lambda c: c.text == SPLIT_ANSWER_NOT_SAVED, after=mark)
        said = shown(fake, mark)
    assert len(said) == 2 and said[0].startswith("Nothing saved: your answer's first line is"), said
    assert await db.journal.list(ALICE) == []


async def test_a_part_after_the_window_is_handled_as_before(db):
    parts = client_parts(ANSWER)[:2]
    async with prompt_open(db) as (fake, prompt):
        mark = fake.mark()
        sent = await send_parts(fake, parts[:1], prompt, every_part_replies=False)
        await fake.wait_for_reply(lambda c: c.text.startswith("Saved to your journal"), after=mark)
        late = sent[0]["message"]["date"] + int(SPLIT_WINDOW_S) + 2
        mark = fake.mark()
        await fake.user_sends(parts[1], extra={"date": late})
        told = await fake.wait_for_reply(after=mark)
    assert told.text == TEXT_HINT
    assert await note_of_today(db) == parts[0].partition("\n")[2]


async def test_a_short_answer_then_a_quick_message_is_not_joined(db):
    async with prompt_open(db) as (fake, prompt):
        mark = fake.mark()
        await send_parts(fake, ["Radiohead - Creep\non the bus", "and the rain"], prompt, every_part_replies=False)
        await fake.wait_for_reply(lambda c: c.text == TEXT_HINT, after=mark)
    assert await note_of_today(db) == "on the bus"


async def test_a_long_whole_answer_then_a_quick_message_is_not_joined(db):
    """An answer of 3 000 characters, sent whole, and the user's next message within the window:
    "thank you" was taken for the answer's rest, added to the note and said so, the user told
    their words went into the journal entry. A client cuts only a text too long for one message:
    a first part and the next add up to more than the limit, these do not."""
    whole = ANSWER[:3000]
    async with prompt_open(db) as (fake, prompt):
        mark = fake.mark()
        await send_parts(fake, [whole, "thank you, goodnight"], prompt, every_part_replies=False)
        told = await fake.wait_for_reply(lambda c: not c.text.startswith("Saved to your journal"), after=mark)
    assert told.text == TEXT_HINT
    assert await note_of_today(db) == whole.partition("\n")[2]


@pytest.mark.parametrize("whole, then", [(ANSWER[:4090], "thank you, goodnight"), (ANSWER[:3000], WORDS[:2000])],
                         ids=["thanks_after_4090", "text_pasted_after_3000"])
async def test_a_plain_message_after_a_long_answer_not_cut_at_the_limit_is_not_joined(db, whole, then):
    """A message that replies to nothing, after an answer not cut at the limit: "thank you" after
    an answer of 4 090 characters sent whole (the two make more than one message holds), or
    another text pasted within the window, was added to the note and said so. Only Android cuts at
    the limit itself, and its parts may reply to nothing; Desktop and iOS cut shorter, at a break,
    and make every part a reply to what the first replies to."""
    async with prompt_open(db) as (fake, prompt):
        mark = fake.mark()
        await send_parts(fake, [whole, then], prompt, every_part_replies=False)
        told = await fake.wait_for_reply(lambda c: not c.text.startswith("Saved to your journal"), after=mark)
    assert told.text == TEXT_HINT
    assert await note_of_today(db) == whole.partition("\n")[2].rstrip()


@pytest.mark.parametrize("answer", [ANSWER, ANSWER[:2 * 4096 + 50]], ids=["long_last_part", "short_last_part"])
async def test_split_parts_handed_over_again_after_a_kill_are_not_added_twice(db, usecases, answer):
    """The bot killed once the parts were answered, before their updates were cleared: the restart
    (new use cases, as a new process has) hands them over again; the note keeps each part once (a
    last part of 50 characters too)."""
    async with prompt_open(db) as (fake, prompt):
        mark = fake.mark()
        sent = await send_parts(fake, client_parts(answer), prompt)
        await fake.wait_for_reply(lambda c: c.text.startswith(DAY_TOLD), after=mark)
        assert await until(lambda: _empty(db))
    await db.inbox.keep(SOURCE, [Arrival(u["update_id"], u, "telegram", str(DEFAULT_USER)) for u in sent])
    async with telegram_on(FakeTelegramBotAPI(TELEGRAM_TOKEN), usecases) as (again, _):
        await again.wait_for_reply(lambda c: c.text.startswith(DAY_TOLD), after=0)
        assert await until(lambda: _empty(db))
    assert await note_of_today(db) == answer.partition("\n")[2]


async def slow_first_part(db_server, mongo_uri, db_name, db, slow: tuple[str, str], held_s: float,
                          parts: list[str] | None = None, *, edited: bool = False) -> list[str]:
    """Today's prompt sent before a restart (this run holds it in no memory), then `parts` (else
    `ANSWER`'s, as Desktop cuts it) sent, the first part's `slow` command (its entry's write, or its
    check that it answers a prompt) held at the wire for `held_s` (`edited`: the user edits the
    first part meanwhile): what the chat shows after."""
    async with prompt_open(db) as (fake, prompt):
        pass
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        async with usecases_with_creep(gated) as (_, usecases), telegram_on(fake, usecases):
            gate.hold(*slow)
            mark = fake.mark()
            sent = await send_parts(fake, parts or client_parts(ANSWER), prompt)
            await asyncio.wait_for(gate.held.wait(), 10)
            if edited:
                await fake.user_edits(sent[0], sent[0]["message"]["text"] + "!")
            await asyncio.sleep(held_s)
            gate.release()
            await fake.wait_for_reply(lambda c: c.text.startswith(DAY_TOLD), after=mark)
            await asyncio.sleep(0.5)  # a reply to the third part would have come by now
            return shown(fake, mark)


@pytest.mark.parametrize("slow", [("insert", JOURNAL), ("find", PROMPTS)], ids=["saved", "read"])
async def test_a_first_part_slow_to_be_read_or_saved_still_takes_the_next_parts(db_server, mongo_uri, db_name, db,
                                                                               slow):
    """The first part's entry's write, or its check that it answers a prompt, waits on the
    database (held at the wire) past the 1 s a sender's next update waits for the one before
    (`TURN_S`), as a song's download and hearing does. Saved slowly, the first part's end settled
    the second part's step for its own: the third part's words were added, the second's never, its
    handler waiting for good. Read slowly, the second part, started meanwhile, found no long answer
    noted and was read as an answer of its own, its words lost ("Nothing saved: your answer's
    first line is …"); it waits for the first part to be read."""
    said = await slow_first_part(db_server, mongo_uri, db_name, db, slow, TURN_S + 0.5)  # past the second part's turn
    assert await note_of_today(db) == WORDS
    assert len(said) == 2 and said[0].startswith("Saved to your journal"), said


async def test_the_next_part_waits_for_a_first_part_read_slowly_longer_than_the_window(db_server, mongo_uri, db_name,
                                                                                     db):
    """The next part waits up to 30 s (`READ_WAIT_S`) for the first part to be read: a database
    slow for some seconds is not a part lost. Held past the window between parts (5 s, a wait
    one might take for it), the first part read 8 s late still takes the next parts; a wait of
    5 s, or none, reads the second part as an answer of its own."""
    said = await slow_first_part(db_server, mongo_uri, db_name, db, ("find", PROMPTS), SPLIT_WINDOW_S + 3)
    assert await note_of_today(db) == WORDS
    assert len(said) == 2 and said[0].startswith("Saved to your journal"), said


async def test_an_edit_of_a_first_part_read_slowly_does_not_end_the_next_part_s_wait(db_server, mongo_uri, db_name,
                                                                                     db):
    """The first part, read slowly (its check that it answers a prompt held at the wire), edited
    meanwhile: the edit's update, settled, marked the first part read, and the second part, which
    waited for it, found no answer opened and was read as an answer of its own ("Nothing saved:
    your answer's first line is …"), its words lost. An edit reads no part: the wait goes on."""
    said = await slow_first_part(db_server, mongo_uri, db_name, db, ("find", PROMPTS), 3 * TURN_S + 1, edited=True)
    assert await note_of_today(db) == WORDS
    assert said[0] == EDITED_ANSWER and len(said) == 3 and said[1].startswith("Saved to your journal"), said


@pytest.mark.parametrize("end", ["killed", "stopped"])
async def test_the_next_parts_handed_over_alone_after_a_restart_join_the_answer_before_it(db, end):
    """The bot killed outright (or stopped: a redeploy) once the first part was answered, its next
    parts not yet fetched: the restart got them from Telegram alone, the first part's update
    cleared, and no memory of it. The second part, a reply to the prompt, was told the prompt had
    its song, its words lost. The first part's update is kept until no part can follow it (its
    answer noted said): the restart hands it over again, silently, and the parts join it."""
    fake = FakeTelegramBotAPI(TELEGRAM_TOKEN)
    prompt, first, left = await first_part_answered(db, fake)
    if end == "killed":
        await killed_leaving(db, left)
    said = await rest_after_a_restart(db, fake, prompt, first)
    assert await note_of_today(db) == WORDS
    assert len(said) == 1, said


async def first_part_answered(db, fake: FakeTelegramBotAPI) -> tuple[int, dict, list[dict]]:
    """Today's prompt sent on `fake`, and `ANSWER`'s first part answered, then the bot stopped:
    the prompt's id, the part's message, and what the inbox held before the stop (a kill's)."""
    async with prompt_open(db, fake) as (_, prompt):
        first, left = await parts_answered(db, fake, prompt, client_parts(ANSWER)[:1], "Saved to your journal")
        return prompt, first, left


async def parts_answered(db, fake: FakeTelegramBotAPI, prompt: int, parts: list[str], told: str, *,
                         first: bool = True) -> tuple[dict, list]:
    """`parts` sent (`first`: the answer's first among them), each a reply to `prompt`, on the bot
    running on `fake`, once the chat shows `told` and the last of them is noted answered in the
    inbox: the last part's message, and what the inbox holds then (what a kill leaves)."""
    # the /journal on cleared (0.1 s after its answer): else a kill leaves it, answered again
    assert not first or await until(lambda: _empty(db))
    mark = fake.mark()
    sent = await send_parts(fake, parts, prompt)
    await fake.wait_for_reply(lambda c: c.text.startswith(told), after=mark)
    # kept by the next getUpdates (poll timeout 1 s), and noted answered, or else cleared by now
    assert await until(lambda: db.db[INBOX].find_one({"number": sent[-1]["update_id"], "parts": 1}), timeout=3)
    return sent[-1]["message"], await db.db[INBOX].find({}).to_list()


async def killed_leaving(db, left: list[dict]) -> None:
    """The inbox as a kill leaves it: `left`, what it held while the bot ran, not what the stop cleared."""
    await db.db[INBOX].delete_many({})
    if left:
        await db.db[INBOX].insert_many(left)


async def rest_after_a_restart(db, fake: FakeTelegramBotAPI, prompt: int, first: dict, restarted_on=None,
                               told: str | None = DAY_TOLD, parts: list[str] | None = None) -> list[str]:
    """`parts` (else `ANSWER`'s after its first) sent a second after `first` while the bot is down,
    then a start (on `restarted_on`, else `db`) that fetches them: what the chat shows once it
    shows `told` (None: whatever it does) and the inbox is empty."""
    mark = fake.mark()
    for part in client_parts(ANSWER)[1:] if parts is None else parts:
        await fake.user_sends(part, reply_to=prompt, extra={"date": first["date"] + 1})
    async with usecases_with_creep(restarted_on or db) as (_, usecases), telegram_on(fake, usecases):
        if told is not None:
            await fake.wait_for_reply(lambda c: c.text.startswith(told), after=mark)
        await asyncio.sleep(0.5)  # a reply to the last part would have come by now
        assert await until(lambda: _empty(db), timeout=15)
        return shown(fake, mark)


async def cut_when_held(gate, cuts: int | None) -> None:
    """The command `gate` holds cut, then each find on the journal after it, `cuts` in all (None:
    every one, till cancelled): to the driver, the database went away right then (2: and came back
    after its retry)."""
    await gate.held.wait()
    gate.cut_next("find", JOURNAL)
    gate.release()
    done = 1
    while cuts is None or done < cuts:
        assert await until(lambda: gate.was_cut, step=0)
        gate.cut_next("find", JOURNAL)
        done += 1


@pytest.mark.parametrize("cuts, told", [(2, DAY_TOLD), (None, NOTE_PART_NOT_ADDED)], ids=["then back", "still down"])
async def test_the_next_parts_after_a_restart_whose_entry_the_database_did_not_find_are_not_told_it_saved_nothing(
        db_server, mongo_uri, db_name, db, cuts, told):
    """The restart's database gone as the first part's entry was looked up (its prompt found just
    before): the lookup said nothing was saved, and the parts after it were told "its first saved
    nothing (see why above)", nothing above, though the entry is stored, their words lost. Their
    words are added to the entry all the same where the database answers then, and the user told
    the database did not answer where it still does not."""
    fake = FakeTelegramBotAPI(TELEGRAM_TOKEN)
    prompt, first, _ = await first_part_answered(db, fake)
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        gate.hold("find", JOURNAL)  # the first part's entry looked up
        cutting = asyncio.create_task(cut_when_held(gate, cuts))
        try:
            said = await rest_after_a_restart(db, fake, prompt, first, restarted_on=gated, told=told)
        finally:
            cutting.cancel()
    assert said == [told] if cuts is None else len(said) == 1 and said[0].startswith(told), said
    assert await note_of_today(db) == (first["text"].split("\n", 1)[1] if cuts is None else WORDS)


async def test_a_long_answer_held_over_two_restarts_in_a_row_is_not_given_up(db, caplog):
    """The bot restarted twice within the hold once a long answer was answered (a crash loop
    elsewhere, two redeploys): each start handed its update over again and counted it as never
    answered, though its handler ran to its end each time, and the third gave it up as what may
    stop the bot (an ERROR, `inbox.given_up`): the parts after it were then handled as any
    message, a reply to the prompt told the prompt had its song. An update held for what may
    follow counts only the starts at which it dies while handled."""
    fake = FakeTelegramBotAPI(TELEGRAM_TOKEN)
    prompt, first, _ = await first_part_answered(db, fake)
    for _ in range(2):
        async with usecases_with_creep(db) as (_, usecases), telegram_on(fake, usecases):
            # read again (its entry looked up) and held again, its handler done; stopped then
            await until(lambda: db.db[INBOX].find_one({"parts": 1, "replays": 0}), timeout=3)
    with caplog.at_level(logging.ERROR, logger="bot.usecases.inbox"):
        said = await rest_after_a_restart(db, fake, prompt, first)
    assert "inbox.given_up" not in caplog.text
    assert await note_of_today(db) == WORDS
    assert len(said) == 1, said


async def test_a_long_answer_no_part_follows_is_kept_only_until_none_can(db):
    """A long answer kept for the parts that may follow it (above) and followed by none, sent
    whole: its update goes once `SPLIT_HOLD_S` passed with no part, not kept for the next start to
    read it again (and, at the third, to give it up as what stops the bot)."""
    async with prompt_open(db) as (fake, prompt):
        mark = fake.mark()
        await fake.user_sends(ANSWER[:3000], reply_to=prompt)
        await fake.wait_for_reply(lambda c: c.text.startswith("Saved to your journal"), after=mark)
        answered = time.monotonic()
        assert await until(lambda: inbox_numbers(db), timeout=3), "the long answer was not kept for its parts"
        assert await until(lambda: _empty(db), timeout=SPLIT_HOLD_S + 5)
        assert time.monotonic() - answered > SPLIT_HOLD_S - 1


def ios_parts(text: str, limit: int = 4096) -> list[str]:
    """`text` (ASCII: a unit a character) cut as Telegram for iOS sends a long message: at the last
    line break (dropped) or full stop (kept) within the limit, each part a reply to the prompt."""
    parts = []
    while len(text) > limit:
        head = text[:limit]
        cut = max(head.rfind("\n"), head.rfind(".") + 1)
        parts.append(text[:cut].strip())
        text = text[cut:].strip()
    return parts + [text]


# A first sentence, then words run on with commas and no full stop or line break: iOS cuts after the sentence.
IOS_FIRST = f"Radiohead - Creep\n{WORDS[:1500].rsplit('.', 1)[0]}."
IOS_REST = ", ".join(f"the radio played song {n} and grandma hummed" for n in range(1, 80))
IOS_ANSWER = f"{IOS_FIRST} {IOS_REST}"


async def test_a_long_answer_ios_cut_short_of_half_the_limit_is_one_entry(db):
    """Telegram for iOS cuts at the last line break or full stop within the limit: a first part of
    2 048 units or fewer (a sentence, then a paragraph run on with commas) opened no window, and the
    next part, a reply to the prompt too, was told the prompt had its song, its words lost. A reply
    to the same prompt within the window that has no break the client could have cut at sooner
    (the first part and its words up to its first break make more than the limit) is the rest."""
    parts = ios_parts(IOS_ANSWER)
    assert [len(p) for p in parts][0] <= 2048 and len(parts) == 2
    async with prompt_open(db) as (fake, prompt):
        mark = fake.mark()
        await send_parts(fake, parts, prompt)
        await fake.wait_for_reply(lambda c: c.text.startswith(DAY_TOLD), after=mark)
        await asyncio.sleep(0.5)  # a second reply would have come by now
        said = shown(fake, mark)
    assert await note_of_today(db) == f"{IOS_FIRST.partition(chr(10))[2]}\n{IOS_REST}"
    assert len(said) == 2 and said[0].startswith("Saved to your journal"), said


@pytest.mark.parametrize("then", ["thank you, goodnight", f"Also. {IOS_REST}"], ids=["short", "a_break_sooner"])
async def test_a_second_reply_to_the_prompt_after_a_short_answer_no_client_cut_is_refused(db, then):
    """After a short answer, a reply to the same prompt that no client's cut left (too short to
    have made the message too long, or with a full stop iOS would have cut at first) is a second
    answer, refused as before."""
    async with prompt_open(db) as (fake, prompt):
        mark = fake.mark()
        await send_parts(fake, [IOS_FIRST, then], prompt)
        told = await fake.wait_for_reply(lambda c: not c.text.startswith("Saved to your journal"), after=mark)
    assert told.text.startswith("You've already answered that prompt")
    assert await note_of_today(db) == IOS_FIRST.partition("\n")[2]


async def test_an_ios_first_part_slow_to_be_read_still_takes_its_next_part(db_server, mongo_uri, db_name, db):
    """iOS's first part (2 048 units or fewer), its check that it answers a prompt held at the wire
    past the 1 s a sender's next update waits for the one before (`TURN_S`): the next part,
    started meanwhile, found no answer opened, was read as an answer of its own and told the prompt
    had its song, its words lost. It waits for the reply before it to be read, as after a long one."""
    said = await slow_first_part(db_server, mongo_uri, db_name, db, ("find", PROMPTS), TURN_S + 0.5,
                                 ios_parts(IOS_ANSWER))
    assert await note_of_today(db) == f"{IOS_FIRST.partition(chr(10))[2]}\n{IOS_REST}"
    assert len(said) == 2 and said[0].startswith("Saved to your journal"), said


async def test_the_next_parts_of_a_long_answer_whose_saved_reply_telegram_failed_join_its_entry(db):
    """The first part saved, and Telegram failing its "Saved to your journal" (a 502, twice: the
    transport tries a 5xx once more): the handler's failure left the step it settles for the next
    parts at "nothing saved", so they were told their first part saved nothing, though its entry is
    stored, and their words were not added. The step is the answer's outcome, known before its
    reply is sent."""
    async with prompt_open(db) as (fake, prompt):
        mark = fake.mark()
        fake.fail_next("sendMessage", times=2, status=502, description="Bad Gateway")
        await send_parts(fake, client_parts(ANSWER), prompt)
        await fake.wait_for_reply(lambda c: c.text.startswith((DAY_TOLD, SPLIT_ANSWER_NOT_SAVED[:40])), after=mark)
        await asyncio.sleep(0.5)  # a reply to the third part would have come by now
        said = shown(fake, mark)
    assert await note_of_today(db) == WORDS
    assert [text for text in said if text.startswith(DAY_TOLD)], said
    assert SPLIT_ANSWER_NOT_SAVED not in said, said


# A pasted text Android sends as 19 parts: 16 fill the note to 65 518 characters, the 17th and 18th
# (4 096 each) are past its limit, and the last (10 characters) would fit after them.
PASTED = "Radiohead - Creep\n" + " ".join(f"Hour {hour}: the radio in the corridor played song number {hour}."
                                         for hour in range(1, 1300))[:18 * 4096 - 8]
FULL = NOTE_FULL.format(chars=MAX_NOTE_CHARS)


def note_of(parts: list[str]) -> str:
    """The note `parts`, as Android cut them (at the limit: nothing between them), make."""
    return "".join(parts).partition("\n")[2]


async def test_the_parts_after_one_refused_for_a_full_note_are_not_added(db):
    """A part past the note's limit refused ("your journal entry's note is full… I didn't add the
    rest of your long answer"), a later part short enough to fit was added all the same, silently:
    the note had a gap where the refused words were, and words the user was told were not saved.
    The rest of the answer is refused with it, told once."""
    parts = client_parts(PASTED)
    async with prompt_open(db) as (fake, prompt):
        mark = fake.mark()
        await send_parts(fake, parts, prompt)
        await fake.wait_for_reply(lambda c: c.text == FULL, after=mark)
        assert await until(lambda: _empty(db), timeout=15)
        said = shown(fake, mark)
    assert await note_of_today(db) == note_of(parts[:16])
    assert len(said) == 3 and said[1].startswith(DAY_TOLD) and said[2] == FULL, said


@pytest.mark.parametrize("end", ["killed", "stopped"])
async def test_a_part_refused_for_a_full_note_is_not_refused_again_after_a_restart(db, end):
    """The bot killed (or stopped) once a part past the note's limit was refused, the parts after
    it not yet fetched: the restart hands the answer and its parts over again, and the refused
    part, refused again, was told so again ("your journal entry's note is full…" twice). It is
    known as said; the parts after it are refused alike, silently."""
    fake = FakeTelegramBotAPI(TELEGRAM_TOKEN)
    parts = client_parts(PASTED)
    async with prompt_open(db, fake) as (_, prompt):
        refused, left = await parts_answered(db, fake, prompt, parts[:17], FULL)
    if end == "killed":
        await killed_leaving(db, left)
    said = await rest_after_a_restart(db, fake, prompt, refused, told=None, parts=parts[17:])
    assert said == [], said
    assert await note_of_today(db) == note_of(parts[:16])


@pytest.mark.parametrize("end", ["killed", "stopped"])
async def test_a_part_the_database_refused_then_added_after_a_restart_is_told_so(db_server, mongo_uri, db_name, db,
                                                                                end):
    """The database gone as the second part was added: told "I couldn't add the rest of your long
    answer… not saved". The bot restarted (killed, or stopped) before the third part came: the
    restart hands the second over again, noted said, and took that for "told it was joined": it
    and the third were added, and the user, told their words were not saved, was never told they
    were. The part refused before is known by its words not in the note at the restart."""
    said = await a_part_refused_by_the_database_then_restarted(db_server, mongo_uri, db_name, db,
                                                                client_parts(ANSWER), 1, end)
    assert len(said) == 1 and said[0].startswith(DAY_TOLD), said
    assert await note_of_today(db) == WORDS


async def a_part_refused_by_the_database_then_restarted(db_server, mongo_uri, db_name, db, parts: list[str],
                                                        refused: int, end: str, *,
                                                        clearing_lost: bool = False) -> list[str]:
    """`parts` before `refused` answered (the first saved, the others joined), the database gone as
    `parts[refused]`'s words were added (told NOTE_PART_NOT_ADDED), the bot `end` ("killed" or
    "stopped"), and the rest sent while it is down: what the chat shows after the restart ("running":
    no restart, the rest sent to the bot, the database back: what the chat shows after the refusal).
    `clearing_lost`: `parts[refused]` is the chain's last (short) part, which ends it, its updates
    cleared then: killed before that clearing landed, the inbox keeps them all, each noted said."""
    fake = FakeTelegramBotAPI(TELEGRAM_TOKEN)
    async with prompt_open(db, fake) as (_, prompt):
        pass
    async with gated_database(db_server, mongo_uri, db_name) as (gate, gated):
        async with usecases_with_creep(gated) as (_, usecases), telegram_on(fake, usecases):
            await parts_answered(db, fake, prompt, parts[:1], "Saved to your journal")
            if refused > 1:
                await parts_answered(db, fake, prompt, parts[1:refused], DAY_TOLD, first=False)
            held = await db.db[INBOX].find({}).to_list() if clearing_lost else []
            gate.hold("find", JOURNAL)  # the refused part's entry, to add its words to
            cutting = asyncio.create_task(cut_when_held(gate, None))
            try:
                if clearing_lost:  # the chain's last part: its update noted said, then cleared at once
                    mark = fake.mark()
                    sent, = await send_parts(fake, parts[refused:refused + 1], prompt)
                    await fake.wait_for_reply(lambda c: c.text == NOTE_PART_NOT_ADDED, after=mark)
                    last, left = sent["message"], []
                else:
                    last, left = await parts_answered(db, fake, prompt, parts[refused:refused + 1],
                                                      NOTE_PART_NOT_ADDED, first=False)
            finally:
                cutting.cancel()
            if end == "running":
                gate.cut_next("find", "")  # the cut still armed disarmed: no command goes to no collection
                mark = fake.mark()
                await send_parts(fake, parts[refused + 1:], prompt)
                await asyncio.sleep(1)  # a reply to the last part would have come by now
                assert await until(lambda: _empty(db), timeout=15)
                return shown(fake, mark)
    if clearing_lost:
        await killed_leaving(db, held)
        await db.inbox.keep(SOURCE, [Arrival(sent["update_id"], sent, "telegram", str(DEFAULT_USER), parts=1)])
    elif end == "killed":
        await killed_leaving(db, left)
    return await rest_after_a_restart(db, fake, prompt, last, told=None, parts=parts[refused + 1:])


@pytest.mark.parametrize("end", ["killed", "stopped"])
async def test_a_later_part_the_database_refused_then_added_after_a_restart_is_told_so(db_server, mongo_uri,
                                                                                      db_name, db, end):
    """As above, the refused part the third, after a second that joined and was told so: the
    restart added it, and said nothing (the telling said before the stop, for the second); the
    user's last word of it was "those words are not saved"."""
    words = f"{WORDS} {WORDS.replace('Hour ', 'Night ')}"
    parts = client_parts(f"Radiohead - Creep\n{words}")
    assert len(parts) == 5
    said = await a_part_refused_by_the_database_then_restarted(db_server, mongo_uri, db_name, db, parts, 2, end)
    assert len(said) == 1 and said[0].startswith(DAY_TOLD), said
    assert await note_of_today(db) == words


async def test_the_parts_after_one_the_database_refused_are_not_added(db_server, mongo_uri, db_name, db):
    """The third part of five refused by the database ("I couldn't add the rest of your long
    answer… so those words are not saved"), the database back for the fourth: the fourth and fifth
    were added silently, after a gap where the third's words were, words the user was told were
    not saved. The rest of the answer is refused with it, as after a note full (16d5177), silently."""
    words = f"{WORDS} {WORDS.replace('Hour ', 'Night ')}"
    parts = client_parts(f"Radiohead - Creep\n{words}")
    assert len(parts) == 5
    said = await a_part_refused_by_the_database_then_restarted(db_server, mongo_uri, db_name, db, parts, 2, "running")
    assert said == [], said
    assert await note_of_today(db) == note_of(parts[:2])


async def test_a_short_last_part_the_database_refused_whose_words_came_earlier_is_told_it_joined(
        db_server, mongo_uri, db_name, db):
    """A last part of fewer than 200 characters ("grandma hummed along.", words the note holds
    earlier too), refused by the database, the bot killed before the answer's updates were cleared
    (the answer and its parts handed over again):
    at the restart it was taken as joined before, its words found anywhere in the note, and was
    added without a word, the user's last of it "those words are not saved". As the database does,
    a short part is looked for at the note's end only: added now, it is told it joined."""
    tail = " grandma hummed along."
    assert tail in WORDS
    parts = client_parts(ANSWER[:2 * 4096] + tail)
    assert len(parts) == 3 and parts[2] == tail
    said = await a_part_refused_by_the_database_then_restarted(db_server, mongo_uri, db_name, db, parts, 2, "killed",
                                                                clearing_lost=True)
    assert len(said) == 1 and said[0].startswith(DAY_TOLD), said
    assert await note_of_today(db) == note_of(parts)
