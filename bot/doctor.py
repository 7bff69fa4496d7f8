"""`python -m bot --check`: why moodbot does not work here, one line a check.

    OK    database  MongoDB 8.0.4 at mongo:27017
    FAIL  telegram  token rejected by api.telegram.org (401 Unauthorized): check TELEGRAM_TOKEN
    SKIP  spotify   not configured (SPOTIFY_CLIENT_ID, SPOTIFY_CLIENT_SECRET unset)
    NOTE  fonts     no CJK font at /usr/share/…/DroidSansFallback.ttf: the mood map leaves off …

Each check uses the settings and the clients the bot itself starts with (the configured endpoints,
the same HTTP stacks), asks only the configured hosts, and gives up after a short timeout. No
check writes anything but a probe file in DATA_DIR (and, with no MONGODB_URI, the embedded
database's own files, as a start would).
"""
from __future__ import annotations

import asyncio
import inspect
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bot.config import LOCK_FILE, Settings, data_dir_holder, data_dir_problem
from bot.health import heartbeat_path, liveness
from bot.logs import RedactSecrets, secrets_of

# NOTE: something optional is missing, and what it costs; the bot works without it (exit 0).
OK, FAIL, SKIP, NOTE = "OK", "FAIL", "SKIP", "NOTE"
DB_TIMEOUT_S = 5.0
NETWORK_TIMEOUT_S = 10.0
# The first pool starts the fork server and loads the model: seconds, more on a busy machine.
MODELS_TIMEOUT_S = 240.0
TEST_SIGNAL_S = 12.0


@dataclass(frozen=True)
class Finding:
    status: str  # OK, FAIL, SKIP or NOTE
    what: str
    detail: str

    @property
    def line(self) -> str:
        return f"{self.status:<4}  {self.what:<8}  {self.detail}"


def host_of(url: str) -> str:
    return urlsplit(url).netloc or url


# --- the checks -----------------------------------------------------------------------------

def check_settings(problem: str | None, notes: Iterable[str]) -> Finding:
    if problem is not None:
        return Finding(FAIL, "settings", problem)
    said = "; ".join(notes)
    return Finding(OK, "settings", "read from the environment and .env" + (f" ({said})" if said else ""))


def check_data_dir(settings: Settings) -> Finding:
    """As the start checks it: a probe file made and removed (never in the way of a running bot's)."""
    data_dir = Path(settings.data_dir)
    if (problem := data_dir_problem(data_dir, settings.mongodb_uri is None)) is not None:
        return Finding(FAIL, "data dir", problem)
    return Finding(OK, "data dir", f"{data_dir.resolve()} is writable")


async def check_database(settings: Settings) -> Finding:
    if settings.mongodb_uri is not None:
        from bot.app import hosts_of

        uri = settings.mongodb_uri.get_secret_value()
        return await _database_version(uri, settings.database_name, f"at {hosts_of(uri)}",
                                       "check MONGODB_URI: the server must be reachable from here")
    from storage.embedded import EmbeddedServer, find_executable
    from storage.models import StorageError

    data_dir = Path(settings.data_dir)
    beating, heartbeat_said = liveness(heartbeat_path(data_dir))
    if beating:
        # The running bot holds DATA_DIR's database: a second server could not open it.
        return Finding(SKIP, "database", f"the embedded SecantusDB in {data_dir} belongs to the moodbot "
                                         "running now (its heartbeat is fresh)")
    if (holder := data_dir_holder(data_dir)) is not None:
        # A bot in its start (the models warming) holds DATA_DIR before it beats: a second server
        # said "in use", as if no bot ran there. One that stopped beating is stuck: --alive says so.
        held = f"pid {holder}, holding {data_dir / LOCK_FILE}"
        if _writer_of(heartbeat_path(data_dir)) != holder:  # none yet, or one a killed bot left
            return Finding(SKIP, "database", f"the embedded SecantusDB in {data_dir} belongs to the moodbot "
                                             f"starting now ({held}; no heartbeat yet): check again once it serves")
        return Finding(FAIL, "database", f"the embedded SecantusDB in {data_dir} belongs to the moodbot holding "
                                         f"it ({held}), but {heartbeat_said}")
    try:
        find_executable()
    except StorageError as error:
        return Finding(FAIL, "database", f"no MONGODB_URI, and {error}")
    server = EmbeddedServer(data_dir)
    try:
        await asyncio.to_thread(server.start)
    except StorageError as error:
        return Finding(FAIL, "database", f"the embedded SecantusDB did not start: {error}")
    try:
        return await _database_version(server.uri, settings.database_name, f"embedded, in {data_dir}",
                                       f"see {server.log_path}")
    finally:
        await asyncio.to_thread(server.stop)


