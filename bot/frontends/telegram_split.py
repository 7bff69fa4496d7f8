"""A journal answer a Telegram client split: its parts after the first go to the entry's note.

Telegram takes at most 4 096 characters (UTF-16 code units) a message. A client sends a longer
text as several messages, back to back, in the same chat (Telegram Desktop makes each a reply to
what the first replies to; a part replying to nothing is read too, after one cut at the limit): Telegram for Android cuts it
every 4 096 units, wherever that falls (mid-word too); Telegram
Desktop cuts at the last paragraph, line, sentence or word break past half the limit and trims the
parts (`TextUtilities::CutPart`), so each of its parts but the last is longer than 2 048 units. A
journal answer that long (the song, then a day's worth of words) kept only its first part's words;
the next part, read as a second answer, was told the prompt had its song (or, sent as no reply, got
the hint for stray text), its words lost.

A journal answer of more than half the limit (`SPLIT_PART_MIN`) may be such a first part: the
chat's next plain texts within `SPLIT_WINDOW_S` of it, by Telegram's own stamps (`Message.date`,
whole seconds), each replying to the same prompt (or to nothing, below), are its rest, added to the entry's
note in order (`JournalUseCase.add_to_note`), and the user is told once. A part of more than half
the limit opens the window for the next one. A client cuts a text only where it is too long for one
message, and at its last break before the limit (Desktop) or at the limit (Android): a part and the
one after it add up to more than the limit, less the blanks Desktop trims at the cut
(`SPLIT_TRIMMED_MAX` at most). A message that does not (an answer of 3 000 characters sent whole,
then "thank you" within the window) is no part, and is handled as any. Nor, after a part shorter
than the limit, is a message that replies to nothing: only Android cuts at the limit itself (and
its parts may reply to nothing); Desktop, and iOS (which cuts at the last line break or full stop
within the limit, `breakChatInputText`), cut shorter and make every part a reply to what the first
replies to. A first part of half the limit or less is iOS's where its next part replies to the
same prompt and leaves no line break or full stop iOS could have cut at sooner: the first part and
the next's words up to its first break make more than the limit (`_ios_cut`); until 2026-12-06 such
a next part was refused as a second answer, its words lost. Such a chain is not kept in the inbox
for a restart (`SplitAnswer.held`): that would hold every journal answer there. Until 2026-12-06
"thank you" after an answer of 4 081 to 4 095 units sent whole, or
another text pasted within the window after one of 2 049 or more, was added to the note and said
so. Between parts the note gets nothing where the part
before was cut at the limit (Android's cut, mid-word) and a line break where it was shorter
(Desktop's, at a break it trimmed away). A message later than the window, a command, a file, or a
reply to another message is handled as any.

A part's handler may start before the one before it is read: one sender's updates wait for each
other 1 s at most (`telegram_flow.TURN_S`), and reading a first part as an answer may take longer
(whether it replies to a prompt: a database the prompt is read from, slow). So each long private
text, and each private reply (iOS's first part may be short), is noted as it arrives, before anything is awaited for it (`arrived`), and a later message of
the chat waits for the long one before it to be read (`after_earlier`: opened as an answer, taken
as a part, or neither), `READ_WAIT_S` at most; until 2026-12-06 the second part, started
meanwhile, found no answer noted and was read as an answer of its own, its words lost.

The parts seen are kept in memory only. So that a restart knows them, the updates of a long answer
and of its parts stay kept in the inbox (`bot/usecases/inbox.py`, `UpdateFlow.done_after`) until
no part can follow them (`SplitAnswers.over`): the chain's last part came (one of half the limit or
less), a message ended it (too late, or no part), or none came for `SPLIT_HOLD_S`. A stop or a kill
meanwhile leaves them to the next start, which hands them over again with the parts that came
after (from Telegram, or from the inbox): the answer, noted said (`UpdateFlow.answered`), is read
again without a word (its entry looked up, not saved again), each part joins the note once
(`JournalRepo.add_to_note` finds it there), and the user is told once, unless that was said before
the stop. A part answered before the stop is not answered again: refused then (a note full, the
database), its words are not in the note the restart found (`SplitAnswer.note_before`; a part of
under 200 characters looked for at its end, as the database does, `part_held`), and it is
told only if they are added now; until 2026-12-06 it was taken as told it joined, a note full
refused twice and a part added at the restart never told. A part refused for a note full refuses
the parts after it too, as does one the database refused (`SplitAnswer.rest_refused`). Held once handled (`UpdateFlow.done_after`'s `held`), they count towards the inbox's
MAX_REPLAYS only at a start at which the bot died handling them again: until 2026-12-06 two restarts
within the hold gave the answer up at the third as what may stop the bot. Until 2026-12-06 the answer's update was cleared once answered: a part handed over alone
after a restart was handled as any message (a reply to the prompt was told the prompt had its song),
its words lost. A part not fetched within `SPLIT_HOLD_S` of the one before it, a restart in
between, is handled as any.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from telegram import Message
from telegram.constants import ChatType, MessageLimit

from bot.frontends.render import text_length

SPLIT_LIMIT = MessageLimit.MAX_TEXT_LENGTH  # 4 096 UTF-16 code units a message
SPLIT_PART_MIN = SPLIT_LIMIT // 2 + 1  # Desktop cuts past half the limit: a shorter answer was sent whole
# Clients send the parts back to back, a second or so apart; Telegram stamps whole seconds.
SPLIT_WINDOW_S = 5.0
# The blanks Telegram Desktop trims at a cut (the break itself, a paragraph's empty line, spaces
# before it) that a part and the next may fall short of the limit by, together.
SPLIT_TRIMMED_MAX = 16
# The longest a message waits for the long text before it to be read (`SplitAnswers.after_earlier`):
# past it (a handler stuck), it is handled as if that one were no answer.
READ_WAIT_S = 30.0
# How long a long answer's updates, and its parts', stay kept once no part followed the last of them
# (`SplitAnswers.over`): the window between Telegram's stamps, and as long again for the parts'
# delivery (a getUpdates held back by a burst, `telegram_flow`).
SPLIT_HOLD_S = 2 * SPLIT_WINDOW_S
SPLIT_ANSWER_JOINED = ("Telegram sent your long answer as several messages: I added the words of the ones after "
                       "the first to the note of your journal entry for {day}, as one answer.")
# A step's outcome where the answer's entry could not be looked up (the database failing it, at a
# restart): the parts after it are added all the same where the database then answers, and told
# what it said where it does not (`JournalUseCase.add_to_note`).
SPLIT_NOT_LOOKED_UP = "not looked up"
SPLIT_ANSWER_NOT_SAVED = ("Telegram sent your long answer as several messages, and its first saved nothing (see "
                          "why above), so neither did this one. Answer the prompt again with the song on the first "
                          "line and your words after it.")


@dataclass
class SplitAnswer:
    """A long journal answer whose next parts may still come: the message that made the entry,
    and the chain's last part so far."""
    prompt_id: str
    answer_id: int
    last_id: int
    last_date: datetime  # Telegram's stamp of the last part
    last_length: int  # the last part's length, in UTF-16 code units (`text_length`)
    separator: str  # what goes between the last part's words and the next's
    # The outcome of the chain's last step: the entry's day (an ISO date), None (nothing saved), or
    # SPLIT_NOT_LOOKED_UP.
    step: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    told: bool = False
    refused: str | None = None  # the last refusal said of a part: the parts after it refused alike are not told again
    # A part refused, for a note full (past `MAX_NOTE_CHARS`) or by the database: the parts after it
    # are refused with it, silently, as the refusal said ("the rest of your long answer"). Until
    # 2026-12-06 one short enough to fit after a note full, or any once the database was back, was
    # added after the words refused, the user told the rest was not saved.
    rest_refused: bool = False
    # The entry's note as a restart found it, the answer handed over again (None: not known): a part
    # handed over again, answered before the restart, was joined then where its words are in it,
    # refused where they are not (`TelegramFrontend._joined`).
    note_before: str | None = None
    # Set once no part can follow (`SplitAnswers.over`); `heard`: the loop's time the last part was read.
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    heard: float = field(default_factory=lambda: asyncio.get_running_loop().time())
    # Whether its updates stay kept for a restart (`over`): not those of an answer of half the
    # limit or less (an iOS cut, maybe), which would hold every journal answer in the inbox.
    held: bool = True


