"""The gateway serves HTTPS/WSS when given OPSWIRE_TLS_CERT/OPSWIRE_TLS_KEY (DESIGN §7);
a missing, unreadable, unpaired or mismatched certificate stops it at start-up."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from gateway.settings import GatewaySettings
from opswire.launcher.embedded import free_port
from opswire.runtime.settings import load_settings
from tests.helpers.backends import Namespace
from tests.helpers.stack import Stack


@dataclass(frozen=True)
class Pem:
    cert: Path
    key: Path


def _self_signed(directory: Path, name: str = "gateway") -> Pem:
    pem = Pem(directory / f"{name}.crt", directory / f"{name}.key")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(pem.key),
            "-out",
            str(pem.cert),
        ],
        check=True,
        capture_output=True,
    )
    return pem


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> Pem:
    return _self_signed(tmp_path_factory.mktemp("tls"))


def _settings(jwt_secret: str, **values: object) -> GatewaySettings:
    return GatewaySettings.model_validate({"jwt_secret": jwt_secret, **values})


# --- settings ---------------------------------------------------------------------------------


def test_without_tls_settings_the_gateway_serves_plain_http(jwt_secret: str) -> None:
    settings = _settings(jwt_secret)
    assert settings.tls_cert is None and settings.tls_key is None


def test_a_certificate_and_its_key_are_accepted(jwt_secret: str, pem: Pem) -> None:
    settings = _settings(jwt_secret, tls_cert=str(pem.cert), tls_key=str(pem.key))
    assert (settings.tls_cert, settings.tls_key) == (pem.cert, pem.key)


@pytest.mark.parametrize("given", ["cert", "key"])
def test_one_without_the_other_is_refused(
    given: str,
    jwt_secret: str,
    pem: Pem,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OPSWIRE_JWT_SECRET", jwt_secret)
    monkeypatch.setenv(f"OPSWIRE_TLS_{given.upper()}", str(pem.cert if given == "cert" else pem.key))
    with pytest.raises(SystemExit):
        load_settings(GatewaySettings, "opswire gateway")
    err = capsys.readouterr().err
    assert "OPSWIRE_TLS_KEY: " in err and "set both or neither" in err, err


def test_missing_or_unreadable_files_are_refused(
    jwt_secret: str,
    pem: Pem,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OPSWIRE_JWT_SECRET", jwt_secret)
    monkeypatch.setenv("OPSWIRE_TLS_CERT", str(tmp_path / "nowhere.crt"))
    monkeypatch.setenv("OPSWIRE_TLS_KEY", str(tmp_path))  # a directory, not a file
    with pytest.raises(SystemExit):
        load_settings(GatewaySettings, "opswire gateway")
    err = capsys.readouterr().err
    assert f"OPSWIRE_TLS_CERT: Value error, {tmp_path / 'nowhere.crt'} is not a readable file" in err, err
    assert f"OPSWIRE_TLS_KEY: Value error, {tmp_path} is not a readable file" in err, err
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked.key"
        locked.write_bytes(pem.key.read_bytes())
        locked.chmod(0)
        with pytest.raises(ValueError, match="not a readable file"):
            _settings(jwt_secret, tls_cert=str(pem.cert), tls_key=str(locked))


def test_a_key_of_another_certificate_is_refused(jwt_secret: str, pem: Pem, tmp_path: Path) -> None:
    other = _self_signed(tmp_path, "other")
    with pytest.raises(ValueError, match="not a PEM certificate and its key"):
        _settings(jwt_secret, tls_cert=str(pem.cert), tls_key=str(other.key))
    with pytest.raises(ValueError, match="not a PEM certificate and its key"):
        _settings(jwt_secret, tls_cert=str(pem.key), tls_key=str(pem.key))


# --- the real process --------------------------------------------------------------------------


async def _until_healthy(stack: Stack, url: str, trust: ssl.SSLContext, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(verify=trust, timeout=2.0) as http:
        while time.monotonic() < deadline:
            process = stack.processes["gateway"]
            if process.poll() is not None:
                raise RuntimeError(f"gateway exited ({process.returncode}):\n{stack.log_tail('gateway')}")
            try:
                reply = await http.get(f"{url}/health")
            except httpx.TransportError:
                await asyncio.sleep(0.1)
                continue
            assert reply.status_code == 200, reply.text
            return
    raise TimeoutError(f"gateway not healthy over TLS in {timeout_s} s\n{stack.log_tail('gateway')}")


async def test_the_gateway_process_serves_https_and_wss_only(
    nats_url: str, namespace: Namespace, jwt_secret: str, pem: Pem, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        "NATS_URL": nats_url,  # the gateway alone: no auth, ingest or commands behind it
        "OPSWIRE_JWT_SECRET": jwt_secret,
        "OPSWIRE_HOST": "127.0.0.1",
        "OPSWIRE_PORT": str(port),
        "OPSWIRE_TLS_CERT": str(pem.cert),
        "OPSWIRE_TLS_KEY": str(pem.key),
        "PYTHONUNBUFFERED": "1",
        **namespace.env(),
    }
    stack = Stack(env=env, log_dir=tmp_path, port=port, namespace=namespace)
    trust = ssl.create_default_context(cafile=str(pem.cert))
    await stack.start("gateway")
    try:
        await _until_healthy(stack, f"https://127.0.0.1:{port}", trust)

        with pytest.raises(httpx.TransportError):  # plain HTTP on the TLS port
            async with httpx.AsyncClient(timeout=5.0) as plain:
                await plain.get(f"http://127.0.0.1:{port}/health")
        with pytest.raises(httpx.TransportError):  # a certificate nobody vouched for
            async with httpx.AsyncClient(timeout=5.0) as strict:
                await strict.get(f"https://127.0.0.1:{port}/health")

        async with connect(f"wss://127.0.0.1:{port}/api/v1/agents/ws", ssl=trust) as ws:
            await ws.send(json.dumps({"type": "ping"}))
            error = json.loads(await ws.recv())
            # The gateway closes it (leaving the block first would close it ourselves, 1000).
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert (error["type"], error["code"]) == ("error", "unauthenticated")
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    finally:
        await stack.stop("gateway")
