"""README.md against the code: the settings table's defaults are Settings' own, and the command
table names the commands each front-end registers (and /help lists), so neither drifts unseen."""
from __future__ import annotations

import re
from pathlib import Path

from bot.config import Settings
from bot.frontends import console, telegram
from bot.frontends.discord.journal import JournalCog
from bot.frontends.discord.mood import MoodCog
from bot.frontends.discord.server import ServerCog
from bot.usecases.help import COMMANDS as HELP_COMMANDS
from inference.result import MOODS

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
SETTINGS_VARS = {name.upper() for name in Settings.model_fields}
DISCORD_COGS = (MoodCog, JournalCog, ServerCog)


def settings_table() -> dict[str, str]:
    """Each documented variable and its default cell, as written."""
    return dict(re.findall(r"^\| `([A-Z_]+)` \| ([^|]*) \|", README, flags=re.M))


def command_table() -> list[list[str]]:
    """The "Using moodbot" table's first cells, each a list of its commands' words ('journal on')."""
    cells = re.findall(r"^\| (`/[^|]*(?:\\\|[^|]*)*) \|", README, flags=re.M)
    return [[usage.strip("`/").split(" <")[0].split(" [")[0].replace("\\|", "|").split(" ")[:2]
             for usage in re.findall(r"`/[^`]*`", cell)] for cell in cells]


def table_commands() -> set[str]:
    return {words[0] for cell in command_table() for words in cell}


def discord_commands() -> dict[str, object]:
    return {command.name: command for cog in DISCORD_COGS for command in cog.__cog_app_commands__}


def test_the_settings_table_names_only_settings():
    assert set(settings_table()) == SETTINGS_VARS


def test_the_settings_table_gives_each_default_as_settings_has_it():
    for var, cell in settings_table().items():
        default = Settings.model_fields[var.lower()].default
        written = re.fullmatch(r"`([^`]*)`", cell.strip())
        if default is None:
            assert cell.startswith(("unset", "the one")), f"{var}: README says {cell!r}, Settings None"
        elif written is None:
            continue  # a default in words (ALLOWED_HOSTS): checked by hand
        elif isinstance(default, bool):
            assert written.group(1) == str(int(default)), var
        elif isinstance(default, (int, float)):
            assert float(written.group(1)) == default, f"{var}: README {written.group(1)}, Settings {default}"
        elif isinstance(default, Path):
            assert Path(written.group(1)) == default, var
        else:
            assert written.group(1) == default, f"{var}: README {written.group(1)!r}, Settings {default!r}"


def test_every_front_end_registers_the_commands_the_table_names():
    table = table_commands()
    assert set(telegram.COMMAND_NAMES) == table  # /start included: it answers as /help
    assert {name.removeprefix("cmd_") for name in dir(console.ConsoleFrontend) if name.startswith("cmd_")} == table
    assert set(discord_commands()) == table - {"start"}  # Discord has no /start


def test_help_lists_the_table_s_commands_and_journal_subcommands():
    helped = [usage.split(" ")[:2] for usage, _ in HELP_COMMANDS]
    assert {words[0] for words in helped} == table_commands() - {"start"}
    journal = {words[1] for cell in command_table() for words in cell if words[0] == "journal"}
    assert {words[1] for words in helped if words[0] == "journal"} == journal
    assert {sub.name for sub in discord_commands()["journal"].commands} == journal


def test_discord_options_take_what_the_table_says():
    commands = discord_commands()
    choices = {name: {choice.value for choice in commands[name].get_parameter(option).choices}
               for name, option in (("playlist", "mood"), ("share", "choice"), ("serverplaylist", "state"))}
    assert choices["playlist"] == set(MOODS)
    assert choices["share"] == choices["serverplaylist"] == {"on", "off"}
    assert [p.name for p in commands["mood"].parameters] == ["query", "file"]  # a song, or an attached file


def test_the_makefile_line_quoted_for_an_interrupted_make_run_is_its_recipe():
    running = (REPO / "docs" / "running.md").read_text()  # the README's Quick start links to it
    line = int(re.search(r"\[Makefile:(\d+): run\] Error 130", running).group(1))
    makefile = (REPO / "Makefile").read_text().splitlines()
    assert makefile[line - 2].startswith("run:") and "-m bot" in makefile[line - 1]
