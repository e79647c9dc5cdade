"""The client commands against a real `suanwang serve` (SQLite, loopback), driven through the console script: every
command with and without --json, its output and exit code; refusals and a server that is down are one line, exit 2."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

SUANWANG = str(Path(sys.executable).with_name("suanwang"))  # the installed console script
ADMIN = "cli-test-admin-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args: str, token: str | None = None, server: str | None = None, timeout: float = 60):
    """`suanwang ARGS` with SUANWANG_SERVER / SUANWANG_TOKEN set; never a traceback."""
    env = dict(os.environ, COLUMNS="200")
    env.pop("SUANWANG_TOKEN", None)
    if server is not None:
        env["SUANWANG_SERVER"] = server
    if token is not None:
        env["SUANWANG_TOKEN"] = token
    p = subprocess.run([SUANWANG, *args], capture_output=True, text=True, env=env, timeout=timeout)
    assert "Traceback" not in p.stderr + p.stdout, p.stderr
    return p


def refused(p) -> str:
    """The one-line error of a refused command (exit code 2)."""
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    return lines[0]


@contextmanager
def serving(tmp: Path, *args: str, admin: str = ADMIN):
    """`suanwang serve` (with `args`) on a free loopback port and a fresh SQLite file under `tmp`, its jobs
    simulated for 600 s (they keep their cores while a test reads or cancels them); yields its URL once
    /healthz answers (60 s at most), and stops it after."""
    port = free_port()
    cmd = [SUANWANG, "serve", "--db", f"sqlite:///{tmp / 'cli.db'}", "--port", str(port), "--admin-token", admin]
    cmd += ["--workdir", str(tmp / "jobs"), *args]
    env = dict(os.environ, SUANWANG_SIMULATED_RUN_S="600")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not start in 60 s") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`suanwang serve` on a free loopback port and a fresh SQLite file; its URL."""
    with serving(tmp_path_factory.mktemp("serve")) as url:
        yield url


@pytest.fixture(scope="module")
def tenant_token(server) -> str:
    """A tenant token made with the CLI itself: `tenant create`, then `token create` (plain and --json)."""
    p = run("tenant", "create", "acme", "--json", server=server, token=ADMIN)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["name"] == "acme"
    p = run("tenant", "list", server=server, token=ADMIN)
    assert p.returncode == 0 and "acme" in p.stdout
    p = run("tenant", "list", "--json", server=server, token=ADMIN)
    assert p.returncode == 0 and "acme" in [t["name"] for t in json.loads(p.stdout)]
    p = run("token", "create", "--role", "tenant", "--tenant", "acme", server=server, token=ADMIN)
    assert p.returncode == 0, p.stderr
    token = p.stdout.strip()
    assert len(token.split()) == 1 and len(token) >= 20
    p = run("token", "create", "--role", "operator", "--json", server=server, token=ADMIN)
    assert p.returncode == 0 and json.loads(p.stdout)["role"] == "operator"
    return token


def readme_client_lines() -> list[list[str]]:
    """The README's client examples (`suanwang tenant|token|submit|jobs|sites ...`), comments dropped."""
    text = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    lines = [line.split("  #")[0].strip() for line in text.splitlines()]
    client = ("suanwang tenant ", "suanwang token ", "suanwang submit ", "suanwang jobs ", "suanwang sites ")
    return [shlex.split(line)[1:] for line in lines if line.startswith(client)]


def test_readme_client_examples_work_as_written(server):
    """Each README line, run as written with the example URL, `secret` and `T` replaced by this test's values."""
    lines = readme_client_lines()
    assert [args[0] for args in lines] == ["tenant", "token", "submit", "jobs", "sites"]
    token = None
    for args in lines:
        args = [server if a == "http://127.0.0.1:8000" else ADMIN if a == "secret" else a for a in args]
        args = [token if a == "T" else a for a in args]
        p = run(*args)
        assert p.returncode == 0, (args, p.stderr)
        if args[0] == "token":
            token = p.stdout.strip()
        if args[0] == "submit":
            assert "submitted" in p.stdout and "许昌" in p.stdout and "demo" in p.stdout
        if args[0] == "jobs":
            assert "jobs (1 in all)" in p.stdout and "许昌" in p.stdout
        if args[0] == "sites":
            assert len(json.loads(p.stdout)) > 10


