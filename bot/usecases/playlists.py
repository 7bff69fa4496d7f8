"""Server and group features: mood playlists, the mood of the week, the admin switch, the user's opt-out."""
from __future__ import annotations

import asyncio
import logging
import re
import time
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timezone
from typing import AsyncIterator, Callable

from bot import charts
from bot.ratelimit import HeavyLimits, refusal
from bot.replies import (
    PLACE,
    PLACE_AT_START,
    Caller,
    MOOD_EMOJI,
    Chart,
    ErrorReply,
    PlaylistReply,
    PlaylistTrackView,
    ServerMoodReply,
    TextReply,
    as_typed,
)
from bot.sources.query import YOUTUBE_ID
from bot.usecases.journal import local_now
from inference.result import MOODS
from storage.models import PlaylistItem, StorageError, UserRef
from storage.place_moves import PlaceMove

log = logging.getLogger(__name__)

PLAYLIST_LENGTH = 20
# How often an update in a place that moved tries again to finish its move while the database
# fails: each try waits for the database (server selection, 2 s) before the update is answered.
MOVE_RETRY_S = 10.0
YOUTUBE_WATCH_URL = "https://www.youtube.com/watch?v={}"
# The message links the front-ends make of an uploaded file's message (`Attachment.message_link`):
# a Discord server's jump URL, a Telegram supergroup's link by its public name or internal id. A
# stored link of any other form is not shown.
MESSAGE_LINK = re.compile(r"https://discord\.com/channels/\d+/\d+/\d+"
                          r"|https://t\.me/(?:c/\d+|[A-Za-z][A-Za-z0-9_]{3,31})/\d+")
NOT_IN_SERVER = f"Playlists belong to a {PLACE}: use this command there, not in a private chat."
MOOD_NOT_IN_SERVER = f"The mood of the week belongs to a {PLACE}: use /servermood there, not in a private chat."
DISABLED = f"{PLACE_AT_START} playlists are turned off here. An admin can turn them on with /serverplaylist on."
NOT_ADMIN = f"Only the {PLACE}'s admins can turn {PLACE} playlists on or off."
ENABLED = f"{PLACE_AT_START} playlists are on."
# The console's /serverplaylist alone, when they are on (when off, `closed` says so).
ON_NOW = f"{PLACE_AT_START} playlists are on here. /serverplaylist off turns them and /servermood off."
# The same where only the {PLACE}'s admins may switch them (Telegram's '/serverplaylist' alone).
ON_NOW_ADMINS = f"{PLACE_AT_START} playlists are on here. An admin can turn them and /servermood off with /serverplaylist off."
TURNED_OFF = f"{PLACE_AT_START} playlists are off: /playlist and /servermood won't answer here."
SHARING_ON = f"Sharing on: your songs count in the playlists of the {PLACE}s you use me in."
SHARING_OFF = f"Sharing off: your songs no longer count in any {PLACE} playlist."
# '/playlist happy sad' showed the first mood's alone, as if the second had not been typed: which
# one was meant is the user's to say.
ONE_MOOD = f"One mood at a time: /playlist <{'|'.join(MOODS)}>."


def song_link(item: PlaylistItem) -> str | None:
    """The song's Spotify page, else the video it was heard from: a song known only by its YouTube
    link is listed with it. Built from the stored video id (checked), never from what users typed.
    An uploaded file: the place's message that holds it, as the front-end made it (checked)."""
    if item.spotify_url:
        return item.spotify_url
    if item.youtube_id and re.fullmatch(YOUTUBE_ID, item.youtube_id):
        return YOUTUBE_WATCH_URL.format(item.youtube_id)
    if item.source_link and MESSAGE_LINK.fullmatch(item.source_link):
        return item.source_link
    return None


MOOD_LABEL_CHARS = 20  # of a word that is no mood, quoted back
# Words often typed for a mood that is none of the four: the reply names the mood they likely mean
# (never taken as said: 'down' may not be sad to everyone).
MOOD_WORDS = {
    **dict.fromkeys(("chill", "chilled", "relaxed", "relaxing", "relax", "peaceful", "mellow", "quiet", "soft"), "calm"),
    **dict.fromkeys(("upbeat", "hype", "energy", "pumped", "party", "dance", "workout", "excited"), "energetic"),
    # energetic is the tense quadrant (high arousal, negative valence: README), anger's
    **dict.fromkeys(("angry", "anger", "tense", "aggressive", "rage", "furious", "intense"), "energetic"),
    **dict.fromkeys(("joyful", "joy", "cheerful", "glad", "fun", "good"), "happy"),
    **dict.fromkeys(("melancholy", "melancholic", "down", "depressed", "blue", "heartbroken", "crying"), "sad"),
}
# Around a word: '#sad', 'sad!', '"calm"'. Within one: an emoji's presentation selector ('⚡️').
WORD_MARKS = "#!?.,;:'\"“”‘’«»()[]*_~`"
MOOD_SEPARATORS = str.maketrans(",/+&|", "     ")  # 'sad,calm', 'happy/sad': two words, two moods


