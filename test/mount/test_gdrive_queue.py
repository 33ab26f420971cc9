"""The gdrive: write-back cache against the Drive v3 emulator: close() and
fsync() return once the change is durable on this machine (cache file and
journal record fsynced) and a background uploader sends it to Drive; kill -9
at any moment loses nothing that close() returned for, the next mount
replays the journal; faults and outages keep the queue; conflicts are kept;
the cache is bounded and locked; `scsctl status` tells what waits."""

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from scsmount import SCSFS, Vault, eventually, fusermount_u, make_user, rnd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "emulator"))
import test_gdrive  # noqa: E402
from test_gdrive import CLIENT_ID, CLIENT_SECRET, emu  # noqa: E402,F401 (emu: a fixture)

REMOTE = "gdrive:/Queue Team"
BLK = 256 << 10


class GUser(test_gdrive.GUser):
    cache = None     # XDG_CACHE_HOME: one per "machine"

    def env(self, passfile=True, **extra):
        e = super().env(passfile=passfile, **extra)
        if self.cache:
            e["XDG_CACHE_HOME"] = str(self.cache)
        return e


class GVault(Vault):
    @property
    def remote(self):
        return REMOTE


@pytest.fixture(scope="module")
def gu(emu, tmp_path_factory, fuse, programs):
    home = tmp_path_factory.mktemp("qalice") / "alice"
    base = make_user(home, "alice")
    u = GUser(base.home, "alice")
    u.endpoint = emu.base
    u.ctl("auth", "gdrive", "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET,
          "--device", timeout=120)
    u.ctl("init", REMOTE)
    return u


@pytest.fixture
def gv(gu, emu, tmp_path):
    gu.cache = tmp_path / "cache"
    gu.cache.mkdir()
    emu.control(action="reset")
    v = GVault(gu, tmp_path / "unused-cloud", tmp_path / "mnt")
    yield v
    emu.control(action="reset")
    v.cleanup()


