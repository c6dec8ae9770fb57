"""Windows: the dev scripts, their line endings, and a scan of the app code for Unix-only calls.

No CI job can run Windows (nor PowerShell: ``pwsh`` is not installed here), so:

* ``dev.ps1`` / ``dev.bat`` are checked by content (what they run, CRLF line endings) and
  ``.gitattributes`` by ``git check-attr`` (it keeps them CRLF in every checkout, and shell
  scripts LF);
* the app's Python (every ``*.py`` outside ``tests/``, ``.venv/`` and other non-code folders) is
  parsed and scanned for what breaks on Windows: Unix-only modules (``fcntl``, ``pwd``...), Unix-
  only ``os`` / ``signal`` / ``select`` / ``socket`` / ``time`` names used without a platform
  guard, ``os.kill`` (on Windows signal 0 is CTRL_C_EVENT to a whole console group), loop signal
  handlers without a ``NotImplementedError`` fallback, hard-coded Unix paths (``/tmp``,
  ``/dev/null``...), ``shell=True`` and ``os.system`` (cmd.exe is not sh), Unix tools as the
  program of a subprocess, ``HOME`` / ``USER`` from the environment, the ``fork`` start method,
  file-system paths glued with ``"/"`` (``f"{data_dir}/x"``), and text files opened without
  ``encoding=`` (Windows reads them in its ANSI code page, cp1252, not UTF-8), and ``rename``
  onto a path (it fails on Windows when the target exists; ``replace`` does not).

A use is **guarded** when an enclosing ``if`` / conditional expression tests the platform
(``os.name``, ``sys.platform``, ``platform.system()``, ``hasattr``/``getattr``), or an earlier
``if`` of that kind in an enclosing block returns / raises, or an enclosing ``try`` or
``contextlib.suppress`` catches what the call raises on Windows (``AttributeError``,
``NotImplementedError``, ``ImportError``, ``OSError``). Anything else found must be named in
:data:`ALLOWED` with the reason it is right; an entry that no longer matches fails too, so the
list cannot rot.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Top-level folders that hold no app code (tests may use POSIX; .venv is third-party).
SKIPPED_DIRS = {"tests", "var", "staticfiles", "static", "node_modules", "test-artifacts", "data",
                "templates"}  # fmt: skip

UNIX_MODULES = {"fcntl", "pwd", "grp", "resource", "termios", "tty", "pty", "posix", "crypt",
                "syslog", "spwd", "nis", "readline", "curses"}  # fmt: skip
UNIX_ATTRIBUTES = {
    "os": {"fork", "forkpty", "setsid", "setpgid", "getpgid", "setpgrp", "killpg", "getuid",
           "geteuid", "getgid", "getegid", "setuid", "setgid", "getgroups", "chown", "lchown",
           "fchown", "mkfifo", "mknod", "nice", "uname", "getloadavg", "sync", "wait3", "wait4",
           "WNOHANG", "sysconf", "statvfs", "sched_getaffinity", "kill", "O_NONBLOCK"},
    "signal": {"SIGKILL", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCHLD", "SIGQUIT",
               "SIGPIPE", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGWINCH", "alarm", "setitimer",
               "getitimer", "pause", "siginterrupt", "sigwait", "pthread_kill",
               "pthread_sigmask"},
    "select": {"poll", "epoll", "kqueue"},
    "socket": {"AF_UNIX"},
    "time": {"tzset"},
}  # fmt: skip
UNIX_TOOLS = {"sh", "bash", "kill", "ps", "ls", "cat", "grep", "which", "env", "cp", "mv", "rm",
              "chmod", "chown", "nohup", "setsid", "sudo", "tail", "head", "pkill",
              "killall"}  # fmt: skip
SUBPROCESS_CALLS = {"run", "Popen", "call", "check_call", "check_output",
                    "create_subprocess_exec"}  # fmt: skip
UNIX_PATH = re.compile(r"^/(tmp|dev|proc|etc|var|usr|home|bin|sbin|opt|run|sys|root|srv)(/|$)")
PATH_NAME = re.compile(r"(^|_)(dir|path|file|folder|directory|root)$|^__file__$|_DIR$", re.I)
GUARD_EXCEPTIONS = {"AttributeError", "NotImplementedError", "ImportError",
                    "ModuleNotFoundError", "OSError"}  # fmt: skip

# (file, rule, the offending line stripped) -> why it is right.
ALLOWED: dict[tuple[str, str, str], str] = {
    ("scalpradar/serve.py", "unix-only-call",
     "start_new_session=True,  # POSIX: not in the terminal's process group"):
        "Popen ignores start_new_session on Windows; the next argument gives the same "
        "(CREATE_NEW_PROCESS_GROUP)",
    ("bench/backtest.py", "unix-only-call",
     'context = multiprocessing.get_context("fork")'):
        "a benchmark of this Linux machine (README figures): forked workers share the candles "
        "main() loaded without pickling them; the app's own sweeps go through Celery",
    ("bench/radar.py", "unix-path",
     'for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():'):
        "the benchmark's memory verdict reads Linux's VmRSS; it is a measurement of this Linux "
        "machine, not part of the app",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Finding:
    path: str
    line: int
    rule: str
    source: str
    why: str

    def key(self) -> tuple[str, str, str]:
        return (self.path, self.rule, self.source)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: [{self.rule}] {self.why}: {self.source}"


def _dotted(node: ast.AST) -> str:
    """``os.path.join`` for that attribute chain; ``""`` when it is not a plain chain."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _is_platform_test(test: ast.AST) -> bool:
    for node in ast.walk(test):
        name = _dotted(node) if isinstance(node, ast.Attribute | ast.Name) else ""
        if name in {"os.name", "sys.platform", "platform.system", "hasattr", "getattr"}:
            return True
    return False


