"""The production deployment files, checked without a Docker engine.

docker-compose.yml against the Compose specification (tests/deploy/compose-spec.json,
see README.md there), by Debian's docker-compose when it is installed, and for
what a schema cannot say: wiring between services, paths the builds copy,
secrets without defaults, and .env.example in step with the compose file.
No database: none of these tests touches Django.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from jsonschema import Draft7Validator

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SCHEMA = Path(__file__).with_name("compose-spec.json")

PORTAL_DOCKERFILE = "docker/Dockerfile"
PORTAL_SERVICES = {"web", "worker", "worker-gpu", "beat", "grader"}
# Secrets compose must refuse to start without (the ${VAR:?message} form).
REQUIRED_SECRETS = {
    "POSTGRES_PASSWORD",
    "SECRET_KEY",
    "ERUMLAB_HUB_API_TOKEN",
    "ERUMLAB_HUB_CLIENT_SECRET",
}
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|SECRET_KEY|PRIVATE_KEY)$")

# What an operator's .env would hold.
TEST_ENV = {
    "POSTGRES_PASSWORD": "test-postgres-password",
    "SECRET_KEY": "test-secret-key",
    "ALLOWED_HOSTS": "erumlab.example.org",
    "ERUMLAB_PORTAL_URL": "https://erumlab.example.org",
    "ERUMLAB_HUB_URL": "https://hub.erumlab.example.org",
    "ERUMLAB_HUB_API_TOKEN": "test-hub-api-token",
    "ERUMLAB_HUB_CLIENT_SECRET": "test-hub-client-secret",
}


# --- interpolation, as compose does it -------------------------------------

# $$ (a literal $), ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error},
# ${NAME?error}, ${NAME:+alternative}, ${NAME+alternative}, $NAME. Nested
# references are not supported: a "${" left over fails the tests that use this.
_REFERENCE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(LookupError):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    def replace(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        op, arg = match["op"] or "", match["arg"] or ""
        value = env.get(name)
        # With a colon, empty counts as unset.
        missing = (value is None or value == "") if op.startswith(":") else value is None
        if op.endswith("-"):
            return arg if missing else value
        if op.endswith("?"):
            if missing:
                raise MissingVariable(f"{name}: {arg}")
            return value
        if op.endswith("+"):
            return "" if missing else arg
        return value or ""

    return _REFERENCE.sub(replace, text)


def interpolate_values(node: object, env: dict[str, str]) -> object:
    """Every string value of a loaded YAML document, interpolated (keys are left alone)."""
    if isinstance(node, dict):
        return {key: interpolate_values(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_values(item, env) for item in node]
    if isinstance(node, str):
        return interpolate(node, env)
    return node


def references(text: str) -> list[tuple[str, str, str]]:
    """(name, operator, argument) of every variable reference in ``text``."""
    return [
        (m["braced"] or m["named"], m["op"] or "", m["arg"] or "")
        for m in _REFERENCE.finditer(text)
        if not m["escaped"]
    ]


def raw_compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def strings(node: object) -> list[str]:
    if isinstance(node, dict):
        return [text for value in node.values() for text in strings(value)]
    if isinstance(node, list):
        return [text for item in node for text in strings(item)]
    return [node] if isinstance(node, str) else []


def compose_references() -> list[tuple[str, str, str]]:
    """Every variable reference in the compose file's values (comments left out)."""
    return [found for text in strings(raw_compose()) for found in references(text)]


def compose(env: dict[str, str] | None = None) -> dict:
    return interpolate_values(raw_compose(), TEST_ENV if env is None else env)


def environment(service: dict) -> dict[str, str]:
    value = service.get("environment") or {}
    if isinstance(value, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in value)
    return {key: "" if item is None else str(item) for key, item in value.items()}


def command(service: dict) -> list[str]:
    value = service.get("command") or []
    return shlex.split(value) if isinstance(value, str) else [str(item) for item in value]


def service_networks(service: dict) -> set[str]:
    return set(service.get("networks") or ["default"])


def env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


# --- the helper itself ------------------------------------------------------


def test_interpolation_follows_compose_rules():
    env = {"SET": "value", "EMPTY": ""}
    assert interpolate("a ${SET} $SET $$SET", env) == "a value value $SET"
    assert interpolate("${UNSET:-fallback} ${EMPTY:-fallback} ${EMPTY-fallback}", env) == (
        "fallback fallback "
    )
    assert interpolate("${SET:+alt}|${EMPTY:+alt}|${EMPTY+alt}", env) == "alt||alt"
    assert interpolate("${SET:?needed}", env) == "value"
    for text in ("${UNSET:?needed}", "${EMPTY:?needed}", "${UNSET?needed}"):
        with pytest.raises(MissingVariable, match="needed"):
            interpolate(text, env)


