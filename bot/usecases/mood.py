"""/mood: from what the user typed or attached to a mood, through the cache, the sources and the
classifier. `analyse` is the shared path; the journal uses it too (without the rate limit).
"""
from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import re
import shutil
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable, ContextManager, Iterator

from bot.logs import REQUEST, without_user_text
from bot.ratelimit import MoodRateLimiter, Permit, RateLimited, Reservation, UploadBudget
from bot.replies import (
    STAGE_DOWNLOADING,
    STAGE_FINDING,
    STAGE_LISTENING,
    Attachment,
    Caller,
    ErrorReply,
    QUERY_LEFT_ASIDE,
    UPLOADS_BUSY,
    UPLOADS_RETRY_S,
    MoodReply,
    Progress,
    no_progress,
)
from bot.sources.models import (
    LiveStreamError,
    Query,
    QueryKind,
    SearchHit,
    SourceError,
    TrackInfo,
    UnsupportedInputError,
)
from bot.sources.query import MAX_TEXT_CHARS, clean_text
from bot.tempfiles import temporary_folder
from bot.usecases.ports import AudioSource, MoodClassifier, TrackResolver
from inference.result import AudioError, InferenceError, ModelFailedOnFileError, ModelUnavailableError, MoodResult
from storage.models import MoodRequest, StorageError, StoredMood, TrackRecord, UserRef

log = logging.getLogger(__name__)

GENERIC_ERROR = "Sorry, something went wrong on my side while listening to that. Please try again in a moment."
NO_INPUT_ERROR = "Tell me a song: /mood <song name | Spotify link | YouTube link>, or attach an audio file."
# When neither model can answer: the reason (weights missing, a Dask address unreachable) is the
# operator's, and goes to the log; the user is only told to come back.
MODEL_UNAVAILABLE_ERROR = "I can't listen to songs right now. Please try again later."
SPOTIFY_OFF_ERROR = "Spotify links need Spotify to be configured on this bot — send the song's name or a YouTube link instead."
MAX_TITLE_CHARS = 120
# Under the mood of a YouTube link to a moment (?t=90): the song is heard where every song is, its
# mood the song's (one, cached), and a user who sent a drop or a DJ set's track by its time is told.
LINK_TIME_LEFT_ASIDE = ("Your link starts at {at}; I left that aside: the mood is the whole song's, "
                        "heard in 30 s from its middle.")
# Under the mood of a song another service's link stood for (`Query.link_service`): that link is
# never opened, the song was searched by the name the message (or the link's slug) gave, and a
# user who gets another song of that name knows why. `where`: " on Spotify", or "" (the audio search).
FOUND_BY_NAME = ("I found this song{where} by its name, not from your {service} link, which I don't open: "
                 "if it's not the one, send its Spotify or YouTube link.")
# Under the answer to a name typed longer than a search takes (`Query.cut`), found or not: the
# search was for its start, and a user who pasted a paragraph knows what was looked for.
QUERY_CUT = "I searched for the first {chars} characters of that."
# `MoodResult.model` of the main model's answers. Only those are served from the cache: the ANN
# answers when the main model is overloaded or down, and the song deserves the main model's
# answer once it is back (the ANN is cheap to run again meanwhile).
MAIN_MODEL = "main"
# A cached answer asked for while the classifier warms up waits this long at most to learn the
# version serving (a warm-up takes 1-5 s here; a classification would wait for it anyway).
WARM_UP_WAIT_S = 10.0
# What two askers of one name share while the audio search finds it (its track is known only after).
SEARCH_KEY = "search:{text}"
# The most songs one message is heard for, one after another: a Telegram album's most items
# (sendMediaGroup: "must include 2-10 items"), and as many of a Discord message's files.
MAX_SONGS_AT_ONCE = 10
WORD = re.compile(r"[^\W_]+")  # letters and digits: "Radiohead_-_Creep.mp3" is radiohead, creep, mp3


@dataclass
class Admission:
    """The quota a front-end took for a file before downloading it (`MoodUseCase.admitted`), for
    the `run` of that file (the download and `run` share the task): whose, and whether `run` used it."""
    asker: str
    permit: Permit
    used: bool = False


ADMITTED: contextvars.ContextVar[Admission | None] = contextvars.ContextVar("mood_admitted", default=None)
# What a front-end's download enters before it fetches a file: `MoodUseCase.admitted` for /mood.
Admit = Callable[[], ContextManager[ErrorReply | None]]

# A user's text, and whether it is a Discord message's (`parse_query`'s `discord`), to a Query.
Parse = Callable[..., Query]
FileKey = Callable[[str | Path], str]


class SpotifyNotConfiguredError(SourceError):
    pass


class Listening:
    """One download and classification shared by everyone asking for the song meanwhile: each of
    them is told its progress (`tell`), those who join later the stage reached so far first. The
    first asker's alone was: whoever asked second read "Finding the song…" until the answer."""

    def __init__(self) -> None:
        self.task: asyncio.Future[MoodReply] | None = None
        self.stage: str | None = None
        self.askers: list[Progress] = []

    async def tell(self, stage: str) -> None:
        self.stage = stage
        for progress in list(self.askers):
            try:
                await progress(stage)
            except Exception:  # one asker's status (a chat that refused it) is no failure of the song
                log.info("mood.progress_not_shown", exc_info=True)


