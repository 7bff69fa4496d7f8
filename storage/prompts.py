"""Sent daily prompts: what the scheduler sent, to whom, and whether it was answered."""
from __future__ import annotations

from datetime import date, datetime, timezone

from pymongo import DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from storage.codec import date_text, date_value, prompt_from_doc, prompt_to_doc, user_filter, utc
from storage.failures import translated_errors
from storage.models import SentPrompt, UserRef

NEWEST_FIRST = [("sent_at", DESCENDING)]


class PromptRepo:
    def __init__(self, collection: AsyncCollection) -> None:
        self._prompts = collection

    async def record_sent(
        self, ref: UserRef, prompt_id: str, phrase: str, local_date: date, sent_at: datetime,
        chat_id: str | None, message_id: str | None, *, sending: bool = False,
    ) -> bool:
        """Returns False when this prompt_id was already recorded (a retried send). `sending`: recorded
        before its send, until `set_message_id` notes it arrived (`SentPrompt.sending`)."""
        prompt = SentPrompt(ref, prompt_id, phrase, local_date, sent_at, chat_id, message_id, sending=sending)
        with translated_errors("record sent prompt"):
            try:
                await self._prompts.insert_one(prompt_to_doc(prompt))
            except DuplicateKeyError:
                return False
        return True

    async def set_message_id(self, prompt_id: str, message_id: str | None) -> None:
        """The prompt arrived, as the message `message_id` (None: the platform named none)."""
        arrived = {"sending": False, **({"message_id": message_id} if message_id is not None else {})}
        with translated_errors("set prompt message id"):
            await self._prompts.update_one({"prompt_id": prompt_id}, {"$set": arrived})

    async def find_by_message(
        self, platform: str, chat_id: str, message_id: str
    ) -> SentPrompt | None:
        query = {"platform": platform, "chat_id": chat_id, "message_id": message_id}
        with translated_errors("find prompt by message"):
            doc = await self._prompts.find_one(query)
        return None if doc is None else prompt_from_doc(doc)

    async def latest(self, ref: UserRef, since: datetime | None = None) -> SentPrompt | None:
        """The user's newest prompt, answered or not (sent at or after `since`, when given): what a
        message that names no prompt answers. Not `latest_open`, which skips an answered prompt and
        took the next message for an older, unanswered one."""
        query = dict(user_filter(ref))
        if since is not None:
            query["sent_at"] = {"$gte": utc(since)}
        with translated_errors("find latest prompt"):
            doc = await self._prompts.find_one(query, sort=NEWEST_FIRST)
        return None if doc is None else prompt_from_doc(doc)

    async def latest_open(self, ref: UserRef, since: datetime | None = None) -> SentPrompt | None:
        """The user's newest unanswered prompt (sent at or after `since`, when given)."""
        query = {**user_filter(ref), "answered_at": None}
        if since is not None:
            query["sent_at"] = {"$gte": utc(since)}
        with translated_errors("find open prompt"):
            doc = await self._prompts.find_one(query, sort=NEWEST_FIRST)
        return None if doc is None else prompt_from_doc(doc)

    async def open_since(self, since: datetime, limit: int) -> list[SentPrompt]:
        """Unanswered prompts of every user sent at or after `since`: the newest `limit`, oldest first."""
        query = {"answered_at": None, "sent_at": {"$gte": utc(since)}}
        with translated_errors("list open prompts"):
            docs = await self._prompts.find(query, sort=NEWEST_FIRST, limit=limit).to_list()
        return [prompt_from_doc(doc) for doc in reversed(docs)]

    async def answered_since(self, since: datetime, limit: int) -> list[SentPrompt]:
        """Answered prompts of every user sent at or after `since`, of the newest `limit` answered
        then, oldest sent first. Read by `answered_at` alone (it follows `sent_at`), which
        SecantusDB walks `open_sent` for; beside `sent_at` it scanned every prompt."""
        query = {"answered_at": {"$gte": utc(since)}}
        with translated_errors("list answered prompts"):
            docs = await self._prompts.find(query, sort=[("answered_at", DESCENDING)], limit=limit).to_list()
        prompts = [prompt_from_doc(doc) for doc in docs]
        return sorted((p for p in prompts if p.sent_at >= utc(since)), key=lambda p: p.sent_at)

    async def withdraw(self, prompt_id: str) -> None:
        """Forget a prompt that never reached its user (its delivery failed), unless answered."""
        with translated_errors("withdraw prompt"):
            await self._prompts.delete_one({"prompt_id": prompt_id, "answered_at": None})

    async def mark_answered(self, prompt_id: str, at: datetime | None = None) -> None:
        answered_at = utc(at) if at else datetime.now(timezone.utc)
        with translated_errors("mark prompt answered"):
            await self._prompts.update_one(
                {"prompt_id": prompt_id, "answered_at": None},
                {"$set": {"answered_at": answered_at}},
            )

    async def reopen(self, ref: UserRef, prompt_id: str, deleted_by: str | None = None) -> bool:
        """The user's prompt `prompt_id` is unanswered again (its entry was deleted): it takes an
        answer as before; `deleted_by`, the command that deleted the entry, is noted on it
        (`deleted_by`). False when the user has no such prompt."""
        change = {"answered_at": None, **({"deleted_by": deleted_by} if deleted_by is not None else {})}
        with translated_errors("reopen prompt"):
            result = await self._prompts.update_one({**user_filter(ref), "prompt_id": prompt_id}, {"$set": change})
        return result.matched_count > 0

    async def deleted_by(self, ref: UserRef, command: str) -> SentPrompt | None:
        """The user's prompt whose entry the command `command` deleted, if any (`reopen`)."""
        with translated_errors("find the prompt of a deleted entry"):
            doc = await self._prompts.find_one({**user_filter(ref), "deleted_by": command})
        return None if doc is None else prompt_from_doc(doc)

    async def recent_phrases(self, ref: UserRef, since: datetime) -> set[str]:
        query = {**user_filter(ref), "sent_at": {"$gte": utc(since)}}
        with translated_errors("list recent phrases"):
            phrases = await self._prompts.distinct("phrase", query)
        return set(phrases)

    async def sent_for(self, ref: UserRef, local_date: date, *, besides: str | None = None) -> bool:
        """Whether the user has a prompt recorded for that local day (any of them, not only the
        latest), `besides` that one (a prompt still to withdraw, never arrived) when given."""
        query = {**user_filter(ref), "local_date": date_text(local_date)}
        if besides is not None:
            query["prompt_id"] = {"$ne": besides}
        with translated_errors("find prompt of a day"):
            doc = await self._prompts.find_one(query, projection={"_id": 1})
        return doc is not None

    async def last_sent_date(self, ref: UserRef) -> date | None:
        with translated_errors("find last prompt date"):
            doc = await self._prompts.find_one(
                user_filter(ref), projection={"local_date": 1}, sort=[("local_date", DESCENDING)]
            )
        return None if doc is None else date_value(doc["local_date"])