# --- the Compose specification ----------------------------------------------


def schema_errors(document: dict) -> list[str]:
    # Draft 7: the keywords the vendored schema uses are all Draft 4/7 ones
    # (docker-compose 1.29 itself validates with Draft 4), and the current
    # compose-spec declares draft-07. Its own "$schema" names 2019-09 by a URI
    # jsonschema does not know.
    schema = json.loads(SCHEMA.read_text())
    Draft7Validator.check_schema(schema)
    errors = Draft7Validator(schema).iter_errors(document)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
        for error in sorted(errors, key=lambda error: list(map(str, error.absolute_path)))
    ]


def test_compose_file_matches_the_compose_specification():
    document = compose()
    assert "${" not in json.dumps(document), "a reference the interpolation did not resolve"
    assert schema_errors(document) == []


def test_schema_check_rejects_a_misspelt_service_key():
    document = compose()
    document["services"]["web"]["enviroment"] = {"A": "b"}
    assert any("enviroment" in error for error in schema_errors(document))


def test_compose_refuses_to_interpolate_without_each_required_secret():
    for secret in sorted(REQUIRED_SECRETS):
        env = {name: value for name, value in TEST_ENV.items() if name != secret}
        with pytest.raises(MissingVariable, match=secret):
            compose(env)


# --- Debian's docker-compose -------------------------------------------------