def _writer_of(heartbeat: Path) -> str | None:
    """The pid that wrote `heartbeat` (its first word), or None."""
    try:
        return heartbeat.read_text().split()[0]
    except (OSError, IndexError):
        return None


async def _database_version(uri: str, name: str, where: str, fix: str) -> Finding:
    from storage.database import Database
    from storage.schema import LATEST_VERSION, schema_version
    from storage.models import DatabaseNameError, DatabaseUnavailableError, DatabaseUriError, StorageError

    try:
        db = await asyncio.wait_for(
            Database.connect(uri, name, server_selection_timeout_ms=int(DB_TIMEOUT_S * 1000)), DB_TIMEOUT_S + 2)
    except (TimeoutError, DatabaseUnavailableError):  # the latter's words are for a chat user
        return Finding(FAIL, "database", f"no answer {where} within {DB_TIMEOUT_S:.0f} s: {fix}")
    except (DatabaseUriError, DatabaseNameError) as error:  # the setting itself is wrong, wherever the server is
        return Finding(FAIL, "database", str(error))
    except StorageError as error:
        return Finding(FAIL, "database", f"{error} ({where}; {fix})")
    try:
        info = await asyncio.wait_for(db.client.admin.command("buildInfo"), DB_TIMEOUT_S)
        schema = await asyncio.wait_for(schema_version(db.db), DB_TIMEOUT_S)
    except Exception as error:  # noqa: BLE001 - it answered the ping: say what it said now
        return Finding(FAIL, "database", f"{where} answered a ping but not buildInfo or the schema's version ({error})")
    finally:
        await db.close()
    if schema > LATEST_VERSION:  # the start refuses it (storage.schema.migrate): say so before
        return Finding(FAIL, "database", f"database {name!r} {where} was written by a newer moodbot (schema "
                                         f"version {schema}; this moodbot knows versions up to {LATEST_VERSION}): "
                                         "run that newer moodbot, or restore a backup made before it upgraded")
    return Finding(OK, "database", f"version {info.get('version', '?')} {where}, database {name!r}")


async def check_ffmpeg() -> Finding:
    exe = shutil.which("ffmpeg")
    if exe is None:
        return Finding(FAIL, "ffmpeg", "not on PATH: install it (apt-get install ffmpeg); yt-dlp cuts the "
                                       "analysed section of a song with it")
    try:
        proc = await asyncio.create_subprocess_exec(exe, "-version", stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.DEVNULL)
        out, _ = await asyncio.wait_for(proc.communicate(), NETWORK_TIMEOUT_S)
    except (OSError, TimeoutError) as error:
        return Finding(FAIL, "ffmpeg", f"{exe} does not run ({error or 'no answer'})")
    words = out.decode(errors="replace").split()
    version = words[2] if len(words) > 2 and words[:2] == ["ffmpeg", "version"] else "(version not said)"
    if proc.returncode != 0:
        return Finding(FAIL, "ffmpeg", f"{exe} -version exited with {proc.returncode}")
    return Finding(OK, "ffmpeg", f"{version} at {exe}")


def check_yt_dlp() -> Finding:
    try:
        from yt_dlp.version import __version__
    except Exception as error:  # noqa: BLE001 - a broken install raises anything at import
        return Finding(FAIL, "yt-dlp", f"cannot be imported ({error}): pip install -U yt-dlp")
    return Finding(OK, "yt-dlp", __version__)


def check_js_runtime(runtimes: dict | None = None) -> Finding:
    """deno, in which yt-dlp solves YouTube's JavaScript challenges (`audio.js_runtimes`, or
    `runtimes`): without it YouTube gives yt-dlp fewer formats, for some videos none, and yt-dlp's
    warning about it is never printed (the bot runs it quiet)."""
    from yt_dlp import YoutubeDL

    from bot.sources.audio import js_runtimes

    with YoutubeDL({"quiet": True, "js_runtimes": runtimes if runtimes is not None else js_runtimes()}) as ydl:
        info = ydl._js_runtimes["deno"].info
    if info is None or not info.supported:
        return Finding(NOTE, "youtube", "no deno for yt-dlp to solve YouTube's challenges: fewer formats, for "
                                        "some videos none; install it (pip install 'yt-dlp[default,deno]')")
    return Finding(OK, "youtube", f"challenges solved in deno {info.version} ({info.path})")


