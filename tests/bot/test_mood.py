"""Given a user types /mood (or attaches a song), they get a reply naming a mood."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from dataclasses import replace

import pytest

from bot.ratelimit import MoodRateLimiter
from bot.replies import STAGE_LISTENING, Attachment, ErrorReply, MoodReply
from bot.sources.keys import file_cache_key
from bot.usecases.mood import GENERIC_ERROR, NO_INPUT_ERROR, MoodUseCase
from inference.result import MOODS
from storage.models import UserRef
from tests.bot.conftest import ALICE, ALICE_DM, BOB, CountingClassifier, attachment
from tests.bot.test_console import chat
from tests.frontends.test_request_ids import lines_of


def mood_usecase(db, classifier, **kwargs) -> MoodUseCase:
    return MoodUseCase(db, classifier, fetcher=None, **kwargs)


OLDER_WEIGHTS = "main-2025-01-01"


@contextlib.contextmanager
def overloaded(classifier):
    """Every job over the classifier's queue meanwhile: the ANN answers."""
    shedding, classifier.max_queue = classifier.max_queue, 0
    try:
        yield
    finally:
        classifier.max_queue = shedding


async def heard_by_older_weights(db, key: str):
    """The song's cached answer, made one of older weights of the main model (new weights shipped)."""
    stored = await db.tracks.get(key)
    older = replace(stored, mood=replace(stored.mood, model_version=OLDER_WEIGHTS))
    await db.tracks.save(older)
    return older


async def test_an_attached_song_gets_the_mood_the_classifier_hears(db, counting, classifier, clip_paths):
    stages = []

    async def progress(stage):
        stages.append(stage)

    reply = await mood_usecase(db, counting).run(ALICE, attachment=attachment(clip_paths[0]), progress=progress)

    expected = await classifier.classify(clip_paths[0])
    assert isinstance(reply, MoodReply)
    assert reply.mood in MOODS and reply.mood == expected.mood
    assert reply.probabilities == pytest.approx(expected.probabilities, abs=1e-5)
    assert reply.confidence == pytest.approx(expected.probabilities[expected.mood], abs=1e-5)
    assert reply.title == "MT0000004637" and reply.track_key.startswith("sha256:")
    assert reply.cached is False and stages == [STAGE_LISTENING]
    stored = await db.tracks.get(reply.track_key)
    assert stored.mood.mood == reply.mood
    requests = (await db.privacy.export(UserRef("telegram", "1001"))).requests
    assert [(r.place, r.track_key, r.mood) for r in requests] == [("telegram:-500", reply.track_key, reply.mood)]


async def test_a_song_s_jobs_carry_its_request_s_id_into_the_model_workers(db, counting, clip_paths, log_stream,
                                                                            tmp_path):
    """The model workers run in processes of their own, where the request's id (a context variable)
    does not reach: their lines had no req=. The use case gives it to the classifier as the label of
    the song's jobs, which a worker's lines carry as req= (tests/inference/test_pool_worker_logs.py)."""
    await chat(db, counting, tmp_path, [f"/mood {clip_paths[0]}", f"/mood {clip_paths[1]}", "/quit"])
    answered = [line.get("req") for line in lines_of(log_stream, "mood.answered")]
    assert counting.labels == answered and len(set(answered)) == 2 and answered[0].startswith("con-")


async def test_the_second_time_the_answer_comes_from_the_cache(db, counting, clip_paths, tmp_path):
    usecase = mood_usecase(db, counting)
    first = await usecase.run(ALICE, attachment=attachment(clip_paths[1]))
    # The same bytes under another name are the same song.
    copy = tmp_path / "my favourite song.ogg"
    shutil.copy(clip_paths[1], copy)
    second = await usecase.run(BOB, attachment=attachment(copy))

    assert len(counting.calls) == 1
    assert second.cached is True and first.cached is False
    assert (second.mood, second.track_key) == (first.mood, first.track_key)


