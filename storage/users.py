"""Users: identity, journal settings and the server-sharing choice."""
from __future__ import annotations

from datetime import datetime, time, timezone

from pymongo.asynchronous.collection import AsyncCollection

from storage.codec import time_text, user_fields, user_filter, user_from_doc, user_ref
from storage.failures import translated_errors
from storage.models import User, UserRef


UTC = timezone.utc  # set_journal's `timezone` is the user's zone name


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
        chat_id: str | None, paused: str | None = None, create: bool = True, set_at: datetime | None = None,
    ) -> None:
        """`paused`: why the prompts stop without the user asking (User.journal_paused); any other
        change of the journal clears it. `create=False` changes only a user still there: a write
        made from a read of the user (journal off, prompts stopped) must not bring back the
        settings a /forget deleted since. `set_at`: /journal on's time (User.journal_set_at), by the
        caller's clock; left out, the one saved stays."""
        fields = {"journal_enabled": enabled, "prompt_time": time_text(prompt_time),
                  "timezone": timezone, "chat_id": chat_id, "journal_paused": paused,
                  "journal_paused_at": datetime.now(UTC) if paused else None,
                  **({"journal_set_at": set_at} if set_at is not None else {})}
        await self._set(ref, fields, "set journal", create=create)

    async def clear_pause(self, ref: UserRef) -> bool:
        """Forget why the prompts stopped (the user was told). False when it was already cleared."""
        with translated_errors("clear journal pause"):
            result = await self._users.update_one({**user_filter(ref), "journal_paused": {"$ne": None}},
                                                   {"$set": {"journal_paused": None, "journal_paused_at": None}})
        return result.modified_count > 0

    async def paused_users(self) -> list[UserRef]:
        """The users whose prompts stopped without their asking, not told yet: those with a reason,
        a string (the validator takes a string or null). Through the journal_paused index, which
        SecantusDB walks for a range, not for `$ne: None`: it read every user (61 ms at 5 000)."""
        with translated_errors("list paused journals"):
            docs = await self._users.find({"journal_paused": {"$gte": ""}},
                                          projection={"platform": 1, "user_id": 1}).to_list()
        return [user_ref(doc) for doc in docs]

    async def set_sharing(self, ref: UserRef, share: bool) -> None:
        await self._set(ref, {"share_with_server": share}, "set sharing")

    async def journal_users(self) -> list[User]:
        with translated_errors("list journal users"):
            docs = await self._users.find({"journal_enabled": True}).to_list()
        return [user_from_doc(doc) for doc in docs]

    async def _set(self, ref: UserRef, fields: dict, action: str, *, create: bool = True) -> None:
        with translated_errors(action):
            if not create:
                await self._users.update_one(user_filter(ref), {"$set": fields})
                return
            await self._users.update_one(
                user_filter(ref),
                {"$set": fields, "$setOnInsert": _insert_defaults(ref, besides=set(fields))},
                upsert=True,
            )
