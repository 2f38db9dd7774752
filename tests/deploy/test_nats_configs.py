"""The shipped nats-server configs are the generator's output and nats-server accepts them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from opswire.cli import main
from opswire.contract.subjects import Subjects
from opswire.launcher.embedded import nats_server_binary
from opswire.runtime.natsconf import render_cluster_node, render_k8s, render_single, route_url_env
from opswire.runtime.permissions import ROLES
from tests.deploy.natsproc import NATS_DIR, password_environ, role_passwords, route_environ

SHIPPED = {
    "single.conf": [],
    "cluster-node1.conf": ["--cluster-node", "1"],
    "cluster-node2.conf": ["--cluster-node", "2"],
    "cluster-node3.conf": ["--cluster-node", "3"],
}


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    main(["nats-config", *args])
    return capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_config_is_the_generators_output(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Regenerate with: opswire nats-config [--cluster-node N] > deploy/nats/<name>
    assert (NATS_DIR / name).read_text() == _cli(SHIPPED[name], capsys), (
        f"deploy/nats/{name} drifted from the permission table; regenerate it with "
        f"`opswire nats-config {' '.join(SHIPPED[name])}`"
    )


def test_cli_renders_the_functions_output(capsys: pytest.CaptureFixture[str]) -> None:
    acme = Subjects("acme", "ACME")
    prefixes = ["--subject-prefix", "acme", "--stream-prefix", "ACME"]
    assert _cli(prefixes, capsys) == render_single(acme)
    assert _cli(["--cluster-node", "2", *prefixes], capsys) == render_cluster_node(2, acme)
    assert _cli(["--k8s"], capsys) == render_k8s()
    single = render_single(acme)
    assert '"acme.metrics.>"' in single and "$JS.API.STREAM.INFO.ACME_METRICS" in single
    assert "opswire.metrics" not in single
    assert "--subject-prefix acme --stream-prefix ACME" in single  # how to regenerate it


def test_cli_refuses_a_bad_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["nats-config", "--subject-prefix", "a b"])
    assert "--subject-prefix" in str(exc.value)
    with pytest.raises(SystemExit):
        main(["nats-config", "--cluster-node", "4"])
    capsys.readouterr()


def test_configs_hold_no_secret_and_keep_monitoring_local() -> None:
    for text in [render_single(), render_k8s(), *(render_cluster_node(n) for n in (1, 2, 3))]:
        assert "password: $OPSWIRE_NATS_" in text
        assert 'password: "' not in text  # no literal password anywhere
        assert 'http: "127.0.0.1:8222"' in text
        assert "http_port" not in text and "monitor_port" not in text
        # TLS is there, commented out.
        assert "# tls {" in text and "ca_file" in text and "# verify: true" in text
        for role in ROLES:
            assert f'user: "{role}"' in text
    cluster = render_cluster_node(1)
    assert "authorization { user: route, password: $OPSWIRE_NATS_ROUTE_PASSWORD }" in cluster
    assert f"${route_url_env(2)}" in cluster and f"${route_url_env(3)}" in cluster
    assert f"${route_url_env(1)}" not in cluster
    assert "  #   verify: true" in cluster  # routes' TLS is mutual once uncommented


def _check(path: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [nats_server_binary(), "-t", "-c", path],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )


def _full_env() -> dict[str, str]:
    routes = route_environ("p" + "0" * 32, {n: 16220 + n for n in (0, 1, 2, 3)})
    return {**password_environ(role_passwords()), **routes, "POD_NAME": "nats-0"}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_nats_server_accepts_shipped_config(name: str) -> None:
    result = _check(str(NATS_DIR / name), _full_env())
    assert result.returncode == 0, result.stderr
    assert "is valid" in result.stderr + result.stdout
    # And the passwords really are environment references: without them it refuses.
    missing = _check(str(NATS_DIR / name), {})
    assert missing.returncode != 0
    assert "OPSWIRE_NATS_" in missing.stderr


def test_nats_server_accepts_k8s_config(tmp_path: Path) -> None:
    path = tmp_path / "k8s.conf"
    path.write_text(render_k8s())
    result = _check(str(path), _full_env())
    assert result.returncode == 0, result.stderr


def test_module_entry_point() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "opswire", "nats-config"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert out == render_single()