async def test_going_fast_is_refused_with_the_time_to_wait(db, counting, clip_paths):
    limiter = MoodRateLimiter(per_user=2, per_place=30, concurrent_per_user=2)
    usecase = mood_usecase(db, counting, limiter=limiter)
    song = attachment(clip_paths[0])
    assert isinstance(await usecase.run(ALICE, attachment=song), MoodReply)
    assert isinstance(await usecase.run(ALICE, attachment=song), MoodReply)

    refused = await usecase.run(ALICE, attachment=song)

    assert isinstance(refused, ErrorReply)
    assert refused.message.startswith("You're going fast — try again in ")
    assert 50 <= refused.retry_after_s <= 60
    assert isinstance(await usecase.run(BOB, attachment=song), MoodReply)  # others are not slowed down


async def test_a_file_that_is_not_audio_gets_a_readable_error(db, counting, tmp_path):
    text_file = tmp_path / "notes.mp3"
    text_file.write_text("these are not the sounds you are looking for\n" * 200)

    reply = await mood_usecase(db, counting).run(ALICE_DM, attachment=attachment(text_file))

    assert isinstance(reply, ErrorReply) and reply.message and "Traceback" not in reply.message


async def test_a_link_it_cannot_read_is_refused_politely(db, counting):
    reply = await mood_usecase(db, counting).run(ALICE, "https://example.com/some/album")
    assert isinstance(reply, ErrorReply)
    assert "Spotify" in reply.message and counting.calls == []


@pytest.mark.parametrize("text", ["   ", "\ufeff", " \u200b\u00ad \u2060\u200d "])
async def test_nothing_to_listen_to_explains_the_command(db, counting, text):
    """Nothing typed, or only invisible characters (a byte-order mark, zero-width or soft
    hyphen, copied along with nothing): the command's usage, and no rate-limit slot taken."""
    limiter = MoodRateLimiter(per_user=1, per_place=10, concurrent_per_user=1)
    reply = await mood_usecase(db, counting, limiter=limiter).run(ALICE, text)
    assert reply == ErrorReply(NO_INPUT_ERROR)
    limiter.acquire(f"{ALICE.platform}:{ALICE.user_id}", ALICE.place).release()  # the minute's one is left


async def test_an_unexpected_failure_is_logged_and_answered_politely(db, counting, tmp_path, caplog):
    vanished = attachment_of_missing_file(tmp_path)
    with caplog.at_level(logging.ERROR, logger="bot.usecases.mood"):
        reply = await mood_usecase(db, counting).run(ALICE, attachment=vanished)
    assert reply == ErrorReply(GENERIC_ERROR)
    failure = next(r for r in caplog.records if r.getMessage() == "mood.failed")
    assert failure.exc_info is not None  # with its traceback


def attachment_of_missing_file(tmp_path):
    from bot.replies import Attachment

    return Attachment(str(tmp_path / "deleted-before-we-read-it.ogg"), "gone.ogg", 1234)


async def test_with_the_database_down_the_mood_is_still_answered(down_db, counting, classifier, clip_paths, caplog):
    with caplog.at_level(logging.WARNING):
        reply = await mood_usecase(down_db, counting).run(ALICE, attachment=attachment(clip_paths[2]))
        await down_db.requests.settled()  # the request is recorded in the background: let it fail
    assert isinstance(reply, MoodReply)
    assert reply.mood == (await classifier.classify(clip_paths[2])).mood
    events = {r.getMessage() for r in caplog.records}
    assert "mood.track_not_saved" in events
    assert any(event.startswith("mood request not recorded") for event in events)


async def test_an_answer_of_the_fallback_is_not_served_from_the_cache_once_the_main_model_is_back(
        db, counting, classifier, clip_paths, caplog):
    usecase = mood_usecase(db, counting)
    song = attachment(clip_paths[0])
    with overloaded(classifier), caplog.at_level(logging.INFO, logger="bot.usecases.mood"):
        shed = await usecase.run(ALICE, attachment=song)
    assert shed.model == "ann" and shed.fallback_reason == "overloaded"
    answered = next(r for r in caplog.records if r.getMessage() == "mood.answered")
    assert (answered.model, answered.fallback) == ("ann", "overloaded")  # the log says why the ANN answered

    later = await usecase.run(BOB, attachment=song)

    assert (later.model, later.cached, len(counting.calls)) == ("main", False, 2)
    assert (await db.tracks.get(later.track_key)).mood.model == "main"
    assert (await usecase.run(ALICE, attachment=song)).cached is True  # the main model's answer is kept


