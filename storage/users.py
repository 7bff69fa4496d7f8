"""Users: identity, journal settings and the server-sharing choice."""
from __future__ import annotations

from datetime import datetime, time, timezone

from pymongo.asynchronous.collection import AsyncCollection

from storage.codec import time_text, user_fields, user_filter, user_from_doc
from storage.failures import translated_errors
from storage.models import User, UserRef


def _insert_defaults(ref: UserRef, *, besides: set[str]) -> dict:
    """Defaults for an upsert that creates the user, minus the fields the update sets."""
    defaults = {**user_fields(User(ref.platform, ref.user_id)),
                "created_at": datetime.now(timezone.utc)}
    return {k: v for k, v in defaults.items() if k not in besides}


class UserRepo:
    def __init__(self, collection: AsyncCollection) -> None:
        self._users = collection

    async def get(self, ref: UserRef) -> User | None:
        with translated_errors("get user"):
            doc = await self._users.find_one(user_filter(ref))
        return None if doc is None else user_from_doc(doc)

    async def upsert(self, user: User) -> None:
        fields = user_fields(user)
        created_at = user.created_at or datetime.now(timezone.utc)
        with translated_errors("save user"):
            await self._users.update_one(
                user_filter(user.ref),
                {"$set": fields, "$setOnInsert": {"created_at": created_at}},
                upsert=True,
            )

    async def set_journal(
        self, ref: UserRef, *, enabled: bool, prompt_time: time | None, timezone: str,
        chat_id: str | None,
    ) -> None:
        fields = {"journal_enabled": enabled, "prompt_time": time_text(prompt_time),
                  "timezone": timezone, "chat_id": chat_id}
        await self._set(ref, fields, "set journal")

    async def set_sharing(self, ref: UserRef, share: bool) -> None:
        await self._set(ref, {"share_with_server": share}, "set sharing")

    async def journal_users(self) -> list[User]:
        with translated_errors("list journal users"):
            docs = await self._users.find({"journal_enabled": True}).to_list()
        return [user_from_doc(doc) for doc in docs]

    async def _set(self, ref: UserRef, fields: dict, action: str) -> None:
        with translated_errors(action):
            await self._users.update_one(
                user_filter(ref),
                {"$set": fields, "$setOnInsert": _insert_defaults(ref, besides=set(fields))},
                upsert=True,
            )
