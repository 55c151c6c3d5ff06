"""`hearth run MODEL [PROMPT]`: a one-shot answer, or an interactive chat (`chat_session.py`).

With a prompt (or text on stdin) the answer is streamed to stdout and the command exits; piped
text and a prompt are joined (`cat notes.md | hearth run m "summarize"`: the notes, a blank line,
then the instruction). Without either, on a terminal, it opens the interactive chat.

It talks to a running server over the OpenAI API (`client.py` says which one). When none answers
at the configured local address, it starts one for the duration of the command and stops it
afterwards (`--keep-server` leaves it running), as `ollama run` starts Ollama.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from server.commands.chat_client import Conversation, stats, stream_chat
from server.commands.chat_session import HELP, ChatSession
from server.commands.client import ServerError, add_url_flag, answers, explicit_url
from server.commands.client import server_url as resolve_url
from server.commands.common import add_home_flag
from server.commands.local_server import local_server

if TYPE_CHECKING:
    from server.commands.common import Commands
    from server.settings import Settings

DESCRIPTION = """Answer one prompt, or chat.

  hearth run MODEL "Say hi"                    print the streamed answer and exit
  cat notes.md | hearth run MODEL "summarize"  the piped text, a blank line, then the prompt
  hearth run MODEL                             an interactive chat

The server: --url, else $HEARTH_URL, else $HEARTH_HOST (when a URL), else the configured host and
port; the API key: $HEARTH_API_KEY. When no server answers at the configured local address, one is
started for the command and stopped afterwards (--keep-server leaves it running)."""


def _write_to(stream: TextIO) -> Callable[[str], None]:
    def write(text: str) -> None:
        stream.write(text)
        stream.flush()

    return write


def one_shot(url: str, conversation: Conversation, prompt: str, verbose: bool) -> int:
    """Print the streamed answer to `prompt`; exit code 0, or 1 with the server's message."""
    try:
        answer = stream_chat(url, conversation.request(prompt), _write_to(sys.stdout))
    except ServerError as exc:
        print(f"\nhearth run: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stdout)
        return 130
    if not answer.text.endswith("\n"):
        sys.stdout.write("\n")
    if verbose:
        print(stats(answer), file=sys.stderr)
    return 0


def _prompt(args: argparse.Namespace) -> str | None:
    """The one-shot prompt: stdin's text (when piped) and the prompt argument; None for a chat."""
    piped = None if sys.stdin.isatty() else sys.stdin.read()
    words = " ".join(args.prompt) if args.prompt else None
    if piped and piped.strip():
        return f"{piped.rstrip()}\n\n{words}" if words else piped
    return words


def _parameters(args: argparse.Namespace) -> dict[str, Any]:
    named = {"temperature": args.temperature, "seed": args.seed, "max_tokens": args.max_tokens}
    return {k: v for k, v in named.items() if v is not None}


def run(settings: Settings, args: argparse.Namespace) -> int:
    """`hearth run`: find or start the server, then answer once or chat."""
    prompt = _prompt(args)
    if prompt is None and not sys.stdin.isatty():
        print("hearth run: nothing to answer (empty input)", file=sys.stderr)
        return 2
    url = resolve_url(settings, args.url)
    conversation = Conversation(args.model_name, system=args.system, parameters=_parameters(args))

    def go() -> int:
        if prompt is not None:
            return one_shot(url, conversation, prompt, args.verbose)
        return ChatSession(url, conversation, settings.home_path, verbose=args.verbose).loop()

    if answers(url):
        return go()
    if explicit_url(args.url) is not None or args.no_start:
        print(f"hearth run: no server answers at {url}", file=sys.stderr)
        return 1
    print(f"hearth run: no server answers at {url}; starting one (log: {settings.log_dir}/autostart.log)",
          file=sys.stderr)  # fmt: skip
    try:
        with local_server(settings, url, args.start_timeout, keep=args.keep_server):
            return go()
    except ServerError as exc:
        print(f"hearth run: {exc}", file=sys.stderr)
        return 1


def register(commands: Commands) -> None:
    """Add `hearth run`."""
    parser = commands.add_parser(
        "run",
        help="chat with a model, or answer one prompt",
        description=DESCRIPTION,
        epilog="In the chat: " + HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "model_name", metavar="MODEL", help="a served model or installed artifact (`hearth ps`, `hearth ls`)"
    )
    parser.add_argument("prompt", nargs="*", help="the prompt; without one (and no piped input), an interactive chat")
    add_url_flag(parser)
    add_home_flag(parser)
    parser.add_argument("--system", help="system prompt")
    parser.add_argument("--temperature", type=float, help="sampling temperature (default: the server's)")
    parser.add_argument("--seed", type=int, help="sampling seed")
    parser.add_argument("--max-tokens", type=int, help="longest answer in tokens")
    parser.add_argument("--verbose", action="store_true", help="print timings and token counts after each answer")
    parser.add_argument("--no-start", action="store_true", help="fail instead of starting a local server")
    parser.add_argument(
        "--keep-server", action="store_true", help="leave a server this command started running afterwards"
    )
    parser.add_argument(
        "--start-timeout", type=float, default=180.0, help="seconds to wait for a started server (default 180)"
    )
    parser.set_defaults(run=run, extra_words="prompt")
