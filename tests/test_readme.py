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


# What an operator copies: the README and the detailed accounts it links to.
OPERATOR_DOCS = {path: (REPO / path).read_text() for path in
                 ("README.md", *(str(p.relative_to(REPO)) for p in sorted((REPO / "docs").glob("*.md"))))}


def code_of(text: str) -> list[str]:
    """The code spans and blocks of a Markdown text: what a reader types as written."""
    return re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S) + re.findall(r"`([^`\n]+)`", text)


def named_in_code(pattern: str) -> set[tuple[str, str]]:
    """(document, what `pattern`'s first group matched) in each document's code."""
    return {(path, found) for path, text in OPERATOR_DOCS.items() for code in code_of(text)
            for found in re.findall(pattern, code)}


def github_anchor(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation but - and _ left out, spaces as -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_make_target_the_docs_name_is_the_makefile_s():
    targets = set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(), flags=re.M))
    named = named_in_code(r"(?<![\w-])make ([a-z][\w-]*)")
    assert {target for _, target in named} >= {"run", "test", "check", "bench"}
    assert [(path, target) for path, target in sorted(named) if target not in targets] == []


def test_every_module_and_benchmark_script_the_docs_run_exists():
    import importlib.util

    modules = named_in_code(r"python[\d.]* -m ([\w.]+)")
    assert [(path, module) for path, module in sorted(modules) if importlib.util.find_spec(module) is None] == []
    scripts = named_in_code(r"(benchmarks/\w+\.py)")
    assert [(path, script) for path, script in sorted(scripts) if not (REPO / script).is_file()] == []


def test_every_option_of_python_m_bot_the_docs_give_is_one_it_takes():
    import subprocess
    import sys

    usage = subprocess.run([sys.executable, "-m", "bot", "--help"], capture_output=True, text=True, cwd=REPO,
                           timeout=60, check=True).stdout
    taken = set(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", usage))
    given = named_in_code(r"-m bot((?: --[a-z][\w-]*(?: [A-Z]+)?)+)")
    flags = {(path, flag) for path, options in given for flag in re.findall(r"--[a-z][\w-]*", options)}
    assert {flag for _, flag in flags} >= {"--check", "--alive", "--help"}
    assert [(path, flag) for path, flag in sorted(flags) if flag not in taken] == []


def test_every_link_between_the_docs_leads_to_a_file_and_heading_that_exist():
    broken = []
    for path, text in OPERATOR_DOCS.items():
        prose = re.sub(r"```.*?```|`[^`\n]*`", "", text, flags=re.S)  # a link shown as code is no link
        for target, anchor in re.findall(r"\]\(([^)#\s:]*)(?:#([^)\s]+))?\)", prose):
            linked = (REPO / path).parent / target if target else REPO / path
            if not linked.exists():
                broken.append((path, target))
            elif anchor and anchor not in {github_anchor(h) for h in re.findall(r"^#+ (.*)$", linked.read_text(), flags=re.M)}:
                broken.append((path, f"{target}#{anchor}"))
    assert broken == []


def test_every_file_and_folder_of_the_repository_the_docs_name_exists():
    named = named_in_code(r"(?<![\w./~-])((?:bot|inference|storage|tests|benchmarks|docs)/[\w./*-]*\w)")
    assert {path for _, path in named} >= {"bot/config.py", "storage/schema.py"}
    missing = [(doc, path) for doc, path in sorted(named) if not any(REPO.glob(path))]
    assert missing == []


def test_usage_names_every_key_of_an_export_and_counts_them():
    """docs/usage.md's account of /export, a key a line, against what `UserExport.to_json` writes."""
    from dataclasses import fields

    from storage.models import UserExport

    section = (REPO / "docs/usage.md").read_text().split("## Your data", 1)[1].split("\nTimes are ISO", 1)[0]
    count = re.search(r"with (\w+) keys:", section).group(1)
    listed = re.findall(r"^- `(\w+)`:", section, flags=re.M)
    keys = [part.name for part in fields(UserExport)]
    numbers = "one two three four five six seven eight nine ten eleven twelve".split()
    assert (listed, count) == (keys, numbers[len(keys) - 1])
