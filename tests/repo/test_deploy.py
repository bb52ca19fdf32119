"""``deploy/``: the compose file, the Dockerfile and the nginx config name what the app really is.

No container engine runs here, so these files are checked, not run: the compose file is parsed
with PyYAML, nginx's config with a small parser of its block syntax (and by ``nginx -t`` itself
when nginx is installed). Each check ties a value in a file to the code it must match: the module
the replicas run, its port and health endpoint, its settings, its ping intervals.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import ROOT, missing_tool, wait_timeout
from fastapi import sse
from fastapi.testclient import TestClient

import course_server.settings
from course_server import RunningServer, Settings, create_app, start
from course_server.tools.cluster import Nginx, find_nginx
from course_server.tools.redis_server import free_port

DEPLOY = ROOT / "deploy"
PORT = "8000"

Directive = tuple[str, list[str], list[Any]]  # name, arguments, children (for blocks)


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))


def command(service: dict[str, Any]) -> list[str]:
    value = service["command"]
    return shlex.split(value) if isinstance(value, str) else [str(part) for part in value]


def nginx(text: str) -> list[Directive]:
    """nginx's syntax: ``name args;`` and ``name args { … }``, ``#`` comments, quoted strings."""
    tokens = re.findall(r"'[^']*'|\"[^\"]*\"|[{};]|[^\s{};]+", re.sub(r"#[^\n]*", "", text))
    stack: list[list[Any]] = [[]]
    words: list[str] = []
    for token in tokens:
        if token == ";":
            stack[-1].append((words[0], words[1:], []))
            words = []
        elif token == "{":
            block: list[Any] = []
            stack[-1].append((words[0], words[1:], block))
            stack.append(block)
            words = []
        elif token == "}":
            assert not words, f"missing ';' before '}}' after {words}"
            stack.pop()
        else:
            words.append(token)
    assert len(stack) == 1 and not words, "unbalanced braces"
    return stack[0]


def find(directives: list[Directive], name: str, *args: str) -> list[Directive]:
    return [d for d in directives if d[0] == name and list(d[1][: len(args)]) == list(args)]


def nginx_conf() -> list[Directive]:
    return nginx((DEPLOY / "nginx.conf").read_text(encoding="utf-8"))


def root_location() -> list[Any]:
    [server] = find(nginx_conf(), "server")
    [location] = find(server[2], "location", "/")
    return location[2]


def app_options() -> dict[str, str]:
    """The app's command-line options (after ``python -m course_server``), name → value."""
    args = command(compose()["services"]["app"])
    return dict(zip(args[3::2], args[4::2], strict=True))


def seconds(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m)?", value).groups()  # type: ignore[union-attr]
    return int(number) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[unit]


# compose.yaml ---------------------------------------------------------------------------------


def test_compose_runs_redis_the_app_and_nginx() -> None:
    assert set(compose()["services"]) == {"redis", "app", "nginx"}


def test_the_app_replicas_run_the_course_server_module_on_its_port_with_redis() -> None:
    app = compose()["services"]["app"]
    args = command(app)
    assert args[:3] == ["python", "-m", "course_server"]
    assert importlib.util.find_spec(args[2]) is not None
    options = app_options()
    assert options["--host"] == "0.0.0.0" and options["--port"] == PORT
    assert options["--redis-url"] == "redis://redis:6379/0"
    assert app["deploy"]["replicas"] > 1
    assert app["depends_on"]["redis"]["condition"] == "service_healthy"


def test_the_app_healthcheck_asks_the_real_health_endpoint() -> None:
    test = " ".join(compose()["services"]["app"]["healthcheck"]["test"])
    assert f"127.0.0.1:{PORT}/healthz" in test
    with TestClient(create_app(Settings())) as client:
        assert client.get("/healthz").json() == {"status": "ok"}


def test_every_course_variable_in_compose_is_a_real_setting() -> None:
    source = Path(course_server.settings.__file__).read_text(encoding="utf-8")
    known = set(re.findall(r"\"(COURSE_[A-Z_]+)\"", source))
    environment = compose()["services"]["app"]["environment"]
    assert set(environment) <= known
    assert "COURSE_JWT_SECRET" in environment  # replicas must share one signing key


def test_no_deprecated_compose_version_or_gunicorn_worker_class() -> None:
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    assert "version" not in compose() and "gunicorn" not in text


def test_the_app_image_is_built_from_the_dockerfile_that_runs_the_same_module() -> None:
    build = compose()["services"]["app"]["build"]
    dockerfile = (DEPLOY / build["context"] / build["dockerfile"]).resolve()
    assert dockerfile == DEPLOY / "Dockerfile"
    text = dockerfile.read_text(encoding="utf-8")
    assert "COPY course_server ./course_server" in text and f"EXPOSE {PORT}" in text
    assert re.search(r'CMD \["python", "-m", "course_server".*"--port", "8000"\]', text)


def test_nginx_gets_its_config_from_this_folder_and_is_the_only_published_port() -> None:
    services = compose()["services"]
    assert "./nginx.conf:/etc/nginx/conf.d/default.conf:ro" in services["nginx"]["volumes"]
    assert [name for name, service in services.items() if "ports" in service] == ["nginx"]


# nginx.conf -------------------------------------------------------------------------------


def test_nginx_forwards_the_websocket_upgrade_headers_through_a_map() -> None:
    [upgrade_map] = find(nginx_conf(), "map", "$http_upgrade", "$connection_upgrade")
    entries = {d[0]: d[1] for d in upgrade_map[2]}
    assert entries == {"default": ["upgrade"], "''": ["close"]}
    location = root_location()
    assert find(location, "proxy_http_version", "1.1")
    assert find(location, "proxy_set_header", "Upgrade", "$http_upgrade")
    assert find(location, "proxy_set_header", "Connection", "$connection_upgrade")