def mood_error(mood: str, meant: str | None = None) -> ErrorReply:
    said = f"“{as_typed(mood, MOOD_LABEL_CHARS)}” isn't one of the moods I know: {', '.join(MOODS)}."
    return ErrorReply(f"{said} Did you mean /playlist {meant}?" if meant else said)


def typed_mood(typed: str) -> str | ErrorReply:
    """The mood of what the user typed after /playlist: a mood's word in any case or marks, its
    emoji, or both (the label '😢 sad' copied); else why not, with the command likely meant."""
    words = typed.lower().replace("\ufe0f", "").translate(MOOD_SEPARATORS)
    for mood, emoji in MOOD_EMOJI.items():
        words = words.replace(emoji, f" {mood} ")
    words = [word for word in (w.strip(WORD_MARKS) for w in words.split()) if word]
    moods = list(dict.fromkeys(word for word in words if word in MOODS))
    if len(moods) > 1:
        return ErrorReply(ONE_MOOD)
    if moods:  # '/playlist sad songs': one mood, and words that are none
        return moods[0] if len(words) == words.count(moods[0]) else ErrorReply(f"Did you mean /playlist {moods[0]}?")
    meant = list(dict.fromkeys(MOOD_WORDS[word] for word in words if word in MOOD_WORDS))
    return mood_error(typed, meant[0] if len(meant) == 1 else None)


