"""The interactive chat of `hearth run MODEL`, with Ollama's commands.

Each line is a user turn; the answer streams back and both join the history sent with the next
turn. A line starting with triple quotes (\"\"\") opens a multi-line message that ends at a line
ending with them. Ctrl-C during an answer stops it (the connection closes, which cancels it on
the server) and the unfinished turn is dropped; at the prompt it only clears the line. Ctrl-D or
`/bye` leaves. Line editing and the input history (kept in `$HEARTH_HOME/run_history`) come from
readline when the terminal has it. `/save NAME` writes the conversation to
`$HEARTH_HOME/chats/NAME.json`; `/load NAME` reads it back.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from pathlib import Path
from typing import Any

from server.commands.chat_client import Conversation, stats, stream_chat
from server.commands.client import ServerError

HELP = """Available commands:
  /set parameter NAME VALUE   set a sampling parameter (/set parameter lists them)
  /set system TEXT            set the system prompt (also: /system TEXT)
  /set verbose | quiet        show or hide timings after each answer
  /show                       show the model, system prompt and parameters
  /clear                      forget the conversation so far
  /save NAME                  save the conversation to $HEARTH_HOME/chats/NAME.json
  /load NAME                  load a saved conversation
  /bye                        leave (also Ctrl-D)
  /?                          this help
Use \"\"\" to begin and end a multi-line message. Ctrl-C stops an answer."""

