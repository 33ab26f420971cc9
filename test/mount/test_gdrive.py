"""The gdrive: back end through the real programs against the Drive v3
emulator on loopback (test/gdrive_emulator.py): sign-in (device flow and
loopback redirect with PKCE), init, mount, file operations, a second
machine with an empty cache, ciphertext only on "Drive", backoff on
injected 429/503 bursts, a token expiring mid-session, ranged reads, and a
revoked sign-in."""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
import time
import types
import urllib.request
from pathlib import Path

import pytest

from scsmount import SCSCTL, User, Vault, eventually, fusermount_u, is_mounted, make_user, one_line

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "emulator"))
from emulator_util import Emulator  # noqa: E402

REMOTE = "gdrive:/Team Secure"
CLIENT_ID = "scsfs-test.apps.googleusercontent.com"
CLIENT_SECRET = "test-client-secret-9d1c"
BLK = 256 << 10


class GUser(User):
    """A user whose Drive endpoints are the emulator."""
    endpoint = None

    def env(self, passfile=True, **extra):
        e = super().env(passfile=passfile, **extra)
        e["SCSFS_GDRIVE_ENDPOINT"] = self.endpoint
        return e


class GVault(Vault):
    @property
    def remote(self):
        return REMOTE


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    root = tmp_path_factory.mktemp("drive")
    e = Emulator.start(root, python="/usr/bin/python3")
    yield e
    err = e.stop()
    assert "Traceback" not in err, f"the Drive emulator failed (HTTP 500):\n{err}"


@pytest.fixture(scope="module")
def gu(emu, tmp_path_factory, fuse, programs):
    """alice, signed in to the emulator with the device flow, with a group
    in gdrive:/Team Secure."""
    home = tmp_path_factory.mktemp("galice") / "alice"
    base = make_user(home, "alice")
    u = GUser(base.home, "alice")
    u.endpoint = emu.base
    r = u.ctl("auth", "gdrive", "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET,
              "--device", timeout=120)
    m = re.search(r"open (\S+) on any device and enter the code: (\S+)", r.stdout)
    assert m, r.stdout
    u.ctl("init", REMOTE)
    return u


def cred_file(u):
    return u.config_dir / "gdrive.json"


@pytest.fixture
def gv(gu, tmp_path):
    v = GVault(gu, tmp_path / "unused-cloud", tmp_path / "mnt")
    yield v
    v.cleanup()


def media_gets(log):
    return [r for r in log if r["method"] == "GET" and "alt=media" in r["query"]]


# ---------------------------------------------------------------- sign-in

def test_device_sign_in_stores_refresh_token_0600(gu, emu):
    p = cred_file(gu)
    st = os.stat(p)
    assert stat.S_IMODE(st.st_mode) == 0o600
    d = json.loads(p.read_text())
    assert d["client_id"] == CLIENT_ID and d["client_secret"] == CLIENT_SECRET
    assert d["refresh_token"]
    # The device flow polled: pending, slow_down, then the tokens.
    errs = [r["status"] for r in emu.log() if r["path"] == "/token"]
    assert 428 in errs and 403 in errs