def cache_dir(u):
    dirs = [d for d in (u.cache / "scsfs").iterdir() if d.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def journal_pending(u, kinds="PURM"):
    """Ids with a record of kinds and no later D in the journal (by seq):
    P an upload, U or R a delete or folder removal made offline, M
    metadata set offline."""
    pend = {}
    for line in (cache_dir(u) / "journal").read_text().splitlines():
        f = line.split(" ")
        if f[0] in kinds:
            pend[f[2]] = int(f[1])
        elif f[0] == "D" and f[2] in pend and pend[f[2]] <= int(f[1]):
            del pend[f[2]]
    return pend


def stored(emu):
    """(parents, name) -> [file meta] of everything not trashed on 'Drive'."""
    st = emu.state()
    out = {}
    for f in st["files"].values():
        if f.get("trashed") or not f.get("parents"):
            continue
        out.setdefault((tuple(f["parents"]), f["name"]), []).append(f)
    return out


def no_duplicates(emu):
    dup = {k: v for k, v in stored(emu).items() if len(v) > 1}
    assert not dup, f"duplicate names on Drive: {list(dup)}"


def uploads(log):
    return [r for r in log if r["path"].startswith("/upload/")]


def dead(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[-1][:1] == "Z"
    except FileNotFoundError:
        return True


def kill9(v):
    """kill -9 the daemon, then clean up the dead mount."""
    pids = list(v.pids) if v.proc is None else [v.proc.pid]
    assert pids
    for p in pids:
        os.kill(p, signal.SIGKILL)
    for p in pids:       # (a daemon is not our child: wait until it is gone,
        # with its cache lock: a thread in fdatasync delays the exit)
        eventually(lambda: dead(p), timeout=30, what=f"scsfs {p} gone")
    if v.proc is not None:
        v.proc.wait()
        v.proc = None
        v._log_fh.close()
        v._log_fh = None
    v.pids = []
    fusermount_u(v.mnt)


def status(u):
    r = u.ctl("status", check=False, timeout=60)
    return r.stdout + r.stderr


def test_close_returns_before_upload_and_the_uploader_sends_it(gv, emu):
    v = gv.mount(args=["-o", "upload_delay=2"])
    emu.clear_log()
    data = rnd(300000, 1)
    (v.mnt / "a.bin").write_bytes(data)
    t = time.time()
    assert not uploads(emu.log()), "close() waited for Drive"
    assert journal_pending(gv.user), "close() returned without a journal record"
    eventually(lambda: not journal_pending(gv.user), timeout=30)
    assert time.time() - t >= 1.5, "uploaded before the debounce"
    assert uploads(emu.log())
    v.unmount()
    gv.user.cache = gv.user.cache.parent / "cache2"     # a second machine
    gv.user.cache.mkdir()
    v.mount()
    assert (v.mnt / "a.bin").read_bytes() == data
    v.unmount()



@contextlib.contextmanager
def fresh_machine(v):
    """v mounted as on a second machine (an empty cache): Drive alone."""
    v.user.cache = v.user.cache.parent / f"cache-{time.monotonic_ns()}"
    v.user.cache.mkdir()
    v.mount()
    try:
        yield v
    finally:
        v.unmount()


def fresh_machine_reads(v, files):
    """A second machine (an empty cache) sees every file from Drive alone."""
    with fresh_machine(v):
        for name, data in files.items():
            assert (v.mnt / name).read_bytes() == data, name


def test_kill9_right_after_close_then_remount(gv, emu):
    v = gv.mount(args=["-o", "upload_delay=60"])
    files = {f"k{i}.bin": rnd(1000 + 70000 * i, 10 + i) for i in range(4)}
    (v.mnt / "sub").mkdir()
    files["sub/inner.txt"] = b"inner\n"
    emu.clear_log()
    for name, data in files.items():
        (v.mnt / name).write_bytes(data)
    kill9(v)
    assert len(journal_pending(gv.user)) == len(files)
    # (the status file is written before close returns, not only by the uploader later)
    assert re.search(rf"uploads: {len(files)} files \(.*\) pending \(upload at the next mount\)",
                     status(gv.user)), status(gv.user)
    assert not [r for r in uploads(emu.log()) if r["method"] in ("PATCH", "PUT")], \
        "uploaded before the debounce"
    v.mount()
    eventually(lambda: not journal_pending(gv.user), timeout=60, what="the replayed uploads")
    for name, data in files.items():
        assert (v.mnt / name).read_bytes() == data
    v.unmount()
    no_duplicates(emu)
    fresh_machine_reads(v, files)


def test_own_new_files_seen_after_kill9_while_their_upload_waits(gv, emu):
    """New files stay hidden from other members until their content is on
    Drive.  A mount killed before uploading them still sees them after the
    remount (its journal says they are its own), while scsctl verify does
    not list them; once uploaded, everyone reads them."""
    v = gv.mount(args=["-o", "upload_delay=60"])
    sub = f"new-{time.monotonic_ns()}"
    (v.mnt / sub).mkdir()
    files = {f"{sub}/n1.txt": b"one\n", f"{sub}/n2.bin": rnd(200000, 4)}
    for name, data in files.items():
        (v.mnt / name).write_bytes(data)
    kill9(v)
    assert len(journal_pending(gv.user)) == len(files)
    emu.control(action="stall", method="PATCH", path="/upload/", ms=8000, count=len(files))
    t0 = time.monotonic()
    v.mount()
    assert sorted(os.listdir(v.mnt / sub)) == ["n1.txt", "n2.bin"]
    for name, data in files.items():
        assert (v.mnt / name).read_bytes() == data
    r = gv.user.ctl("verify", check=False, timeout=120)
    assert time.monotonic() - t0 < 7, "too slow to show the stalled upload"
    assert journal_pending(gv.user), "uploaded before the stall ended"
    assert r.returncode == 0 and ", 0 damaged" in r.stdout, r.stdout + r.stderr
    before = int(re.search(r"verified (\d+) files", r.stdout).group(1))
    eventually(lambda: not journal_pending(gv.user), timeout=60, what="the replayed uploads")
    assert sorted(os.listdir(v.mnt / sub)) == ["n1.txt", "n2.bin"]
    r = gv.user.ctl("verify", check=False, timeout=120)
    assert r.returncode == 0 and f"verified {before + 2} files, 0 damaged" in r.stdout, \
        r.stdout + r.stderr
    v.unmount()
    fresh_machine_reads(v, files)


def test_creator_killed_before_the_first_close_leaves_nothing_on_drive(gv, emu):
    """A new file's Drive entry is made when it is created, marked empty
    until its first upload; a creator killed before closing it never
    uploads it, and the next mount deletes that entry (else it would stay
    hidden from everyone and keep its folder from being removed)."""
    v = gv.mount()
    sub = v.mnt / f"open-{time.monotonic_ns()}"
    sub.mkdir()
    (sub / "closed.txt").write_bytes(b"kept")
    eventually(lambda: not journal_pending(gv.user), timeout=30)
    before = len(stored(emu))
    fd = os.open(sub / "never-closed.txt", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"never closed, never promised")
    assert len(stored(emu)) == before + 1        # its entry, marked empty
    kill9(v)
    try:
        os.close(fd)
    except OSError:
        pass                                     # (the mount is gone)
    v.mount()
    try:
        eventually(lambda: len(stored(emu)) == before, timeout=30,
                   what="the entry of the file never closed deleted")
        assert os.listdir(sub) == ["closed.txt"]
        os.unlink(sub / "closed.txt")
        os.rmdir(sub)                            # nothing keeps the folder
    finally:
        v.unmount()


def test_kill9_during_a_slow_upload_then_remount(gv, emu):
    v = gv.mount()
    data = rnd(12 * 1024 * 1024, 5)
    emu.control(action="set", latency_ms=400)
    emu.clear_log()
    (v.mnt / "slow.bin").write_bytes(data)
    eventually(lambda: [r for r in emu.log() if r["path"].startswith("/upload/")],
               timeout=30, what="an upload under way")
    kill9(v)
    emu.control(action="set", latency_ms=0)
    assert journal_pending(gv.user)
    v.mount()
    eventually(lambda: not journal_pending(gv.user), timeout=90, what="the resumed upload")
    v.unmount()
    no_duplicates(emu)
    fresh_machine_reads(v, {"slow.bin": data})


FAULTS = {
    "403-rate": [{"action": "fault", "status": 403, "reason": "rateLimitExceeded",
                  "message": "Rate Limit Exceeded", "count": 3, "path": "/upload/"}],
    "429": [{"action": "fault", "status": 429, "count": 3, "path": "/upload/"}],
    "5xx": [{"action": "fault", "status": 503, "count": 2, "path": "/upload/"},
            {"action": "fault", "status": 500, "count": 1, "path": "/upload/"}],
    "drop": [{"action": "drop", "method": "PUT", "path": "/upload/",
              "after_bytes": 3 * 1024 * 1024 + 1000}],
    "drop-multipart": [{"action": "drop", "method": "PATCH", "path": "/upload/",
                        "after_bytes": 1000, "count": 5}],
    "session-expired": [{"action": "fault", "status": 404, "method": "PUT",
                         "path": "/upload/", "count": 1}],
    "token-expired": [{"action": "expire_tokens"}],
}


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_fault_keeps_the_queue(gv, emu, kind):
    v = gv.mount(foreground=True, args=["-o", "upload_delay=0.2"])
    big = kind in ("drop", "session-expired")
    files = {"f-small.txt": b"small " * 100,
             "f-data.bin": rnd((9 << 20) if big else 200000, 7)}
    (v.mnt / "f-small.txt").write_bytes(b"v1")
    eventually(lambda: not journal_pending(gv.user), timeout=30)
    emu.clear_log()
    emu.control(actions=FAULTS[kind])
    for name, data in files.items():
        (v.mnt / name).write_bytes(data)
    # kill -9 while the uploader backs off: the journal carries the rest
    bursts = kind in ("403-rate", "429", "5xx")
    def fired():
        hits = [(r["method"], r["path"]) for r in emu.log()
                if r.get("fault") or r["status"] in ("dropped", 401)]
        # bursts: one request failed twice, so a retry came before the kill
        return any(hits.count(h) >= 2 for h in hits) if bursts else hits
    eventually(fired, timeout=30, what="the fault firing")
    t_kill = time.time()
    kill9(v)
    if kind != "session-expired":     # (restarted at once, may be done already)
        assert journal_pending(gv.user)
    v.mount(foreground=True, args=["-o", "upload_delay=0.2"])
    eventually(lambda: not journal_pending(gv.user), timeout=120, what="uploads through the faults")
    log = emu.log()
    if kind == "session-expired":
        sessions = [r for r in log if r["method"] == "PATCH" and "uploadType=resumable" in r["query"]]
        assert len(sessions) >= 2, "the expired session was not started again"
    if kind == "token-expired":
        assert [r for r in log if r["status"] == 401] and \
            [r for r in log if r["path"] == "/token" and r["status"] == 200]
    else:
        faulted = [r for r in log if r.get("fault") or r["status"] == "dropped"]
        assert faulted, "the fault never fired"
        checked = 0
        seen = {}
        for f in faulted:
            if not bursts:
                continue
            # exponential backoff: the n-th retry of the same request (by the
            # same daemon) comes 2^n s (plus up to 1 s of jitter) later
            key = (f["method"], f["path"])
            n = seen.get(key, 0)
            seen[key] = n + 1
            nxt = [r for r in log if r["time"] > f["time"] and (r["method"], r["path"]) == key]
            assert nxt, f"no retry after {f}"
            if nxt[0]["time"] < t_kill:
                gap = nxt[0]["time"] - f["time"]
                assert 2 ** n * 0.95 <= gap < 2 ** n + 1.5, (n, gap, f)
                checked += 1
        assert checked or not bursts, "no retry before the kill"
    v.unmount()
    no_duplicates(emu)
    fresh_machine_reads(v, files)


def test_offline_reads_writes_queue_and_upload_when_back(gv, emu):
    v = gv.mount(foreground=True, args=["-o", "upload_delay=0.2"])
    ro = rnd(400000, 9)
    try:
        top = v.mnt / "offline"
        (top / "d").mkdir(parents=True)
        (top / "d" / "off.txt").write_bytes(b"before")
        (top / "ro.bin").write_bytes(ro)
        eventually(lambda: not journal_pending(gv.user), timeout=30)
        assert sorted(os.listdir(top)) == ["d", "ro.bin"]
        assert os.listdir(top / "d") == ["off.txt"]
        fd = os.open(top / "d" / "off.txt", os.O_RDWR)
        emu.control(action="outage", on=True)
        os.pwrite(fd, b"AFTER!", 0)
        os.fsync(fd)
        assert os.pread(fd, 6, 0) == b"AFTER!"
        os.close(fd)
        assert journal_pending(gv.user)
        eventually(lambda: "offline since" in status(gv.user), timeout=60,
                   what="status saying offline")
        assert "1 file" in status(gv.user)
        time.sleep(1.5)      # past the kernel's entry and attribute caches
        # cached files: listed, read and written again through new opens
        assert sorted(os.listdir(top)) == ["d", "ro.bin"]
        assert (top / "ro.bin").read_bytes() == ro
        with open(top / "d" / "off.txt", "r+b") as f:
            f.seek(6)
            f.write(b" and more")
        assert (top / "d" / "off.txt").read_bytes() == b"AFTER! and more"
        os.rename(top / "ro.bin", top / "ro-moved.bin")   # queued too
        assert (top / "ro-moved.bin").read_bytes() == ro
        time.sleep(3)
        assert journal_pending(gv.user), "the queue was dropped while offline"
        drive_back(v, emu, 60, "upload when back")
        eventually(lambda: "uploads: none pending; last sync" in status(gv.user), timeout=10)
    finally:
        emu.control(action="outage", on=False)
        v.unmount(check=False)
    assert "working offline" in v.log() and "reachable again" in v.log()
    fresh_machine_reads(v, {"offline/d/off.txt": b"AFTER! and more",
                            "offline/ro-moved.bin": ro})


def go_offline(v, emu, top):
    """Cut Drive off once top's files are uploaded and top was listed."""
    eventually(lambda: not journal_pending(v.user), timeout=30)
    for d in [top] + [p for p in top.rglob("*") if p.is_dir()]:
        os.listdir(d)
    emu.control(action="outage", on=True)
    eventually(lambda: "offline since" in status(v.user), timeout=60,
               what="status saying offline")


def drive_back(v, emu, timeout=60, what="the changes when Drive is back"):
    """End the outage; wait until everything queued reached Drive."""
    emu.control(action="outage", on=False)
    eventually(lambda: not journal_pending(v.user), timeout=timeout, what=what)


def make_offline_changes(top, big):
    """New files made while Drive is unreachable, and what an editor or a
    build does with them: a save through a temporary name, a deleted
    scratch file, a mode change, a large file."""
    (top / "new.txt").write_bytes(b"made offline")
    (top / "d" / ".save.tmp").write_bytes(b"saved through a temporary name")
    os.rename(top / "d" / ".save.tmp", top / "d" / "saved.txt")
    (top / "scratch").write_bytes(b"gone before Drive saw it")
    os.unlink(top / "scratch")
    os.chmod(top / "new.txt", 0o600)
    # a file Drive has, saved over through a temporary name
    (top / "d" / ".keep.txt.swp").write_bytes(b"kept, edited offline")
    os.rename(top / "d" / ".keep.txt.swp", top / "d" / "keep.txt")
    (top / "moved-up.bin").write_bytes(big)
    os.rename(top / "moved-up.bin", top / "d" / "big.bin")
    # files Drive has: deleted; replaced by a rename while the new one is open
    os.unlink(top / "d" / "old.txt")
    with open(top / "d" / ".over.tmp", "wb") as f:
        f.write(b"replaced while ")
        f.flush()
        os.rename(top / "d" / ".over.tmp", top / "d" / "over.txt")
        f.write(b"open")


def make_drive_files(top):
    (top / "d").mkdir(parents=True)
    for n in ("keep", "old", "over"):
        (top / "d" / f"{n}.txt").write_bytes(b"from before")


OFFLINE_FILES = ["d/big.bin", "d/keep.txt", "d/over.txt", "d/saved.txt", "new.txt"]


def check_offline_changes(top, big):
    assert sorted(str(p.relative_to(top)) for p in top.rglob("*") if p.is_file()) == \
        OFFLINE_FILES
    assert (top / "new.txt").read_bytes() == b"made offline"
    assert (top / "d" / "saved.txt").read_bytes() == b"saved through a temporary name"
    assert (top / "d" / "big.bin").read_bytes() == big
    assert (top / "d" / "keep.txt").read_bytes() == b"kept, edited offline"
    assert (top / "d" / "over.txt").read_bytes() == b"replaced while open"
    assert (top / "new.txt").stat().st_mode & 0o777 == 0o600


def test_offline_new_files_queue_and_upload_when_back(gv, emu):
    v = gv.mount(foreground=True, args=["-o", "upload_delay=0.2"])
    big = rnd(7 << 20, 4)      # past the multipart limit: a resumable upload
    top = v.mnt / "offnew"
    try:
        make_drive_files(top)
        go_offline(v, emu, top)
        before = len(stored(emu))
        emu.clear_log()
        make_offline_changes(top, big)
        time.sleep(1.5)      # past the kernel's entry and attribute caches
        check_offline_changes(top, big)
        # five files to upload, two deletes
        assert len(journal_pending(gv.user, "PU")) == 7, \
            (cache_dir(gv.user) / "journal").read_text()
        assert "5 files (7.0 MiB) wait to upload, 2 deletes to make" in status(gv.user), \
            status(gv.user)
        time.sleep(2)
        assert not [r for r in emu.log() if isinstance(r["status"], int) and
                    r["status"] < 400], "a request got through the outage"
        drive_back(v, emu, 60, "upload when back")
        check_offline_changes(top, big)
    finally:
        emu.control(action="outage", on=False)
        v.unmount(check=False)
    no_duplicates(emu)
    # four new entries, two deleted; keep.txt kept its Drive entry (a new
    # revision)
    assert len(stored(emu)) == before + 2
    fresh_machine_reads(v, {"offnew/new.txt": b"made offline",
                            "offnew/d/saved.txt": b"saved through a temporary name",
                            "offnew/d/big.bin": big,
                            "offnew/d/keep.txt": b"kept, edited offline",
                            "offnew/d/over.txt": b"replaced while open"})
    with fresh_machine(v):
        check_offline_changes(top, big)     # names, modes, and nothing else


def test_offline_save_through_a_temporary_name_whose_release_comes_late(gv, emu):
    """close(2) returns at FUSE's flush; the release that lets go of the
    file's last handle follows on its own, and an editor's rename right
    after the close can overtake it.  The save (a temporary file renamed
    over one Drive has) still keeps the original's Drive entry: here a
    second handle, closed 0.2 s into the rename, stands for that release."""
    v = gv.mount(args=["-o", "upload_delay=0.2"])
    top = v.mnt / "late"
    try:
        make_drive_files(top)
        go_offline(v, emu, top)
        ids = sorted(f["id"] for fs in stored(emu).values() for f in fs)
        tmp = top / "d" / ".keep.txt.swp"
        tmp.write_bytes(b"saved, released late")
        fd = os.open(tmp, os.O_RDONLY)
        late = threading.Timer(0.2, os.close, (fd,))
        late.start()
        os.rename(tmp, top / "d" / "keep.txt")
        late.join()
        assert (top / "d" / "keep.txt").read_bytes() == b"saved, released late"
        # one upload: keep.txt's new content; no delete, no new entry
        assert len(journal_pending(gv.user, "PU")) == 1, \
            (cache_dir(gv.user) / "journal").read_text()
        drive_back(v, emu)
    finally:
        emu.control(action="outage", on=False)
        v.unmount(check=False)
    assert sorted(f["id"] for fs in stored(emu).values() for f in fs) == ids
    fresh_machine_reads(v, {"late/d/keep.txt": b"saved, released late"})


def test_offline_new_files_survive_kill9_and_upload_at_the_next_mount(gv, emu):
    v = gv.mount(args=["-o", "upload_delay=0.2"])
    big = rnd(6 << 20, 5)
    top = v.mnt / "offkill"
    try:
        make_drive_files(top)
        go_offline(v, emu, top)
        before = len(stored(emu))
        make_offline_changes(top, big)
        kill9(v)
    finally:
        emu.control(action="outage", on=False)
    assert len(journal_pending(gv.user, "PU")) == 7, (cache_dir(gv.user) / "journal").read_text()
    assert len(stored(emu)) == before, "Drive changed during the outage"
    v.mount(args=["-o", "upload_delay=0.2"])
    try:
        check_offline_changes(top, big)      # before the uploads land, too
        eventually(lambda: not journal_pending(gv.user), timeout=60,
                   what="the replayed uploads")
        check_offline_changes(top, big)
    finally:
        v.unmount()
    no_duplicates(emu)
    fresh_machine_reads(v, {"offkill/new.txt": b"made offline", "offkill/d/big.bin": big,
                            "offkill/d/saved.txt": b"saved through a temporary name",
                            "offkill/d/keep.txt": b"kept, edited offline",
                            "offkill/d/over.txt": b"replaced while open"})
    assert len(stored(emu)) == before + 2


def test_offline_programs_save_and_it_all_reaches_drive(gv, emu):
    """What people run on a plane: Vim (which cannot rename the original to
    its backup offline and copies it instead), sed -i and rsync (a temporary
    name renamed over the file), SQLite (its journal made and deleted)."""
    v = gv.mount(foreground=True, args=["-o", "upload_delay=0.2"])
    top = v.mnt / "plane"
    try:
        top.mkdir()
        (top / "notes.txt").write_bytes(b"line one\n")
        (top / "conf.ini").write_bytes(b"mode=slow\n")
        (top / "data.bin").write_bytes(b"old data")
        con = sqlite3.connect(top / "db.sqlite")
        con.execute("create table t (x text)")
        con.execute("insert into t values ('before')")
        con.commit()
        con.close()
        go_offline(v, emu, top)
        run = lambda *a: subprocess.run(a, check=True, capture_output=True, timeout=120)  # noqa
        run("vim", "-u", "NONE", "-i", "NONE", "-N", "-es", "-c", "normal Goline two",
            "-c", "wq", str(top / "notes.txt"))
        run("sed", "-i", "s/slow/fast/", str(top / "conf.ini"))
        src = v.mnt.parent / "src.bin"        # (outside the mount)
        src.write_bytes(b"new data from rsync")
        run("rsync", "-t", str(src), str(top / "data.bin"))
        con = sqlite3.connect(top / "db.sqlite")
        con.execute("insert into t values ('offline')")
        con.commit()
        con.close()
        time.sleep(1.5)
        assert sorted(os.listdir(top)) == ["conf.ini", "data.bin", "db.sqlite", "notes.txt"]
        assert (top / "notes.txt").read_bytes() == b"line one\nline two\n"
        drive_back(v, emu, 60, "upload when back")
    finally:
        emu.control(action="outage", on=False)
        v.unmount(check=False)
    no_duplicates(emu)
    fresh_machine_reads(v, {"plane/notes.txt": b"line one\nline two\n",
                            "plane/conf.ini": b"mode=fast\n",
                            "plane/data.bin": b"new data from rsync"})
    with fresh_machine(v):
        assert sorted(os.listdir(top)) == ["conf.ini", "data.bin", "db.sqlite", "notes.txt"]
        con = sqlite3.connect(top / "db.sqlite")
        assert [r[0] for r in con.execute("select x from t order by rowid")] == \
            ["before", "offline"]
        assert con.execute("pragma integrity_check").fetchone()[0] == "ok"
        con.close()


def test_offline_folders_and_git_commit_survive_kill9(gv, emu):
    """Folders made offline (with files in them, renamed, removed), and a
    git commit (new object folders, lock files renamed over the index and
    the branch), then kill -9: the next mount creates it all on Drive."""
    v = gv.mount(args=["-o", "upload_delay=0.2"])
    top = v.mnt / "offdirs"
    env = dict(os.environ, GIT_AUTHOR_NAME="a", GIT_AUTHOR_EMAIL="a@x",
               GIT_COMMITTER_NAME="a", GIT_COMMITTER_EMAIL="a@x", HOME=str(v.mnt.parent))
    git = lambda *a: subprocess.run(["git", "-C", str(top / "repo"), *a], check=True,  # noqa
                                    capture_output=True, env=env, timeout=120, text=True)
    try:
        (top / "repo").mkdir(parents=True)
        git("init", "-q", "-b", "main")
        (top / "repo" / "a.txt").write_text("first\n")
        git("add", "-A")
        git("commit", "-q", "-m", "online")
        go_offline(v, emu, top)
        (top / "new" / "deep").mkdir(parents=True)
        (top / "new" / "deep" / "x.txt").write_bytes(b"deep down")
        (top / "gone").mkdir()
        os.rmdir(top / "gone")
        (top / "moved").mkdir()
        (top / "moved" / "y.txt").write_bytes(b"moved along")
        os.rename(top / "moved", top / "renamed")
        (top / "repo" / "a.txt").write_text("first\nsecond\n")
        (top / "repo" / "b.txt").write_text("new file\n")
        git("add", "-A")
        git("commit", "-q", "-m", "offline")
        time.sleep(1.5)
        assert sorted(os.listdir(top)) == ["new", "renamed", "repo"]
        assert (top / "renamed" / "y.txt").read_bytes() == b"moved along"
        assert git("log", "--format=%s").stdout.split() == ["offline", "online"]
        before = len(stored(emu))
        kill9(v)
    finally:
        emu.control(action="outage", on=False)
    assert len(stored(emu)) == before, "Drive changed during the outage"
    v.mount(args=["-o", "upload_delay=0.2"])
    try:
        assert sorted(os.listdir(top)) == ["new", "renamed", "repo"]    # before the uploads
        eventually(lambda: not journal_pending(gv.user), timeout=90, what="the replayed uploads")
    finally:
        v.unmount()
    no_duplicates(emu)
    with fresh_machine(v):
        assert sorted(os.listdir(top)) == ["new", "renamed", "repo"]
        assert (top / "new" / "deep" / "x.txt").read_bytes() == b"deep down"
        assert (top / "renamed" / "y.txt").read_bytes() == b"moved along"
        git("fsck", "--full", "--strict")
        assert git("log", "--format=%s").stdout.split() == ["offline", "online"]
        assert git("status", "--porcelain").stdout == ""


def make_ns_tree(top):
    """What Drive has before the outage, for the offline namespace tests."""
    (top / "d").mkdir(parents=True)
    (top / "d" / "a.txt").write_bytes(b"alpha")
    (top / "d" / "b.txt").write_bytes(b"beta")
    for n in ("x", "y", "notes"):
        (top / f"{n}.txt").write_bytes(f"{n} from before".encode())
    (top / "empty").mkdir()
    (top / "e").mkdir()
    (top / "e" / "only.txt").write_bytes(b"the only one")
    (top / "old-link").symlink_to("x.txt")


STAMP = 1500000000.25


def make_ns_changes(top):
    """Renames, moves, modes, times, links and folder removals of what
    Drive has, made while it is unreachable: what a file manager, an
    editor (Emacs renames the original to its backup, then writes the new
    file), `mv`, `chmod`, `touch`, `ln -s` and `rm -r` do."""
    os.rename(top / "x.txt", top / "d" / "x-moved.txt")      # into another folder
    os.rename(top / "d", top / "d2")                         # a folder, with what it holds
    os.chmod(top / "d2" / "a.txt", 0o600)
    os.utime(top / "d2" / "b.txt", (STAMP, STAMP))
    os.rename(top / "d2" / "b.txt", top / "y.txt")           # over a file Drive has
    os.rmdir(top / "empty")
    os.unlink(top / "e" / "only.txt")
    os.rmdir(top / "e")
    os.rename(top / "notes.txt", top / "notes.txt~")
    (top / "notes.txt").write_bytes(b"new notes")
    os.symlink("d2/a.txt", top / "link")
    os.rename(top / "old-link", top / "d2" / "moved-link")
    (top / "d2" / "sub").mkdir()                             # made inside a moved folder
    (top / "d2" / "sub" / "s.txt").write_bytes(b"made offline")


NS_TREE = ["d2", "d2/a.txt", "d2/moved-link", "d2/sub", "d2/sub/s.txt", "d2/x-moved.txt",
           "link", "notes.txt", "notes.txt~", "y.txt"]


def check_ns_tree(top):
    assert sorted(str(p.relative_to(top)) for p in top.rglob("*")) == NS_TREE
    want = {"d2/a.txt": b"alpha", "d2/x-moved.txt": b"x from before", "y.txt": b"beta",
            "notes.txt": b"new notes", "notes.txt~": b"notes from before",
            "d2/sub/s.txt": b"made offline"}
    for name, data in want.items():
        assert (top / name).read_bytes() == data, name
    assert (top / "d2" / "a.txt").stat().st_mode & 0o777 == 0o600
    assert (top / "y.txt").stat().st_mtime == STAMP      # b.txt's times moved with it
    assert os.readlink(top / "link") == "d2/a.txt"
    assert (top / "link").read_bytes() == b"alpha"
    assert os.readlink(top / "d2" / "moved-link") == "x.txt"


def drive_folders(emu):
    return {i for i, f in emu.state()["files"].items()
            if f.get("mimeType") == "application/vnd.google-apps.folder" and not f.get("trashed")}


def test_offline_renames_modes_links_and_folder_removals_reach_drive(gv, emu):
    v = gv.mount(foreground=True, args=["-o", "upload_delay=0.2"])
    top = v.mnt / "offns"
    try:
        make_ns_tree(top)
        go_offline(v, emu, top)
        before, folders = len(stored(emu)), drive_folders(emu)
        emu.clear_log()
        make_ns_changes(top)
        time.sleep(1.5)      # past the kernel's entry and attribute caches
        check_ns_tree(top)
        assert "other changes to make" in status(gv.user), status(gv.user)
        time.sleep(2)
        assert not [r for r in emu.log() if isinstance(r["status"], int) and
                    r["status"] < 400], "a request got through the outage"
        assert len(stored(emu)) == before, "Drive changed during the outage"
        drive_back(v, emu, 60, "the changes when back")
        check_ns_tree(top)
        eventually(lambda: "uploads: none pending" in status(gv.user), timeout=10)
    finally:
        emu.control(action="outage", on=False)
        v.unmount(check=False)
    assert "Drive is unreachable: links, and removing" not in v.log()
    no_duplicates(emu)
    # gone: the two folders (and their .scsdir), e/only.txt, y.txt's old
    # entry; new: notes.txt, link, sub (and its .scsdir), s.txt
    assert len(stored(emu)) == before - 6 + 5
    assert len(folders - drive_folders(emu)) == 2
    with fresh_machine(v):
        check_ns_tree(top)


def test_offline_renames_and_folder_removals_survive_kill9(gv, emu):
    v = gv.mount(args=["-o", "upload_delay=0.2"])
    top = v.mnt / "offnskill"
    try:
        make_ns_tree(top)
        go_offline(v, emu, top)
        before = len(stored(emu))
        make_ns_changes(top)
        kill9(v)
    finally:
        emu.control(action="outage", on=False)
    assert len(stored(emu)) == before, "Drive changed during the outage"
    assert journal_pending(gv.user)
    # the replayed changes wait while this mount starts: it shows them anyway
    emu.control(action="stall", method="PATCH", path="/drive/v3/files/", ms=6000, count=20)
    v.mount(args=["-o", "upload_delay=0.2"])
    try:
        check_ns_tree(top)
        eventually(lambda: not journal_pending(gv.user), timeout=90, what="the replayed changes")
        check_ns_tree(top)
    finally:
        v.unmount()
    no_duplicates(emu)
    assert len(stored(emu)) == before - 1
    with fresh_machine(v):
        check_ns_tree(top)


def test_offline_folder_removal_keeps_what_someone_put_in_it(gv, emu):
    """Drive removes a folder with all it holds: a folder removed offline
    in which someone else put a file meanwhile is kept as it is on Drive,
    with what this mount deleted in it (its .scsdir among them): nothing of
    theirs is lost, and the folder still works."""
    v = gv.mount(foreground=True, args=["-o", "upload_delay=0.2,poll=3600"])
    top = v.mnt / "offkeep"
    try:
        folders = drive_folders(emu)
        (top / "box").mkdir(parents=True)
        (top / "box" / "mine.txt").write_bytes(b"mine")
        eventually(lambda: not journal_pending(gv.user), timeout=30)
        assert os.listdir(top) == ["box"] and os.listdir(top / "box") == ["mine.txt"]
        st = emu.state()["files"]
        new = drive_folders(emu) - folders
        box_id = [i for i in new if st[i]["parents"][0] in new][0]
        # someone else puts a file in it (the mount does not hear of it:
        # its feed is read once an hour)
        other = emu.client(emu.token())
        rep = other.request("POST", "/drive/v3/files", body={"name": "theirs",
                                                             "parents": [box_id]})
        assert rep.status == 200, rep
        theirs = rep.json()["id"]
        emu.control(action="outage", on=True)
        eventually(lambda: "offline since" in status(gv.user), timeout=60)
        os.unlink(top / "box" / "mine.txt")
        os.rmdir(top / "box")
        time.sleep(1.5)
        assert os.listdir(top) == []
        drive_back(v, emu, 60, "the removal")
        eventually(lambda: os.listdir(top) == ["box"], timeout=10, what="the folder back")
        assert os.listdir(top / "box") == ["mine.txt"]      # (theirs is no scsfs object)
        assert (top / "box" / "mine.txt").read_bytes() == b"mine"
    finally:
        emu.control(action="outage", on=False)
        v.unmount(check=False)
    assert "someone else changed what was in it meanwhile; it is kept" in v.log(), v.log()
    assert box_id in drive_folders(emu)
    # (theirs is no scsfs object: gone, for the tests after this one)
    assert other.request("DELETE", f"/drive/v3/files/{theirs}").status == 204
    other.close()


def two_on_drive(v, emu, small, big):
    """Files small and big ({name: content}, small's content the shorter)
    written and uploaded, and listed by the mount: small's Drive id."""
    ids = set(emu.state()["files"])
    for name, data in {**small, **big}.items():
        (v.mnt / name).write_bytes(data)
    eventually(lambda: not journal_pending(v.user), timeout=30)
    assert {*small, *big} <= set(os.listdir(v.mnt))   # (listed: seen)
    new = [i for i in emu.state()["files"] if i not in ids]
    sizes = {i: int(emu.state()["files"][i].get("size") or 0) for i in new}
    return min(sizes, key=sizes.get)


def test_offline_rename_of_a_file_deleted_on_drive_meanwhile_loses_nothing(gv, emu):
    v = gv.mount(foreground=True, args=["-o", "upload_delay=0.2,poll=3600"])
    try:
        gone = two_on_drive(v, emu, {"gone.txt": b"gone"}, {"stays.txt": b"stays"})
        other = emu.client(emu.token())
        assert other.request("DELETE", f"/drive/v3/files/{gone}").status == 204
        other.close()
        emu.control(action="outage", on=True)
        eventually(lambda: "offline since" in status(gv.user), timeout=60)
        os.rename(v.mnt / "gone.txt", v.mnt / "gone-renamed.txt")
        os.rename(v.mnt / "stays.txt", v.mnt / "stays-renamed.txt")
        drive_back(v, emu, 60, "the renames")
        time.sleep(1.5)
        names = set(os.listdir(v.mnt))
        assert "stays-renamed.txt" in names and "gone-renamed.txt" not in names, names
        assert (v.mnt / "stays-renamed.txt").read_bytes() == b"stays"
    finally:
        emu.control(action="outage", on=False)
        v.unmount(check=False)
    assert "it was deleted on Drive meanwhile" in v.log(), v.log()


@pytest.mark.parametrize("kill", [False, True], ids=["mounted", "kill9"])
def test_offline_new_files_in_a_folder_deleted_on_drive_meanwhile_bring_it_back(gv, emu, kill):
    """What this mount made while Drive was unreachable in a folder that
    someone else deleted meanwhile (with everything Drive had in it) is not
    lost: the folders it is in come back, with their names, holding only
    what was made offline, for this mount and on a fresh machine; also
    when the mount was killed before Drive was back (the next mount does
    it, from what the first kept in its cache)."""
    args = ["-o", "upload_delay=0.2,poll=1"]
    v = gv.mount(foreground=True, args=args)
    top = v.mnt / ("doomed-k" if kill else "doomed")
    try:
        before = drive_folders(emu)
        (top / "deep").mkdir(parents=True)
        (top / "deep" / "theirs.txt").write_bytes(b"from before")
        (top / "kept").mkdir()
        go_offline(v, emu, top)
        new = drive_folders(emu) - before
        files = emu.state()["files"]
        doomed = [i for i in new if not set(files[i]["parents"]) & new]
        assert len(doomed) == 1, new
        (top / "deep" / "new.txt").write_bytes(b"made offline")
        (top / "deep" / "sub").mkdir()
        (top / "deep" / "sub" / "x.txt").write_bytes(b"in a folder made offline")
        os.symlink("../new.txt", top / "deep" / "sub" / "ln")
        if kill:
            kill9(v)
        # someone else deletes the whole folder meanwhile
        emu.control(action="server_delete", id=doomed[0])
        if kill:
            emu.control(action="outage", on=False)
            # the first folder made again gets no .scsdir at first (a crash
            # in between does the same): it is taken, not made twice
            emu.control(action="fault", method="POST", path="/upload/drive/v3/files",
                        status=400)
            v.mount(foreground=True, args=args)
        drive_back(v, emu, 60, "the new files, in their folders brought back")
        eventually(lambda: not (top / "deep" / "theirs.txt").exists(), timeout=30,
                   what="the deletion seen")
        assert sorted(str(p.relative_to(top)) for p in top.rglob("*")) == \
            ["deep", "deep/new.txt", "deep/sub", "deep/sub/ln", "deep/sub/x.txt"]
        assert (top / "deep" / "sub" / "ln").read_bytes() == b"made offline"
        assert not (cache_dir(gv.user) / "keep").exists()     # (nothing left to keep)
    finally:
        emu.control(action="outage", on=False)
        v.unmount(check=False)
    assert "was deleted on Drive meanwhile; it is made again" in v.log(), v.log()
    no_duplicates(emu)
    name = top.name
    fresh_machine_reads(v, {f"{name}/deep/new.txt": b"made offline",
                            f"{name}/deep/sub/x.txt": b"in a folder made offline",
                            f"{name}/deep/sub/ln": b"made offline"})
    with fresh_machine(v):
        assert sorted(os.listdir(v.mnt / name)) == ["deep"]


def test_chmod_keeps_the_mtime_online_and_offline(gv, emu):
    """A mode change is a metadata change on Drive, which moves a file's
    modifiedTime to now unless the request names one: the file's mtime
    stays what it was, whether the change goes at once or waits for Drive."""
    v = gv.mount(foreground=True, args=["-o", "upload_delay=0.2"])
    top = v.mnt / "modes"
    stamp = 1400000000.5
    try:
        top.mkdir()
        for n in ("on.txt", "off.txt"):
            (top / n).write_bytes(n.encode())
            os.utime(top / n, (stamp, stamp))
        eventually(lambda: not journal_pending(gv.user), timeout=30)
        os.chmod(top / "on.txt", 0o600)
        go_offline(v, emu, top)
        os.chmod(top / "off.txt", 0o640)
        drive_back(v, emu)
    finally:
        emu.control(action="outage", on=False)
        v.unmount(check=False)
    with fresh_machine(v):
        for n, mode in (("on.txt", 0o600), ("off.txt", 0o640)):
            st = (top / n).stat()
            assert (st.st_mode & 0o777, st.st_mtime) == (mode, stamp), n


def test_mount_while_offline_from_what_this_machine_saw(gv, emu):
    """A machine that mounted the folder before can mount it again while
    Drive is unreachable (a laptop started on a plane): from the snapshot
    its last mount left, what it cached reads, and changes queue and reach
    Drive when it is back."""
    v = gv.mount(args=["-o", "upload_delay=0.2"])
    top = v.mnt / "plane2"
    data = rnd(300000, 11)
    (top / "d").mkdir(parents=True)
    (top / "d" / "a.txt").write_bytes(b"alpha")
    (top / "big.bin").write_bytes(data)
    os.symlink("d/a.txt", top / "link")
    eventually(lambda: not journal_pending(gv.user), timeout=30)
    seen = sorted(str(p.relative_to(top)) for p in top.rglob("*"))
    assert (top / "big.bin").read_bytes() == data
    v.unmount()
    emu.control(action="outage", on=True)
    try:
        v.mount(foreground=True, args=["-o", "upload_delay=0.2"])
        assert "mounted from what this machine last saw" in v.log(), v.log()
        assert sorted(str(p.relative_to(top)) for p in top.rglob("*")) == seen
        assert (top / "d" / "a.txt").read_bytes() == b"alpha"
        assert (top / "big.bin").read_bytes() == data
        assert os.readlink(top / "link") == "d/a.txt"
        (top / "d" / "new.txt").write_bytes(b"written on the plane")
        os.rename(top / "d" / "a.txt", top / "d" / "a-renamed.txt")
        (top / "e").mkdir()
        (top / "e" / "f.txt").write_bytes(b"in a new folder")
        assert "offline since" in status(gv.user), status(gv.user)
        drive_back(v, emu, 90, "the uploads when back")
    finally:
        emu.control(action="outage", on=False)
        v.unmount(check=False)
    no_duplicates(emu)
    fresh_machine_reads(v, {"plane2/d/new.txt": b"written on the plane",
                            "plane2/d/a-renamed.txt": b"alpha",
                            "plane2/e/f.txt": b"in a new folder", "plane2/big.bin": data})


def test_offline_mount_killed_then_mounted_offline_again(gv, emu):
    """kill -9 of a mount made while Drive is unreachable, then a mount
    again, still offline: what the journal holds (new files, a rename, a
    folder) shows over the older snapshot, and reaches Drive once it is
    back."""
    v = gv.mount(args=["-o", "upload_delay=0.2"])
    top = v.mnt / "plane3"
    (top / "d").mkdir(parents=True)
    (top / "d" / "a.txt").write_bytes(b"alpha")
    eventually(lambda: not journal_pending(gv.user), timeout=30)
    assert sorted(os.listdir(top)) == ["d"] and os.listdir(top / "d") == ["a.txt"]
    v.unmount()
    emu.control(action="outage", on=True)
    try:
        v.mount(args=["-o", "upload_delay=0.2"])
        (top / "d" / "new.txt").write_bytes(b"written offline")
        os.rename(top / "d" / "a.txt", top / "a-moved.txt")
        (top / "e").mkdir()
        (top / "e" / "f.txt").write_bytes(b"in a new folder")
        kill9(v)
        v.mount(args=["-o", "upload_delay=0.2"])
        assert sorted(os.listdir(top)) == ["a-moved.txt", "d", "e"]
        assert os.listdir(top / "d") == ["new.txt"]
        assert (top / "a-moved.txt").read_bytes() == b"alpha"
        assert (top / "e" / "f.txt").read_bytes() == b"in a new folder"
        drive_back(v, emu, 90, "the uploads when back")
    finally:
        emu.control(action="outage", on=False)
        v.unmount(check=False)
    no_duplicates(emu)
    with fresh_machine(v):
        assert sorted(os.listdir(top)) == ["a-moved.txt", "d", "e"]
        assert (top / "d" / "new.txt").read_bytes() == b"written offline"
        assert (top / "a-moved.txt").read_bytes() == b"alpha"
        assert (top / "e" / "f.txt").read_bytes() == b"in a new folder"


def test_mount_while_offline_without_a_snapshot_says_why(gv, emu):
    emu.control(action="outage", on=True)
    try:
        r = gv.user.run([SCSFS, "-f", gv.remote, str(gv.mnt)], timeout=120)
    finally:
        emu.control(action="outage", on=False)
    assert r.returncode != 0
    assert "cannot reach Google Drive" in r.stderr and "never mounted it before" in r.stderr, \
        r.stderr


def test_offline_delete_keeps_a_file_changed_on_drive_meanwhile(gv, emu):
    v = gv.mount(foreground=True, args=["-o", "upload_delay=0.2,poll=3600"])
    try:
        theirs = [two_on_drive(v, emu, {"theirs.txt": b"mine"}, {"mine.txt": b"mine too"})]
        before = len(stored(emu))
        # (the mount does not hear of it: its feed is read once an hour)
        replace_on_drive(emu, theirs[0])
        emu.control(action="outage", on=True)
        eventually(lambda: "offline since" in status(gv.user), timeout=60)
        os.unlink(v.mnt / "theirs.txt")
        os.unlink(v.mnt / "mine.txt")
        time.sleep(1.5)
        assert not {"mine.txt", "theirs.txt"} & set(os.listdir(v.mnt))
        assert len(journal_pending(gv.user)) == 2
        drive_back(v, emu, 60, "the deletes")
    finally:
        emu.control(action="outage", on=False)
        v.unmount(check=False)
    assert "was changed on Drive by someone else after this mount deleted it offline; " \
        "their version is kept" in v.log(), v.log()
    assert len(stored(emu)) == before - 1      # only the one nobody changed went
    assert theirs[0] in {f["id"] for fs in stored(emu).values() for f in fs}
    # (their bytes are no scsfs object: gone, for the tests after this one)
    other = emu.client(emu.token())
    assert other.request("DELETE", f"/drive/v3/files/{theirs[0]}").status == 204
    other.close()


def test_sync_upload_waits_for_drive(gv, emu):
    v = gv.mount(args=["-o", "sync_upload,upload_delay=60"])
    emu.clear_log()
    with open(v.mnt / "s.bin", "wb") as f:
        f.write(rnd(100000, 3))
        f.flush()
        os.fsync(f.fileno())
        assert uploads(emu.log()), "fsync returned before the upload"
        assert not journal_pending(gv.user)
    v.unmount()


def test_daily_cap_and_full_drive_keep_the_queue(gv, emu):
    v = gv.mount(foreground=True, args=["-o", "upload_delay=0.2"])
    try:
        emu.control(action="set", quota_limit=1)
        (v.mnt / "full.bin").write_bytes(rnd(100000, 4))      # close() still succeeds
        eventually(lambda: "storage is full" in status(gv.user), timeout=60)
        assert journal_pending(gv.user)
        assert "storage is full" in v.log()
    finally:
        emu.control(action="reset")
        v.unmount(check=False)     # the unmount tries once more: Drive has room now
    assert not journal_pending(gv.user)
    fresh_machine_reads(v, {"full.bin": rnd(100000, 4)})


def test_cache_is_locked(gv):
    v = gv.mount()
    try:
        w = GVault(gv.user, gv.cloud, gv.mnt.parent / "mnt2")
        r = subprocess.run([str(a) for a in (SCSFS, "-f", REMOTE, w.mnt)],
                           env=gv.user.env(), capture_output=True, text=True, timeout=60)
        assert r.returncode != 0
        assert re.search(r"another scsfs is using the cache \S+: unmount it first", r.stderr), r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    finally:
        v.unmount()


def test_cache_max_evicts_clean_data(gv, emu):
    v = gv.mount(args=["-o", "cache_max=1M,upload_delay=0.2"])
    files = {f"c{i}.bin": rnd(1500000, 20 + i) for i in range(3)}
    for name, data in files.items():
        (v.mnt / name).write_bytes(data)
    eventually(lambda: not journal_pending(gv.user), timeout=60)
    v.unmount()
    v.mount(args=["-o", "cache_max=1M"])
    for name, data in files.items():
        assert (v.mnt / name).read_bytes() == data
    objs = cache_dir(gv.user) / "obj"
    used = sum(p.stat().st_blocks * 512 for p in objs.iterdir())
    assert used <= 1600000 + BLK, used     # at most the last file read
    v.unmount()


def test_unlink_drops_the_queued_upload(gv, emu):
    v = gv.mount(args=["-o", "upload_delay=30"])
    (v.mnt / "gone.txt").write_bytes(b"short-lived")
    (fid,) = journal_pending(gv.user)
    os.unlink(v.mnt / "gone.txt")
    assert not journal_pending(gv.user)
    v.unmount()
    f = emu.state()["files"].get(fid)
    assert f is None or f.get("trashed"), "an unlinked file came back"


@pytest.mark.parametrize("how", ["unlink", "rename-over"])
def test_own_delete_during_its_upload_keeps_no_conflict_copy(gv, emu, how):
    """This mount deletes a file (or renames another over it) while the
    uploader is checking that file's state on Drive: the upload's 404 is our
    own doing, not another member's, so the upload just stops — no conflict
    copy (CI: a random-ops run left 'a0 (conflict from alice …)' beside a0)."""
    v = gv.mount(foreground=True, args=["-o", "upload_delay=1"])
    other, doomed = f"other-{how}.txt", f"doomed-{how}.txt"

    def names():
        return sorted(n for n in os.listdir(v.mnt) if n.startswith((other[:-4], doomed[:-4])))
    try:
        (v.mnt / other).write_bytes(b"the other file")
        eventually(lambda: not journal_pending(gv.user), timeout=30)
        (v.mnt / doomed).write_bytes(b"short-lived")
        (fid,) = journal_pending(gv.user)
        # the uploader's look at Drive is held until after our delete
        emu.control(action="stall", method="GET", path_regex=f"/files/{fid}$", ms=2500)
        eventually(lambda: not emu.state()["faults"], timeout=30,
                   what="the uploader asking Drive about the file")
        if how == "unlink":
            os.unlink(v.mnt / doomed)
            want = [other]
        else:
            os.rename(v.mnt / other, v.mnt / doomed)
            want = [doomed]
        eventually(lambda: [r for r in emu.log() if r["method"] == "GET" and
                            r["path"].endswith("/files/" + fid) and r["status"] == 404],
                   timeout=30, what="the held request answered")
        v.unmount()         # (waits for the uploader's job to end)
        assert "keeping both" not in v.log(), v.log()
        v.mount()
        assert names() == want
        if how == "rename-over":
            assert (v.mnt / doomed).read_bytes() == b"the other file"
    finally:
        v.unmount(check=False)
    no_duplicates(emu)


def stamped(v, emu, fid, name):
    """Drive has STAMP as fid's modifiedTime, and a fresh mount shows it."""
    assert emu.state()["files"][fid]["modifiedTime"] == "2017-07-14T02:40:00.250Z"
    v.mount()
    try:
        assert (v.mnt / name).stat().st_mtime == STAMP
    finally:
        v.unmount()


def test_times_set_while_the_upload_runs_are_kept(gv, emu):
    """Times set right after a close (cp -p, tar x, rsync -t) go to Drive at
    once, and with the upload, which gives Drive a new modifiedTime.  Here
    Drive makes the times' PATCH at once but its reply comes after the
    upload has landed and finished: the times must still be Drive's in the
    end (CI: test_rekey's file showed the time of its upload, not the one
    set).  (No writeback cache: the kernel sets no times of its own.)"""
    v = gv.mount(foreground=True, args=["-o", "upload_delay=1,no_writeback_cache"])
    try:
        (v.mnt / "stamped.txt").write_bytes(b"times set after the close\n")
        (fid,) = journal_pending(gv.user)
        emu.control(action="stall", method="PATCH", path_regex=f"^/drive/v3/files/{fid}$",
                    ms=4000, reply=True)
        emu.clear_log()
        os.utime(v.mnt / "stamped.txt", (STAMP, STAMP))
        log = emu.log()
        held = [r for r in log if r.get("fault") == "stall"]
        ups = [r for r in uploads(log) if r["path"].endswith("/" + fid)]
        assert held and ups and held[0]["time"] < ups[0]["time"], \
            f"not staged (the upload ran after the times' reply): {log}"
        eventually(lambda: not journal_pending(gv.user), timeout=30, what="the queue drained")
    finally:
        v.unmount()
    stamped(v, emu, fid, "stamped.txt")


def test_times_set_while_the_last_close_reapplies_older_ones_are_kept(gv, emu):
    """Times set on an open file are set again once it is sealed, at its
    last close (the release, which the kernel sends after close returns
    and which runs beside what comes next).  A utimens made while that
    release re-applies the older times must win: here the release's PATCH
    is held while the content uploads and the new times are set (CI: a
    file given a time right after its close kept the time of its write)."""
    old = STAMP - 86400
    v = gv.mount(foreground=True, args=["-o", "upload_delay=0.2,no_writeback_cache"])
    try:
        def marked():   # new files whose content is not on Drive yet
            return {k for k, m in emu.state()["files"].items()
                    if m and (m.get("appProperties") or {}).get("p") == "1"}
        before = marked()       # (a test that failed before may have left some)
        fd = os.open(v.mnt / "reset.txt", os.O_CREAT | os.O_WRONLY, 0o644)
        try:
            os.write(fd, b"times set while open, then after the close\n")
            os.utime(v.mnt / "reset.txt", (old, old))        # pending: re-applied at seals
            (fid,) = marked() - before
            # the close's flush re-applies them at once, its release late
            emu.clear_log()
            emu.control(actions=[
                {"action": "stall", "method": "PATCH", "path_regex": f"^/drive/v3/files/{fid}$",
                 "ms": 0},
                {"action": "stall", "method": "PATCH", "path_regex": f"^/drive/v3/files/{fid}$",
                 "ms": 6000}])
        finally:
            os.close(fd)
        eventually(lambda: not emu.state()["faults"], timeout=30,
                   what="the release re-applying the older times")
        eventually(lambda: not journal_pending(gv.user), timeout=30, what="the content uploaded")
        assert len([r for r in emu.log() if r.get("fault") == "stall"]) == 1, \
            "not staged: the release's PATCH was over before the new times were set"
        os.utime(v.mnt / "reset.txt", (STAMP, STAMP))
        eventually(lambda: len([r for r in emu.log() if r.get("fault") == "stall"]) == 2,
                   timeout=30, what="the release's PATCH answered")
        eventually(lambda: not journal_pending(gv.user), timeout=30, what="the queue drained")
    finally:
        v.unmount()
    stamped(v, emu, fid, "reset.txt")


def test_sigusr1_logs_the_queue_and_the_requests_on_their_way(gv, emu):
    """kill -USR1 makes a mount log what it is doing, for one that seems
    stuck (the tests' waits for the queue do it when they time out): each
    queued file with what waits of it and since when, and each request on
    its way, for how long; the debug log ($SCSFS_DEBUG_LOG) has every
    request with how long it took."""
    emu.control(action="stall", method="PATCH", path="/upload/", ms=6000)
    v = gv.mount(args=["-o", "upload_delay=0.2"])          # daemonized
    try:
        (v.mnt / "held.txt").write_bytes(b"its upload is held\n")
        (fid,) = journal_pending(gv.user)
        eventually(lambda: not emu.state()["faults"], timeout=30, what="the upload on its way")
        out = v.diagnose()
        up = re.search(rf"state: {fid} \([^)]*\): content[^;]*; uploading for \d+ s "
                       r"\(thread (\d+)\); 0 failures", out)
        rq = re.search(r"state: a request for [\d.]+ s \(thread (\d+)\): "
                       rf"PATCH /upload/drive/v3/files/{fid}: try 1, waiting for the reply "
                       r"for [\d.]+ s$", out, re.M)
        assert up and rq and up.group(1) == rq.group(1), out
        assert re.search(r"state: online, 0 network failures in a row; 3 upload threads; "
                         r"last sync (none|[\d:]+); last error: none", out), out
        eventually(lambda: not journal_pending(gv.user), timeout=30, what="the queue drained")
        assert "state: nothing queued" in v.diagnose()
    finally:
        v.unmount()
    assert re.search(rf"PATCH /upload/drive/v3/files/{fid}: 200 in [6-9]\.\d+ s",
                     v.debug_log.read_text()), v.debug_log.read_text()[-3000:]


def test_verify_while_a_file_is_replaced_reports_it_changed_not_damaged(gv, emu):
    """A file removed from Drive between verify's listing and its read (a
    member's edit, a re-key pass) is reported CHANGED, not REPLAYED nor
    DAMAGED, and verify still succeeds; the other files are checked."""
    import threading
    v = gv.mount(foreground=True, args=["-o", "upload_delay=0.2"])
    data = rnd(70000, 9)
    try:
        (v.mnt / "verify-keep.txt").write_bytes(b"stays\n")
        (v.mnt / "verify-goes.bin").write_bytes(data)
        eventually(lambda: not journal_pending(gv.user), timeout=30)
    finally:
        v.unmount()
    size = 256 + 3 * 28 + len(data)
    (fid,) = [k for k, m in emu.state()["files"].items()
              if m and not m.get("trashed") and int(m.get("size") or -1) == size]
    emu.control(action="stall", method="GET", path_regex=f"/files/{fid}$", ms=2500)
    out = {}
    th = threading.Thread(target=lambda: out.update(r=gv.user.ctl("verify", check=False,
                                                                   timeout=120)))
    th.start()
    try:
        eventually(lambda: not emu.state()["faults"], timeout=60, what="verify reading the file")
        other = emu.client(emu.token())
        assert other.request("DELETE", f"/drive/v3/files/{fid}").status == 204
        other.close()
    finally:
        th.join(130)
    r = out["r"]
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "CHANGED /verify-goes.bin: replaced or removed while being checked" in r.stdout, r.stdout
    assert "DAMAGED" not in r.stdout and "REPLAYED" not in r.stdout, r.stdout
    assert re.search(r"^verified \d+ files, 0 damaged, 1 changed while being checked$",
                     r.stdout, re.M), r.stdout


def media_gets(log):
    return [r for r in log if r["method"] == "GET" and "alt=media" in r["query"]]


def test_clean_cache_survives_a_remount(gv, emu):
    v = gv.mount(args=["-o", "upload_delay=0.2"])
    data = rnd(3 * 1024 * 1024 + 5, 31)
    (v.mnt / "kept.bin").write_bytes(data)
    eventually(lambda: not journal_pending(gv.user), timeout=30)
    v.unmount()
    assert list((cache_dir(gv.user) / "obj").glob("*.map")), "no block map at unmount"
    v.mount()
    emu.clear_log()
    assert (v.mnt / "kept.bin").read_bytes() == data
    assert not media_gets(emu.log()), "downloaded what the cache holds"
    v.unmount()
    # changed on Drive meanwhile (another machine): the stale cache is not used
    other = v.user.cache
    v.user.cache = other.parent / "cache-other"
    v.user.cache.mkdir()
    v.mount(args=["-o", "upload_delay=0.2"])
    new = rnd(3 * 1024 * 1024 + 5, 32)
    (v.mnt / "kept.bin").write_bytes(new)
    eventually(lambda: not journal_pending(v.user), timeout=30)
    v.unmount()
    v.user.cache = other
    v.mount()
    assert (v.mnt / "kept.bin").read_bytes() == new
    v.unmount()


def test_clean_cache_survives_kill9_but_not_a_write_it_never_saw_close(gv, emu):
    """A clean cache described at unmount stays usable after a crash of a
    later mount (a laptop that dies offline can read what it had); a cache
    file that mount began to change without closing it is never taken for
    Drive's version again."""
    v = gv.mount(args=["-o", "upload_delay=0.2"])
    data = rnd(600000, 33)
    (v.mnt / "crash.bin").write_bytes(data)
    eventually(lambda: not journal_pending(gv.user), timeout=30)
    v.unmount()
    v.mount()
    kill9(v)
    v.mount()
    emu.clear_log()
    assert (v.mnt / "crash.bin").read_bytes() == data
    assert not media_gets(emu.log()), "the clean cache was lost with the crash"
    f = open(v.mnt / "crash.bin", "r+b", buffering=0)
    f.seek(300000)
    f.write(b"never closed, never promised")
    os.sync()            # (the kernel's write-back sends it to scsfs: no fsync, no close)
    kill9(v)
    with contextlib.suppress(OSError):
        f.close()
    v.mount()
    emu.clear_log()
    try:
        assert (v.mnt / "crash.bin").read_bytes() == data
        assert media_gets(emu.log()), "a cache file changed since its map was used as it"
    finally:
        v.unmount()


def replace_on_drive(emu, fid):
    """Another writer replaces fid's content on Drive."""
    other = emu.client(emu.token())
    rep = other.request("PATCH", f"/upload/drive/v3/files/{fid}?uploadType=media",
                        body=b"somebody else's bytes")
    assert rep.status == 200, rep
    other.close()


def test_conflicting_remote_change_is_detected(gv, emu):
    v = gv.mount(foreground=True, args=["-o", "upload_delay=0.2"])
    try:
        (v.mnt / "c.txt").write_bytes(b"one")
        eventually(lambda: not journal_pending(gv.user), timeout=30)
        v.unmount()
        v.mount(foreground=True, args=["-o", "upload_delay=4"])
        with open(v.mnt / "c.txt", "r+b") as f:
            f.write(b"TWO")
        (fid,) = journal_pending(gv.user)
        replace_on_drive(emu, fid)      # another writer, meanwhile
        eventually(lambda: not journal_pending(gv.user), timeout=30)
        # both kept: the other writer's bytes under the name, ours beside
        # them under the conflict name scsfs gives it (scsfs sets the hook)
        assert "keeping both: ours is stored as a conflict copy" in v.log(), v.log()
        names = os.listdir(v.mnt)
        copies = [n for n in names if n.startswith("c (conflict from alice ") and n.endswith(".txt")]
        assert "c.txt" in names and len(copies) == 1, names
        assert (v.mnt / copies[0]).read_bytes() == b"TWO"
    finally:
        v.unmount(check=False)


def test_conflict_found_while_unmounting_is_kept(gv, emu):
    """The upload queue drained at unmount meets a file another writer
    changed on Drive: ours is kept as a conflict copy then too, and scsfs
    exits cleanly (it crashed: the keys were freed before the drain asked
    for the conflict copy's encrypted name)."""
    v = gv.mount(foreground=True, args=["-o", "upload_delay=0.2"])
    try:
        (v.mnt / "u.txt").write_bytes(b"one")
        eventually(lambda: not journal_pending(gv.user), timeout=30)
    finally:
        v.unmount()
    v.mount(foreground=True, args=["-o", "upload_delay=600"])
    try:
        with open(v.mnt / "u.txt", "r+b") as f:
            f.write(b"OURS")
        (fid,) = journal_pending(gv.user)
        replace_on_drive(emu, fid)
    finally:
        v.unmount()          # drains the queue; fails if scsfs did not exit 0
    assert "keeping both: ours is stored as a conflict copy" in v.log(), v.log()
    assert not journal_pending(gv.user)
    v.mount()
    try:
        copies = [n for n in os.listdir(v.mnt) if n.startswith("u (conflict from alice ")]
        assert len(copies) == 1, os.listdir(v.mnt)
        assert (v.mnt / copies[0]).read_bytes() == b"OURS"
    finally:
        v.unmount()


def test_revoked_sign_in_keeps_the_queue(gv, emu):
    """invalid_grant: one line saying to sign in again, the queue is kept and
    uploads at the next mount after `scsctl auth gdrive`.  (Last: it signs
    the module's user in again.)"""
    v = gv.mount(foreground=True, args=["-o", "upload_delay=0.2"])
    try:
        (v.mnt / "revoked.txt").write_bytes(b"before")
        eventually(lambda: not journal_pending(gv.user), timeout=30)
        emu.control(actions=[{"action": "revoke_refresh_tokens"}, {"action": "expire_tokens"}])
        time.sleep(1.5)     # past the kernel's caches: the mount asks Drive
        (v.mnt / "revoked.txt").write_bytes(b"written after the revocation")
        eventually(lambda: "sign in again with `scsctl auth gdrive`" in status(gv.user),
                   timeout=60, what="status asking to sign in again")
        assert journal_pending(gv.user)
    finally:
        v.unmount(check=False)
    assert "sign in again with `scsctl auth gdrive`" in v.log()
    assert journal_pending(gv.user), "the queue was dropped at unmount"
    gv.user.ctl("auth", "gdrive", "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET,
                "--device", timeout=120)
    v.mount()
    eventually(lambda: not journal_pending(gv.user), timeout=60, what="the kept upload")
    v.unmount()
    fresh_machine_reads(v, {"revoked.txt": b"written after the revocation"})
