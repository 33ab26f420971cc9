"""Several writers on one folder: two mounts of the same group, copies a
sync client makes ("<enc> (1)"), a daemon killed after fsync."""
import os
import random
import signal
import threading
import time

import pytest

from scsmount import rnd, eventually, CHUNK, Vault, daemon_pids, fusermount_u, is_mounted, pid_alive


@pytest.fixture
def two(vault, tmp_path):
    """The same group mounted twice (alice on two machines)."""
    other = vault.user.clone(tmp_path / "home-alice2")
    v2 = Vault(other, vault.cloud, tmp_path / "mnt2")
    vault.mount()
    v2.mount()
    yield vault, v2
    p2 = v2.unmount(check=False)
    v2.cleanup()
    p1 = vault.unmount(check=False)
    assert not p1 and not p2, p1 + p2


def test_two_mounts_see_each_others_changes(two):
    a, b = two
    (a.mnt / "from-a.txt").write_bytes(b"written by a\n")
    eventually(lambda: (b.mnt / "from-a.txt").read_bytes() == b"written by a\n",
               what="a new file from the other mount")
    (b.mnt / "dir").mkdir()
    (b.mnt / "dir" / "from-b").write_bytes(rnd(70000, 1))
    eventually(lambda: (a.mnt / "dir" / "from-b").read_bytes() == rnd(70000, 1),
               what="a new directory and file from the other mount")
    # a change to an existing file (same size: no size hint)
    with open(a.mnt / "from-a.txt", "r+b") as f:
        f.write(b"WRITTEN")
    eventually(lambda: (b.mnt / "from-a.txt").read_bytes() == b"WRITTEN by a\n",
               what="a modified file from the other mount")
    os.rename(b.mnt / "dir" / "from-b", b.mnt / "moved")
    eventually(lambda: "moved" in os.listdir(a.mnt) and "from-b" not in os.listdir(a.mnt / "dir"),
               what="a rename from the other mount")
    os.unlink(a.mnt / "moved")
    eventually(lambda: "moved" not in os.listdir(b.mnt), what="an unlink from the other mount")


@pytest.mark.parametrize("decoration", [" (1)", " (conflicted copy 2026-11-23)"])
def test_sync_client_conflict_copies_are_readable(vault, decoration):
    """A sync client copies '<enc>' to '<enc> (1)': the mount shows
    'report (1).odt' (decoration before the extension) with that content."""
    vault.mount()
    (vault.mnt / "report.odt").write_bytes(rnd(40001, 2))
    (vault.mnt / "sub").mkdir()
    (vault.mnt / "sub" / "notes").write_bytes(rnd(40002, 3))
    vault.unmount()                      # (gdrive: uploads what is queued first)
    b = vault.backing
    for size in (40001, 40002):
        obj = b.find(size)
        b.copy(obj, obj + decoration)
    vault.mount()
    names = sorted(os.listdir(vault.mnt))
    want = "report" + decoration + ".odt"
    assert want in names, f"conflict copy not shown as {want!r}: {names}"
    assert (vault.mnt / want).read_bytes() == rnd(40001, 2)
    assert (vault.mnt / "report.odt").read_bytes() == rnd(40001, 2)
    assert sorted(os.listdir(vault.mnt / "sub")) == sorted(["notes", "notes" + decoration])
    assert (vault.mnt / "sub" / ("notes" + decoration)).read_bytes() == rnd(40002, 3)
    # and it behaves as a normal file: edit, rename, delete
    (vault.mnt / want).write_bytes(b"resolved")
    os.rename(vault.mnt / want, vault.mnt / "resolved.odt")
    assert (vault.mnt / "resolved.odt").read_bytes() == b"resolved"
    os.unlink(vault.mnt / "sub" / ("notes" + decoration))
    assert os.listdir(vault.mnt / "sub") == ["notes"]
    vault.unmount()


def test_kill_after_fsync(vault):
    """kill -9 of the daemon loses nothing fsync returned for."""
    vault.mount()
    synced = rnd(3 * CHUNK + 555, 4)
    p = vault.mnt / "precious"
    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.write(fd, synced)
        os.fsync(fd)
        os.pwrite(fd, b"unsynced tail", len(synced) + 100000)
        (vault.mnt / "other").write_bytes(b"closed, not fsynced")
        for pid in daemon_pids(vault.mnt):
            os.kill(pid, signal.SIGKILL)
    finally:
        try:
            os.close(fd)
        except OSError:
            pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and daemon_pids(vault.mnt):
        time.sleep(0.05)
    fusermount_u(vault.mnt)
    vault.pids = []
    vault.mount()
    with open(vault.mnt / "precious", "rb") as f:
        assert f.read(len(synced)) == synced
    # a file closed before the kill is complete too
    assert (vault.mnt / "other").read_bytes() == b"closed, not fsynced"
    vault.unmount()