def _exits(body: list[ast.stmt]) -> bool:
    """Does this block always leave (return, raise, continue, break) at its end?"""
    if not body:
        return False
    last = body[-1]
    if isinstance(last, ast.Return | ast.Raise | ast.Continue | ast.Break):
        return True
    if isinstance(last, ast.If):
        return _exits(last.body) and _exits(last.orelse)
    if isinstance(last, ast.With | ast.AsyncWith):
        return _exits(last.body)
    if isinstance(last, ast.Try):
        return _exits(last.finalbody) or (
            _exits(last.body) and all(_exits(handler.body) for handler in last.handlers)
        )
    return False


def _catches(names: ast.AST | None) -> bool:
    if names is None:  # a bare except
        return True
    exprs = names.elts if isinstance(names, ast.Tuple) else [names]
    return any(_dotted(e).rsplit(".", 1)[-1] in GUARD_EXCEPTIONS for e in exprs)


class Scanner(ast.NodeVisitor):
    """The findings of one module (module docstring)."""

    def __init__(self, path: str, source: str) -> None:
        self.path = path
        self.lines = source.splitlines()
        self.findings: list[Finding] = []
        self.stack: list[ast.AST] = []
        self.docstrings: set[int] = set()
        tree = ast.parse(source)
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
                value = body[0].value
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    self.docstrings.add(id(value))
        self.visit(tree)

    def generic_visit(self, node: ast.AST) -> None:
        self.stack.append(node)
        super().generic_visit(node)
        self.stack.pop()

    def guarded(self, node: ast.AST) -> bool:
        chain = [*self.stack, node]
        for depth, ancestor in enumerate(chain[:-1]):
            child = chain[depth + 1]
            if isinstance(ancestor, ast.If | ast.IfExp | ast.While) and (
                child is not ancestor.test and _is_platform_test(ancestor.test)
            ):
                return True
            if (
                isinstance(ancestor, ast.Try)
                and child in ancestor.body
                and any(_catches(handler.type) for handler in ancestor.handlers)
            ):
                return True
            if isinstance(ancestor, ast.With | ast.AsyncWith):
                for item in ancestor.items:
                    call = item.context_expr
                    if (
                        isinstance(call, ast.Call)
                        and _dotted(call.func).endswith("suppress")
                        and any(_catches(arg) for arg in call.args)
                    ):
                        return True
            for field in ("body", "orelse", "finalbody"):
                block = getattr(ancestor, field, None)
                if isinstance(block, list) and child in block:
                    for earlier in block[: block.index(child)]:
                        if (
                            isinstance(earlier, ast.If)
                            and _is_platform_test(earlier.test)
                            and _exits(earlier.body)
                        ):
                            return True
        return False

    def report(self, node: ast.AST, rule: str, why: str) -> None:
        if self.guarded(node):
            return
        line = getattr(node, "lineno", 0)
        source = self.lines[line - 1].strip() if line else ""
        self.findings.append(Finding(self.path, line, rule, source, why))

    # --- rules -------------------------------------------------------------------------------

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.split(".")[0] in UNIX_MODULES:
                self.report(node, "unix-module", f"{alias.name} does not exist on Windows")
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = (node.module or "").split(".")[0]
        if node.level == 0 and module in UNIX_MODULES:
            self.report(node, "unix-module", f"{node.module} does not exist on Windows")
        if node.level == 0 and module in UNIX_ATTRIBUTES:
            for alias in node.names:
                if alias.name in UNIX_ATTRIBUTES[module]:
                    self.report(node, "unix-only-call", f"{module}.{alias.name} is Unix-only")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        owner = _dotted(node.value)
        if node.attr in UNIX_ATTRIBUTES.get(owner, ()):
            why = (
                "os.kill with signal 0 sends CTRL_C_EVENT on Windows"
                if (owner, node.attr) == ("os", "kill")
                else f"{owner}.{node.attr} is Unix-only"
            )
            self.report(node, "unix-only-call", why)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = _dotted(node.func)
        for keyword in node.keywords:
            if keyword.arg == "shell" and getattr(keyword.value, "value", False) is True:
                self.report(node, "shell", "shell=True runs cmd.exe on Windows, not sh")
            if keyword.arg == "start_new_session":
                self.report(keyword.value, "unix-only-call", "start_new_session is POSIX-only")
        if name in {"os.system", "os.popen"}:
            self.report(node, "shell", f"{name} runs a shell command line (cmd.exe on Windows)")
        if name.rsplit(".", 1)[-1] in SUBPROCESS_CALLS and node.args:
            program = node.args[0]
            if isinstance(program, ast.List | ast.Tuple) and program.elts:
                program = program.elts[0]
            if isinstance(program, ast.Constant) and program.value in UNIX_TOOLS:
                self.report(node, "unix-tool", f"{program.value!r} is not a Windows program")
        if name.endswith("add_signal_handler"):
            self.report(node, "signal-handler", "loop signal handlers raise NotImplementedError "
                        "on Windows")  # fmt: skip
        if name.endswith(("set_start_method", "get_context")) and any(
            isinstance(a, ast.Constant) and a.value == "fork" for a in node.args
        ):
            self.report(node, "unix-only-call", "the fork start method is Unix-only")
        if name in {"os.environ.get", "os.getenv"} and node.args:
            self._home_env(node, node.args[0])
        receiver = node.func.value if isinstance(node.func, ast.Attribute) else None
        if name == "os.rename" or (
            name.endswith(".rename") and receiver is not None and self._path_like(receiver)
        ):
            self.report(node, "rename", "rename fails on Windows when the target exists: "
                        "use replace")  # fmt: skip
        if self._opens_text_without_encoding(node, name):
            self.report(node, "text-encoding", "text I/O without encoding= uses the locale's "
                        "code page on Windows (cp1252), not UTF-8")  # fmt: skip
        self.generic_visit(node)

    def _opens_text_without_encoding(self, node: ast.Call, name: str) -> bool:
        """``open()``, ``Path.open/read_text/write_text``, ``gzip.open(..., "rt")`` in text
        mode without ``encoding=``."""
        if any(keyword.arg == "encoding" for keyword in node.keywords):
            return False
        method = node.func.attr if isinstance(node.func, ast.Attribute) else name
        if method in {"read_text", "write_text"}:
            return True
        modes = [k.value for k in node.keywords if k.arg == "mode"]
        if name in {"open", "io.open"}:
            modes = modes or node.args[1:2]
            default = "r"
        elif name in {"gzip.open", "bz2.open", "lzma.open"}:
            modes = modes or node.args[1:2]
            default = "rb"
        elif method == "open" and isinstance(node.func, ast.Attribute):
            receiver = node.func.value
            is_path = (
                (isinstance(receiver, ast.BinOp) and isinstance(receiver.op, ast.Div))
                or (isinstance(receiver, ast.Call) and _dotted(receiver.func).endswith("Path"))
                or self._path_like(receiver)
            )
            if not is_path:
                return False
            modes = modes or node.args[:1]
            default = "r"
        else:
            return False
        mode = modes[0].value if modes and isinstance(modes[0], ast.Constant) else default
        return isinstance(mode, str) and "b" not in mode and (default == "r" or "t" in mode)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if _dotted(node.value) == "os.environ":
            self._home_env(node, node.slice)
        self.generic_visit(node)

    def _home_env(self, node: ast.AST, key: ast.AST) -> None:
        if isinstance(key, ast.Constant) and key.value in {"HOME", "USER", "SHELL", "TMPDIR"}:
            self.report(node, "unix-env", f"${key.value} is not set on Windows (Path.home(), "
                        "getpass.getuser(), tempfile)")  # fmt: skip

    def visit_Constant(self, node: ast.Constant) -> None:
        if (
            isinstance(node.value, str)
            and id(node) not in self.docstrings
            and UNIX_PATH.match(node.value)
        ):
            self.report(node, "unix-path", f"{node.value!r} is a Unix path")
        self.generic_visit(node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        """``f"{data_dir}/candles.csv"``: a file-system path glued with "/"."""
        for left, right in zip(node.values, node.values[1:], strict=False):
            pairs = ((left, right, True), (right, left, False))
            for value, text, value_first in pairs:
                if not (isinstance(value, ast.FormattedValue) and isinstance(text, ast.Constant)):
                    continue
                glued = text.value.startswith("/") if value_first else text.value.endswith("/")
                if glued and self._path_like(value.value):
                    self.report(node, "slash-join", "a path glued with '/': use pathlib")
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.Add):
            for value, text in ((node.left, node.right), (node.right, node.left)):
                if (
                    isinstance(text, ast.Constant)
                    and isinstance(text.value, str)
                    and "/" in text.value
                    and self._path_like(value)
                ):
                    self.report(node, "slash-join", "a path glued with '/': use pathlib")
        self.generic_visit(node)

    @staticmethod
    def _path_like(node: ast.AST) -> bool:
        if isinstance(node, ast.Call) and _dotted(node.func) in {"str", "os.fspath"}:
            node = node.args[0] if node.args else node
        name = _dotted(node).rsplit(".", 1)[-1] if _dotted(node) else ""
        return bool(name) and bool(PATH_NAME.search(name))