def test_submit_json_from_options_and_file_is_idempotent_with_a_key(server, tenant_token, tmp_path):
    p = run("submit", "--origin", "Xuchang", "--gpu", "2", "--cpu", "0", "--labels", "ai", "--json", server=server,
            token=tenant_token)  # fmt: skip
    assert p.returncode == 0, p.stderr
    (job,) = json.loads(p.stdout)
    assert (job["gpu_cards"], job["cpu_cores"], job["labels"], job["tenant"]) == (2, 0, ["ai"], "acme")
    assert job["origin"] == "411000" and job["state"] in ("queued", "placed", "running", "done", "rejected")
    f = tmp_path / "jobs.json"
    f.write_text(json.dumps([{"origin": "郑州", "cpu_cores": 2}, {"origin": "上海", "runtime_h": 0.5}]), "utf-8")
    first = run("submit", "--file", str(f), "--key", "batch-1", "--json", server=server, token=tenant_token)
    again = run("submit", "--file", str(f), "--key", "batch-1", "--json", server=server, token=tenant_token)
    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    ids = [j["id"] for j in json.loads(first.stdout)]
    assert len(ids) == 2 and ids == [j["id"] for j in json.loads(again.stdout)]
    listed = json.loads(run("jobs", "--json", "--limit", "500", server=server, token=tenant_token).stdout)
    assert set(ids) <= {j["id"] for j in listed} and all(j["tenant"] == "acme" for j in listed)


def test_job_cancel_and_logs(server, tenant_token):
    p = run("submit", "--origin", "北京", "--runtime-h", "100", "--json", server=server, token=tenant_token)
    job_id = json.loads(p.stdout)[0]["id"]
    shown = run("job", job_id, "--json", server=server, token=tenant_token)
    assert shown.returncode == 0 and json.loads(shown.stdout)["id"] == job_id
    table = run("job", job_id, server=server, token=tenant_token)
    assert table.returncode == 0 and job_id in table.stdout
    logs = run("logs", job_id, "--json", server=server, token=tenant_token)
    assert logs.returncode == 0 and json.loads(logs.stdout)["job_id"] == job_id
    assert run("logs", job_id, server=server, token=tenant_token).returncode == 0
    done = run("cancel", job_id, "--json", server=server, token=tenant_token)
    assert done.returncode == 0 and json.loads(done.stdout)["state"] == "cancelled"
    other = json.loads(run("submit", "--origin", "北京", "--json", server=server, token=tenant_token).stdout)[0]["id"]
    table = run("cancel", other, server=server, token=tenant_token)
    assert table.returncode == 0 and "cancelled" in table.stdout and other in table.stdout
    assert "HTTP 409" in refused(run("cancel", job_id, server=server, token=tenant_token))
    assert "HTTP 404" in refused(run("job", "job_nope", server=server, token=tenant_token))
    assert "HTTP 404" in refused(run("job", "../../tenants", server=server, token=tenant_token))


def test_sites_table_and_json(server, tenant_token):
    p = run("sites", "--json", server=server, token=tenant_token)
    assert p.returncode == 0, p.stderr
    sites = json.loads(p.stdout)
    assert len(sites) > 10 and {"id", "cpu_free", "status"} <= set(sites[0])
    table = run("sites", server=server, token=tenant_token)
    assert table.returncode == 0 and sites[0]["id"] in table.stdout
    assert "Infinity" not in p.stdout and "NaN" not in p.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["submit", "--origin", "许昌", "--cpu", "0"], "--cpu: the job asks for no cores and no cards"),
        (["submit", "--origin", "许昌", "--runtime-h", "inf"], "--runtime-h: inf is not a finite number"),
        (["submit", "--origin", "许昌", "--runtime-h", "4", "--deadline-h", "2"], "--deadline-h"),
        (["submit", "--origin", "Atlantis"], "HTTP 422"),
        (["submit"], "give --file jobs.json or --origin CITY"),
    ],
)
def test_refusals_are_one_line(server, tenant_token, args, words):
    assert words in refused(run(*args, server=server, token=tenant_token))


def test_the_api_refuses_what_job_files_refuse_naming_the_field(server, tenant_token, tmp_path):
    f = tmp_path / "bad.json"
    f.write_text(json.dumps({"jobs": [{"origin": "郑州"}, {"origin": "郑州", "cpu_cores": 0}]}), "utf-8")
    line = refused(run("submit", "--file", str(f), server=server, token=tenant_token))
    assert "HTTP 422" in line and "jobs.1.cpu_cores" in line and "no cores and no cards" in line


def test_wrong_token_and_wrong_role(server, tenant_token):
    assert "HTTP 401" in refused(run("jobs", server=server, token="not-a-token"))
    assert "HTTP 403" in refused(run("tenant", "list", server=server, token=tenant_token))
    line = refused(run("submit", "--origin", "许昌", server=server, token=ADMIN))
    assert "HTTP 422" in line and "tenant" in line
    p = run("submit", "--origin", "许昌", "--tenant", "acme", "--json", server=server, token=ADMIN)
    assert p.returncode == 0 and json.loads(p.stdout)[0]["tenant"] == "acme"


@pytest.mark.parametrize("command", [["jobs"], ["sites"], ["submit", "--origin", "许昌"], ["tenant", "list"]])
def test_a_server_that_is_down_is_one_line_exit_2(command):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    start = time.monotonic()
    line = refused(run(*command, server=url, token="t"))
    assert "cannot reach" in line and url in line and time.monotonic() - start < 30


def test_a_server_url_that_is_not_one(tmp_path):
    assert "cannot reach" in refused(run("jobs", server="not a url", token="t"))