def test_concurrent_writers_and_readers(mounted):
    m = mounted.mnt
    errors = []
    n = 4

    def writer(i):
        try:
            rng = random.Random(i)
            p = m / f"w{i}"
            fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
            exp = bytearray()
            try:
                for _ in range(60):
                    off = rng.randrange(0, 150000)
                    data = rng.randbytes(rng.randrange(1, 20000))
                    os.pwrite(fd, data, off)
                    if off > len(exp):
                        exp.extend(b"\0" * (off - len(exp)))
                    exp[off:off + len(data)] = data
                    if rng.random() < 0.1:
                        os.fsync(fd)
            finally:
                os.close(fd)
            got = p.read_bytes()
            if got != bytes(exp):
                errors.append(f"w{i}: content differs")
        except Exception as e:      # noqa: BLE001 - collected for the main thread
            errors.append(f"w{i}: {e!r}")

    shared_data = rnd(5 * CHUNK, 9)
    (m / "shared").write_bytes(shared_data)

    def reader(i):
        try:
            rng = random.Random(100 + i)
            fd = os.open(m / "shared", os.O_RDONLY)
            try:
                for _ in range(200):
                    off = rng.randrange(0, len(shared_data))
                    k = rng.randrange(1, 70000)
                    if os.pread(fd, k, off) != shared_data[off:off + k]:
                        errors.append(f"r{i}: wrong bytes at {off}")
                        return
            finally:
                os.close(fd)
        except Exception as e:      # noqa: BLE001
            errors.append(f"r{i}: {e!r}")

    def appender():
        try:
            fd = os.open(m / "appended", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                for j in range(300):
                    os.write(fd, f"line {j:04d}\n".encode())
            finally:
                os.close(fd)
        except Exception as e:      # noqa: BLE001
            errors.append(f"appender: {e!r}")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(n)]
    threads += [threading.Thread(target=reader, args=(i,)) for i in range(n)]
    threads += [threading.Thread(target=appender)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "threads hung"
    assert not errors, errors
    assert (m / "appended").read_bytes() == b"".join(f"line {j:04d}\n".encode() for j in range(300))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_unmounts_cleanly(vault, sig):
    """SIGTERM/SIGINT/SIGHUP to the daemon: it unmounts, writes back what
    was closed, and exits."""
    vault.mount()
    (vault.mnt / "closed.bin").write_bytes(rnd(70000, 7))
    pids = daemon_pids(vault.mnt)
    assert pids
    for pid in pids:
        os.kill(pid, sig)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (is_mounted(vault.mnt) or any(pid_alive(p) for p in pids)):
        time.sleep(0.05)
    still = is_mounted(vault.mnt)
    alive = [p for p in pids if pid_alive(p)]
    if still:
        fusermount_u(vault.mnt)
    for p in alive:
        os.kill(p, signal.SIGKILL)
    vault.pids = []
    assert not still, f"{signal.Signals(sig).name}: the mount is still there after 15 s"
    assert not alive, f"{signal.Signals(sig).name}: the daemon did not exit"
    vault.mount()
    assert (vault.mnt / "closed.bin").read_bytes() == rnd(70000, 7)
    vault.unmount()
    r = vault.user.ctl("verify", check=False)
    assert r.returncode == 0, (r.stdout, r.stderr)


def test_sync_client_copy_of_a_directory(vault):
    """A sync client duplicates a whole directory as '<enc> (1)' (its
    .scsdir comes along): it shows as 'photos (1)' with the same files."""
    vault.mount()
    (vault.mnt / "photos").mkdir()
    (vault.mnt / "photos" / "cat.jpg").write_bytes(rnd(40005, 5))
    vault.unmount()
    b = vault.backing
    d = b.find(40005).rpartition("/")[0]
    assert d != ""
    b.copy(d, d + " (1)")
    vault.mount()
    assert sorted(os.listdir(vault.mnt)) == ["photos", "photos (1)"]
    assert (vault.mnt / "photos (1)" / "cat.jpg").read_bytes() == rnd(40005, 5)
    (vault.mnt / "photos (1)" / "dog.jpg").write_bytes(b"woof")
    assert (vault.mnt / "photos (1)" / "dog.jpg").read_bytes() == b"woof"
    assert os.listdir(vault.mnt / "photos") == ["cat.jpg"]
    vault.unmount()


@pytest.mark.local_only      # (inode numbers of a local disk)
@pytest.mark.parametrize("kind", ["symlink", "file"])
def test_reused_inode_number_shows_the_new_object(vault, kind):
    """An object replaced behind the mount's back (as the re-key pass and
    sync clients do: a new object renamed over the name) may get the inode
    number of another one deleted meanwhile (ext4 reuses it at once).  The
    mount must show the new object's target or content, not what the kernel
    cached for the deleted one (seen: a symlink reading another's target
    after a background re-key)."""
    vault.mount()
    m = vault.mnt
    if kind == "symlink":
        os.symlink("target-of-one", m / "one")
        os.symlink("target-of-two", m / "two")
        read = lambda n: os.readlink(m / n)
        want = {"one": "target-of-one", "two": "target-of-two"}
    else:
        (m / "one").write_bytes(b"content of one")
        (m / "two").write_bytes(b"content of TWO")    # same size, same times
        for n in ("one", "two"):
            os.utime(m / n, ns=(1_700_000_000_123_456_789,) * 2)
        read = lambda n: (m / n).read_bytes().decode()
        want = {"one": "content of one", "two": "content of TWO"}
    assert {n: read(n) for n in want} == want          # (the kernel caches them)
    root = vault.backing.root_dir
    # (the mount shows the backing objects' inode numbers)
    by_ino = {os.lstat(p).st_ino: p for p in root.rglob("*")
              if p.relative_to(root).parts[0] != ".scsfs"}
    objs = {n: by_ino[os.lstat(m / n).st_ino] for n in want}
    one, two = objs["one"], objs["two"]
    old_ino = os.lstat(one).st_ino
    # "one" is deleted (its number is free); "two" is replaced by a copy,
    # which gets that number.
    os.unlink(one)
    new = two.with_name(two.name + ".new")
    if kind == "symlink":
        os.symlink(os.readlink(two), new)
    else:
        st = os.stat(two)
        new.write_bytes(two.read_bytes())
        os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns))
    if os.lstat(new).st_ino != old_ino:
        pytest.fail("the backing disk did not reuse the inode number; this test needs one that does")
    os.rename(new, two)
    time.sleep(1.5)                                    # past entry_timeout
    assert read("two") == want["two"]
    assert not os.path.lexists(m / "one")
    vault.unmount()
