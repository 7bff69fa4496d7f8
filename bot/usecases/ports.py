"""What the use cases need from the other side (ports). Adapters: `inference.pool.Classifier`,
`bot.sources.spotify.SpotifyResolver` / `bot.sources.audio.AudioFetcher`,
`bot.scheduler.PromptScheduler`, each front-end as a `PromptSender`, and `storage.spool.InboxSpool`
as the inbox's `RequestSpool`. Tests plug in the real
adapters; the protocols only document the shape.
"""
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import AsyncContextManager, Callable, Protocol, Sequence

from bot.replies import PromptMessage
from bot.sources.models import Query, SearchHit, TrackInfo
from inference.result import MoodResult
from storage.inbox import Arrival
from storage.models import User, UserRef


class MoodClassifier(Protocol):
    # None while unknown (warming up) or when the main model is unavailable.
    main_model_version: str | None

    # max_seconds: the longest audio to decode (TooLongAudioError beyond); None: the classifier's own.
    # label: the request's id, which the model workers' lines carry as req= (opaque to inference/).
    async def classify(self, path, *, max_seconds: float | None = None, label: str | None = None) -> MoodResult: ...


class TrackResolver(Protocol):
    async def resolve(self, query: Query) -> TrackInfo: ...


class FetchedAudioLike(Protocol):
    path: Path
    youtube_id: str | None
    source_url: str


class AudioSource(Protocol):
    # The audio search's pick for a name or a track, nothing downloaded (its video's id, to look up
    # in the cache first); None where nothing is searched. `fetch` takes the hit too.
    async def find(self, track_or_query: TrackInfo | Query) -> SearchHit | None: ...

    # `starting()` is called once a download worker takes the download, before a byte is fetched,
    # not while it waits for one (all busy); what it raises ends the fetch there.
    def fetch(self, item: TrackInfo | Query | SearchHit, *,
              starting: Callable[[], object] | None = None) -> AsyncContextManager[FetchedAudioLike]: ...

    # The largest file a download may leave (MAX_AUDIO_BYTES): the bot-wide budget of files held
    # must have room for it (half the budget, if that is less) as a download starts (`starting`).
    @property
    def max_bytes(self) -> int: ...


class PromptSchedule(Protocol):
    """Where the journal use case puts and removes a user's daily prompt job."""

    def schedule(self, user: User) -> None: ...

    def unschedule(self, ref: UserRef, *, keep_unsent: bool = False) -> None:
        """The user's prompts stop. `keep_unsent` (/journal off): a cancelled retry's failed prompt
        is kept for `cancelled_unsent` (the next /journal on withdraws it); else nothing is kept."""
        ...

    def cancelled_unsent(self, ref: UserRef) -> str | None:
        """The prompt id of a failed prompt whose record the database kept, whose retry `schedule`
        (a new time or zone) or /journal off's `unschedule` cancelled before it withdrew that
        record: the caller withdraws it. Handed over once; None when there is none."""
        ...

    async def fire_now(self, ref: UserRef) -> str | None:
        """Send an opted-in user's prompt now; the prompt id, or None when none could be sent.
        Raises `RecipientGone` when the platform refused to deliver it (the user has something to
        allow), `SenderRefused` when it refused the bot (nothing for the user to do), not for a
        passing failure (None: the user may ask again later)."""
        ...


class NoSchedule:
    """Until the app attaches the real scheduler (and in tests that don't need one)."""

    def schedule(self, user: User) -> None:
        return None

    def unschedule(self, ref: UserRef, *, keep_unsent: bool = False) -> None:
        return None

    def cancelled_unsent(self, ref: UserRef) -> str | None:
        return None

    async def fire_now(self, ref: UserRef) -> str | None:
        return None


class RecipientGone(Exception):
    """The platform will never deliver to this user again as things stand (they blocked the bot,
    or deleted their account): no use trying every day."""


class SenderRefused(Exception):
    """The platform refused the send to the bot itself, not for the user's doing (the bot's own
    access, its unverified account): nothing the user can allow, and no passing failure either; it
    lasts until the bot's standing with the platform changes."""


class DeliveryUncertain(Exception):
    """The send was not confirmed, but the platform may have carried it out (a timeout after the
    request went out): the user may be reading the prompt."""


class DeliveryFailed(Exception):
    """The platform did not deliver the prompt for a passing reason of its own (a 5xx, a 429, a
    connection never made, a timeout before the request left): an outage to wait out, not a bug in
    the bot. The message is the platform's own words (`reason`); the prompt is tried again later."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = True  # always: a lasting refusal is `RecipientGone` or `SenderRefused`


class PromptSender(Protocol):
    """Implemented by each front-end: delivers a prompt privately, returns the platform message id.
    Raises `RecipientGone` when the platform refuses the user for good, `SenderRefused` when it
    refuses the bot itself, `DeliveryUncertain` when the prompt may have arrived though the send
    failed, `DeliveryFailed` when the platform failed for a passing reason and the prompt did not
    arrive, anything else (a bug) when it did not arrive either. A front-end may set
    `prompts_per_s`: the scheduler starts no more of its prompts a second (a broadcast kept under
    the platform's global rate limit where its client does not keep it: Discord's)."""

    platform: str

    async def send_prompt(self, prompt: PromptMessage) -> str | None: ...


class PromptFinder(Protocol):
    """A front-end that can read back what it sent in a chat (Discord's DM history): whether a prompt
    whose send the run before never saw end is there. Telegram's Bot API reads no chat history."""

    async def find_prompt(self, prompt: PromptMessage, recorded_at: datetime) -> str | None:
        """The id of the message showing `prompt` in its chat, made since `recorded_at` (when it was
        recorded, before its send); None when there is none. Raises when the chat cannot be read."""


class RequestSpool(Protocol):
    """Where the inbox keeps on local disk the requests being answered that its database did not
    keep (down, or too slow), for a restart after a hard kill to answer them; the same steps as the
    database's inbox (`storage.inbox.InboxRepo`). A request there is kept once on disk."""

    async def keep(self, source: str, arrivals: Sequence[Arrival]) -> bool:
        """True once on disk; False (said in the log) when they could not be kept there."""
        ...

    async def shown(self, source: str, number: int, chat_id: str | None, message_id: str | None) -> None: ...

    async def parts_answered(self, source: str, numbers: Sequence[int], parts: int) -> None: ...

    async def held(self, source: str, numbers: Sequence[int]) -> None: ...

    async def done(self, source: str, numbers: Sequence[int]) -> None: ...

    async def forget(self, platform: str, user_id: str) -> None:
        """/forget: the user's requests kept there go, their words with them."""
        ...

    async def drop_received_before(self, before: datetime) -> None: ...

    async def waiting(self, source: str) -> list[Arrival]: ...