def run_docker_compose(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    executable = shutil.which("docker-compose")
    if executable is None:
        reason = "the docker-compose executable is not installed (Debian package docker-compose)"
        if os.environ.get("ERUMLAB_REQUIRE_COMPOSE") == "1":
            pytest.fail(f"ERUMLAB_REQUIRE_COMPOSE=1 but {reason}")
        pytest.skip(reason)
    # An empty env file: a developer's own .env must not change the outcome.
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    process_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
    if "HOME" in os.environ:
        process_env["HOME"] = os.environ["HOME"]
    return subprocess.run(
        [executable, "--env-file", str(empty_env_file), "-f", str(COMPOSE), "config", "-q"],
        cwd=ROOT,
        env=process_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_docker_compose_accepts_the_file(tmp_path):
    result = run_docker_compose(tmp_path, TEST_ENV)
    assert result.returncode == 0, result.stderr


def test_docker_compose_refuses_the_file_without_secrets(tmp_path):
    env = {name: value for name, value in TEST_ENV.items() if name != "SECRET_KEY"}
    result = run_docker_compose(tmp_path, env)
    assert result.returncode != 0
    assert "set SECRET_KEY in .env" in result.stderr


# --- wiring between services --------------------------------------------------


def portal_services(document: dict) -> dict[str, dict]:
    portal_image = document["services"]["web"]["image"]
    return {
        name: service
        for name, service in document["services"].items()
        if service.get("image") == portal_image
        or (service.get("build") or {}).get("dockerfile") == PORTAL_DOCKERFILE
    }


def test_every_portal_service_gets_the_database_and_redis():
    document = compose()
    services = portal_services(document)
    assert set(services) == PORTAL_SERVICES
    for name, service in services.items():
        env = environment(service)
        database, redis = urlsplit(env.get("DATABASE_URL", "")), urlsplit(env.get("REDIS_URL", ""))
        assert database.scheme == "postgres", name
        assert database.hostname == "postgres" and database.password, name
        assert redis.scheme == "redis" and redis.hostname == "redis", name
        assert env["ERUMLAB_DATA_DIR"] == "/data", name
        assert any(str(volume).endswith(":/data") for volume in service["volumes"]), name
        assert {"postgres", "redis"} <= set(service["depends_on"]), name


def test_database_password_is_the_one_postgres_is_started_with():
    document = compose()
    password = environment(document["services"]["postgres"])["POSTGRES_PASSWORD"]
    for service in portal_services(document).values():
        assert urlsplit(environment(service)["DATABASE_URL"]).password == password


def queues(service: dict) -> list[str]:
    argv = command(service)
    assert argv[:2] == ["erumlab", "worker"], argv
    return argv[argv.index("-Q") + 1].split(",")


def test_cpu_worker_consumes_the_default_queue():
    assert queues(compose()["services"]["worker"]) == ["default"]


def test_the_grader_consumes_the_grading_queue_on_a_network_without_a_way_out():
    document = compose()
    service = document["services"]["grader"]
    assert queues(service) == ["grading"]
    assert environment(service)["ERUMLAB_GRADING_QUEUE"] == "grading"
    # Only networks marked internal: students' code reaches the database and Redis, nothing else.
    for network in service["networks"]:
        assert document["networks"][network].get("internal") is True, network
    for needed in ("postgres", "redis"):
        assert set(service["networks"]) & set(document["services"][needed]["networks"]), needed
    # The portal sends submissions to the queue the grader consumes.
    assert environment(document["services"]["web"])["ERUMLAB_GRADING_QUEUE"] == "grading"


def test_gpu_worker_consumes_the_gpu_queue_and_reserves_nvidia_gpus():
    service = compose()["services"]["worker-gpu"]
    assert queues(service) == ["gpu"]
    devices = service["deploy"]["resources"]["reservations"]["devices"]
    assert any(
        device.get("driver") == "nvidia" and "gpu" in device.get("capabilities", [])
        for device in devices
    )


def test_web_initialises_then_serves_and_is_checked_on_healthz():
    service = compose()["services"]["web"]
    assert command(service)[:2] == ["sh", "-c"]
    assert re.fullmatch(r"erumlab init && (exec )?erumlab web", command(service)[2])
    bind_port = environment(service)["ERUMLAB_BIND"].rpartition(":")[2]
    probe = " ".join(service["healthcheck"]["test"])
    assert f"http://127.0.0.1:{bind_port}/healthz" in probe


def test_portal_answers_the_names_it_is_called_by_inside_the_network():
    document = compose()
    env = environment(document["services"]["web"])
    allowed = set(env["ALLOWED_HOSTS"].split(","))
    internal = urlsplit(env["ERUMLAB_PORTAL_INTERNAL_URL"])
    assert internal.hostname in document["services"]
    assert {internal.hostname, "127.0.0.1"} <= allowed  # hub and workers, healthcheck
    assert set(TEST_ENV["ALLOWED_HOSTS"].split(",")) <= allowed
    # Internal callers speak plain http: with TLS on, Django must not redirect them.
    assert env["ERUMLAB_HTTPS"] == "true"
    assert env["SECURE_SSL_REDIRECT"] == "false"


def test_hub_spawns_users_through_the_host_docker():
    document = compose()
    hub = document["services"]["hub"]
    env = environment(hub)
    assert any(
        str(volume).startswith("/var/run/docker.sock:/var/run/docker.sock")
        for volume in hub["volumes"]
    )
    assert env["ERUMLAB_HUB_SPAWNER"] == "docker"
    config = (ROOT / "spawners" / "jupyterhub_config.py").read_text()
    assert 'env_value("ERUMLAB_HUB_SPAWNER"' in config and 'spawner == "docker"' in config
    # The image the hub starts is the one compose builds.
    assert env["ERUMLAB_HUB_SINGLEUSER_IMAGE"] == document["services"]["singleuser"]["image"]
    # The users' containers join a network the hub is on, by its unprefixed name.
    networks = {key: value or {} for key, value in document["networks"].items()}
    hub_network = [key for key, value in networks.items()
                   if value.get("name") == env["ERUMLAB_HUB_DOCKER_NETWORK"]]
    assert len(hub_network) == 1 and hub_network[0] in service_networks(hub)


def test_singleuser_image_is_built_but_never_started():
    service = compose()["services"]["singleuser"]
    assert service["profiles"] == ["build"]
    assert service["build"]["dockerfile"] == "docker/singleuser.Dockerfile"


def test_portal_and_hub_reach_each_other():
    document = compose()
    web, hub = document["services"]["web"], document["services"]["hub"]
    assert service_networks(web) & service_networks(hub)
    hub_env = environment(hub)
    api = urlsplit(environment(web)["ERUMLAB_HUB_API_URL"])
    assert api.hostname == "hub"
    assert str(api.port) == hub_env["ERUMLAB_HUB_INTERNAL_PORT"]
    assert hub_env["ERUMLAB_HUB_HUB_IP"] == "0.0.0.0"
    assert urlsplit(hub_env["ERUMLAB_PORTAL_INTERNAL_URL"]).hostname == "web"
    # The same shared secrets on both sides.
    for name in ("ERUMLAB_HUB_API_TOKEN", "ERUMLAB_HUB_CLIENT_SECRET", "ERUMLAB_PORTAL_URL",
                 "ERUMLAB_HUB_URL"):
        assert hub_env[name] == environment(web)[name], name


def test_users_containers_cannot_reach_database_or_redis():
    document = compose()
    hub_network = environment(document["services"]["hub"])["ERUMLAB_HUB_DOCKER_NETWORK"]
    key = next(key for key, value in document["networks"].items()
               if (value or {}).get("name") == hub_network)
    for name in ("postgres", "redis"):
        assert key not in service_networks(document["services"][name]), name


# --- the builds ---------------------------------------------------------------


def builds() -> list[tuple[str, Path]]:
    found = []
    for name, service in compose()["services"].items():
        build = service.get("build")
        if build is None:
            continue
        if isinstance(build, str):
            build = {"context": build}
        context = (ROOT / build.get("context", ".")).resolve()
        found.append((name, context / build.get("dockerfile", "Dockerfile")))
    return found


def test_every_dockerfile_a_build_names_exists():
    assert builds()
    for name, dockerfile in builds():
        assert dockerfile.is_file(), f"{name}: {dockerfile} is missing"


def copy_sources(dockerfile: Path) -> list[str]:
    """First arguments (all but the destination) of the COPY/ADD lines, --from copies left out."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    sources = []
    for line in text.splitlines():
        words = line.strip().split(None, 1)
        if len(words) < 2 or words[0].upper() not in ("COPY", "ADD"):
            continue
        rest = words[1].strip()
        arguments = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        flags = [argument for argument in arguments if argument.startswith("--")]
        if any(flag.startswith("--from") for flag in flags):
            continue
        paths = [argument for argument in arguments if not argument.startswith("--")]
        sources += paths[:-1]
    return sources


def test_dockerfile_copy_parser_reads_continuations_json_and_from(tmp_path):
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "FROM x\nCOPY --chown=1000 a.txt \\\n  b/ /dst/\nCOPY [\"c d\", \"/e\"]\n"
        "COPY --from=build /out /app\nRUN echo COPY nothing\n"
    )
    assert copy_sources(dockerfile) == ["a.txt", "b/", "c d"]


def test_every_path_the_dockerfiles_copy_exists_in_the_repository():
    dockerfiles = {dockerfile for _, dockerfile in builds()}
    dockerfiles |= set((ROOT / "docker").glob("*Dockerfile"))
    assert len(dockerfiles) >= 3
    for dockerfile in sorted(dockerfiles):
        sources = copy_sources(dockerfile)
        assert sources, dockerfile
        for source in sources:
            path = ROOT / source
            assert path.exists(), f"{dockerfile.name}: COPY {source}: not in the repository"
            if path.is_dir():
                # git keeps no empty folder: a fresh clone would not have it.
                assert any(item.is_file() for item in path.rglob("*")), (
                    f"{dockerfile.name}: COPY {source}: the folder is empty"
                )


# --- secrets and .env.example -------------------------------------------------


def test_required_secrets_have_no_default():
    found = compose_references()
    for secret in REQUIRED_SECRETS:
        operators = {op for name, op, _ in found if name == secret}
        assert operators == {":?"}, f"{secret}: {operators or 'never used'}"
    # No secret-like variable gets a value of its own: required, or empty (optional).
    for name, op, arg in found:
        if SECRET_NAME.search(name):
            assert op == ":?" or (op.endswith("-") and arg == ""), f"${{{name}{op}{arg}}}"


def test_secret_settings_come_from_variables_never_literals():
    document = raw_compose()
    blocks = [document["x-erumlab-env"]] + [
        service.get("environment") or {} for service in document["services"].values()
    ]
    for block in blocks:
        for key, value in block.items():
            if SECRET_NAME.search(key) or key == "DATABASE_URL":
                text = "" if value is None else str(value)
                if key == "DATABASE_URL":
                    # Not urlsplit: the "?" of ":?" would start a query string.
                    userinfo = re.match(r"[a-z]+://(?P<user>[^:@/]+):(?P<password>.*)@[^@]*$", text)
                    text = userinfo["password"] if userinfo else ""
                assert re.fullmatch(r"\$\{[A-Za-z0-9_]+(:\?[^}]*|:?-)\}", text), (
                    f"{key}: {text!r} is not a ${{VAR:?...}} reference"
                )


def test_env_example_names_every_variable_the_compose_file_uses():
    used = {name for name, _, _ in compose_references()}
    assert used - set(env_example()) == set()


def test_every_env_example_variable_reaches_a_container():
    # No env_file: a variable that the compose file does not name goes nowhere.
    used = {name for name, _, _ in compose_references()}
    assert set(env_example()) - used == set()


def test_every_env_example_variable_is_explained_on_the_line_above():
    lines = ENV_EXAMPLE.read_text().splitlines()
    for index, line in enumerate(lines):
        if line.strip() and not line.startswith("#"):
            assert index > 0 and lines[index - 1].startswith("# "), line


def test_env_example_ships_no_secret_values():
    values = env_example()
    for secret in REQUIRED_SECRETS:
        assert values[secret] == "", f"{secret} must be left empty in .env.example"