async def test_an_answer_of_older_weights_is_heard_again_by_the_model_serving_now(db, counting, classifier,
                                                                               clip_paths):
    usecase = mood_usecase(db, counting)
    song = attachment(clip_paths[2])
    first = await usecase.run(ALICE, attachment=song)
    await heard_by_older_weights(db, first.track_key)

    again = await usecase.run(BOB, attachment=song)

    assert (again.cached, len(counting.calls)) == (False, 2)
    assert (await db.tracks.get(first.track_key)).mood.model_version == classifier.main_model_version
    assert (await usecase.run(ALICE, attachment=song)).cached is True  # and the new answer is kept


async def test_an_answer_of_older_weights_asked_for_during_the_warm_up_is_heard_again(db, counting, weights_dir,
                                                                                   clip_paths):
    """In a start's first seconds the model serving is not known yet (the pool warms up): an
    answer of older weights in the cache was served then, as if the main model were unavailable."""
    from bot.app import WarmingClassifier
    from inference.pool import Classifier

    song = attachment(clip_paths[2])
    first = await mood_usecase(db, counting).run(ALICE, attachment=song)
    await heard_by_older_weights(db, first.track_key)

    starting = WarmingClassifier(Classifier(weights_dir, workers=1, timeout_s=60.0))  # not started yet
    try:
        assert starting.main_model_version is None
        again = await mood_usecase(db, starting).run(BOB, attachment=song)
    finally:
        await starting.close()

    assert again.cached is False
    assert (await db.tracks.get(first.track_key)).mood.model_version == counting.main_model_version


async def test_a_file_someone_else_sent_before_is_named_as_you_named_it(db, counting, clip_paths, tmp_path):
    usecase = mood_usecase(db, counting)
    private = tmp_path / "voice memo for Jane.ogg"
    shutil.copy(clip_paths[1], private)
    await usecase.run(ALICE_DM, attachment=attachment(private))
    mine = tmp_path / "b-side.ogg"
    shutil.copy(clip_paths[1], mine)

    reply = await usecase.run(BOB, attachment=attachment(mine))

    assert reply.cached is True and reply.title == "b-side"


async def test_a_song_asked_for_by_two_members_at_once_is_classified_once(db, counting, clip_paths, tmp_path):
    usecase = mood_usecase(db, counting)
    hers, his = tmp_path / "hers.ogg", tmp_path / "his.ogg"
    shutil.copy(clip_paths[0], hers)
    shutil.copy(clip_paths[0], his)

    first, second = await asyncio.gather(usecase.run(ALICE, attachment=attachment(hers)),
                                         usecase.run(BOB, attachment=attachment(his)))

    assert len(counting.calls) == 1
    assert (first.title, second.title) == ("hers", "his") and first.mood == second.mood


class QueuedClassifier:
    """The real classifier (counting), whose songs wait in a queue until `go` is set: as when
    other songs are being heard before them."""

    def __init__(self, counting) -> None:
        self.counting, self.asked, self.go = counting, asyncio.Event(), asyncio.Event()

    @property
    def main_model_version(self) -> str | None:
        return self.counting.main_model_version

    async def classify(self, path, **kwargs):
        self.asked.set()
        await self.go.wait()
        return await self.counting.classify(path, **kwargs)


async def test_whoever_asks_for_a_song_being_heard_is_told_its_progress_too(db, counting, clip_paths, tmp_path):
    """The shared listening told its stages to the first asker alone: the second's status stayed
    at its first stage until the answer. Now each is told, one who joins late the stage so far."""
    from bot.replies import STAGE_LISTENING

    queued = QueuedClassifier(counting)
    usecase = mood_usecase(db, queued)
    hers, his = tmp_path / "hers.ogg", tmp_path / "his.ogg"
    shutil.copy(clip_paths[0], hers)
    shutil.copy(clip_paths[0], his)
    told: dict[str, list[str]] = {"alice": [], "bob": []}

    def recorder(name):
        async def progress(stage: str) -> None:
            told[name].append(stage)
        return progress

    first = asyncio.ensure_future(usecase.run(ALICE, attachment=attachment(hers), progress=recorder("alice")))
    await queued.asked.wait()  # hers is being listened to
    second = asyncio.ensure_future(usecase.run(BOB, attachment=attachment(his), progress=recorder("bob")))
    for _ in range(1000):  # at once, mostly; seconds on a loaded machine (his file's key, the cache)
        if told["bob"]:
            break
        await asyncio.sleep(0.01)
    queued.go.set()
    await asyncio.gather(first, second)

    assert told == {"alice": [STAGE_LISTENING], "bob": [STAGE_LISTENING]}
    assert len(counting.calls) == 1


