"""ssh repositories: their host keys pinned in ssh_known_hosts, checked on save
and on every fetch, against OpenSSH's sshd on loopback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import Server, unique
from tests.gitsync.repos import Repo, create_source, hook_named, push_and_deliver
from tests.gitsync.ssh_server import keypair, ssh_git_server


@pytest.fixture(scope="module")
def host_key(tmp_path_factory: pytest.TempPathFactory) -> str:
    return keypair(tmp_path_factory.mktemp("keys") / "k")[1].rsplit(" ", 1)[0]


def _post(server: Server, **fields: object) -> tuple[int, dict[str, object]]:
    with server.api() as api:
        response = api.post("/git-sources", json={"name": unique("ssh"), **fields})
    return response.status_code, response.json()


SSH = "ssh://git@git.example.com:2222/team/hooks.git"


@pytest.mark.parametrize(
    ("repository", "lines", "says"),
    [
        (SSH, None, "ssh_known_hosts: required for an ssh repository"),
        ("git@git.example.com:team/hooks.git", None, "ssh-keyscan git.example.com"),
        ("https://git.example.com/team/hooks.git", "git.example.com {k}", "only for an ssh"),
        (SSH, "other.example.com {k}", "line 1: its hosts do not name [git.example.com]:2222"),
        (SSH, "git.example.com {k}", "do not name [git.example.com]:2222"),
        (SSH, "[git.example.com]:2222 {k}\n*.example.com,!git.example.com {k}", "line 2"),
        (SSH, "[git.example.com]:2222 ssh-ed25519 bm90IGEga2V5", "not a valid ssh-ed25519"),
        (SSH, "[git.example.com]:2222 ssh-ed25519 AAAA!!", "not an ssh public key in base64"),
        (SSH, "[git.example.com]:2222 ssh-dss {b}", "key type 'ssh-dss'"),
        (SSH, "[git.example.com]:2222 ssh-rsa {b}", "not a valid ssh-rsa public key"),
        (SSH, "[git.example.com]:2222", "give `hosts key-type base64-key"),
        (SSH, "@trusted [git.example.com]:2222 {k}", "unknown marker"),
        (SSH, "# only a comment\n", "no key for [git.example.com]:2222"),
        (SSH, "[git.example.com]:2222 {k}\n" * 400, "ssh_known_hosts"),
    ],
)
def test_host_keys_are_checked_when_a_source_is_saved(
    git_server: Server, host_key: str, repository: str, lines: str | None, says: str
) -> None:
    fields: dict[str, object] = {"repository": repository}
    if lines is not None:
        fields["ssh_known_hosts"] = lines.format(k=host_key, b=host_key.split()[1])
    status, body = _post(git_server, **fields)
    assert status == 400, body
    assert says in str(body["message"])


def test_host_keys_in_openssh_forms_are_kept_and_follow_the_repository(
    git_server: Server, host_key: str, tmp_path: Path
) -> None:
    plain = tmp_path / "known_hosts"
    plain.write_text(f"[git.example.com]:2222 {host_key}\n")
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(plain)], check=True, capture_output=True)
    hashed = plain.read_text()
    assert hashed.startswith("|1|")
    for lines in (hashed, f"# pinned\n[git.example.com]:2222,[10.0.0.1]:2222 {host_key} x\n"):
        status, body = _post(git_server, repository=SSH, ssh_known_hosts=lines)
        assert status == 201, body
        assert (
            body["ssh_known_hosts"]
            == "\n".join(line for line in lines.splitlines() if not line.startswith("#")) + "\n"
        )
    status, created = _post(
        git_server, repository="git@git.example.com:team/hooks.git",
        ssh_known_hosts=f"*.example.com {host_key}",
    )  # fmt: skip
    assert status == 201, created
    with git_server.api() as api:
        path = f"/git-sources/{created['id']}"
        # Another host: its keys are needed too; https: none are kept.
        moved = api.patch(path, json={"repository": "git@elsewhere.org:team/hooks.git"})
        assert moved.status_code == 400, moved.text
        assert "do not name elsewhere.org" in moved.json()["message"]
        https = api.patch(path, json={"repository": "https://git.example.com/team/hooks.git"})
        assert https.status_code == 400, https.text
        assert "send null" in https.json()["message"]
        https = api.patch(
            path,
            json={"repository": "https://git.example.com/team/hooks.git", "ssh_known_hosts": None},
        )
        assert https.status_code == 200, https.text
        assert https.json()["ssh_known_hosts"] is None
        back = api.patch(path, json={"repository": SSH})
        assert back.status_code == 400, back.text
        assert "required" in back.json()["message"]


def test_a_push_over_ssh_deploys_only_from_the_pinned_host_key(
    git_server: Server, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "served")
    name = unique("ssh")
    repo.hook(name, "over-ssh", enabled=False)
    with ssh_git_server(tmp_path / "sshd") as sshd:
        url = sshd.url(repo.bare)
        credentials = {"ssh_private_key": sshd.client_private_key}
        _, other_key = keypair(tmp_path / "other")
        # A server answering with another key than the pinned one: a man in the middle.
        impostor = create_source(
            git_server,
            url,
            credentials=credentials,
            ssh_known_hosts=f"[127.0.0.1]:{sshd.port} {other_key}",
        )
        refused = push_and_deliver(git_server, repo, impostor, "first")
        assert refused["status"] == "failed", refused
        assert "Host key verification failed" in refused["error"], refused["error"]
        assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in refused["error"], refused["error"]
        assert f"Host key for [127.0.0.1]:{sshd.port} has changed" in refused["error"]
        # The key the host sent, to compare with the one the git host publishes.
        assert (
            "The fingerprint for the ED25519 key sent by the remote host is SHA256:"
            in (refused["error"])
        )
        private_body = sshd.client_private_key.splitlines()[1]
        assert private_body not in str(refused)
        assert str(tmp_path) not in refused["error"]
        assert hook_named(git_server, name) is None

        pinned = create_source(
            git_server, url, credentials=credentials, ssh_known_hosts=sshd.known_hosts
        )
        deployed = push_and_deliver(git_server, repo, pinned, "second")
        assert deployed["status"] == "succeeded", deployed
        hook = hook_named(git_server, name)
        assert hook is not None
        assert hook["source_id"] == pinned["id"]

        # Keys for another name of the host are refused on save: they would never match.
        with git_server.api() as api:
            other_host = f"[localhost]:{sshd.port} {sshd.host_public_key}"
            moved = api.patch(f"/git-sources/{pinned['id']}", json={"ssh_known_hosts": other_host})
            assert moved.status_code == 400, moved.text
