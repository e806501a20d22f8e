"""Azurite, the Azure Storage emulator (installed from npm by `make tools`), on a free loopback port: started for
the test session (tests/conftest.py) and for the events benchmark, the same way."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="  # the emulator's public key


class AzuriteError(RuntimeError):
    """Azurite is not installed, exited, or did not answer in time."""


def start(service: str, location: Path, timeout_s: float = 60.0, port: int = 0) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``azurite-<service>`` (blob or queue) on a free loopback port (or ``port``: the emulator's default ones,
    for what reads ``UseDevelopmentStorage=true``); the process and the port, once it answers."""
    binary = REPO_ROOT / "node_modules" / ".bin" / f"azurite-{service}"
    if not binary.exists():
        raise AzuriteError("Azurite is not installed: run `make tools` (npm install), as `make test` does")
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise AzuriteError(f"port {port} on 127.0.0.1 is taken: stop what listens there (another emulator?)") from None
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            str(binary),
            "--silent",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--location",
            str(location),
            f"--{service}Host",
            "127.0.0.1",
            f"--{service}Port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AzuriteError(f"Azurite ({service}) exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.1)
    proc.kill()
    raise AzuriteError(f"Azurite ({service}) did not start within {timeout_s:.0f} s")


def connection_string(service: str, port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};"
        f"{service.capitalize()}Endpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