async def test_a_file_sent_by_two_at_once_is_heard_for_the_second_when_the_first_gives_up(
        db, counting, clip_paths, tmp_path):
    """The listening both share outlives the request of the one whose file it hears, and that
    request's temporary folder, which its front-end deletes when the request ends."""
    queued = QueuedClassifier(counting)
    usecase = mood_usecase(db, queued)

    async def sent(caller, name):  # as a front-end: the file in a folder of the request's own
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(clip_paths[0], folder / "audio.ogg")
        try:
            return await usecase.run(caller, attachment=Attachment(str(folder / "audio.ogg"), f"{name}.ogg",
                                                                   (folder / "audio.ogg").stat().st_size))
        finally:
            shutil.rmtree(folder)

    hers = asyncio.create_task(sent(ALICE, "hers"))
    await asyncio.wait_for(queued.asked.wait(), 30)  # her file is waiting to be heard
    his = asyncio.create_task(sent(BOB, "his"))
    await asyncio.sleep(1.0)  # his file's key is read, the cache asked: he waits for her listening
    assert not his.done()
    hers.cancel()  # she gives up (her interaction dropped, a shutdown): her folder goes
    with pytest.raises(asyncio.CancelledError):
        await hers
    assert not (tmp_path / "hers").exists()
    queued.go.set()

    reply = await asyncio.wait_for(his, 60)

    assert isinstance(reply, MoodReply) and reply.title == "his" and reply.mood in MOODS
    assert len(counting.calls) == 1  # heard once, for both


async def test_an_attached_song_longer_than_the_bots_limit_is_refused_with_that_limit(db, counting, clip_paths):
    """MAX_AUDIO_DURATION_S holds for attached files too, not only downloads: the operator's lower
    limit protects the workers' memory (the 4Q clips last 30 s)."""
    from bot.app import build_app_usecases
    from bot.config import Settings

    def usecases(limit_s: float):
        settings = Settings(_env_file=None, max_audio_duration_s=limit_s)
        return build_app_usecases(settings, db, counting, resolver=None, fetcher=None, writer=None)

    refused = await usecases(20).mood.run(ALICE_DM, attachment=attachment(clip_paths[0]))
    assert isinstance(refused, ErrorReply)
    assert refused.message == "The file MT0000004637.ogg lasts over 20 s; send a song shorter than that."
    assert await db.tracks.get(await asyncio.to_thread(file_cache_key, clip_paths[0])) is None

    answered = await usecases(40).mood.run(ALICE_DM, attachment=attachment(clip_paths[0]))
    assert isinstance(answered, MoodReply) and answered.model == "main"


async def test_a_file_too_long_sent_by_two_at_once_is_refused_to_each_under_the_name_they_gave(
        db, counting, clip_paths, tmp_path, caplog):
    """The front-ends save an upload under a name of their own ("audio.ogg"), and two senders of
    one file share its listening: the decoder's refusal named the saved file. Each is told of the
    file as they named it (as the front-end shows it), or by its file name when it gives none."""
    caplog.set_level(logging.INFO)
    queued = QueuedClassifier(counting)
    usecase = MoodUseCase(db, queued, fetcher=None, max_audio_seconds=20)

    async def sent(caller, name, shown):
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(clip_paths[0], folder / "audio.ogg")
        return await usecase.run(caller, attachment=Attachment(str(folder / "audio.ogg"), f"{name}.ogg",
                                                               (folder / "audio.ogg").stat().st_size,
                                                               shown_name=shown))

    hers = asyncio.create_task(sent(ALICE, "my mix", None))
    await asyncio.wait_for(queued.asked.wait(), 30)
    his = asyncio.create_task(sent(BOB, "his take", "his tak…"))
    await asyncio.sleep(1.0)  # he waits for her listening
    queued.go.set()

    refusals = [reply.message for reply in await asyncio.wait_for(asyncio.gather(hers, his), 60)]

    assert refusals == ["The file my mix.ogg lasts over 20 s; send a song shorter than that.",
                        "The file his tak… lasts over 20 s; send a song shorter than that."]
    assert len(counting.calls) == 1
    # The names are the senders' words: not in the bot's lines, which tell why all the same.
    logged = [vars(r) for r in caplog.records if r.name.startswith("bot.")]
    assert not [r for r in logged if "my mix" in str(r) or "his tak" in str(r)]
    assert [r["reason"] for r in logged if r["msg"] == "mood.refused"] == [
        "The file <file> lasts over 20 s; send a song shorter than that."] * 2