def separator_after(message: Message, trimmed: str) -> str:
    """What goes before the next part: nothing after a part cut at the limit (the cut fell where it
    fell), save the blanks the note trimmed from its end; a line break after a shorter one (cut at
    a break, which the client trimmed away)."""
    text = message.text or ""
    return trimmed if text_length(text) >= SPLIT_LIMIT else "\n"


class SplitAnswers:
    """The long journal answers of each private chat whose next parts may still come."""

    def __init__(self, window_s: float = SPLIT_WINDOW_S) -> None:
        self.window_s = window_s
        self._chats: dict[int, SplitAnswer] = {}
        # chat -> the long texts being read there, oldest first: (message id, done once read)
        self._reading: dict[int, list[tuple[int, asyncio.Future]]] = {}

    def arrived(self, message: Message) -> None:
        """Note `message` as it arrives, before its handler awaits anything: a plain text in a
        private chat that may be a first part, or a part after it (a long one, or a reply: iOS's
        first part may be short), that the chat's next messages wait for. Until 2026-12-06 a short
        reply was not noted: iOS's second part, started while its first was read slowly (past
        `TURN_S`), was read as an answer of its own, its words lost."""
        text = message.text
        if (message.chat.type != ChatType.PRIVATE or text is None or text.startswith("/")
                or (text_length(text) < SPLIT_PART_MIN and message.reply_to_message is None)):
            return
        reading = [noted for noted in self._reading.get(message.chat_id, []) if not noted[1].done()]
        reading.append((message.message_id, asyncio.get_running_loop().create_future()))
        self._reading[message.chat_id] = reading

    def read(self, message: Message) -> None:
        """`message` is read as far as parts go: opened as a long answer, taken as a part, or
        neither (its handler is done). The chat's later messages waiting for it go on."""
        reading = self._reading.get(message.chat_id)
        if reading is None:
            return
        for message_id, done in reading:
            if message_id == message.message_id and not done.done():
                done.set_result(None)
        reading[:] = [noted for noted in reading if not noted[1].done()]
        if not reading:
            del self._reading[message.chat_id]

    async def after_earlier(self, message: Message, wait_s: float = READ_WAIT_S) -> None:
        """Return once the latest long text of the chat sent before `message` is read (`read`), or
        after `wait_s`: then it is let be, no later message waiting for it again."""
        earlier = [done for message_id, done in self._reading.get(message.chat_id, [])
                   if message_id < message.message_id]
        if earlier:
            try:
                await asyncio.wait_for(asyncio.shield(earlier[-1]), wait_s)
            except asyncio.TimeoutError:
                if not earlier[-1].done():
                    earlier[-1].set_result(None)

    def opened(self, message: Message, prompt_id: str) -> SplitAnswer | None:
        """`message` answers the prompt `prompt_id`: noted, as a client's first part maybe (one of
        half the limit or less only for a reply to the prompt that iOS's cut would leave, `_following`)."""
        self.read(message)
        text = message.text or ""
        if message.text is None:
            return None
        # Long answers elsewhere whose window is over are let go: only those a part may still follow are kept.
        window = timedelta(seconds=self.window_s)
        for chat, split in list(self._chats.items()):
            if chat == message.chat_id or message.date - split.last_date > window:
                self._end(chat)
        # The note is the answer's words stripped: blanks at the cut, if any, go back before the next part.
        split = SplitAnswer(prompt_id, message.message_id, message.message_id, message.date, text_length(text),
                            separator_after(message, text[len(text.rstrip()):]),
                            held=text_length(text) >= SPLIT_PART_MIN)
        self._chats[message.chat_id] = split
        return split

    def following(self, message: Message) -> tuple[SplitAnswer, asyncio.Future, asyncio.Future, str] | None:
        """`message` (plain text in a private chat) as the next part of a long answer there: the
        answer, the outcome of the step before it (to await), its own step (the chain's last from
        now, to `settle` once its words are added) and what goes before its words. None when it
        is no part (it may still answer a prompt: read once it is opened, or its handler done)."""
        following = self._following(message)
        if following is not None:
            self.read(message)
        return following

    def _following(self, message: Message) -> tuple[SplitAnswer, asyncio.Future, asyncio.Future, str] | None:
        split = self._chats.get(message.chat_id)
        if split is None or message.text is None or message.message_id <= split.last_id:
            return None
        if message.date - split.last_date > timedelta(seconds=self.window_s):
            self._end(message.chat_id)
            return None
        length = text_length(message.text)
        if split.last_length + length + SPLIT_TRIMMED_MAX <= SPLIT_LIMIT:  # both fit one message: not cut
            self._end(message.chat_id)
            return None
        replied = message.reply_to_message
        if replied is not None and str(replied.message_id) != split.prompt_id:
            return None
        if replied is None and split.last_length < SPLIT_LIMIT:  # cut short of the limit: each part replies
            self._end(message.chat_id)
            return None
        if split.last_length < SPLIT_PART_MIN and not _ios_cut(split.last_length, message.text):
            self._end(message.chat_id)
            return None
        before, separator = split.step, split.separator
        split.step = asyncio.get_running_loop().create_future()
        split.last_id, split.last_date, split.last_length = message.message_id, message.date, length
        split.separator = separator_after(message, "")
        split.heard = asyncio.get_running_loop().time()
        if length < SPLIT_PART_MIN:  # the last part: no other follows it
            self._end(message.chat_id)
        return split, before, split.step, separator

    def _end(self, chat: int) -> None:
        """The chat's long answer takes no part more: its updates kept for it may go (`over`)."""
        split = self._chats.pop(chat, None)
        if split is not None:
            split.ended.set()

    async def over(self, split: SplitAnswer, hold_s: float = SPLIT_HOLD_S) -> None:
        """Return once no part can follow `split`'s last: the chain ended (its last part came, or a
        message that is none), or no part came for `hold_s`. Until then its answer's update, and its
        parts', stay kept (`UpdateFlow.done_after`), for a restart to hand them over again with a
        part that comes after it."""
        loop = asyncio.get_running_loop()
        while not split.ended.is_set() and (left := split.heard + hold_s - loop.time()) > 0:
            try:
                await asyncio.wait_for(split.ended.wait(), left)
            except asyncio.TimeoutError:
                pass  # a part since (`heard` later) holds it on

    @staticmethod
    def settle(step: asyncio.Future, day: str | None) -> None:
        if not step.done():
            step.set_result(day)


def _ios_cut(first_length: int, text: str) -> bool:
    """Whether `text`, a reply to the prompt after an answer of `first_length` units (half the limit
    or less), may be iOS's next part: iOS cuts at the last line break or full stop within the limit,
    so the first part and `text`'s words up to its first break make more than the limit (less the
    blanks trimmed at the cut)."""
    breaks = [at for at in (text.find("\n"), text.find(".")) if at >= 0]
    return first_length + text_length(text[:min(breaks, default=len(text))]) + SPLIT_TRIMMED_MAX > SPLIT_LIMIT