def start_loopback_auth(u, *args, env=None):
    """Start `scsctl auth gdrive` (loopback flow); return (process, address printed)."""
    p = subprocess.Popen([str(SCSCTL), "auth", "gdrive", "--client-id", CLIENT_ID, *args],
                         env=u.env(**(env or {})), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    for _ in range(5):
        line = p.stdout.readline()
        if line.startswith("http"):
            return p, line.strip()
    p.kill()
    p.wait()
    pytest.fail("no address printed: " + p.stderr.read())


def test_loopback_sign_in_with_pkce(gu, emu, tmp_path):
    u = GUser(tmp_path / "bob", "bob")
    u.endpoint = emu.base
    secret = tmp_path / "secret"
    secret.write_text(CLIENT_SECRET + "\n")
    p, url = start_loopback_auth(u, env={"SCSFS_GDRIVE_CLIENT_SECRET_FILE": secret})
    try:
        assert "code_challenge_method=S256" in url and "state=" in url
        assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A" in url
        # The emulator consents at once and redirects to our listener.
        with urllib.request.urlopen(url, timeout=30) as r:
            assert b"signed in" in r.read()
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    d = json.loads(cred_file(u).read_text())
    assert d["refresh_token"] and d["client_secret"] == CLIENT_SECRET
    assert d["refresh_token"] not in out + err
    ex = [r for r in emu.log() if r["path"] == "/token" and r["method"] == "POST"]
    assert ex[-1]["status"] == 200


def test_loopback_refuses_a_wrong_state(gu, emu, tmp_path):
    u = GUser(tmp_path / "carol", "carol")
    u.endpoint = emu.base
    p, url = start_loopback_auth(u, "--client-secret", CLIENT_SECRET)
    try:
        forged = re.sub(r"state=[^&]+", "state=forged", url)
        try:
            urllib.request.urlopen(forged, timeout=30).read()
            pytest.fail("a redirect with a foreign state was accepted")
        except urllib.error.HTTPError as e:
            assert e.code == 400
        assert p.poll() is None, "gave up on a forged redirect instead of waiting"
        with urllib.request.urlopen(url, timeout=30) as r:
            r.read()
        p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0
    assert cred_file(u).exists()


def test_auth_without_client_is_one_line(gu, tmp_path):
    u = GUser(tmp_path / "dave", "dave")
    u.endpoint = gu.endpoint
    r = u.run([SCSCTL, "auth", "gdrive", "--device"])
    assert r.returncode != 0
    assert "client-id" in one_line(r.stderr)


# ---------------------------------------------------------------- the mount

def write(p, data):
    """Write a file and fsync it: durable in the mount's cache; with
    -o sync_upload, fsync returns once Drive has the object."""
    with open(p, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def test_mount_operations_and_second_machine(gv, gu, emu, tmp_path):
    v = gv.mount()
    m = v.mnt
    big = os.urandom(9 * 1024 * 1024 + 12345)
    write(m / "notes.txt", b"first words of a secret plan\n")
    (m / "Projects").mkdir()
    (m / "Projects" / "deep").mkdir()
    write(m / "Projects" / "deep" / "report.odt", b"quarterly secret numbers " * 100)
    write(m / "big.bin", big)
    with open(m / "notes.txt", "r+b") as f:
        f.seek(6)
        f.write(b"WORDS")
    os.rename(m / "notes.txt", m / "Projects" / "notes-renamed.txt")
    write(m / "gone.txt", b"to be removed")
    os.unlink(m / "gone.txt")
    write(m / "trunc.txt", b"0123456789" * 1000)
    os.truncate(m / "trunc.txt", 15)
    # editors: write beside, rename over
    write(m / "doc.txt", b"old version")
    write(m / "doc.txt.swp", b"new version")
    os.rename(m / "doc.txt.swp", m / "doc.txt")
    os.symlink("Projects/notes-renamed.txt", m / "link")
    (m / "emptydir").mkdir()
    os.rmdir(m / "emptydir")

    def check(root):
        assert sorted(os.listdir(root)) == ["Projects", "big.bin", "doc.txt", "link", "trunc.txt"]
        assert (root / "Projects" / "notes-renamed.txt").read_bytes() == \
            b"first WORDS of a secret plan\n"
        assert (root / "Projects" / "deep" / "report.odt").read_bytes() == \
            b"quarterly secret numbers " * 100
        assert (root / "big.bin").read_bytes() == big
        assert (root / "trunc.txt").read_bytes() == b"012345678901234"
        assert (root / "doc.txt").read_bytes() == b"new version"
        assert os.readlink(root / "link") == "Projects/notes-renamed.txt"

    check(m)
    v.unmount()
    # The 9 MiB object went up resumable, in 8 MiB chunks.
    puts = [r for r in emu.log() if r["method"] in ("PUT", "POST") and r["path"].startswith("/upload")
            and "upload_id" in r["query"]]
    assert any(r["status"] == 308 for r in puts), puts

    # A second machine: the same identity, an empty cache.
    shutil.copytree(gu.home, tmp_path / "alice2", ignore=shutil.ignore_patterns(".cache"))
    other = GUser(tmp_path / "alice2", "alice")
    other.endpoint = gu.endpoint
    assert not any((other.home / ".cache").iterdir())
    v2 = GVault(other, tmp_path / "unused2", tmp_path / "mnt2")
    try:
        v2.mount()
        check(v2.mnt)
    finally:
        v2.cleanup()

    # Drive holds ciphertext only: no plaintext name or content anywhere.
    state = emu.state()
    names = {f["name"] for f in state["files"].values()} if isinstance(state["files"], dict) \
        else {f["name"] for f in state["files"]}
    for plain in ("notes-renamed.txt", "Projects", "deep", "report.odt", "big.bin", "doc.txt",
                  "trunc.txt", "link"):
        assert plain not in names
    for blob in (Path(emu.root) / "blobs").iterdir():
        data = blob.read_bytes()
        assert b"secret plan" not in data and b"quarterly secret" not in data
        assert big[:4096] not in data and b"notes-renamed" not in data
        assert b"new version" not in data


def test_folder_by_id(gv, gu, emu, tmp_path):
    st = emu.state()
    files = st["files"].values() if isinstance(st["files"], dict) else st["files"]
    team = [f for f in files if f["name"] == "Team Secure"]
    assert len(team) == 1
    r = gu.ctl("status", "gdrive:id=" + team[0]["id"])
    assert "group fingerprint:" in r.stdout
    v = GVault(gu, tmp_path / "unused", tmp_path / "mnt-id")
    v.__class__ = type("IdVault", (GVault,), {"remote": property(lambda s: "gdrive:id=" + team[0]["id"])})
    try:
        v.mount()
        write(v.mnt / "by-id.txt", b"via the folder id")
        v.unmount()
    finally:
        v.cleanup()
    gv.mount()
    assert (gv.mnt / "by-id.txt").read_bytes() == b"via the folder id"
    gv.unmount()
    bad = gu.run([SCSCTL, "status", "gdrive:id=../etc"])
    assert bad.returncode != 0 and "folder id" in one_line(bad.stderr)
    gone = gu.run([SCSCTL, "status", "gdrive:/No Such Folder"])
    line = one_line(gone.stderr)
    assert gone.returncode != 0 and "does not exist in Google Drive" in line
    assert "local:" not in line


def test_backoff_on_429_and_503_bursts(gv, emu):
    v = gv.mount()
    m = v.mnt
    write(m / "before.txt", b"x")
    emu.clear_log()
    t0 = time.time()
    emu.control(actions=[
        {"action": "fault", "status": 429, "count": 2, "path": "/drive/v3/files"},
        {"action": "fault", "status": 503, "count": 2, "path": "/drive/v3/files"},
    ])
    write(m / "during.txt", b"written through a burst of errors")
    (m / "dir-in-burst").mkdir()
    assert (m / "during.txt").read_bytes() == b"written through a burst of errors"
    v.unmount()
    log = emu.log()
    faulted = [r for r in log if r.get("fault")]
    assert len(faulted) == 4, faulted
    # Each failure is followed by a retry of the same request (same method,
    # path and query), spaced out: >= 1 s after its first failure, >= 2 s
    # after its second (2^n s plus up to 1 s of jitter).  The mount may run
    # several requests at once, so chains are followed per request.
    times = [r["time"] for r in log if r["time"] >= faulted[0]["time"]]
    key = lambda r: (r["method"], r["path"], r["query"])
    seen = {}
    for f in faulted:
        n = seen.get(key(f), 0)
        seen[key(f)] = n + 1
        nxt = [r for r in log if r["time"] > f["time"] and key(r) == key(f)]
        assert nxt, f"no retry after {f}"
        gap = nxt[0]["time"] - f["time"]
        assert 2 ** n * 0.95 <= gap < 2 ** n + 1.5, (n, gap, f)
    assert max(seen.values()) >= 2, "no request was retried twice"
    assert len(times) > 4 and time.time() - t0 < 120
    v.mount()
    assert (m / "during.txt").read_bytes() == b"written through a burst of errors"
    assert (m / "dir-in-burst").is_dir()
    v.unmount()


def test_retry_after_is_honoured(gv, emu):
    v = gv.mount()
    emu.clear_log()
    emu.control(action="fault", status=429, count=1, retry_after=3, path="/drive/v3/files")
    write(v.mnt / "ra.txt", b"after a pause")
    v.unmount()
    log = emu.log()
    f = [r for r in log if r.get("fault")]
    assert len(f) == 1
    nxt = [r for r in log if r["time"] > f[0]["time"] and r["path"] == f[0]["path"]]
    assert nxt[0]["time"] - f[0]["time"] >= 2.9


def test_storage_quota_is_enospc_not_retried(gv, emu):
    v = gv.mount(foreground=True, args=["-o", "sync_upload"])
    try:
        st = emu.state()
        emu.control(action="set", quota_limit=1)
        emu.clear_log()
        t0 = time.time()
        with pytest.raises(OSError) as ei:
            with open(v.mnt / "full.bin", "wb") as f:
                f.write(os.urandom(100000))
                f.flush()
                os.fsync(f.fileno())
        assert ei.value.errno in (28, 5), ei.value  # ENOSPC (EIO if the kernel remaps)
        assert time.time() - t0 < 20, "a full Drive must not be retried for long"
        assert "storage is full" in v.log()
    finally:
        emu.control(action="reset")
        v.unmount(check=False)
    assert st is not None


def test_daily_upload_cap_is_reported_not_retried(gv, emu):
    v = gv.mount(foreground=True, args=["-o", "sync_upload"])
    try:
        write(v.mnt / "capped.bin", b"v1")
        emu.clear_log()
        emu.control(action="daily_limit", method="PATCH", path="/upload/", count=5)
        t0 = time.time()
        with pytest.raises(OSError) as ei:
            write(v.mnt / "capped.bin", b"v2" * 1000)
        assert ei.value.errno in (122, 5), ei.value   # EDQUOT (EIO if remapped)
        assert time.time() - t0 < 10
        assert "daily Google Drive limit" in v.log()
        # an attempt at flush, maybe one at release or by the uploader, but
        # no backoff loop: nothing more goes to Drive in the seconds after
        # (a retry would come 1-2 s and again 2-4 s after the first try)
        time.sleep(2)    # the release the kernel sends after close() returned
        faulted = [r for r in emu.log() if r.get("fault")]
        assert 1 <= len(faulted) <= 3, faulted
        sent = len([r for r in emu.log() if r["path"].startswith("/upload/")])
        time.sleep(5)
        later = [r for r in emu.log() if r["path"].startswith("/upload/")][sent:]
        assert not later, f"the daily cap was retried: {later}"
    finally:
        emu.control(action="reset")
        v.unmount(check=False)


def test_expired_access_token_is_refreshed(gv, emu):
    v = gv.mount()
    write(v.mnt / "t1.txt", b"one")
    emu.clear_log()
    emu.control(action="expire_tokens")
    write(v.mnt / "t2.txt", b"two")
    assert {"t1.txt", "t2.txt"} <= set(os.listdir(v.mnt))
    assert (v.mnt / "t1.txt").read_bytes() == b"one"
    v.unmount()
    log = emu.log()
    first401 = next(i for i, r in enumerate(log) if r["status"] == 401)
    tokens = [i for i, r in enumerate(log) if r["path"] == "/token"]
    # One refresh, even when several requests of the mount got a 401 at once.
    assert len(tokens) == 1 and tokens[0] > first401 and log[tokens[0]]["status"] == 200
    assert sum(1 for r in log if r["status"] == 401) <= 4


def test_access_token_refreshed_before_expiry(gv, emu):
    emu.control(action="set", token_lifetime=8)
    try:
        v = gv.mount()
        write(v.mnt / "e1.txt", b"one")
        emu.clear_log()
        time.sleep(9)    # past the lifetime: refreshed before use, not after a 401
        write(v.mnt / "e2.txt", b"two")
        assert (v.mnt / "e1.txt").read_bytes() == b"one"
        v.unmount()
    finally:
        emu.control(action="set", token_lifetime=3599)
    log = emu.log()
    assert not [r for r in log if r["status"] == 401], "used an expired token"
    assert [r for r in log if r["path"] == "/token" and r["status"] == 200]


def test_no_token_in_the_daemon_log(gv, gu, emu):
    v = gv.mount(foreground=True, args=["-o", "debug"])
    try:
        write(v.mnt / "quiet.txt", b"q")
        emu.control(action="expire_tokens")
        emu.control(action="fault", status=503, count=1, path="/drive/v3/files")
        assert (v.mnt / "quiet.txt").read_bytes() == b"q"
        os.listdir(v.mnt)
    finally:
        v.unmount(check=False)
    log = v.log()
    assert log, "no daemon log"
    refresh = json.loads(cred_file(gu).read_text())["refresh_token"]
    assert "ya29.emu-" not in log and refresh not in log and CLIENT_SECRET not in log
    assert "Bearer" not in log


def cold_read(v, emu, data, off):
    """data as a file, read 4 KiB at off by a fresh daemon with an empty
    cache: the content bytes its ranged GETs transferred."""
    v.mount()
    write(v.mnt / "twenty.bin", data)
    v.unmount()
    shutil.rmtree(v.user.home / ".cache" / "scsfs")   # the cache outlives a remount
    v.mount()     # a fresh daemon: nothing cached
    emu.clear_log()
    fd = os.open(v.mnt / "twenty.bin", os.O_RDONLY)
    try:
        got = os.pread(fd, 4096, off)
    finally:
        os.close(fd)
    assert got == data[off:off + 4096]
    v.unmount()
    gets = media_gets(emu.log())
    assert gets, "no ranged GET"
    total = 0
    for r in gets:
        m = re.match(r"bytes=(\d+)-(\d+)", r["range"] or "")
        assert m, f"alt=media without a range: {r}"
        total += int(m.group(2)) - int(m.group(1)) + 1
    return total


def test_read_at_end_of_20mib_fetches_one_block(gv, emu):
    data = os.urandom(20 * 1024 * 1024)
    total = cold_read(gv, emu, data, len(data) - 4096)
    # the header block and the block holding the end: about 2 x 256 KiB
    assert total <= 3 * BLK, total


def test_read_in_the_middle_of_20mib_fetches_one_block(gv, emu):
    """A read far from the last one (the header's, at open) is not taken
    for a sequential one: nothing is fetched ahead of it."""
    data = os.urandom(20 * 1024 * 1024)
    total = cold_read(gv, emu, data, 10 * 1024 * 1024)
    assert total <= 3 * BLK, total


def max_overlap(reqs):
    """The most requests the emulator was handling at one moment."""
    ends = sorted((r["time"] + r["duration"], -1) for r in reqs)
    starts = sorted((r["time"], 1) for r in reqs)
    most = now = 0
    for _, step in sorted(starts + ends, key=lambda e: (e[0], e[1])):
        now += step
        most = max(most, now)
    return most


def media_ranges(gets):
    out = []
    for r in gets:
        m = re.match(r"bytes=(\d+)-(\d+)", r["range"] or "")
        assert m, f"alt=media without a range: {r}"
        out.append((int(m.group(1)), int(m.group(2)) + 1))
    return sorted(out)


def cold_mount(v, args=()):
    """Mount v with an empty cache (the cache outlives a remount)."""
    shutil.rmtree(v.user.home / ".cache" / "scsfs")
    return v.mount(foreground=True, args=args)


def test_sequential_read_fetches_ahead_in_parallel(gv, emu):
    """A cold sequential read of a large file over a network with latency:
    the read-ahead runs as several ranged GETs at once, each a small part
    of the file, and no byte is fetched twice."""
    v = gv.mount()
    data = os.urandom(48 << 20)
    write(v.mnt / "seq.bin", data)
    v.unmount()
    emu.control(action="set", latency_ms=30)
    try:
        cold_mount(v)
        emu.clear_log()
        with open(v.mnt / "seq.bin", "rb") as f:
            got = b"".join(iter(lambda: f.read(1 << 20), b""))
        v.unmount()
    finally:
        emu.control(action="set", latency_ms=0)
    assert got == data
    gets = media_gets(emu.log())
    ranges = media_ranges(gets)
    assert max(b - a for a, b in ranges) <= 8 << 20, ranges
    for (a1, b1), (a2, b2) in zip(ranges, ranges[1:]):
        assert b1 <= a2, f"fetched twice: {a1}-{b1} and {a2}-{b2}"
    assert max_overlap(gets) >= 3, sorted((r["time"], r["duration"], r["range"]) for r in gets)


def ct_size(plain):
    """The size on Drive of a file of plain bytes (scsfs-format(5))."""
    return 256 + plain + max(1, -(-plain // 32768)) * 28


def drive_has_size(emu, size):
    files = emu.state()["files"]
    return any(int(f.get("size", -1)) == size
               for f in (files.values() if isinstance(files, dict) else files))


def stalled_back(emu):
    return [r for r in emu.log() if r.get("fault") == "stall"]


@pytest.fixture
def held(gv, gu, emu, tmp_path):
    """swap.bin (896 KiB) on Drive; a writer on another machine (w, not
    mounted); start(poll) mounts gv cold, opens swap.bin and reads its
    start, and the read-ahead that sets off (blocks 1-3, up to the end of
    the object) is held by the emulator for 20 s.  Returns the open fd."""
    old, new = os.urandom(896 << 10), os.urandom(2 << 20)
    v = gv.mount()
    write(v.mnt / "swap.bin", old)
    v.unmount()
    shutil.copytree(gu.home, tmp_path / "alice2", ignore=shutil.ignore_patterns(".cache"))
    other = GUser(tmp_path / "alice2", "alice")
    other.endpoint = gu.endpoint
    w = GVault(other, tmp_path / "unused2", tmp_path / "mnt2")
    files = emu.state()["files"]
    (fid,) = [f["id"] for f in (files.values() if isinstance(files, dict) else files)
              if int(f.get("size", -1)) == ct_size(len(old))]

    def start(poll):
        cold_mount(v, ["-o", f"poll={poll}"])
        fd = os.open(v.mnt / "swap.bin", os.O_RDONLY)     # reads the header block
        emu.clear_log()
        emu.control(action="stall", method="GET", path=f"/drive/v3/files/{fid}", ms=20000)
        t0 = time.monotonic()
        assert os.pread(fd, 4096, 0) == old[:4096]
        assert time.monotonic() - t0 < 10, "the read waited for its read-ahead"
        eventually(lambda: not emu.state()["faults"], 10, "the read-ahead GET")
        return fd

    def replace():
        """The other machine writes the new version; Drive has it."""
        w.mount(args=["-o", "upload_delay=0.2"])
        write(w.mnt / "swap.bin", new)
        eventually(lambda: drive_has_size(emu, ct_size(len(new))), 20, "the new version on Drive")

    def settle():
        """The held read-ahead came back (with bytes of the old version's
        ranges cut out of the new one) and was dealt with."""
        eventually(lambda: stalled_back(emu), 25, "the held read-ahead coming back")
        time.sleep(1)     # (its reply is sent after the log entry)

    yield types.SimpleNamespace(v=v, emu=emu, old=old, new=new, start=start, replace=replace,
                                settle=settle)
    w.cleanup()


def test_replaced_while_read_ahead_is_in_flight(held):
    """Another machine replaces a file while this mount's read-ahead of it
    is held up on the way: the changes feed switches the open file's cache
    to the new version at once (the old read-ahead is not waited for), and
    when the held GET comes back at last it stores nothing: the file reads
    as the new version whole, never a mix of the two."""
    v, new = held.v, held.new
    fd = held.start(poll=1)
    try:
        held.replace()
        # (the file is open: stat gives the size of its cache)
        eventually(lambda: os.stat(v.mnt / "swap.bin").st_size == len(new), 15,
                   "the new version in the reading mount")
        # its end: the header block and the last ones; the blocks the held
        # read-ahead covers are not fetched again yet
        with open(v.mnt / "swap.bin", "rb") as f:
            assert os.pread(f.fileno(), 4096, len(new) - 4096) == new[-4096:]
        assert not stalled_back(held.emu), \
            "the new version was readable only once the old read-ahead was back"
        held.settle()
        assert (v.mnt / "swap.bin").read_bytes() == new
    finally:
        os.close(fd)
    v.unmount()
    v.mount()
    assert (v.mnt / "swap.bin").read_bytes() == new
    v.unmount()


def test_replaced_after_close_while_read_ahead_is_held(held):
    """The same with the file closed while its read-ahead is held (and no
    changes feed): opened again, it is the new version at once, in a cache
    of its own; the old one goes when the held GET is back."""
    v, new = held.v, held.new
    os.close(held.start(poll=0))
    held.replace()
    eventually(lambda: os.stat(v.mnt / "swap.bin").st_size == len(new), 15,
               "the new version's size")
    assert (v.mnt / "swap.bin").read_bytes() == new
    assert not stalled_back(held.emu), \
        "the new version was readable only once the old read-ahead was back"
    held.settle()
    v.unmount()
    v.mount()
    assert (v.mnt / "swap.bin").read_bytes() == new
    v.unmount()


def upload_sessions(log):
    return [r for r in log if r["method"] == "PATCH" and r["path"].startswith("/upload/")
            and "uploadType=resumable" in r["query"]]


def test_resumable_upload_resumes_from_the_servers_range(gv, emu):
    v = gv.mount(args=["-o", "sync_upload"])
    data = os.urandom(12 * 1024 * 1024)
    emu.clear_log()
    # The first chunk breaks off after 3 MiB + a bit: Drive keeps 3 MiB.
    emu.control(action="drop", method="PUT", path="/upload/", after_bytes=3 * 1024 * 1024 + 1000)
    write(v.mnt / "resumed.bin", data)
    log = emu.log()
    puts = [r for r in log if r["method"] == "PUT" and r["path"].startswith("/upload/")]
    assert puts[0]["status"] == "dropped"
    assert any(r["content_range"] == "bytes */%d" % emu_size(emu, puts) for r in puts), puts
    assert any((r["content_range"] or "").startswith("bytes 3145728-") for r in puts), puts
    assert len(upload_sessions(log)) == 1
    v.unmount()
    v.mount()
    assert (v.mnt / "resumed.bin").read_bytes() == data
    v.unmount()


def emu_size(emu, puts):
    """The object size announced in the first chunk's Content-Range."""
    return int(puts[0]["content_range"].rsplit("/", 1)[1])


def test_expired_upload_session_starts_again(gv, emu):
    v = gv.mount(args=["-o", "sync_upload"])
    data = os.urandom(10 * 1024 * 1024)
    emu.clear_log()
    emu.control(action="fault", status=404, method="PUT", path="/upload/", count=1)
    write(v.mnt / "restarted.bin", data)
    assert len(upload_sessions(emu.log())) == 2
    v.unmount()
    v.mount()
    assert (v.mnt / "restarted.bin").read_bytes() == data
    v.unmount()


def test_lost_create_reply_makes_no_duplicate(gv, emu):
    v = gv.mount()
    (v.mnt / "lost").mkdir()
    emu.clear_log()
    emu.control(action="drop_after_commit", method="POST", path="/drive/v3/files", count=1)
    write(v.mnt / "lost" / "created.txt", b"made once")
    log = emu.log()
    posts = [r for r in log if r["method"] == "POST" and r["path"] == "/drive/v3/files"]
    assert posts[0]["status"] == "dropped" and posts[1]["status"] == 409, posts
    v.unmount()
    st = emu.state()
    files = st["files"].values() if isinstance(st["files"], dict) else st["files"]
    names = [(tuple(f["parents"]), f["name"]) for f in files if f.get("parents")]
    assert len(names) > 10
    assert len(names) == len(set(names)), "a duplicate name was made"
    v.mount()
    assert (v.mnt / "lost" / "created.txt").read_bytes() == b"made once"
    v.unmount()


def test_modes_kept_hard_links_refused(gv, tmp_path):
    v = gv.mount()
    write(v.mnt / "private.txt", b"p")
    os.chmod(v.mnt / "private.txt", 0o600)
    with pytest.raises(OSError) as ei:
        os.link(v.mnt / "private.txt", v.mnt / "hard")
    assert ei.value.errno == 95   # EOPNOTSUPP
    v.unmount()
    v.mount()
    assert stat.S_IMODE(os.stat(v.mnt / "private.txt").st_mode) == 0o600
    assert not (v.mnt / "hard").exists()
    v.unmount()


def test_random_reads_writes_truncates_match_a_model(gv):
    """Random pwrite/pread/truncate/fsync on one file against a bytearray,
    across remounts (empty caches: partial fetches, then writes into an
    object only partly cached)."""
    import random
    rnd = random.Random(4)
    model = bytearray()
    v = gv.mount()
    p = v.mnt / "model.bin"
    write(p, b"")
    for round_ in range(3):
        fd = os.open(p, os.O_RDWR)
        try:
            for i in range(60):
                op = rnd.random()
                if op < 0.45:
                    off = rnd.randrange(0, 3 << 20)
                    data = rnd.randbytes(rnd.randrange(1, 300000))
                    os.pwrite(fd, data, off)
                    if off > len(model):
                        model.extend(bytes(off - len(model)))
                    model[off:off + len(data)] = data
                elif op < 0.8:
                    off = rnd.randrange(0, max(1, len(model) + 1000))
                    n = rnd.randrange(1, 200000)
                    assert os.pread(fd, n, off) == bytes(model[off:off + n]), (round_, i)
                elif op < 0.9:
                    size = rnd.randrange(0, 3 << 20)
                    os.ftruncate(fd, size)
                    if size < len(model):
                        del model[size:]
                    else:
                        model.extend(bytes(size - len(model)))
                else:
                    os.fsync(fd)
        finally:
            os.close(fd)
        v.unmount()
        v.mount()
        fd = os.open(p, os.O_RDONLY)
        try:
            # a read near the end first: only part of the object is fetched
            if len(model) > 10:
                assert os.pread(fd, 10, len(model) - 10) == bytes(model[-10:])
        finally:
            os.close(fd)
    assert p.read_bytes() == bytes(model)
    v.unmount()


def test_listing_follows_short_and_empty_pages(gv, emu):
    v = gv.mount()
    (v.mnt / "many").mkdir()
    names = {f"file-{i:02d}" for i in range(14)}
    for n in names:
        write(v.mnt / "many" / n, n.encode())
    v.unmount()
    emu.control(actions=[{"action": "set", "page_size_cap": 3},
                         {"action": "set", "page_pattern": [0, 2, 3]}])
    try:
        emu.clear_log()
        v.mount()
        assert set(os.listdir(v.mnt / "many")) == names
        assert (v.mnt / "many" / "file-13").read_bytes() == b"file-13"
        v.unmount()
    finally:
        emu.control(action="reset")
    lists = [r for r in emu.log() if r["method"] == "GET" and r["path"] == "/drive/v3/files"]
    assert sum("pageToken=" in r["query"] for r in lists) >= 5
    assert all("trashed+%3D+false" in r["query"] or "trashed%20%3D%20false" in r["query"]
               for r in lists), [r["query"] for r in lists][:3]


def test_posix_corners(gv):
    v = gv.mount()
    m = v.mnt
    (m / "full").mkdir()
    write(m / "full" / "x", b"x")
    with pytest.raises(OSError) as ei:
        os.rmdir(m / "full")
    assert ei.value.errno == 39   # ENOTEMPTY
    os.rename(m / "full", m / "moved")       # a directory with contents
    assert (m / "moved" / "x").read_bytes() == b"x"
    fd = os.open(m / "open-unlinked", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"still here")
        os.unlink(m / "open-unlinked")
        assert os.pread(fd, 10, 0) == b"still here"
    finally:
        os.close(fd)
    assert not (m / "open-unlinked").exists()
    st = os.statvfs(m)
    assert st.f_blocks > 0 and st.f_bavail <= st.f_blocks
    v.unmount()
    v.mount()
    assert (m / "moved" / "x").read_bytes() == b"x"
    assert not (m / "full").exists() and not (m / "open-unlinked").exists()
    v.unmount()


def test_revoked_sign_in_says_sign_in_again(gu, emu, tmp_path):
    """Last in this module: it revokes every refresh token."""
    emu.control(action="revoke_refresh_tokens")
    r = gu.run([SCSCTL, "status", REMOTE])
    assert r.returncode != 0
    line = one_line(r.stderr)
    assert "scsctl auth gdrive" in line and "sign in again" in line.lower()
    assert json.loads(cred_file(gu).read_text())["refresh_token"] not in r.stderr


def test_emulator_own_suite():
    here = Path(__file__).resolve().parent.parent / "emulator"
    r = subprocess.run(["/usr/bin/python3", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        str(here)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