class PlaylistUseCase:
    def __init__(self, db, *, limits: HeavyLimits | None = None,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.db = db
        self.limits = limits or HeavyLimits()
        self.now = now
        self.move_retry_s = MOVE_RETRY_S
        self._unfinished: dict[str, PlaceMove] = {}  # old place -> its move, until every step is done
        self._move_failed_at: dict[str, float] = {}  # old place -> time.monotonic() of its last failed try
        self._moving = asyncio.Lock()
        self._moved: dict[str, asyncio.Event] = {}  # old place -> set once its move is finished (`until_moved`)
        # Old place -> its new id, once its move is finished: a command sent there before the move
        # and answered after it (its sender's admin check took a moment) is the place's under its new id.
        self._moved_to: dict[str, str] = {}
        # (place, member) -> the lock their departures and returns take in turn, and how many hold or
        # await it (`_in_turn`).
        self._membership: dict[tuple[str, UserRef], tuple[asyncio.Lock, list[int]]] = {}

    def _where_now(self, caller: Caller) -> Caller:
        """`caller`, in its place's new id where the place moved (`_moved_to`)."""
        new = self._moved_to.get(caller.place or "")
        return caller if new is None else replace(caller, place=new)

    async def playlist(self, caller: Caller, mood: str) -> PlaylistReply | ErrorReply:
        """The place's playlist of `mood`: what the user typed after the command, whole."""
        if caller.place is None:  # first: in a private chat no mood would help
            return ErrorReply(NOT_IN_SERVER)
        caller = self._where_now(caller)
        mood = typed_mood((mood or "").strip())
        if isinstance(mood, ErrorReply):
            return mood
        if (refused := refusal(self.limits.server, caller, "playlist", per_place=True)) is not None:
            return refused
        try:
            settings = await self.db.servers.get(caller.place)
            if not settings.playlist_enabled:
                return ErrorReply(DISABLED)
            items, songs = await self.db.playlists.ranked(caller.place, mood, limit=PLAYLIST_LENGTH)
            # Theirs are left out while they don't share: said, or "No sad songs here yet" misleads them.
            asker = await self.db.users.get(UserRef(caller.platform, caller.user_id))
        except StorageError as error:
            return ErrorReply(str(error))
        tracks = [PlaylistTrackView(i.title, tuple(i.artists), song_link(i), i.members) for i in items]
        others = {other: songs[other] for other in MOODS if other != mood and songs.get(other)}
        return PlaylistReply(mood, tracks, songs.get(mood, 0), others, sharing=asker is None or asker.share_with_server)

    async def closed(self, caller: Caller) -> ErrorReply | None:
        """Why no playlist can be shown to `caller`, whatever the mood (a private chat; playlists
        turned off), else None: a front-end that offers the moods to choose from asks first, rather
        than offering choices that would each be refused."""
        if caller.place is None:
            return ErrorReply(NOT_IN_SERVER)
        caller = self._where_now(caller)
        try:
            if not (await self.db.servers.get(caller.place)).playlist_enabled:
                return ErrorReply(DISABLED)
        except StorageError as error:
            return ErrorReply(str(error))
        return None

    async def server_mood(self, caller: Caller) -> ServerMoodReply | ErrorReply:
        if caller.place is None:
            return ErrorReply(MOOD_NOT_IN_SERVER)
        caller = self._where_now(caller)
        if (refused := refusal(self.limits.server, caller, "servermood", per_place=True)) is not None:
            return refused
        try:
            # The mood of the week is made of the playlists' songs: off with them.
            if not (await self.db.servers.get(caller.place)).playlist_enabled:
                return ErrorReply(DISABLED)
            now = self.now()
            counts = await self.db.playlists.server_mood_of_week(caller.place, now)
            # Their zone, for the chart's time on their clock: a file saved of it is named by their date.
            asker = await self.db.users.get(UserRef(caller.platform, caller.user_id))
        except StorageError as error:
            return ErrorReply(str(error))
        counts = {m: int(counts.get(m, 0)) for m in MOODS}
        # Theirs are left out while they don't share: said, or "Nobody here classified…" misleads them.
        sharing = asker is None or asker.share_with_server
        if not any(counts.values()):
            return ServerMoodReply(None, counts, sharing=sharing)
        top = max(MOODS, key=lambda m: counts[m])  # the first of a tie; the caption names them all
        tied = [m for m in MOODS if counts[m] == counts[top]]
        caption = f"a tie between {', '.join(tied[:-1])} and {tied[-1]}" if len(tied) > 1 else top
        png = await self.limits.renders.run(charts.server_mood_of_week, counts)
        return ServerMoodReply(top, counts, Chart("server-mood.png", png, f"This week's mood: {caption}",
                                                  local_now(asker, now)), sharing=sharing)

    async def set_enabled(self, caller: Caller, enabled: bool) -> TextReply | ErrorReply:
        if caller.place is None:
            return ErrorReply(NOT_IN_SERVER)
        if not caller.is_admin:
            return ErrorReply(NOT_ADMIN)
        caller = self._where_now(caller)
        try:
            await self.db.servers.set_playlist_enabled(caller.place, enabled)
        except StorageError as error:
            return ErrorReply(str(error))
        log.info("server.playlists", extra={"user": caller.user_id, "place": caller.place, "enabled": enabled})
        return TextReply(ENABLED if enabled else TURNED_OFF)

    async def place_moved(self, platform: str, old_id: str, new_id: str) -> bool:
        """A group got a new id on its platform (a Telegram group upgraded to a supergroup): its
        songs and settings follow it. A move the database did not let finish is finished later:
        before the next update in the place under its new id is answered (`settle_moves`), or at
        the next start (`finish_moves`). False where it is not finished now: a move the database
        did not even record is lost to a stop before it is (`until_moved`: the front-end keeps
        its update meanwhile, to be handed over again by the next start)."""
        # What the group posted as itself (an anonymous admin's /mood, under the group's id,
        # `caller_of`) is the new group's too: one member, not the old id's and the new one's.
        move = PlaceMove(f"{platform}:{old_id}", f"{platform}:{new_id}",
                         (UserRef(platform, old_id), UserRef(platform, new_id)))
        self._unfinished[move.old] = move
        return await self._finish(move)

    async def until_moved(self, platform: str, old_id: str) -> None:
        """Return once the move from `old_id` is finished (at once where none is left unfinished)."""
        old = f"{platform}:{old_id}"
        if old in self._unfinished:
            await self._moved.setdefault(old, asyncio.Event()).wait()

    async def finish_moves(self) -> int:
        """At start: the moves a previous process finished are known again (a command sent in the
        old place, handed over again by the inbox, is the new one's: `_moved_to`, and its /mood's
        request is stored there); those it left unfinished (the database failed partway, or the
        process was killed) are finished, each now or, where the database fails again, later.
        Raises StorageError where they cannot be read. Returns how many were finished."""
        for move in await self.db.moves.finished():
            self._moved_to[move.old] = move.new
            self.db.requests.place_moved(move.old, move.new, move.renamed)
        for move in await self.db.moves.unfinished():
            self._unfinished.setdefault(move.old, move)
        finished = 0
        for move in list(self._unfinished.values()):
            finished += await self._finish(move)
        return finished

    async def settle_moves(self, platform: str, place_id: str) -> None:
        """Before an update in the place is answered: a move to it left unfinished is finished first,
        so that its playlists have all their songs and its settings. Tried again at most every
        `move_retry_s` while the database fails (an update would wait for it each time)."""
        if not self._unfinished:
            return
        place = f"{platform}:{place_id}"
        for move in [m for m in self._unfinished.values() if m.new == place]:
            await self._finish(move, when_due=True)

    async def _finish(self, move: PlaceMove, *, when_due: bool = False) -> bool:
        """Run the move (again); `when_due`: unless it failed less than `move_retry_s` ago (also
        while this waited for another try of it)."""
        async with self._moving:
            if move.old not in self._unfinished:  # finished meanwhile, by another update
                return False
            failed_at = self._move_failed_at.get(move.old)
            if when_due and failed_at is not None and time.monotonic() - failed_at < self.move_retry_s:
                return False
            try:
                await self.db.moves.move(move)
            except StorageError as error:
                self._move_failed_at[move.old] = time.monotonic()
                log.warning("server.place_not_moved", extra={"place": move.old, "to": move.new, "reason": str(error)})
                return False
            del self._unfinished[move.old]
            self._moved_to[move.old] = move.new
            self._move_failed_at.pop(move.old, None)
            if (waiting := self._moved.pop(move.old, None)) is not None:
                waiting.set()
        log.info("server.place_moved", extra={"place": move.old, "to": move.new})
        return True

    async def member_left(self, platform: str, place_id: str, user_id: str) -> None:
        """A member left the server or group, or was removed: their songs stop counting there until
        they join again, or ask /mood or write there again."""
        place = f"{platform}:{place_id}"
        place = self._moved_to.get(place, place)
        async with self._in_turn(place, UserRef(platform, user_id)):
            try:
                await self.db.playlists.member_left(place, UserRef(platform, user_id), self.now())
            except StorageError as error:
                log.warning("server.departure_not_recorded",
                            extra={"user": user_id, "place": place, "reason": str(error)})
                return
        log.info("server.member_left", extra={"user": user_id, "place": place})

    async def member_joined(self, platform: str, place_id: str, user_id: str) -> None:
        """A member joined the server or group (again): whatever they did there counts again."""
        place = f"{platform}:{place_id}"
        place = self._moved_to.get(place, place)
        async with self._in_turn(place, UserRef(platform, user_id)):
            try:
                await self.db.playlists.member_returned(place, UserRef(platform, user_id))
            except StorageError as error:
                log.warning("server.return_not_recorded",
                            extra={"user": user_id, "place": place, "reason": str(error)})

    @asynccontextmanager
    async def _in_turn(self, place: str, member: UserRef) -> AsyncIterator[None]:
        """A member's departure and return in a place are written in the order they were told, one
        after the other: the front-ends hand them over side by side (a Telegram backlog after a
        restart held Bob leaving and an admin adding him back, two senders' updates), and the
        return's one delete was done before the departure's reads and upsert, leaving him gone
        from the playlists while he was in the group. Taken before anything is awaited (a lock
        free at once, else its FIFO queue): the order of the calls."""
        key = (place, member)
        lock, holders = self._membership.setdefault(key, (asyncio.Lock(), [0]))
        holders[0] += 1
        try:
            async with lock:
                yield
        finally:
            holders[0] -= 1
            if not holders[0]:
                del self._membership[key]

    def bot_removed(self, platform: str, place_id: str) -> None:
        """The bot was removed from a server or group. Nothing is deleted: its members' songs stay
        theirs (/forget), and count again if the bot is added back."""
        log.info("server.bot_removed", extra={"place": f"{platform}:{place_id}"})

    async def sharing(self, caller: Caller) -> TextReply:
        """`/share` alone: whether the caller's songs count in playlists now (until /share off)."""
        try:
            user = await self.db.users.get(UserRef(caller.platform, caller.user_id))
        except StorageError as error:
            return TextReply(str(error))
        if user is None or user.share_with_server:
            return TextReply("Sharing is on: your songs count in playlists. /share off stops it.")
        return TextReply("Sharing is off: your songs count in no playlist. /share on turns it back on.")

    async def set_sharing(self, caller: Caller, share: bool) -> TextReply:
        ref = UserRef(caller.platform, caller.user_id)
        try:
            await self.db.users.set_sharing(ref, share)
        except StorageError as error:
            return TextReply(str(error))
        return TextReply(SHARING_ON if share else SHARING_OFF)
