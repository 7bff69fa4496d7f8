"""yt-dlp solves YouTube's JavaScript challenges in deno: the bot's options give it the venv's deno
and the solver scripts of the `yt-dlp-ejs` package (nothing fetched), and deno runs them with no
network, file, environment or process access, which the connection guard (this process's sockets
only) could not have watched. No YouTube here: a stand-in player shows that the solver ran."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from yt_dlp import YoutubeDL
from yt_dlp.extractor.youtube.jsc._builtin.ejs import ScriptSource
from yt_dlp.extractor.youtube.jsc._director import initialize_jsc_director
from yt_dlp.extractor.youtube.jsc.provider import JsChallengeProviderError

from bot.sources.audio import js_runtimes


@pytest.fixture(scope="module")
def deno():
    """yt-dlp's deno challenge solver, as a download with the bot's options would get it."""
    ydl = YoutubeDL({"quiet": True, "js_runtimes": js_runtimes(), "remote_components": []})
    provider = initialize_jsc_director(ydl.get_info_extractor("Youtube")).providers["Deno"]
    yield provider
    ydl.close()


def test_the_solver_runs_in_the_venv_s_deno_from_the_packaged_scripts(deno):
    assert deno.is_available(), "yt-dlp found no deno: YouTube would give fewer formats, or none"
    assert deno.runtime_info.path == js_runtimes()["deno"]["path"]
    assert (deno._lib_script.source, deno._core_script.source) == (ScriptSource.PYPACKAGE, ScriptSource.PYPACKAGE)
    with pytest.raises(JsChallengeProviderError, match="unexpected structure"):  # the solver's own word
        deno._run_js_runtime(deno._construct_stdin("var player = 1;", False, []))


@pytest.fixture
def listener():
    asked = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], asked
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("script, refusal", [
    ("await fetch('http://127.0.0.1:{port}/leak')", "net access"),
    ("Deno.readTextFileSync('/etc/passwd')", "read access"),
    ("Deno.writeTextFileSync('/tmp/moodbot-deno-probe', 'x')", "write access"),
    ("Deno.env.get('TELEGRAM_TOKEN')", "env access"),
    ("new Deno.Command('id').outputSync()", "run access"),
])
def test_deno_runs_the_solver_with_no_network_files_environment_or_processes(deno, listener, script, refusal):
    port, asked = listener
    with pytest.raises(JsChallengeProviderError, match=f"Requires {refusal}"):
        deno._run_js_runtime(script.format(port=port) + "; console.log('done')")
    assert asked == []