def app_files() -> list[Path]:
    """Every ``*.py`` of the checkout but the skipped top-level folders and hidden ones."""
    found = []
    for path in ROOT.rglob("*.py"):
        folders = path.relative_to(ROOT).parts[:-1]
        if folders and folders[0] in SKIPPED_DIRS:
            continue
        if any(part.startswith(".") or part == "__pycache__" for part in folders):
            continue
        found.append(path)
    return sorted(found)


def scan(path: str, source: str) -> list[Finding]:
    return Scanner(path, source).findings


@pytest.fixture(scope="module")
def findings() -> list[Finding]:
    found: list[Finding] = []
    for path in app_files():
        found += scan(path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8"))
    return found


# --- the app code ----------------------------------------------------------------------------


def test_the_scan_reads_the_whole_app():
    files = {p.relative_to(ROOT).as_posix() for p in app_files()}
    assert {"manage.py", "scalpradar/settings.py", "radar/live.py", "notify/deadman.py"} <= files
    assert not [f for f in files if f.startswith(("tests/", ".venv/"))]


def test_the_app_code_has_no_unguarded_unix_only_calls_or_paths(findings):
    unexplained = [str(f) for f in findings if f.key() not in ALLOWED]
    assert not unexplained, "Unix-only code in the app:\n" + "\n".join(unexplained)


def test_every_allowed_exception_still_exists(findings):
    stale = set(ALLOWED) - {f.key() for f in findings}
    assert not stale, f"allow-list entries matching nothing any more: {stale}"


# --- the scanner itself ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "rule"),
    [
        ("import fcntl\n", "unix-module"),
        ("from pwd import getpwnam\n", "unix-module"),
        ("import os\npid = os.fork()\n", "unix-only-call"),
        ("import os\nos.getuid()\n", "unix-only-call"),
        ("import os\nos.kill(pid, 0)\n", "unix-only-call"),
        ("import signal\nsignal.signal(signal.SIGHUP, f)\n", "unix-only-call"),
        ("import signal\nproc.send_signal(signal.SIGKILL)\n", "unix-only-call"),
        ("from signal import SIGUSR1\n", "unix-only-call"),
        ("loop.add_signal_handler(sig, stop)\n", "signal-handler"),
        ("LOG = '/tmp/radar.log'\n", "unix-path"),
        ("out = open('/dev/null', 'wb')\n", "unix-path"),
        ("subprocess.run('ls -l', shell=True)\n", "shell"),
        ("os.system('clear')\n", "shell"),
        ("subprocess.run(['kill', str(pid)])\n", "unix-tool"),
        ("home = os.environ['HOME']\n", "unix-env"),
        ("home = os.environ.get('HOME', '')\n", "unix-env"),
        ("multiprocessing.set_start_method('fork')\n", "unix-only-call"),
        ("path = f'{data_dir}/candles.csv'\n", "slash-join"),
        ("path = str(settings.BASE_DIR) + '/config'\n", "slash-join"),
        ("text = config_path.read_text()\n", "text-encoding"),
        ("partial_path.rename(target)\n", "rename"),
        ("os.rename(partial, target)\n", "rename"),
        ("with open(name, 'w') as out:\n    pass\n", "text-encoding"),
        ("with gzip.open(path, 'rt') as lines:\n    pass\n", "text-encoding"),
        ("with (folder / 'a.csv').open('w') as out:\n    pass\n", "text-encoding"),
    ],
)
def test_the_scanner_finds(code, rule):
    assert [f.rule for f in scan("x.py", code)] == [rule]


