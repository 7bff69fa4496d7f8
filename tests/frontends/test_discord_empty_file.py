"""Given an empty file (0 bytes: a recording or copy cut short) given to /mood or the message
command, it is said to be empty before any download or listening, as the console says it."""
from __future__ import annotations

from tests.frontends.conftest import read  # a name in a refusal: unlinked, read the same
from tests.frontends.test_discord import ATTACHMENT, message_command

EMPTY = "The file take 3.ogg is empty (0 bytes): there is no audio in it."


async def test_an_empty_file_given_to_mood_is_said_to_be_empty_without_being_downloaded(discord_bot):
    fake, _ = discord_bot
    empty = fake.add_file("take 3.ogg", b"")
    await fake.slash("mood", [{"name": "file", "type": ATTACHMENT, "value": empty["id"]}],
                     resolved={"attachments": {empty["id"]: empty}})
    assert read((await fake.wait_for("edit_original", lambda call: "empty" in call.content)).content) == EMPTY
    assert not fake.calls_of("download")


async def test_an_empty_file_among_a_message_s_files_is_said_to_be_empty_and_the_next_is_heard(discord_bot):
    fake, _ = discord_bot
    await message_command(fake, "", [fake.add_file("take 3.ogg", b""), fake.add_file("take 4.ogg", b"\0" * 64)])
    assert read((await fake.wait_for("edit_original", lambda call: "empty" in call.content)).content) == EMPTY
    await fake.wait_for("download")  # the second file's
    assert len(fake.calls_of("download")) == 1