async def test_with_no_model_able_to_listen_the_user_is_told_to_try_later_and_the_log_says_why(
        db, weights_dir, clip_paths, tmp_path, caplog):
    """The main weights were never shipped, and the fallback's went missing from disk while its worker
    was replaced (a deploy that removed the folder): the user reads a plain sentence, not the server's
    paths; the operator finds them in the log."""
    import os
    import signal

    from bot.usecases.mood import MODEL_UNAVAILABLE_ERROR
    from inference.pool import Classifier

    ann_only = weights_of_the_fallback_alone(weights_dir, tmp_path)
    async with Classifier(ann_only, workers=1, timeout_s=60.0) as broken:
        assert not broken.main_model_available
        (ann_only / "ann.npz").unlink()
        for pid in broken.ann_worker_pids:
            os.kill(pid, signal.SIGKILL)  # its replacement loads the weights again, and finds none
        with caplog.at_level(logging.WARNING, logger="bot.usecases.mood"):
            reply = await mood_usecase(db, broken).run(ALICE, attachment=attachment(clip_paths[0]))
    assert reply == ErrorReply(MODEL_UNAVAILABLE_ERROR)
    assert str(tmp_path) not in reply.message
    logged = next(r for r in caplog.records if r.getMessage() == "mood.no_model")
    assert str(ann_only / "ann.npz") in logged.reason


def weights_of_the_fallback_alone(weights_dir, tmp_path):
    ann_only = tmp_path / "weights"
    ann_only.mkdir()
    for name in ("ann.npz", "ann.json"):
        shutil.copy(weights_dir / name, ann_only / name)
    return ann_only


async def test_a_song_the_fallback_hangs_on_is_said_to_be_the_trouble(db, weights_dir, clip_paths, tmp_path):
    """That message helps the user (another song may do), so it reaches them as it is."""
    import os
    import signal

    from inference.pool import Classifier

    async with Classifier(weights_of_the_fallback_alone(weights_dir, tmp_path), workers=1) as fallback_only:
        fallback_only.ann_timeout_s = 0.5
        for pid in fallback_only.ann_worker_pids:
            os.kill(pid, signal.SIGSTOP)  # hangs, like a decoder that never returns (killed when replaced)
        reply = await mood_usecase(db, fallback_only).run(ALICE, attachment=attachment(clip_paths[0]))
    assert reply == ErrorReply("The fallback model took too long on this file.")


CALM = {"happy": 0.1, "energetic": 0.1, "sad": 0.2, "calm": 0.6}


@pytest.mark.parametrize("stored", [
    {"mood": "calm", "probabilities": CALM, "valence": 0.4, "arousal": -0.6, "model": "main"},  # no version
    {"mood": "calm", "probabilities": CALM, "valence": "0.4", "arousal": -0.6, "model": "main",
     "model_version": "v1"},  # a number written as text
    {"mood": "calm", "probabilities": list(CALM.values()), "valence": 0.4, "arousal": -0.6, "model": "main",
     "model_version": "v1"},
    "calm",  # the mood alone
], ids=["no-version", "text-number", "listed-probabilities", "mood-alone"])
async def test_a_cache_record_it_cannot_read_is_heard_again_and_replaced(db, counting, clip_paths, stored, caplog):
    """A song's record in the cache of another shape (written by hand, an older or a newer moodbot)
    made its every /mood 'something went wrong', for ever: reading it raised. It is no answer: the
    song is heard again, the record replaced, and the log names the record."""
    key = await asyncio.to_thread(file_cache_key, clip_paths[0])
    await db.db["tracks"].insert_one({"key": key, "title": "", "mood": stored})

    with caplog.at_level(logging.WARNING, logger="storage"):
        reply = await mood_usecase(db, counting).run(ALICE, attachment=attachment(clip_paths[0]))

    assert isinstance(reply, MoodReply) and (reply.cached, len(counting.calls)) == (False, 1), reply
    assert (await db.tracks.get(key)).mood.model_version == counting.main_model_version
    [said] = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
    assert said.startswith(f"track {key} unreadable in the database (") and said.endswith("; taken as not cached")