# What `/set parameter` accepts: the OpenAI name (or Ollama's alias) and how to read its value.
PARAMETERS: dict[str, tuple[str, type]] = {
    "temperature": ("temperature", float),
    "top_p": ("top_p", float),
    "top_k": ("top_k", int),
    "min_p": ("min_p", float),
    "seed": ("seed", int),
    "max_tokens": ("max_tokens", int),
    "num_predict": ("max_tokens", int),
    "presence_penalty": ("presence_penalty", float),
    "frequency_penalty": ("frequency_penalty", float),
    "stop": ("stop", str),
    # Hearth's (and vLLM's) extension: keep generating past the end of the answer, up to max_tokens.
    "ignore_eos": ("ignore_eos", bool),
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_QUOTES = '"""'


def _parse(kind: type, raw: str) -> Any:
    """A parameter's value from its text; ValueError when it is not of `kind`."""
    if kind is bool:
        if raw.lower() not in ("true", "false", "1", "0", "on", "off"):
            raise ValueError(raw)
        return raw.lower() in ("true", "1", "on")
    return kind(raw)


def _setup_readline(history: Path) -> None:
    try:
        import readline
    except ImportError:  # not every Python has it; input() still works
        return
    with contextlib.suppress(OSError):
        readline.read_history_file(history)
    readline.set_history_length(1000)

    def save() -> None:
        with contextlib.suppress(OSError):
            history.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(history)

    import atexit

    atexit.register(save)


class ChatSession:
    """One interactive chat on a terminal."""

    def __init__(self, url: str, conversation: Conversation, home: Path, verbose: bool = False) -> None:
        self.url = url
        self.conversation = conversation
        self.chats = home / "chats"
        self.history = home / "run_history"
        self.verbose = verbose

    def say(self, text: str) -> None:
        """A message of the session itself (not of the model)."""
        print(text, flush=True)

    def read_message(self) -> str | None:
        """The next message: one line, or a \"\"\"-quoted block; None at end of input (Ctrl-D)."""
        try:
            line = input(">>> ")
        except EOFError:
            return None
        if not line.lstrip().startswith(_QUOTES):
            return line
        lines = [line.lstrip()[len(_QUOTES) :]]
        while not lines[-1].rstrip().endswith(_QUOTES):
            try:
                lines.append(input("... "))
            except EOFError:
                return None
        lines[-1] = lines[-1].rstrip()[: -len(_QUOTES)]
        return "\n".join(lines).strip("\n")

    def loop(self) -> int:
        """Read and answer until /bye or Ctrl-D."""
        _setup_readline(self.history)
        self.say(f"Chatting with {self.conversation.model} at {self.url}. Type /? for help, /bye to leave.")
        while True:
            try:
                message = self.read_message()
            except KeyboardInterrupt:
                self.say("\nUse Ctrl + d or /bye to exit.")
                continue
            if message is None:
                self.say("")
                return 0
            if not message.strip():
                continue
            if message.startswith("/"):
                if self.command(message.strip()) == "bye":
                    return 0
                continue
            self.answer(message)

    def answer(self, prompt: str) -> None:
        """Stream the answer to `prompt`; keep the turn unless it was stopped or failed."""
        conversation = self.conversation

        def write(text: str) -> None:
            sys.stdout.write(text)
            sys.stdout.flush()

        try:
            answer = stream_chat(self.url, conversation.request(prompt), write)
        except KeyboardInterrupt:
            self.say("\n[stopped]")
            return
        except ServerError as exc:
            self.say(f"\nError: {exc}")
            return
        conversation.messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer.text}]
        self.say("" if answer.text.endswith("\n") else "\n")
        if self.verbose:
            self.say(stats(answer))

    def command(self, line: str) -> str | None:
        """Run one /command; "bye" when the session should end."""
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        match word:
            case "/bye" | "/exit":
                return "bye"
            case "/?" | "/help":
                self.say(HELP)
            case "/clear":
                self.conversation.messages.clear()
                self.say("Cleared the conversation.")
            case "/system":
                self.set_system(rest)
            case "/set":
                self.set(rest)
            case "/show":
                self.show()
            case "/save":
                self.save(rest)
            case "/load":
                self.load(rest)
            case _:
                self.say(f"Unknown command {word!r}. Type /? for help.")
        return None

    def set_system(self, text: str) -> None:
        """Set (or, empty, remove) the system prompt."""
        self.conversation.system = text or None
        self.say("Set the system prompt." if text else "Removed the system prompt.")

    def set(self, rest: str) -> None:
        """`/set parameter NAME VALUE`, `/set system TEXT`, `/set verbose`, `/set quiet`."""
        what, _, value = rest.partition(" ")
        match what:
            case "parameter":
                self.set_parameter(value.strip())
            case "system":
                self.set_system(value.strip())
            case "verbose" | "quiet":
                self.verbose = what == "verbose"
                self.say(f"Set {what} mode.")
            case _:
                self.say("Usage: /set parameter NAME VALUE | /set system TEXT | /set verbose | /set quiet")

    def set_parameter(self, text: str) -> None:
        """Parse and keep one sampling parameter; the server checks its range on the next turn."""
        name, _, raw = text.partition(" ")
        if name not in PARAMETERS or not raw.strip():
            self.say("Usage: /set parameter NAME VALUE, where NAME is one of: " + ", ".join(PARAMETERS))
            return
        key, kind = PARAMETERS[name]
        try:
            value: Any = _parse(kind, raw.strip())
        except ValueError:
            wanted = {int: "an integer", float: "a number", bool: "true or false"}[kind]
            self.say(f"{name} needs {wanted}, not {raw.strip()!r}.")
            return
        if key == "stop":
            # Ollama's `/set parameter stop` adds a stop string each time.
            value = [*self.conversation.parameters.get("stop", []), value]
        self.conversation.parameters[key] = value
        self.say(f"Set parameter '{key}' to '{value}'.")

    def show(self) -> None:
        """Print the model, the system prompt, the parameters and the length of the history."""
        c = self.conversation
        self.say(f"model: {c.model}\nsystem: {c.system or '(none)'}")
        self.say("parameters: " + (", ".join(f"{k}={v}" for k, v in c.parameters.items()) or "(server defaults)"))
        self.say(f"messages: {len(c.messages)}")

    def _chat_file(self, name: str) -> Path | None:
        if not _NAME.match(name):
            self.say("Usage: /save NAME or /load NAME (letters, digits, '.', '_' and '-').")
            return None
        return self.chats / f"{name}.json"

    def save(self, name: str) -> None:
        """Write the conversation to `$HEARTH_HOME/chats/NAME.json`."""
        path = self._chat_file(name)
        if path is None:
            return
        c = self.conversation
        data = {"model": c.model, "system": c.system, "parameters": c.parameters, "messages": c.messages}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(data, indent=2), encoding="utf-8")
        except OSError as exc:
            self.say(f"Could not save: {exc}")
            return
        self.say(f"Saved the conversation as '{name}' ({path}).")

    def load(self, name: str) -> None:
        """Read a saved conversation back: its system prompt, parameters and history (and model)."""
        path = self._chat_file(name)
        if path is None:
            return
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in data["messages"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.say(f"Could not load '{name}': {exc}")
            return
        c = self.conversation
        c.model = str(data.get("model") or c.model)
        c.system = data.get("system") or None
        c.parameters = dict(data.get("parameters") or {})
        c.messages = messages
        self.say(f"Loaded '{name}': {len(messages)} messages with {c.model}.")