def check_cjk_font(path: str | None = None) -> Finding:
    """The mood map's fallback font for song names in Chinese, Japanese and Korean (`charts.CJK_FONT`,
    or `path`): missing, such names are left off the map, with no warning at all."""
    from bot import charts

    path = path or charts.CJK_FONT
    if not Path(path).is_file():
        return Finding(NOTE, "fonts", f"no CJK font at {path}: the mood map leaves off Chinese, Japanese and "
                                      "Korean song names; install it (apt-get install fonts-droid-fallback)")
    return Finding(OK, "fonts", f"CJK song names on the mood map from {path}")


def write_test_signal(path: Path, seconds: float = TEST_SIGNAL_S) -> Path:
    """A chord that swells and fades over a little noise: long enough for the models, never silent."""
    import numpy as np
    import soundfile

    from inference.audio import SAMPLE_RATE

    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.18, 329.63))
    swell = 0.5 + 0.5 * np.sin(2 * np.pi * 0.25 * t)
    noise = np.random.default_rng(0).normal(0, 0.02, t.size)
    soundfile.write(str(path), (0.2 * chord * swell + noise).astype(np.float32), SAMPLE_RATE)
    return path


async def check_models(settings: Settings, weights_dir: Path) -> Finding:
    from inference.pool import Classifier
    from inference.predict import MAIN_WEIGHTS
    from inference.result import ModelUnavailableError

    classifier = Classifier(weights_dir, workers=1, executor=settings.inference_executor,
                            timeout_s=settings.inference_timeout_s, max_queue=settings.inference_max_queue)
    with tempfile.TemporaryDirectory(prefix="moodbot-check-") as scratch:
        signal = write_test_signal(Path(scratch) / "test-signal.wav")
        try:
            await asyncio.wait_for(classifier.start(), MODELS_TIMEOUT_S)
            result = await asyncio.wait_for(classifier.classify(signal), MODELS_TIMEOUT_S)
            unavailable = _why_main_unavailable(classifier)
        except ModelUnavailableError as error:
            return Finding(FAIL, "models", f"{error} (weights in {weights_dir})")
        except TimeoutError:
            return Finding(FAIL, "models", f"no answer within {MODELS_TIMEOUT_S:.0f} s (executor {settings.inference_executor})")
        finally:
            await classifier.close()
    answered = (f"{result.model} model {result.model_version} classified a {TEST_SIGNAL_S:.0f} s test signal "
                f"({result.mood}) in {result.seconds:.2f} s")
    if result.model == "main":
        return Finding(OK, "models", answered)
    why = (f"{MAIN_WEIGHTS} is missing from {weights_dir}" if not (weights_dir / MAIN_WEIGHTS).is_file()
           else unavailable or f"the main model could not answer: {result.fallback_reason}")
    return Finding(FAIL, "models", f"{why}; the fallback ANN would answer every song ({answered})")


def _why_main_unavailable(classifier) -> str | None:
    """What kept the main model from starting (an unreachable Dask scheduler, broken weights),
    or None when it started: the answer's own reason says only "main model unavailable"."""
    from inference.result import ModelUnavailableError

    try:
        classifier.ensure_can_answer("main")
    except ModelUnavailableError as error:
        return str(error).rstrip(".")
    return None


async def check_telegram(settings: Settings) -> Finding:
    if settings.telegram_token is None:
        return Finding(SKIP, "telegram", "not configured (TELEGRAM_TOKEN unset)")
    from telegram import Bot
    from telegram.error import InvalidToken, TelegramError

    from bot.frontends.telegram_http import AiohttpRequest

    host = host_of(settings.telegram_api_url)
    timeouts = dict(read_timeout=NETWORK_TIMEOUT_S, write_timeout=NETWORK_TIMEOUT_S,
                    connect_timeout=NETWORK_TIMEOUT_S, pool_timeout=NETWORK_TIMEOUT_S)
    requests = (AiohttpRequest(1, **timeouts), AiohttpRequest(1, **timeouts))
    bot = Bot(settings.telegram_token.get_secret_value(), base_url=settings.telegram_api_url,
              base_file_url=settings.telegram_file_url, request=requests[0], get_updates_request=requests[1])
    try:
        await asyncio.wait_for(bot.initialize(), NETWORK_TIMEOUT_S + 2)  # getMe
        me = bot.bot
        return Finding(OK, "telegram", f"@{me.username} (id {me.id}) at {host}")
    except InvalidToken:
        return Finding(FAIL, "telegram", f"token rejected by {host} (401 Unauthorized): check TELEGRAM_TOKEN")
    except TimeoutError:
        return Finding(FAIL, "telegram", f"no answer from {host} within {NETWORK_TIMEOUT_S:.0f} s: check TELEGRAM_API_URL and the network")
    except (TelegramError, OSError) as error:
        return (_unreachable("telegram", host, error, "TELEGRAM_API_URL")
                or _answered("telegram", host, error, "TELEGRAM_API_URL") or Finding(FAIL, "telegram", f"{host}: {error}"))
    finally:
        await bot.shutdown()
        for request in requests:  # an initialize that failed leaves them open, and shutdown() skips them
            await request.shutdown()


