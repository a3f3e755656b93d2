"""Starts real `sluiced` daemons for the boto3 suite: free ports, a temporary data directory,
two cores (so requests cross cores), one with the AWS quotas and one without.

The binary is $SLUICED, or target/debug/sluiced (scripts/test.sh builds it first).
"""
import os
import socket
import subprocess
import tempfile
import time

from ports import free_port  # noqa: F401 (the tests import it from here)

import boto3
import pytest
from botocore.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SLUICED = os.environ.get("SLUICED", os.path.join(ROOT, "target", "debug", "sluiced"))

# Dummy credentials: Sluice accepts SigV4 headers without checking them (yet).
os.environ.setdefault("AWS_ACCESS_KEY_ID", "sluice")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "sluice")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def why_it_failed(log_path):
    """The lines of a sluiced's stderr log that say why it failed (a panic and the lines after
    it, an `Error:`), for an assertion message: CI shows that message, not the whole log."""
    try:
        with open(log_path, errors="replace") as log:
            lines = log.read().splitlines()
    except OSError as error:
        return f"(no stderr log: {error})"
    picked = []
    for i, line in enumerate(lines):
        if "panicked" in line or line.startswith("Error") or " ERROR " in line:
            picked.extend(lines[i:i + 4])
    return "\n".join(picked[-40:]) or "(nothing about it in stderr: " + log_path + ")"


def stop_cleanly(process, log_path):
    """SIGTERM, then sluiced must exit with 0 within 30 s; otherwise the assertion carries the
    reason from its stderr."""
    process.terminate()
    code = process.wait(timeout=30)
    assert code == 0, f"sluiced did not exit cleanly on SIGTERM (exit {code}):\n{why_it_failed(log_path)}"


class Daemon:
    def __init__(self, limits, *extra_args):
        assert os.access(SLUICED, os.X_OK), f"{SLUICED} is not an executable: build sluiced or set $SLUICED"
        self.dir = tempfile.TemporaryDirectory(prefix="sluice-aws-")
        self.native_port, self.http_port = free_port(), free_port()
        self.endpoint = f"http://127.0.0.1:{self.http_port}"
        self.log_path = os.path.join(self.dir.name, "sluiced.stderr")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [SLUICED, "--data-dir", os.path.join(self.dir.name, "data"), "--cores", "2", "--limits", limits,
                 "--listen", f"127.0.0.1:{self.native_port}", "--http-listen", f"127.0.0.1:{self.http_port}",
                 "--metrics-listen", "127.0.0.1:0",
                 "--log-level", "warn", *extra_args],
                stderr=log,
            )
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, f"sluiced exited during start-up: {self.process.returncode}"
            try:
                socket.create_connection(("127.0.0.1", self.http_port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "sluiced did not start listening"
                time.sleep(0.05)

    def client(self, **config):
        """A boto3 Kinesis client. No retries by default: the tests want to see every error."""
        settings = {"retries": {"total_max_attempts": 1}, "read_timeout": 30}
        settings.update(config)
        return boto3.client("kinesis", endpoint_url=self.endpoint, region_name="us-east-1",
                            config=Config(**settings))

    def stop(self):
        stop_cleanly(self.process, self.log_path)
        self.dir.cleanup()


@pytest.fixture(scope="session")
def kinesis_daemon():
    """sluiced enforcing the AWS per-shard quotas."""
    daemon = Daemon("kinesis")
    yield daemon
    daemon.stop()


@pytest.fixture(scope="session")
def unlimited_daemon():
    """sluiced without quotas, for tests that read one shard many times quickly."""
    daemon = Daemon("unlimited")
    yield daemon
    daemon.stop()


@pytest.fixture()
def kinesis(kinesis_daemon):
    return kinesis_daemon.client()


@pytest.fixture()
def fast(unlimited_daemon):
    return unlimited_daemon.client()


@pytest.fixture()
def raw(kinesis_daemon):
    """A client that sends what it is given: botocore's own parameter validation off, so that
    the server's validation is what answers."""
    return kinesis_daemon.client(parameter_validation=False)


_names = iter(range(1_000_000))


@pytest.fixture()
def stream_name(request):
    """A fresh stream name per test."""
    return f"{request.node.name[:80].replace('[', '-').replace(']', '')}-{next(_names)}"