class UploadsBusyError(SourceError):
    """A download's file would take the files held at once, bot-wide, past UPLOADS_MAX_BYTES: it
    is deleted unheard, and its asker's /mood quota given back (`bot.replies.UPLOADS_BUSY`)."""

    retry_after_s = UPLOADS_RETRY_S

    def __init__(self) -> None:
        super().__init__(UPLOADS_BUSY)


class FileGoneError(Exception):
    """The file a shared listening was to hear went before it was linked (`linked_into`)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def linked_into(folder: Path, path: str) -> Path:
    """`path` in `folder`, under its name (which the classifier's errors name): a hard link, so
    the file stays whoever deletes the name it came under; a copy where no link can be made
    (another file system)."""
    target = folder / Path(path).name
    try:
        os.link(path, target)
    except FileNotFoundError:
        raise
    except OSError:
        shutil.copyfile(path, target)
    return target


def asker_key(caller: Caller) -> str:
    """Whose quota a request counts against."""
    return f"{caller.platform}:{caller.user_id}"


def refusal_reason(error: Exception) -> str:
    """Why a request was refused, fit for the logs: without what the user typed (`without_user_text`),
    nor the name of the file they sent, which the decoder's refusals name."""
    return without_user_text(error.naming("<file>") if isinstance(error, AudioError) else str(error))


def told_to_wait(reply: object) -> bool:
    """The reply refuses for now: the rate limit, or a busy service that said how long to wait.
    Of several songs heard one after another, the next would be refused too."""
    return isinstance(reply, ErrorReply) and reply.retry_after_s is not None


def song_named_in(text: str) -> str:
    """The words of someone's message that name the song asked about by /mood in reply to it
    (Telegram) or by the message command (Discord): its text, less the command it opens with (a
    music bot's '/play Creep' names Creep). A newline or tab after the command separates like a
    space. What they then search for is `MoodUseCase.run`'s to say (markup alone names no song)."""
    if text.startswith("/"):
        parts = text.split(None, 1)
        text = parts[1] if len(parts) > 1 else ""
    return text.strip()


def clock_time(seconds: int) -> str:
    """90 -> "1:30", 3723 -> "1:02:03", as a video player shows a moment."""
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02}:{rest % 60:02}" if hours else f"{rest // 60}:{rest % 60:02}"


def query_left_aside(typed: str, *file_names: str) -> str | None:
    """The note for a mood heard from a file when a song was typed with it (`QUERY_LEFT_ASIDE`):
    None when nothing was typed, or only words of the file's own names (its file name, the title
    and performer read from its tags), which name the song the answer is about anyway."""
    typed_words = set(WORD.findall(clean_text(typed).casefold()))
    named = {word for name in file_names for word in WORD.findall(name.casefold())}
    return QUERY_LEFT_ASIDE if typed_words - named else None


def title_from_filename(filename: str) -> str:
    """What a person would call the file: "01_Some-Song.final.mp3" -> "01 Some-Song.final"."""
    stem = Path(filename).stem if "." in filename else filename
    title = re.sub(r"[_\s]+", " ", stem).strip()
    return (title or "Your audio file")[:MAX_TITLE_CHARS]


def stored_mood(result: MoodResult) -> StoredMood:
    return StoredMood(result.mood, dict(result.probabilities), result.valence, result.arousal,
                      result.model, result.model_version)


def track_record(track: TrackInfo, mood: StoredMood, classified_at: datetime) -> TrackRecord:
    return TrackRecord(
        key=track.key, title=track.title, artists=list(track.artists), album=track.album,
        duration_s=track.duration_s, isrc=track.isrc, art_url=track.art_url, spotify_id=track.spotify_id,
        spotify_url=track.spotify_url, youtube_id=track.youtube_id, mood=mood, classified_at=classified_at,
    )


def track_info(record: TrackRecord) -> TrackInfo:
    """The song a cached record is, to hear again under its key."""
    return TrackInfo(key=record.key, title=record.title, artists=tuple(record.artists), album=record.album,
                     duration_s=record.duration_s, isrc=record.isrc, art_url=record.art_url,
                     spotify_id=record.spotify_id, spotify_url=record.spotify_url, youtube_id=record.youtube_id)


def mood_reply(record: TrackRecord, *, cached: bool, source_url: str | None = None,
               fallback_reason: str | None = None) -> MoodReply:
    mood = record.mood
    assert mood is not None, "only classified tracks make a reply"
    if source_url is None and record.youtube_id:
        source_url = f"https://www.youtube.com/watch?v={record.youtube_id}"
    return MoodReply(
        track_key=record.key, title=record.title, artists=tuple(record.artists), mood=mood.mood,
        probabilities=dict(mood.probabilities), valence=mood.valence, arousal=mood.arousal,
        confidence=float(mood.probabilities.get(mood.mood, 0.0)), model=mood.model,
        model_version=mood.model_version, album=record.album, art_url=record.art_url,
        spotify_url=record.spotify_url, source_url=source_url, fallback_reason=fallback_reason, cached=cached,
    )


class MoodUseCase:
    def __init__(
        self,
        db,
        classifier: MoodClassifier,
        fetcher: AudioSource,
        *,
        resolver: TrackResolver | None = None,
        limiter: MoodRateLimiter | None = None,
        parse: Parse | None = None,
        file_key: FileKey | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        max_audio_seconds: float | None = None,
        uploads: UploadBudget | None = None,
    ) -> None:
        if parse is None or file_key is None:
            from bot.sources.keys import file_cache_key
            from bot.sources.query import parse_query

            parse, file_key = parse or parse_query, file_key or file_cache_key
        self.db = db
        self.classifier = classifier
        self.fetcher = fetcher
        self.resolver = resolver
        self.limiter = limiter
        self.parse = parse
        self.file_key = file_key
        self.now = now
        # The longest song accepted (MAX_AUDIO_DURATION_S): the downloads are held to it, and so
        # is what the classifier decodes, an attached file's whole length included.
        self.max_audio_seconds = max_audio_seconds
        # The bytes of files held at once, bot-wide, users' attached files' with them (the front-ends'
        # `holding`): a download's file counts from the end of its download until its answer, and
        # none starts without room for the largest it may leave (half the budget, if that is less).
        self.uploads = uploads or UploadBudget()
        self._listening: dict[str, Listening] = {}

    async def run(self, caller: Caller, text: str | None = None, attachment: Attachment | None = None,
                  progress: Progress = no_progress) -> MoodReply | ErrorReply:
        """Given a user types `/mood Creep`, they get a reply naming a mood (or a readable error)."""
        if not clean_text(text or "") and attachment is None:  # nothing, or nothing visible ("\ufeff")
            return ErrorReply(NO_INPUT_ERROR)
        # As the message arrived (the front-end's stamp), else now: a /forget since drops the record.
        ref = UserRef(caller.platform, caller.user_id)
        erasures = self.db.privacy.erasures(ref) if caller.erasures is None else caller.erasures
        query = None
        if attachment is None:  # read first: a link or name refused unread costs no quota, the user's nor the place's
            try:
                query = self.parse(text or "", discord=caller.platform == "discord")
            except UnsupportedInputError as error:
                log.info("mood.refused", extra={"user": caller.user_id, "error": type(error).__name__,
                                                "reason": refusal_reason(error)})
                return ErrorReply(str(error))
            except Exception:  # read again below, where such a failure is answered and logged
                query = None
        admission = ADMITTED.get()
        if attachment is not None and admission is not None and admission.asker == asker_key(caller) and not admission.used:
            admission.used = True  # taken before the file's download
            permit = admission.permit
        else:
            try:
                permit = self._acquire(caller)
            except RateLimited as limited:
                return self._refused(caller, limited)
        # The request's time, as it arrived (before its file's download): a departure while it is
        # downloaded or answered comes after it.
        asked_at = caller.asked_at or self.now()
        # A /forget since the message arrived (its file downloading): the request will be dropped, and
        # a departure while it is answered is not recorded either, as a visit after the deletion would be.
        place = caller.place if self.db.privacy.erasures(ref) == erasures else None
        try:
            with self.db.requests.asking(place, ref):
                reply = await self.analyse(text, attachment, progress, platform=caller.platform, query=query)
        except (SourceError, InferenceError, StorageError) as error:
            if isinstance(error, UploadsBusyError) and permit is not None:
                permit.refund()  # others' files, not the asker, kept it from being heard
            log.info("mood.refused", extra={"user": caller.user_id, "error": type(error).__name__,
                                            "reason": refusal_reason(error)})
            # A busy service may say how long to wait (Spotify's Retry-After): pass it on to the user.
            cut = f" {QUERY_CUT.format(chars=MAX_TEXT_CHARS)}" if query is not None and query.cut else ""
            return ErrorReply(str(error) + cut, retry_after_s=getattr(error, "retry_after_s", None),
                              quoted=getattr(error, "quoted", ()))
        except Exception:
            log.exception("mood.failed", extra={"user": caller.user_id})
            return ErrorReply(GENERIC_ERROR)
        finally:
            if permit is not None:
                permit.release()
        if self.db.privacy.erasures(ref) == erasures:  # not after a /forget sent since the message
            self._record_request(caller, reply, asked_at, attachment)
        log.info("mood.answered", extra={"user": caller.user_id, "chat": caller.chat_id, "track": reply.track_key,
                                         "mood": reply.mood, "cached": reply.cached, "model": reply.model,
                                         "fallback": reply.fallback_reason})  # why the ANN answered, if it did
        return reply

    @contextlib.contextmanager
    def admitted(self, caller: Caller) -> Iterator[ErrorReply | None]:
        """The caller's /mood quota (and one of their analyses at once), taken before their file
        is downloaded: None, and the `run` of that file within uses it; or the refusal, to say at
        once, nothing downloaded (a user over their limit sent file after file: each was
        downloaded, held in memory and on disk, and refused afterwards). A file that never reaches
        `run` (Telegram did not hand it over) gives its quota back."""
        try:
            permit = self._acquire(caller)
        except RateLimited as limited:
            yield self._refused(caller, limited)
            return
        if permit is None:
            yield None
            return
        admission = Admission(asker_key(caller), permit)
        token = ADMITTED.set(admission)
        try:
            yield None
        finally:
            ADMITTED.reset(token)
            if not admission.used:
                permit.refund()

    def _acquire(self, caller: Caller) -> Permit | None:
        """A permit for one analysis (None: no limiter), or `RateLimited`."""
        return self.limiter.acquire(asker_key(caller), caller.place) if self.limiter else None

    @staticmethod
    def _refused(caller: Caller, limited: RateLimited) -> ErrorReply:
        log.info("mood.rate_limited", extra={"user": caller.user_id, "place": caller.place,
                                             "by_place": limited.by_place, "retry_after_s": limited.retry_after_s})
        return ErrorReply(str(limited), retry_after_s=limited.retry_after_s)

    def link_note(self, reply: object, text: str | None, *, platform: str = "") -> str | None:
        """The note under `reply`, the mood of `text` (a /mood's words, no file), where that is a
        YouTube link to a moment in its video (`LINK_TIME_LEFT_ASIDE`), or another service's link
        whose song was searched by its name (`FOUND_BY_NAME`), or a name cut to the search's length
        (`QUERY_CUT`); None with a refusal (whose words say the last themselves)."""
        if not isinstance(reply, MoodReply) or not text:
            return None
        try:
            query = self.parse(text, discord=platform == "discord")
        except SourceError:
            return None
        if query.link_service:
            return FOUND_BY_NAME.format(where=" on Spotify" if self.resolver else "", service=query.link_service)
        if query.cut:
            return QUERY_CUT.format(chars=MAX_TEXT_CHARS)
        return LINK_TIME_LEFT_ASIDE.format(at=clock_time(query.start_s)) if query.start_s else None

    async def analyse(self, text: str | None, attachment: Attachment | None = None,
                      progress: Progress = no_progress, *, platform: str = "", query: Query | None = None) -> MoodReply:
        """The mood of a song or file; typed errors (SourceError, InferenceError) propagate.
        `platform`: where `text` was typed; only Discord's own markup is left out of a song's name.
        `query`: `text` already read (`run` reads it before the rate limit)."""
        if attachment is not None:
            return await self._analyse_file(attachment, progress)
        query = query or self.parse(text or "", discord=platform == "discord")
        await progress(STAGE_FINDING)
        track = await self._resolve(query)
        if track is None:  # no Spotify: askers of one name share its search, download and listening
            return await self._once(SEARCH_KEY.format(text=" ".join(query.text.casefold().split())),
                                    lambda told: self._listen(query, None, told), progress)
        cached, answered, track = await self._cached_song(query, track)
        if cached is not None:
            return mood_reply(cached, cached=True, source_url=track.source_url)
        return await self._once(track.key, lambda told: self._listen(query, track, told, cache_up=answered), progress)

    async def _cached_song(self, query: Query, track: TrackInfo) -> tuple[TrackRecord | None, bool, TrackInfo]:
        """The song's answer in the cache: under its key, else its video's catalog song, else
        another release of its recording; whether the database answered; and the track to hear
        if none is cached: a YouTube link's video heard before as a catalog song, by older
        weights, is that song (heard again under its key, not saved as a second entry). The
        database's first failure ends the looking: each lookup waited out the server selection
        (2 s) before the song was heard."""
        try:
            cached = await self._current_of(track.key)
            if cached is None and query.kind is QueryKind.YOUTUBE:
                cached, song = await self._video_song(query.youtube_id)
                if cached is None and song is not None:
                    track = replace(track_info(song), source_url=track.source_url)
            if cached is None and track.isrc:
                cached = await self._cached_release(track)
        except StorageError as error:
            # The classifier doesn't need the database: answer anyway, just without the cache.
            log.warning("mood.cache_unavailable", extra={"track": track.key, "reason": str(error)})
            return None, False, track
        return cached, True, track

    async def _listen(self, query: Query, track: TrackInfo | None, progress: Progress, *,
                      cache_up: bool = True) -> MoodReply:
        """Download and classify: the track's when known, else what the audio search finds. The
        search's hit is found first (`AudioFetcher.find`), its video looked up in the cache before
        it is downloaded (`cache_up` False: the database failed this request's lookup already); a
        hit that is a live stream gives way to the search's next pick (`SearchHit.then`)."""
        if query.kind is not QueryKind.YOUTUBE:
            hit = await self.fetcher.find(track or query)
            while hit is not None:
                try:
                    return await self._listen_to_hit(query, track, hit, progress, cache_up=cache_up)
                except LiveStreamError:
                    # Read only now to be one (a listing seldom says): the search's next pick, if any.
                    if not hit.then:
                        raise
                    log.info("mood.live_hit_passed", extra={"track": track.key if track else None})
                    hit = hit.next_hit()
        elif track is not None and track.key != f"youtube:{query.youtube_id}":
            # The link heard as the catalog song its video is (`_cached_song`): its video's listening
            # is shared with a search that finds that video meanwhile, as a hit's is.
            return await self._as_asked(track, await self._once(
                f"youtube:{query.youtube_id}", lambda told: self._download(query, track, told), progress))
        return await self._download(query, track, progress)

    async def _listen_to_hit(self, query: Query, track: TrackInfo | None, hit: SearchHit, progress: Progress, *,
                             cache_up: bool) -> MoodReply:
        """The answer for what the search found: the cache's, when it holds the hit's video (heard
        from its link, or as another song), else one download and listening of the hit shared by
        everyone asking for it meanwhile, by whatever route (its YouTube link, another name, another
        Spotify song: their own keys differ), each answered as their own song."""
        watch = f"https://www.youtube.com/watch?v={hit.youtube_id}" if hit.youtube_id else None
        if track is not None and hit.youtube_id and not track.youtube_id:
            track = replace(track, youtube_id=hit.youtube_id)  # where its audio is heard
        if hit.youtube_id and cache_up:
            cached, track = await self._cached_hit(hit.youtube_id, track)
            if cached is not None:
                return mood_reply(await self._as_track(track, cached), cached=True, source_url=watch)
        return await self._as_asked(track, await self._once(
            f"youtube:{hit.youtube_id}" if hit.youtube_id else f"hit:{hit.url}",
            lambda told: self._download(query, track, told, hit), progress))

    async def _as_asked(self, track: TrackInfo | None, reply: MoodReply) -> MoodReply:
        """`reply`, of a listening shared by routes to one video, as `track`'s: where it was heard
        for another route's asker, its answer is this song's too, saved under its key. `reply` is
        never the cache's there: a shared download answers from the cache only where its asker has
        no song (`_download`, track None: a hit that is no video, with Spotify off bot-wide), and
        then no asker sharing it has one (a video's routes share `youtube:<id>`), each given it as is
        (test_two_names_sharing_a_file_whose_song_is_cached_are_both_told_it_is_cached). With Spotify
        on, every asker has a song: a name it does not find is refused before any search
        (TrackNotFoundError, `_resolve`), not searched without one
        (test_a_name_spotify_does_not_find_shares_no_cached_file_with_a_song_it_found)."""
        if track is None or reply.track_key == track.key:
            return reply
        mood = StoredMood(reply.mood, dict(reply.probabilities), reply.valence, reply.arousal, reply.model,
                          reply.model_version)
        return await self._save_mood(track, mood, reply.fallback_reason, source_url=reply.source_url)

    async def _cached_hit(self, youtube_id: str,
                          track: TrackInfo | None) -> tuple[TrackRecord | None, TrackInfo | None]:
        """The answer cached for a video the search found: under its own key (heard from its link
        or found by a name), else the catalog song heard from it; and the track to hear, `track`,
        or where none is known (a name searched without Spotify) the catalog song heard from the
        video before, by older weights or the fallback: the video is that song, heard again under
        its key (not saved as a second entry, youtube:<id>), another release of it answering
        first where the model serving now heard one, as for its YouTube link (`_cached_song`)."""
        try:
            cached = await self._current_of(f"youtube:{youtube_id}")
            if cached is None:
                cached, song = await self._video_song(youtube_id)
                if cached is None and track is None and song is not None:
                    track = track_info(song)
                    cached = await self._cached_release(track) if track.isrc else None
        except StorageError as error:
            log.warning("mood.cache_unavailable", extra={"track": f"youtube:{youtube_id}", "reason": str(error)})
            return None, track
        return cached, track

    async def _download(self, query: Query, track: TrackInfo | None, progress: Progress,
                        hit: SearchHit | None = None) -> MoodReply:
        """Download and classify `hit`, else the track (a YouTube link: the link itself), else
        what the audio search finds for the name. Not started where the files held at once,
        bot-wide, leave no room for the largest file a download may leave when a download worker
        takes it (`_room_to_download`)."""
        # "Fetching…" is said once a download worker takes the download, not before: a link waiting
        # behind busy workers was told it while nothing was fetched, and so was one that found a
        # worker free as it asked, where another song took that worker first (the link waited on,
        # told "Fetching…").
        taken = asyncio.Event()

        def starting() -> None:
            self._take_room(reserved)
            taken.set()

        async def said_when_taken() -> None:
            await taken.wait()
            await progress(STAGE_DOWNLOADING)

        with self._room_to_download() as reserved:
            saying = asyncio.create_task(said_when_taken())
            try:
                # A YouTube link is fetched as the link itself; anything else through the search template.
                item = hit or (query if query.kind is QueryKind.YOUTUBE or track is None else track)
                async with self.fetcher.fetch(item, starting=starting) as audio, \
                        self._holding(audio.path, reserved) as room:
                    if taken.is_set():  # (a fetcher that calls no `starting`: unsaid)
                        await saying  # said before any later stage, or the answer
                    if track is None:
                        # No resolver: the audio search found the song; its video id is the cache key.
                        track = await self._track_from_download(query, audio)
                        if hit is None or not hit.youtube_id:  # known only now (a file's content), not looked up yet
                            cached = await self._cached(track.key)
                            if cached is not None:  # no listening: its file goes now, room or none
                                return mood_reply(cached, cached=True, source_url=audio.source_url)
                    elif track.key == f"youtube:{query.youtube_id}" and getattr(audio, "title", None):  # the link's own
                        track = replace(track, title=audio.title[:MAX_TITLE_CHARS])
                    elif audio.youtube_id and not track.youtube_id:
                        track = replace(track, youtube_id=audio.youtube_id)
                    if not room:
                        self._refused_download(os.path.getsize(audio.path), downloaded=True)
                    await progress(STAGE_LISTENING)
                    try:
                        result = await self._classify(audio.path)
                    except AudioError as error:
                        # The decoder names the file it heard, under the name the download gave it
                        # ("dQw4w9WgXcQ.webm"): the asker knows the song by its title.
                        raise error.named(f"downloaded for “{track.title}”", track.title) from None
            except Exception:
                if taken.is_set():  # taken, then failed (the song unavailable, the model's error): said first
                    await asyncio.wait({saying})
                raise
            finally:
                saying.cancel()  # never taken (refused, failed, called off): nothing to say
        return await self._save(track, result, source_url=audio.source_url)

    @contextlib.contextmanager
    def _room_to_download(self) -> Iterator[Reservation]:
        """The room for the largest file a download may leave (MAX_AUDIO_BYTES: a file no section
        could be cut from), as a Telegram file of unstated size is counted, or half the budget where
        it is under two of them (`UploadBudget.download_room`), held from when a download worker
        takes the download, before a byte is fetched (`_take_room`, the fetcher's `starting`),
        until the download ends (settled to its file's real size by `_holding`; given back where it
        fails or is called off). It was only looked at: downloads started together (one user's two
        songs, many users') all passed and could together leave more than the budget. Held from
        before the download waited for a worker, a burst of links waiting (every worker busy) took
        the budget while fetching nothing, and users' files sent meanwhile were refused busy."""
        with self.uploads.reserving(self.uploads.download_room(self.fetcher.max_bytes)) as reserved:
            yield reserved

    def _take_room(self, reserved: Reservation) -> None:
        """`reserved`'s room held from now, as a download worker takes its download; else
        `UploadsBusyError`, refused before a byte is fetched."""
        if not reserved.take():
            self._refused_download(self.fetcher.max_bytes, downloaded=False, room_bytes=reserved.size)

    def _refused_download(self, size: int, *, downloaded: bool, **extra) -> None:
        log.info("mood.download_refused", extra={"why": "uploads_busy", "bytes": size, "downloaded": downloaded,
                                                 "held_bytes": self.uploads.held_bytes,
                                                 "reserved_bytes": self.uploads.reserved_bytes,
                                                 "limit_bytes": self.uploads.limit_bytes, **extra})
        raise UploadsBusyError()

    @contextlib.asynccontextmanager
    async def _holding(self, path, reserved: Reservation) -> AsyncIterator[bool]:
        """The room `reserved` for the download let go, and True, its file counted in the bot-wide
        budget at its real size until the block ends; False, its bytes would go past it (larger
        than the room reserved, half a small budget, and others' files took the rest meanwhile):
        nothing counted, the file refused unheard unless the cache answers it, and deleted as the
        download's block ends. The download workers bound the bytes downloading at once, not the
        files left waiting for an answer (answering slower than downloading: the main model timing
        out, the fallback's queue growing)."""
        reserved.release()
        with self.uploads.holding(os.path.getsize(path)) as room:
            yield room

    async def _analyse_file(self, attachment: Attachment, progress: Progress) -> MoodReply:
        key = await asyncio.to_thread(self.file_key, attachment.path)
        # Named as this sender named it: the cache is shared, and another's file name is theirs.
        title = (attachment.title or "")[:MAX_TITLE_CHARS] or title_from_filename(attachment.filename)
        cached = await self._cached(key)
        if cached is not None:
            return mood_reply(replace(cached, title=title), cached=True)

        async def listen(path: str, progress: Progress) -> MoodReply:
            # Whoever sends the same file meanwhile waits for this listening, and it outlives the
            # request of the sender whose file it hears, whose front-end deletes that file's folder
            # when the request ends (cancelled too): it hears a link of its own to the file.
            async with temporary_folder("moodbot-file-") as folder:
                try:
                    own = await asyncio.to_thread(linked_into, folder, path)
                except FileNotFoundError:
                    raise FileGoneError(path) from None
                await progress(STAGE_LISTENING)
                result = await self._classify(own)
            return await self._save(TrackInfo(key=key, title=""), result)  # the shared record: no file name

        while True:
            try:
                return replace(await self._once(key, lambda told: listen(attachment.path, told), progress),
                               title=title)
            except FileGoneError as gone:
                # The one who started it gave up before it held the file: each waiter asks again
                # with its own (the first to ask starts the listening, the others wait for it).
                if gone.path == attachment.path:
                    raise FileNotFoundError(f"{attachment.path} went before it was heard") from None
                log.info("mood.file_gone", extra={"track": key})
            except AudioError as error:
                # The decoder names the file it heard: saved under a name of the front-end's own
                # ("audio.mp3"), and maybe another sender's (a listening is shared). Each asker is
                # told of the file under the name they gave it.
                raise error.named(attachment.shown_name or attachment.filename) from None

    async def _classify(self, path) -> MoodResult:
        try:
            # The request's id goes with the song's jobs: the model workers' lines carry it (req=).
            return await self.classifier.classify(path, max_seconds=self.max_audio_seconds, label=REQUEST.get())
        except ModelFailedOnFileError:
            raise  # "took too long on this file": the user may try another song
        except ModelUnavailableError as error:
            # Its text names server paths or a Dask address: the log's, not the chat's.
            log.error("mood.no_model", extra={"reason": str(error)})
            raise ModelUnavailableError(MODEL_UNAVAILABLE_ERROR) from None

    async def _once(self, key: str, listen: Callable[[Progress], Awaitable[MoodReply]],
                    progress: Progress) -> MoodReply:
        """One download and classification per track at a time (`key`: the song's, or the video a
        search picked, `_listen_to_hit`): whoever asks for a track that is
        being listened to waits for that answer (a popular song posted to a server is asked for by
        many at once), told its progress as the first asker is (`Listening`). Shielded: one asker
        who gives up doesn't cancel it for the others. The last one to give up before the model has
        the song (a search, a download: a group the bot was removed from, chat_runs) calls it off;
        once the model has it, it is heard to the end and cached."""
        shared = self._listening.get(key)
        joined = shared is not None and not shared.task.done()
        if not joined:
            shared = self._listening[key] = Listening()
            shared.task = asyncio.ensure_future(listen(shared.tell))
            shared.task.add_done_callback(lambda done: self._listened(key, shared))
        shared.askers.append(progress)
        try:
            if joined and shared.stage is not None:  # where it is, for one who joins it late
                with contextlib.suppress(Exception):
                    await progress(shared.stage)
            return await asyncio.shield(shared.task)
        finally:
            shared.askers.remove(progress)
            if not shared.askers and not shared.task.done() and shared.stage != STAGE_LISTENING:
                shared.task.cancel()

    async def close(self, timeout_s: float = 2.0) -> None:
        """The bot stops, its askers answered or told: the listenings still under way are called
        off before the classifier and the database close. Shielded from their askers, they ran on
        into the closed pool: a false "mood.no_model" and a traceback at exit, both at ERROR."""
        listening = [shared.task for shared in self._listening.values() if not shared.task.done()]
        for task in listening:
            task.cancel()
        if listening:
            await asyncio.wait(listening, timeout=timeout_s)

    def _listened(self, key: str, shared: Listening) -> None:
        if self._listening.get(key) is shared:
            del self._listening[key]
        if not shared.task.cancelled():
            shared.task.exception()  # retrieved: the askers heard of it, or all of them gave up

    async def _resolve(self, query: Query) -> TrackInfo | None:
        """The track when it can be known before downloading; None: let the audio search find it."""
        if query.kind is QueryKind.YOUTUBE:
            # YouTube links skip Spotify: the video id is the song.
            return TrackInfo(key=f"youtube:{query.youtube_id}", title=f"YouTube video {query.youtube_id}",
                             youtube_id=query.youtube_id, source_url=query.url)
        if self.resolver is None:
            if query.kind in (QueryKind.SPOTIFY_TRACK, QueryKind.SPOTIFY_SHORT_LINK):
                raise SpotifyNotConfiguredError(SPOTIFY_OFF_ERROR)
            return None
        return await self.resolver.resolve(query)

    async def _track_from_download(self, query: Query, audio) -> TrackInfo:
        if audio.youtube_id:
            key = f"youtube:{audio.youtube_id}"
        else:
            key = await asyncio.to_thread(self.file_key, audio.path)
        title = getattr(audio, "title", None) or query.text or "Unknown song"
        return TrackInfo(key=key, title=title[:MAX_TITLE_CHARS], duration_s=getattr(audio, "duration_s", None),
                         youtube_id=audio.youtube_id, source_url=audio.source_url)

    async def _cached(self, key: str) -> TrackRecord | None:
        try:
            return await self._current_of(key)
        except StorageError as error:
            # The classifier doesn't need the database: answer anyway, just without the cache.
            log.warning("mood.cache_unavailable", extra={"track": key, "reason": str(error)})
            return None

    async def _current_of(self, key: str) -> TrackRecord | None:
        """The answer cached under `key`, if the model serving now gave it; StorageError propagates."""
        record = await self.db.tracks.get(key)
        if record is not None:
            await self._serving_known()
        return record if self._current(record) else None

    async def _video_song(self, youtube_id: str) -> tuple[TrackRecord | None, TrackRecord | None]:
        """The catalog song whose audio came from this video, as the model serving now heard it
        (its link is that song, in the cache and in the playlists: one entry, not one per link),
        and the catalog song heard from the video by any model (the first by key), to hear again
        as that song where none is current. StorageError propagates."""
        records = await self.db.tracks.find_by_youtube_id(youtube_id)
        # Releases of one recording share a video: the one the model serving now heard, if any.
        if records:
            await self._serving_known()
        return next((record for record in records if self._current(record)), None), next(iter(records), None)

    async def _cached_release(self, track: TrackInfo) -> TrackRecord | None:
        """Another release of the same recording (the album's, for the single: one ISRC, two Spotify
        ids) already heard by the model serving now: its mood is this track's too. Saved under this
        track's key, with this release's own metadata, so the next ask is a plain cache hit and the
        playlists find the release's ISRC. StorageError of the lookup propagates."""
        releases = await self.db.tracks.find_by_isrc(track.isrc)
        if releases:
            await self._serving_known()
        heard = next((r for r in releases if r.key != track.key and self._current(r)), None)
        return None if heard is None else await self._as_track(track, heard)

    async def _as_track(self, track: TrackInfo | None, heard: TrackRecord) -> TrackRecord:
        """`heard`'s answer as `track`'s (another release of its recording, or the record of its
        video): saved under the track's key with the track's own metadata, so the next ask is a
        plain cache hit and the playlists name it as the asker did. `heard` itself where it is the
        track's, or no track is known (a name searched without Spotify)."""
        if track is None or heard.key == track.key:
            return heard
        record = replace(track_record(track, heard.mood, heard.classified_at),
                         youtube_id=track.youtube_id or heard.youtube_id)  # where the mood was heard
        try:
            await self.db.tracks.save(record)
        except StorageError as error:
            log.warning("mood.track_not_saved", extra={"track": track.key, "reason": str(error)})
        return record

    async def _serving_known(self) -> None:
        """Before a cached answer is judged: in a start's first seconds, the model serving is not
        known until the warm-up is over (an older version's answer was served then); waited for,
        `WARM_UP_WAIT_S` at most."""
        warmed = getattr(self.classifier, "warmed", None)
        if warmed is not None and getattr(self.classifier, "main_model_version", None) is None:
            await warmed(WARM_UP_WAIT_S)

    def _current(self, record: TrackRecord | None) -> bool:
        """A cached answer is served only if the main model gave it, and the model serving now (when
        known) is the same version: after new weights ship, each song is heard again once. While the
        main model is unavailable, its earlier answers still beat the fallback's."""
        if record is None or record.mood is None or record.mood.model != MAIN_MODEL:
            return False
        serving = getattr(self.classifier, "main_model_version", None)
        return serving is None or record.mood.model_version == serving

    async def _save(self, track: TrackInfo, result: MoodResult, *, source_url: str | None = None) -> MoodReply:
        return await self._save_mood(track, stored_mood(result), result.fallback_reason, source_url=source_url)

    async def _save_mood(self, track: TrackInfo, mood: StoredMood, fallback_reason: str | None, *,
                         source_url: str | None = None) -> MoodReply:
        record = track_record(track, mood, self.now())
        if track.spotify_id and not track.youtube_id:  # heard from a file: its video, if known, still finds it
            known = self.db.tracks.remembered(track.key)  # read by the cache lookup; no wait with the database down
            record = replace(record, youtube_id=known.youtube_id if known is not None else None)
        try:
            if mood.model == MAIN_MODEL or not await self._heard_by_main_model(track.key):
                await self.db.tracks.save(record)
        except StorageError as error:
            log.warning("mood.track_not_saved", extra={"track": track.key, "reason": str(error)})
        return mood_reply(record, cached=False, source_url=source_url or track.source_url,
                          fallback_reason=fallback_reason)

    async def _heard_by_main_model(self, key: str) -> bool:
        """The cache holds the main model's answer for `key`, of older weights (a current one is
        served, not heard again): the fallback's answer does not replace it, as it beats the
        fallback's while the main model is unavailable. Read just before, it is in the track
        cache's memory; a `get`, not `remembered`: a lookup that failed (the database down) or found
        nothing remembers nothing, and the database, back by the save, may hold the main model's
        answer:
        test_an_answer_of_the_fallback_heard_while_the_database_came_back_does_not_replace_the_main_model_s.
        With it still down this read fails instead of the save: two waits, as the main model's
        answer's lookup and save."""
        record = await self.db.tracks.get(key)
        return record is not None and record.mood is not None and record.mood.model == MAIN_MODEL

    def _record_request(self, caller: Caller, reply: MoodReply, asked_at: datetime,
                        attachment: Attachment | None = None) -> None:
        """In the background: the answer need not wait for its bookkeeping (storage logs a failure,
        and its readers see the request once written). An uploaded file's message link is kept only
        in a place (nobody else can open a private chat's); a file sent where not every member of
        the place can see it (`Attachment.unseen_by_place`) is kept as a private chat's: in no
        playlist of the place, its name and link shown to no one there."""
        place = None if attachment is not None and attachment.unseen_by_place else caller.place
        request = MoodRequest(UserRef(caller.platform, caller.user_id), place, reply.track_key,
                              reply.mood, asked_at, title=reply.title,
                              source_link=attachment.message_link if attachment and place is not None else None,
                              # Whose name the file's title carries: their /forget takes it out.
                              sender=attachment.sender if attachment and attachment.title else None)
        self.db.requests.record(request)