async def check_discord(settings: Settings) -> Finding:
    if settings.discord_token is None:
        return Finding(SKIP, "discord", "not configured (DISCORD_TOKEN unset)")
    import aiohttp
    from discord import HTTPException, LoginFailure
    from discord.http import HTTPClient

    from bot.frontends.discord import point_at

    point_at(settings)  # Route.BASE, as the bot sets it
    host = host_of(settings.discord_api_url)
    http = HTTPClient(asyncio.get_running_loop())
    try:
        me = await asyncio.wait_for(http.static_login(settings.discord_token.get_secret_value()), NETWORK_TIMEOUT_S)
        return Finding(OK, "discord", f"{me.get('username')} (id {me.get('id')}) at {host}")
    except LoginFailure:
        return Finding(FAIL, "discord", f"token rejected by {host} (401 Unauthorized): check DISCORD_TOKEN")
    except HTTPException as error:
        return (_answered("discord", host, error, "DISCORD_API_URL")
                or Finding(FAIL, "discord", f"{host} answered {error.status}: {' '.join((error.text or str(error)).split())}"))
    except TimeoutError:
        return Finding(FAIL, "discord", f"no answer from {host} within {NETWORK_TIMEOUT_S:.0f} s: check DISCORD_API_URL and the network")
    except (aiohttp.ClientError, OSError) as error:
        return _unreachable("discord", host, error, "DISCORD_API_URL") or Finding(FAIL, "discord", f"{host}: {error}")
    finally:
        await http.close()


def _answered(what: str, host: str, error: BaseException, setting: str) -> Finding | None:
    """An address that answers, but not as the platform's API (a wrong path, a proxy's error page):
    in a few words, as the start says it, where the client's words carry the whole page."""
    from bot.app import platform_answer

    answered = platform_answer(what, error)
    return None if answered is None else Finding(FAIL, what, f"{host} answered {answered}: check {setting}")


def _unreachable(what: str, host: str, error: BaseException, setting: str) -> Finding | None:
    """A refused connection, an unknown host, a timeout: said as the start says it, with what to check."""
    from bot.app import unreachable_reason

    reason = unreachable_reason(error)
    if reason is None:
        return None
    return Finding(FAIL, what, f"cannot reach {host} ({reason}): check {setting} and the network")


async def check_spotify(settings: Settings) -> Finding:
    if not settings.spotify_client_id and not settings.spotify_client_secret:
        return Finding(SKIP, "spotify", "not configured (SPOTIFY_CLIENT_ID, SPOTIFY_CLIENT_SECRET unset)")
    if not settings.spotify_enabled:
        return Finding(FAIL, "spotify", "half configured: SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET are both needed "
                                        "(without them songs are searched on YouTube only)")
    try:  # spotipy blocks: in a thread, each request bounded by its own timeout
        return await asyncio.wait_for(asyncio.to_thread(_spotify, settings), 3 * NETWORK_TIMEOUT_S)
    except TimeoutError:
        return Finding(FAIL, "spotify", f"no answer within {3 * NETWORK_TIMEOUT_S:.0f} s: check SPOTIFY_AUTH_URL, SPOTIFY_API_URL and the network")