async def test_an_answer_of_the_fallback_does_not_replace_an_earlier_answer_of_the_main_model(
        db, counting, classifier, weights_dir, clip_paths, tmp_path):
    """New weights ship; the song, heard by the older ones, is asked for while the main model is
    overloaded: the ANN answers. Its answer replaced the main model's in the cache, so once the
    main model was unavailable the song had the fallback's answer, though its earlier answers of
    any weights beat the fallback's (README, "The cache")."""
    from inference.pool import Classifier

    usecase = mood_usecase(db, counting)
    song = attachment(clip_paths[1])
    first = await usecase.run(ALICE, attachment=song)
    older = await heard_by_older_weights(db, first.track_key)
    with overloaded(classifier):
        shed = await usecase.run(BOB, attachment=song)
    assert (shed.model, shed.cached) == ("ann", False)

    assert await db.tracks.get(first.track_key) == older
    async with Classifier(weights_of_the_fallback_alone(weights_dir, tmp_path), workers=1) as main_down:
        later = await mood_usecase(db, main_down).run(ALICE, attachment=song)
    assert (later.model, later.model_version, later.cached) == ("main", OLDER_WEIGHTS, True)


class BackWhileHeard(CountingClassifier):
    """The real classifier (counting), the outage's database brought back (and answering) while
    the song is heard: down for the cache's lookup, up for the answer's save."""

    def __init__(self, real, outage) -> None:
        super().__init__(real)
        self.outage = outage

    async def classify(self, path, **kwargs):
        from storage.models import StorageError

        self.outage.up()
        for _ in range(50):  # the client finds the server again; nothing read into the track cache
            with contextlib.suppress(StorageError):
                await self.outage.db.tracks.find_by_isrc("none")
                break
        return await super().classify(path, **kwargs)


async def test_an_answer_of_the_fallback_heard_while_the_database_came_back_does_not_replace_the_main_model_s(
        outage, counting, classifier, clip_paths):
    """The guard against the fallback's answer replacing the main model's reads the record again
    before the save, with the database down a second wait: the cache's lookup failed, so the track
    cache remembers nothing of the song, and a guard that went by its memory alone (`remembered`)
    let the fallback's answer replace the main model's once the database was back for the save."""
    song = attachment(clip_paths[1])
    first = await mood_usecase(outage.db, counting).run(ALICE, attachment=song)
    older = await heard_by_older_weights(outage.db, first.track_key)
    outage.down()

    with overloaded(classifier):
        shed = await mood_usecase(outage.db, BackWhileHeard(classifier, outage)).run(BOB, attachment=song)

    assert (shed.model, shed.cached) == ("ann", False), shed
    assert await outage.db.tracks.get(first.track_key) == older


async def test_with_the_database_down_a_song_asked_for_again_is_not_heard_again(down_db, counting, clip_paths):
    """Its answer could not be saved, and each /mood of it was heard again while the database was
    down (a popular song, posted in a server, over and over): this process keeps it in memory
    for the track cache's TTL (storage/tracks.py), as it keeps one it has read."""
    usecase = mood_usecase(down_db, counting)
    first = await usecase.run(ALICE, attachment=attachment(clip_paths[0]))
    again = await usecase.run(BOB, attachment=attachment(clip_paths[0]))
    await down_db.requests.settled()

    assert isinstance(again, MoodReply) and (first.cached, again.cached, len(counting.calls)) == (False, True, 1)
    assert (again.mood, again.track_key) == (first.mood, first.track_key)
