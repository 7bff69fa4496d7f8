"""Platform-free use cases: the only API the front-ends call. They take plain values (`Caller`,
text, `Attachment`) and return reply models from `bot/replies.py`."""
from __future__ import annotations

from dataclasses import dataclass, field

from bot.ratelimit import HeavyLimits, UploadBudget
from bot.replies import HelpReply
from bot.usecases.help import MOOD, help_reply
from bot.usecases.inbox import InboxUseCase
from bot.usecases.journal import JournalUseCase
from bot.usecases.mood import MoodUseCase
from bot.usecases.playlists import PlaylistUseCase
from bot.usecases.ports import PromptSchedule, PromptSender, RequestSpool
from bot.usecases.privacy import PrivacyUseCase

__all__ = ["UseCases", "InboxUseCase", "MoodUseCase", "JournalUseCase", "PlaylistUseCase", "PrivacyUseCase",
           "PromptSchedule", "PromptSender", "build_usecases"]


@dataclass
class UseCases:
    mood: MoodUseCase
    journal: JournalUseCase
    playlists: PlaylistUseCase
    privacy: PrivacyUseCase
    # The requests being answered, kept for a restart after a hard kill (Telegram's updates).
    inbox: InboxUseCase | None = None
    # The bytes of users' files held at once, bot-wide: the front-ends take a file's before fetching it.
    uploads: UploadBudget = field(default_factory=UploadBudget)

    def help(self, extra: tuple[tuple[str, str], ...] = (), *, mood: tuple[str, str] = MOOD,
             instead: dict[tuple[str, str], tuple[str, str]] | None = None) -> HelpReply:
        return help_reply(extra, mood=mood, instead=instead)

    def attach_schedule(self, schedule: PromptSchedule) -> None:
        """The scheduler needs the use cases and they need it: wired after both exist."""
        self.journal.schedule = schedule
        self.privacy.schedule = schedule


def build_usecases(db, classifier, fetcher, *, resolver=None, limiter=None, writer=None,
                   heavy_limits: HeavyLimits | None = None, spool: RequestSpool | None = None,
                   uploads: UploadBudget | None = None, **mood_kwargs) -> UseCases:
    """Assembles the use cases from real adapters (the app and end-to-end tests use this).
    `heavy_limits` is shared, so its cap on chart renders holds across /stats and /servermood.
    `spool`: where the inbox keeps what its database does not (none: held in memory only).
    `uploads`: the budget of files held at once, users' and downloads' (none: `UploadBudget`'s default)."""
    heavy_limits, uploads = heavy_limits or HeavyLimits(), uploads or UploadBudget()
    mood = MoodUseCase(db, classifier, fetcher, resolver=resolver, limiter=limiter, uploads=uploads, **mood_kwargs)
    inbox = InboxUseCase(db.inbox, spool=spool)
    return UseCases(
        mood=mood,
        journal=JournalUseCase(db, mood, writer=writer, limits=heavy_limits),
        playlists=PlaylistUseCase(db, limits=heavy_limits),
        privacy=PrivacyUseCase(db, writer=writer, limits=heavy_limits, inbox=inbox),
        inbox=inbox,
        uploads=uploads,
    )