def test_nginx_waits_longer_than_the_app_stays_silent() -> None:
    [timeout] = find(root_location(), "proxy_read_timeout")
    assert seconds(timeout[1][0]) > max(Settings().ws_ping_interval, sse._PING_INTERVAL)


def test_nginx_does_not_buffer_event_streams() -> None:
    assert find(root_location(), "proxy_buffering", "off")


def test_nginx_keeps_the_host_with_its_port_for_the_origin_check() -> None:
    assert find(root_location(), "proxy_set_header", "Host", "$http_host")


def locations() -> list[Directive]:
    [server] = find(nginx_conf(), "server")
    return find(server[2], "location")


def test_every_proxied_location_passes_the_browsers_host() -> None:
    """nginx's default Host is the upstream's name ("course_app"): the app would answer 400."""
    for location in locations():
        if find(location[2], "proxy_pass"):
            assert find(location[2], "proxy_set_header", "Host", "$http_host"), location[1]


def test_the_compose_hosts_are_the_names_nginx_is_published_under() -> None:
    services = compose()["services"]
    hosts = services["app"]["environment"]["COURSE_ALLOWED_HOSTS"]
    allowed = re.fullmatch(r"\$\{COURSE_ALLOWED_HOSTS:-(.*)\}", hosts)[1].split(",")  # type: ignore[index]
    published = {port.split(":")[0] for port in services["nginx"]["ports"]}
    assert {host.rsplit(":", 1)[1] for host in allowed} == published
    assert Settings.from_env({"COURSE_ALLOWED_HOSTS": ",".join(allowed)}).allowed_hosts


def test_the_app_trusts_forwarded_headers_from_nginx_alone() -> None:
    services = compose()["services"]
    nginx_address = services["nginx"]["networks"]["front"]["ipv4_address"]
    assert app_options()["--forwarded-allow-ips"] == nginx_address
    for name in ("app", "redis"):
        assert "front" in services[name]["networks"]


def test_nginx_throttles_the_login_posts() -> None:
    [login] = [d for d in locations() if d[1][:1] == ["~"]]
    assert all(re.fullmatch(login[1][1], path) for path in ("/token", "/session"))
    [limit] = find(login[2], "limit_req")
    zone = limit[1][0].removeprefix("zone=")
    assert find(nginx_conf(), "limit_req_zone", "$login_attempt", f"zone={zone}:10m")
    [by_method] = find(nginx_conf(), "map", "$request_method", "$login_attempt")
    keys = {d[0]: d[1] for d in by_method[2]}
    assert keys == {"POST": ["$binary_remote_addr"], "default": ['""']}
    [server] = find(nginx_conf(), "server")
    assert find(server[2], "limit_req_status", "429")


def test_nginx_caps_connections_per_address() -> None:
    [server] = find(nginx_conf(), "server")
    assert find(nginx_conf(), "limit_conn_zone", "$binary_remote_addr")
    assert find(server[2], "limit_conn")


def test_nginx_cuts_slow_headers_and_big_bodies_as_the_app_does() -> None:
    [server] = find(nginx_conf(), "server")
    [header_timeout] = find(server[2], "client_header_timeout")
    assert seconds(header_timeout[1][0]) <= Settings().header_timeout
    [body] = find(server[2], "client_max_body_size")
    assert int(body[1][0].removesuffix("k")) * 1024 == Settings().max_message_bytes


def test_nginx_balances_over_the_app_service_and_port() -> None:
    upstreams = find(nginx_conf(), "upstream")
    [upstream] = upstreams
    assert find(upstream[2], "server", f"app:{PORT}")
    [server] = find(nginx_conf(), "server")
    assert find(server[2], "location", "=", "/healthz")
    passes = [d[1][0] for d in find(root_location(), "proxy_pass")]
    assert passes == [f"http://{upstream[1][0]}"]


def test_nginx_itself_accepts_the_config(tmp_path: Path) -> None:
    nginx = find_nginx()
    if nginx is None:
        missing_tool("nginx is not installed: `apt-get install nginx-light`")
    # "app" resolves only inside compose's network: stand in a loopback address for it.
    conf = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    (tmp_path / "default.conf").write_text(conf.replace("server app:", "server 127.0.0.1:"))
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{ include {tmp_path}/default.conf; }}\n"
    )
    done = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def proxied() -> Iterator[tuple[RunningServer, int]]:
    """A course server behind the real nginx, which browsers reach as ``localhost:PORT``."""
    nginx = find_nginx()
    if nginx is None:
        missing_tool("nginx is not installed: `apt-get install nginx-light`")
    with start(name="behind-nginx", settings=Settings(jwt_secret="t")) as server:
        port = free_port()
        with Nginx(nginx, listen=port, replicas=[server.port], config=DEPLOY / "nginx.conf"):
            yield server, port


def test_behind_nginx_the_app_answers_the_browsers_host(proxied: tuple[RunningServer, int]) -> None:
    _, port = proxied
    for path in ("/healthz", "/readyz", "/"):
        assert (
            httpx.get(f"http://localhost:{port}{path}", timeout=wait_timeout()).status_code == 200
        )


def test_behind_nginx_a_flood_of_login_posts_gets_429(proxied: tuple[RunningServer, int]) -> None:
    _, port = proxied
    wrong = {"username": "alice", "password": "guess"}
    with httpx.Client(base_url=f"http://localhost:{port}", timeout=wait_timeout(10)) as http:
        statuses = [http.post("/token", data=wrong).status_code for _ in range(12)]
        assert statuses.count(429) >= 12 - 6  # 5 in the burst, perhaps one more from the rate
        assert {http.get("/session").status_code for _ in range(10)} == {401}  # GETs are free
