"""The local spawner's option to run each user's server as a system account of its own.

Needs root (as the hub would): accounts are really created with useradd and a
real child process is started through the spawner's preexec function. The
whole server is not started here: this machine's Python lives under /root,
which other accounts cannot enter, so the check stops at the process identity.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import uuid
from types import SimpleNamespace

import pytest
from jupyterhub.objects import Hub, Server
from tornado import web

from erumlab.testing.aio import run_coroutine
from erumlab_spawners.local import ErumlabLocalSpawner

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="system accounts need root")


@pytest.fixture
def account():
    """A fresh account name, removed again (with its home) after the test."""
    name = f"erl-{uuid.uuid4().hex[:8]}"
    yield name
    subprocess.run(["userdel", "--remove", name], capture_output=True, check=False)


def spawner_for(username: str, **config) -> ErumlabLocalSpawner:  # noqa: ANN003
    user = SimpleNamespace(name=username, id=1, url=f"/user/{username}/", escaped_name=username,
                           server=Server(base_url=f"/user/{username}/"), settings={},
                           spawners={}, orm_user=None)
    return ErumlabLocalSpawner(user=user, hub=Hub(), **config)


def test_a_missing_account_is_created_and_the_server_process_runs_as_it(account):
    spawner = spawner_for(account.removeprefix("erl-"), system_users=True,
                          system_user_template="erl-{username}", create_system_users=True)
    run_coroutine(spawner.prepare_start())
    entry = pwd.getpwnam(account)
    assert entry.pw_uid != 0 and os.path.isdir(entry.pw_dir)

    env = spawner.user_env({})
    assert env["USER"] == account and env["HOME"] == entry.pw_dir
    assert not spawner.allow_root  # the server is not root, so no --allow-root
    assert "--allow-root" not in spawner.get_args()
    assert spawner.get_env()["JUPYTER_RUNTIME_DIR"].startswith(entry.pw_dir)
    identity = subprocess.run(["sh", "-c", "id -u; id -un; pwd"], capture_output=True,
                              preexec_fn=spawner.make_preexec_fn(account), text=True, check=True)
    assert identity.stdout.split() == [str(entry.pw_uid), account, entry.pw_dir]


def test_without_creation_a_missing_account_is_refused_by_name(account):
    spawner = spawner_for(account.removeprefix("erl-"), system_users=True,
                          system_user_template="erl-{username}")
    with pytest.raises(web.HTTPError) as refused:
        run_coroutine(spawner.prepare_start())
    assert refused.value.status_code == 403 and account in refused.value.log_message
    with pytest.raises(KeyError):
        pwd.getpwnam(account)


def test_a_name_that_is_no_valid_account_name_is_refused():
    spawner = spawner_for("Ada.Lovelace@example.org", system_users=True,
                          create_system_users=True)
    with pytest.raises(web.HTTPError, match="not a valid POSIX user name"):
        run_coroutine(spawner.prepare_start())


def test_off_by_default_servers_share_the_hubs_account(tmp_path):
    spawner = spawner_for("ada", home_dir_template=str(tmp_path / "{username}"))
    assert not spawner.system_users
    assert spawner.user_env({})["HOME"] == str(tmp_path / "ada")
    assert spawner.allow_root  # the hub runs as root here, so its servers do too
