"""The ground every feature stands on: one configuration, deployment files that agree with it,
secrets that never leak, and the dependency direction between packages."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from bot.config import Settings

REPO = Path(__file__).resolve().parents[1]
SETTINGS_VARS = {name.upper() for name in Settings.model_fields}


def test_settings_defaults_point_at_the_real_services(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env here
    for var in SETTINGS_VARS:
        monkeypatch.delenv(var, raising=False)
    s = Settings()
    assert s.discord_token is None and s.telegram_token is None
    assert s.mongodb_uri is None
    assert s.telegram_api_url.startswith("https://api.telegram.org")
    assert s.spotify_api_url.startswith("https://api.spotify.com")
    assert s.inference_executor == "process"
    assert "youtu.be" in s.allowed_host_set


def test_allowed_hosts_are_host_names_mapped_as_links_hosts_are(monkeypatch):
    """An entry is judged as a link's host is (IDNA UTS-46): one written in capitals or full-width
    letters matched no link's; one with a scheme, a path, a port or a wildcard matched none either,
    silently. The first is mapped, the others said at start."""
    monkeypatch.setenv("ALLOWED_HOSTS", " YouTube.com, ｙｏｕｔｕ．ｂｅ ,bücher.de., ,")
    assert Settings().allowed_host_set == {"youtube.com", "youtu.be", "xn--bcher-kva.de"}
    for entry in ("https://youtube.com/", "*.youtube.com", "youtube.com:443", "you tube.com", "youtube.com/x"):
        monkeypatch.setenv("ALLOWED_HOSTS", f"open.spotify.com,{entry}")
        with pytest.raises(ValidationError, match="is no host name: write each host alone"):
            Settings()


def test_tokens_never_show_in_repr_or_str(monkeypatch):
    monkeypatch.setenv("TELEGRAM_TOKEN", "123456:SENTINEL-telegram-token")
    monkeypatch.setenv("DISCORD_TOKEN", "SENTINEL.discord.token")
    monkeypatch.setenv("SPOTIFY_CLIENT_SECRET", "SENTINEL-spotify-secret")
    monkeypatch.setenv("MONGODB_URI", "mongodb://user:SENTINEL-pw@db:27017/")
    s = Settings()
    for text in (repr(s), str(s), str(s.model_dump())):
        assert "SENTINEL" not in text
    assert s.telegram_token.get_secret_value() == "123456:SENTINEL-telegram-token"


def test_empty_variables_fall_back_to_defaults(monkeypatch):
    # docker-compose passes unset variables through as empty strings.
    monkeypatch.setenv("AUDIO_SEARCH", "")
    monkeypatch.setenv("DISCORD_TOKEN", "")
    s = Settings()
    assert s.audio_search == Settings.model_fields["audio_search"].default
    assert s.discord_token is None


def test_compose_file_parses_and_names_the_settings_variables():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert compose["services"]["mongo"]["image"].startswith("mongo:8")
    bot = compose["services"]["bot"]
    assert bot["depends_on"]["mongo"]["condition"] == "service_healthy"
    env = set(bot["environment"])
    assert env == SETTINGS_VARS, (
        f"missing in compose: {sorted(SETTINGS_VARS - env)}; unknown to Settings: {sorted(env - SETTINGS_VARS)}"
    )


def test_compose_mongodb_wants_a_login_and_the_bot_logs_in():
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    mongo = compose["services"]["mongo"]["environment"]
    uri = compose["services"]["bot"]["environment"]["MONGODB_URI"]
    assert mongo["MONGO_INITDB_ROOT_PASSWORD"].startswith("${MONGO_PASSWORD:?")  # no password, no start
    assert uri.startswith(f"mongodb://{mongo['MONGO_INITDB_ROOT_USERNAME']}:${{MONGO_PASSWORD:?")
    assert "authSource=admin" in uri  # the root user lives in admin


def test_readme_documents_every_variable():
    readme = (REPO / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", readme, flags=re.M))
    assert SETTINGS_VARS <= documented, f"undocumented: {sorted(SETTINGS_VARS - documented)}"


def test_dockerfile_is_multi_stage_non_root_and_ships_weights():
    text = (REPO / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, flags=re.M)) >= 2
    assert re.search(r"^USER (?!root)", text, flags=re.M)
    assert "ffmpeg" in text
    assert "COPY inference" in text
    assert 'ENTRYPOINT ["tini", "--", "python", "-m", "bot"]' in text  # an init as PID 1 reaps orphans


def _imports(package: str) -> set[str]:
    found: set[str] = set()
    for path in (REPO / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_dependencies_point_one_way():
    assert not _imports("inference") & {"bot", "storage", "discord", "telegram", "pymongo"}
    assert not _imports("storage") & {"bot", "inference", "discord", "telegram", "secantusdb"}


def test_no_platform_names_in_inference_or_storage():
    for package in ("inference", "storage"):
        for path in (REPO / package).rglob("*.py"):
            code = path.read_text().lower()
            code = re.sub(r"#.*", "", code)
            assert "telegram" not in code and "discord" not in code, path


def test_motor_is_not_used():
    for package in ("bot", "storage"):
        assert "motor" not in _imports(package)


def test_compose_hands_the_whole_env_file_to_the_bot_so_a_misspelt_setting_is_said(tmp_path):
    """compose passes a service only what it lists; the bot's check for misspelt settings can only
    see a TELEGRAM_TOKN in .env if the whole file reaches it. Here compose's merge is replayed: the
    env_file's variables, then the service's environment over them."""
    from dotenv import dotenv_values

    from bot.config import unread_settings

    bot = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["bot"]
    files = [entry if isinstance(entry, dict) else {"path": entry} for entry in bot.get("env_file", [])]
    assert {"path": ".env", "required": False} in files  # optional: compose starts without a .env
    dotenv = tmp_path / ".env"
    dotenv.write_text("MONGO_PASSWORD=s3cret\nTELEGRAM_TOKN=123:abc\nDISCORD_TOKEN=x\n")
    container = {**dotenv_values(dotenv), **{name: "" for name in bot["environment"]}}
    said = unread_settings(container, env_file=None)  # no .env inside the image: only the environment
    assert len(said) == 1 and said[0].startswith("TELEGRAM_TOKN is not a setting moodbot reads"), said