def _spotify(settings: Settings) -> Finding:
    import requests
    import spotipy
    from spotipy.cache_handler import MemoryCacheHandler
    from spotipy.oauth2 import SpotifyClientCredentials, SpotifyOauthError

    auth_host, api_host = host_of(settings.spotify_auth_url), host_of(settings.spotify_api_url)
    auth = SpotifyClientCredentials(client_id=settings.spotify_client_id,
                                    client_secret=settings.spotify_client_secret.get_secret_value(),
                                    requests_session=requests.Session(), requests_timeout=NETWORK_TIMEOUT_S,
                                    cache_handler=MemoryCacheHandler())
    auth.OAUTH_TOKEN_URL = settings.spotify_auth_url  # as SpotifyResolver does
    try:
        auth.get_access_token(as_dict=False)
    except SpotifyOauthError as error:
        said = ": ".join(x for x in (error.error, error.error_description) if x) or str(error)
        return Finding(FAIL, "spotify", f"{auth_host} refused the client id and secret ({said}): "
                                        "check SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET")
    except requests.RequestException as error:
        return Finding(FAIL, "spotify", f"cannot get a token from {auth_host} ({type(error).__name__}): check SPOTIFY_AUTH_URL")
    client = spotipy.Spotify(auth_manager=auth, requests_session=requests.Session(),
                             requests_timeout=NETWORK_TIMEOUT_S, retries=0, status_retries=0)
    api_url = settings.spotify_api_url
    client.prefix = api_url if api_url.endswith("/") else api_url + "/"
    try:
        client.search(q="moodbot", type="track", limit=1)
    except spotipy.SpotifyException as error:
        if error.http_status == 401:
            return Finding(FAIL, "spotify", f"token rejected by {api_host} (401): check SPOTIFY_API_URL")
        # spotipy's text begins with the request's URL: Spotify's own words only, and what to do
        from bot.sources.spotify import APP_REFUSED_FIX, spotify_words
        fix = (APP_REFUSED_FIX if error.http_status == 403 else "try again later"
               if error.http_status == 429 or error.http_status >= 500 else "check SPOTIFY_API_URL")
        return Finding(FAIL, "spotify", f"{api_host} answered {error.http_status} ({spotify_words(error)}): {fix}")
    except requests.RequestException as error:
        return Finding(FAIL, "spotify", f"cannot reach {api_host} ({type(error).__name__}): check SPOTIFY_API_URL")
    return Finding(OK, "spotify", f"token from {auth_host}, a search answered at {api_host}")


# --- all of them ----------------------------------------------------------------------------

async def run_checks(settings: Settings | None, *, problem: str | None = None, notes: Iterable[str] = (),
                     weights_dir: Path | None = None,
                     say: Callable[[Finding], None] = lambda finding: None) -> list[Finding]:
    """Every check, each Finding handed to `say` as soon as it is known. With settings that did not
    parse (`problem`), only the checks that need none run."""
    from inference.pool import DEFAULT_WEIGHTS_DIR

    redact = RedactSecrets(secrets_of(settings) if settings is not None else ()).redact
    findings: list[Finding] = []

    def said(finding: Finding) -> None:
        finding = Finding(finding.status, finding.what, redact(finding.detail))
        findings.append(finding)
        say(finding)

    said(check_settings(problem, notes))
    usable = settings is not None and problem is None
    # The settings wrong (a LOG_LEVEL too, which parses): every check that needs them is a SKIP line.
    unset = "the settings are wrong (above): fix them first"
    if not usable:
        for what in ("data dir", "database"):
            said(Finding(SKIP, what, unset))
    else:
        said(data_dir := await _safely("data dir", check_data_dir, settings))
        if data_dir.status == FAIL and settings.mongodb_uri is None:  # the embedded database lives there
            said(Finding(SKIP, "database", "no MONGODB_URI, and the embedded database cannot start in a "
                                           "DATA_DIR it cannot write to (above)"))
        else:
            said(await _safely("database", check_database, settings))
    said(await _safely("ffmpeg", check_ffmpeg))
    said(await _safely("yt-dlp", check_yt_dlp))
    said(await _safely("youtube", check_js_runtime))
    said(await _safely("fonts", check_cjk_font))
    if not usable:
        for what in ("models", "telegram", "discord", "spotify"):
            said(Finding(SKIP, what, unset))
        return findings
    said(await _safely("models", check_models, settings, Path(weights_dir or DEFAULT_WEIGHTS_DIR)))
    for what, check in (("telegram", check_telegram), ("discord", check_discord), ("spotify", check_spotify)):
        said(await _safely(what, check, settings))
    return findings


async def _safely(what: str, check: Callable, *args) -> Finding:
    """A check that breaks in a way nobody foresaw is one FAIL line too, not a traceback."""
    try:
        result = check(*args)
        return await result if inspect.isawaitable(result) else result
    except Exception as error:  # noqa: BLE001
        return Finding(FAIL, what, f"the check itself failed: {type(error).__name__}: {error}")


def exit_status(findings: Iterable[Finding]) -> int:
    return 1 if any(f.status == FAIL for f in findings) else 0
