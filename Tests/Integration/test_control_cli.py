"""vswitchctl's side of the control protocol: profile paths (absolute, regular files only, the real errno) and
the daemon's refusal of a non-root client, which the client must print whatever happened to its own request.
Uses a vswitchd in state mode without ports (ctlharness.CtlDaemon); no TAPs or namespaces are created."""

import json
import os
import subprocess

import pytest

import harness
from ctlharness import PROFILES, VSWITCHCTL, CtlDaemon


@pytest.fixture
def ctl(environment, tmp_path):
    if not os.access(VSWITCHCTL, os.X_OK):
        pytest.fail("vswitchctl binary %s not found (build it, or set VSWITCHCTL)" % VSWITCHCTL, pytrace=False)
    d = CtlDaemon(tmp_path / "d")
    try:
        yield d.start()
    finally:
        d.cleanup()


def vswitchctl(d, *args, cwd=None, user=None):
    cmd = [VSWITCHCTL, "--socket", d.socket, *args]
    if user is not None:
        cmd = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user, "--clear-groups", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=cwd, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("path", ["/dev/null", "/dev/zero", "/tmp"])
def test_profile_load_of_a_non_regular_file_says_so(ctl, path):
    """It said "cannot read profile file /dev/null: Resource temporarily unavailable" (a stale errno)."""
    for command in (["profile", "load", path], ["profile", "validate", path]):
        p = vswitchctl(ctl, *command)
        assert p.returncode == 1, p.stdout
        assert p.stderr.strip() == "vswitchctl: cannot read profile file: %s is not a regular file (%s)" % (
            path, "a directory" if path == "/tmp" else "a character device"), p.stderr


def test_profile_load_of_a_missing_file_gives_its_errno(ctl, tmp_path):
    p = vswitchctl(ctl, "profile", "load", str(tmp_path / "missing.xml"))
    assert p.returncode == 1
    assert p.stderr.strip() == "vswitchctl: cannot read profile file %s: No such file or directory" % (tmp_path / "missing.xml")


def test_relative_profile_path_is_made_absolute_by_vswitchctl_and_refused_by_the_daemon(ctl):
    # vswitchctl sends an absolute, normalised path: the daemon reads the file the operator meant.
    p = vswitchctl(ctl, "profile", "load", "./profiles/../profiles/" + PROFILES.name, cwd=str(PROFILES.parent.parent))
    assert p.returncode == 0, p.stderr
    files = {r["file"] for r in json.loads(vswitchctl(ctl, "profile", "show", "--format", "json").stdout)["profiles"]}
    assert files == {str(PROFILES)}, files
    # A client speaking the protocol itself with a relative path is refused with one line.
    for command in ("profile-load", "profile-validate"):
        [r] = ctl.raw(b'{"command": "%s", "args": {"path": "%s"}}\n' % (command.encode(), PROFILES.name.encode()))
        assert r["ok"] is False
        assert r["error"].startswith('%s: "%s" must be an absolute path' % (command, PROFILES.name)), r


def test_non_root_always_sees_the_daemons_refusal(ctl):
    """The daemon answers a non-root peer with one error line and closes without reading its request: the client
    often got EPIPE writing the request and printed "lost the connection to vswitchd while sending: Broken pipe".
    With the socket opened to everyone (chmod 666) the connection itself succeeds, so every one of 20 tries must
    print the daemon's refusal."""
    os.chmod(ctl.workdir, 0o755)  # let uid 65534 reach the socket file itself
    for d in ctl.workdir.parents:
        if str(d) in ("/", "/tmp"):
            break
        os.chmod(d, os.stat(d).st_mode | 0o005)
    os.chmod(ctl.socket, 0o666)
    expected = "vswitchctl: permission denied: the vswitchd control socket accepts root (uid 0) only, not uid 65534"
    seen = []
    for _ in range(20):
        p = vswitchctl(ctl, "show", user=65534)
        assert p.returncode == 1, p.stdout
        seen.append(p.stderr.strip())
    assert seen == [expected] * 20, "\n".join(sorted(set(seen)))


def test_show_prints_the_running_forwarding_threads(ctl):
    """`forwarding-threads=0` (the setting: one per core) now says how many run; JSON gains a field."""
    j = json.loads(vswitchctl(ctl, "show", "--format", "json").stdout)
    running = j["switch"]["forwarding-threads-running"]
    assert running >= 1 and j["switch"]["settings"]["forwarding-threads"] == 0, j["switch"]
    text = vswitchctl(ctl, "show").stdout
    assert "forwarding-threads=0 (running %d)" % running in text, text
