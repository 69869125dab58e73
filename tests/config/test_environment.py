"""Settings come from the environment; malformed values stop start-up, naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from erumlab.config.environment import Environment, celery_redis_urls, persisted_secret


@pytest.mark.parametrize(
    ("value", "expected"), [("1", True), ("true", True), ("On", True), ("0", False), ("no", False)]
)
def test_booleans_accept_the_usual_spellings(value, expected):
    assert Environment({"DEBUG": value}).bool("DEBUG", False) is expected


def test_a_malformed_boolean_names_the_variable():
    with pytest.raises(ImproperlyConfigured, match="DEBUG: expected a boolean.*'maybe'"):
        Environment({"DEBUG": "maybe"}).bool("DEBUG", False)


def test_a_malformed_database_url_names_the_variable():
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        Environment({"DATABASE_URL": "not a url"}).database("DATABASE_URL", "sqlite:////x")


def test_a_database_url_without_a_database_name_is_refused():
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL: the URL names no database"):
        Environment({"DATABASE_URL": "postgres://u@h:5432/"}).database("DATABASE_URL", "")


def test_a_redis_url_with_another_scheme_is_refused():
    with pytest.raises(ImproperlyConfigured, match="REDIS_URL: expected redis://"):
        Environment({"REDIS_URL": "http://localhost:6379"}).redis_url("REDIS_URL")


def test_integers_below_their_minimum_are_refused():
    with pytest.raises(ImproperlyConfigured, match="ERUMLAB_X: must be at least 1"):
        Environment({"ERUMLAB_X": "0"}).int("ERUMLAB_X", 5, minimum=1)


def test_secrets_can_come_from_a_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    assert Environment({"SECRET_KEY_FILE": str(secret)}).raw("SECRET_KEY") == "s3cret"


def test_an_unreadable_secret_file_names_the_variable(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY_FILE: cannot read"):
        Environment({"SECRET_KEY_FILE": str(tmp_path / "missing")}).raw("SECRET_KEY")


def test_a_generated_secret_is_persisted_once_and_private(tmp_path):
    path = tmp_path / "key"
    first = persisted_secret(path)
    assert persisted_secret(path) == first
    assert len(first) >= 40
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_celery_gets_socket_urls_for_the_embedded_redis():
    broker, backend = celery_redis_urls("unix:///tmp/x/redis.sock?db=3")
    assert broker == "redis+socket:///tmp/x/redis.sock?virtual_host=3"
    assert backend.startswith("redis+socket:///tmp/x/redis.sock")
    assert celery_redis_urls("redis://h:6379/1") == ("redis://h:6379/1", "redis://h:6379/1")


def _manage(args, env_updates, tmp_path):
    # As a deployment would run it: without the browser tests' async override.
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update({"ERUMLAB_DATA_DIR": str(tmp_path / "data"), **env_updates})
    return subprocess.run(
        [sys.executable, "-m", "erumlab", "manage", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )


def test_the_command_refuses_to_start_with_a_malformed_variable(tmp_path):
    result = _manage(["check"], {"DEBUG": "perhaps"}, tmp_path)
    assert result.returncode == 2
    assert "DEBUG: expected a boolean" in result.stderr
    assert "Traceback" not in result.stderr


def test_secret_key_is_generated_once_into_the_data_dir(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env.update({"ERUMLAB_DATA_DIR": str(tmp_path / "data")})
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    run = lambda: subprocess.run(  # noqa: E731
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        env={**env, "DJANGO_SETTINGS_MODULE": "erumlab.config.settings"},
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.strip()
    first, second = run(), run()
    assert first == second
    assert (tmp_path / "data" / "secret_key").read_text().strip() == first


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    result = _manage(
        ["check", "--deploy", "--fail-level", "WARNING"],
        {
            "DEBUG": "false",
            "SECRET_KEY": "x7#" * 20 + "production-only-secret-for-the-check",
            "ALLOWED_HOSTS": "erumlab.example.org",
            "ERUMLAB_HTTPS": "true",
            "ERUMLAB_PORTAL_URL": "https://erumlab.example.org",
            "ERUMLAB_HUB_URL": "https://hub.erumlab.example.org",
        },
        tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_uploads_stay_in_the_data_dir_unless_object_storage_is_named():
    assert Environment({}).storage("ERUMLAB_STORAGE_URL")["BACKEND"].endswith(
        "FileSystemStorage")
    s3 = Environment({
        "ERUMLAB_STORAGE_URL": "s3://erumlab-data?endpoint_url=https://s3.example.org",
        "AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "secret",
    }).storage("ERUMLAB_STORAGE_URL")
    assert s3["BACKEND"] == "storages.backends.s3.S3Storage"
    assert s3["OPTIONS"]["bucket_name"] == "erumlab-data"
    assert s3["OPTIONS"]["endpoint_url"] == "https://s3.example.org"
    assert s3["OPTIONS"]["access_key"] == "key"


@pytest.mark.parametrize("value", ["s3://", "ftp://bucket", "s3://b?colour=blue"])
def test_a_malformed_storage_url_names_the_variable(value):
    with pytest.raises(ImproperlyConfigured, match="ERUMLAB_STORAGE_URL"):
        Environment({"ERUMLAB_STORAGE_URL": value}).storage("ERUMLAB_STORAGE_URL")