@pytest.mark.parametrize(
    "code",
    [
        '"""Docstrings may say /tmp and SIGKILL."""\n',
        "import os\nif os.name != 'nt':\n    os.kill(pid, 0)\n",
        "import sys, os\nif sys.platform == 'win32':\n    pass\nelse:\n    os.setsid()\n",
        "def alive(pid):\n    if os.name == 'nt':\n        return win(pid)\n    os.kill(pid, 0)\n",
        (
            "def alive(pid):\n    if os.name == 'nt':\n        try:\n            return w(pid)\n"
            "        finally:\n            close()\n    os.kill(pid, 0)\n"
        ),
        "sig = signal.SIGKILL if hasattr(signal, 'SIGKILL') else signal.SIGTERM\n",
        "try:\n    import fcntl\nexcept ImportError:\n    fcntl = None\n",
        "with contextlib.suppress(NotImplementedError):\n    loop.add_signal_handler(s, f)\n",
        "subprocess.run(cmd, stdin=subprocess.DEVNULL)\n",
        "url = f'{base_url}/health/'\n",
        "route = '/health/'\n",
        "path = settings.DATA_DIR / 'backups'\n",
        "text = config_path.read_text(encoding='utf-8')\n",
        "with gzip.open(path, 'rb') as raw:\n    pass\n",
        "with path.open('rb') as raw:\n    pass\n",
        "ledger.open(symbol='BTC', qty=1)\n",
        "partial_path.replace(target)\n",
        "column.rename('close')\n",
    ],
)
def test_the_scanner_accepts(code):
    assert scan("x.py", code) == []


# --- dev.ps1, dev.bat, .gitattributes ----------------------------------------------------------


def _lines(name: str) -> list[bytes]:
    return (ROOT / name).read_bytes().split(b"\n")


@pytest.mark.parametrize("name", ["dev.ps1", "dev.bat"])
def test_windows_scripts_have_crlf_line_endings(name):
    lines = _lines(name)
    assert lines[-1] == b"", f"{name} ends with a line break"
    assert all(line.endswith(b"\r") for line in lines[:-1]), f"{name}: every line ends CRLF"


@pytest.mark.parametrize("name", ["deploy.sh", "scripts/backup.sh", "scripts/restore.sh"])
def test_shell_scripts_have_lf_line_endings(name):
    assert b"\r" not in (ROOT / name).read_bytes()


def test_dev_ps1_sets_up_with_uv_then_starts_the_radar_or_the_tests():
    text = (ROOT / "dev.ps1").read_text(encoding="utf-8")
    assert "[switch]$Test" in text
    assert "-m pip install --quiet uv" in text
    assert "-m uv sync" in text
    assert re.search(r"-m uv run manage\.py radar @args", text)  # arguments passed through
    assert re.search(r"-m uv run pytest @args", text)
    assert "$LASTEXITCODE" in text  # a failed step stops it with that step's exit code
    assert "$ErrorActionPreference = 'Stop'" in text
    assert "Set-Location -LiteralPath $PSScriptRoot" in text  # runs from any folder


def test_dev_bat_calls_dev_ps1_with_its_arguments():
    text = (ROOT / "dev.bat").read_text(encoding="utf-8")
    assert 'powershell -NoProfile -ExecutionPolicy Bypass -File "%~dp0dev.ps1" %*' in text
    assert "exit /b %ERRORLEVEL%" in text


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@pytest.mark.parametrize(
    ("name", "eol"),
    [
        ("dev.ps1", "crlf"),
        ("dev.bat", "crlf"),
        ("deploy.sh", "lf"),
        ("scripts/backup.sh", "lf"),
        (".ci/run", "lf"),
    ],
)
def test_gitattributes_keeps_each_scripts_line_endings(name, eol):
    out = subprocess.run(
        ["git", "check-attr", "eol", "--", name],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert out.strip() == f"{name}: eol: {eol}"
