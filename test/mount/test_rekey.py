"""The re-key pass through the real programs: after bob's removal alice runs
`scsctl rekey run`; every file, name and symlink target moves to epoch 2,
epoch 1 is retired in the keyring, and from then on nothing in epoch 1 is
accepted.  A crash at each step of the pass or of the removal (SCSFS_REKEY_STOP,
rekey.h) resumes to the same state as a run without it, with nothing lost;
a write made through a mount while the pass runs is never lost; a running
pass shows its progress in `rekey status` and `status`.

The test reads what the provider holds (it is the server; Vault.backing,
gdrive: once the mounts have uploaded): a file object's epoch is the u32be
after "SCSF" and the u16 version; a symlink target is "S1" +
base64url(u32be(epoch) || ...) (scsfs-format(5)).  Drive has no hard links:
there the tree has a copy where a local: folder has a hard link."""

import base64
import errno
import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import termios
import time
from collections import Counter
from pathlib import Path

import pytest

from scsmount import BACKEND, SCSCTL, SCSFS, Vault, eventually, marker, refused
from test_members import group, status, templates  # noqa: F401 (fixtures)


# ---------------------------------------------------------------- the server's view

# gdrive: the mounts learn of changes made elsewhere (the pass, the test's
# edits) from Drive's changes feed: read it every second rather than every 5 s.
FAST = ["-o", "poll=1"] if BACKEND == "gdrive" else []


def backing(bk, meta=False):
    """Every user entry the provider holds (bk: a Vault's backing), with
    its contents: {path: (kind, bytes)}, kind file, link or dir (bytes: a
    file's contents, a link's target); group metadata, .scsdir and
    long-name side objects left out."""
    return {r: (k, d) for r, (k, d) in bk.objects().items()
            if k == "dir" or not (r.rpartition("/")[2] == ".scsdir" or r.endswith(".name"))}


def name(rel):
    return rel.rpartition("/")[2]


def epoch_of(kind, data):
    if kind == "link":
        t = data.decode()
        assert t.startswith("S1"), t
        raw = base64.urlsafe_b64decode(t[2:] + "=" * (-len(t[2:]) % 4))
        return struct.unpack(">I", raw[:4])[0]
    assert data[:4] == b"SCSF", data[:10]
    return struct.unpack(">I", data[6:10])[0]


def epochs(bk):
    """{path: epoch} of every file object and symlink."""
    return {r: epoch_of(k, d) for r, (k, d) in backing(bk).items() if k != "dir"}


def temps(bk):
    return [r for r in backing(bk) if ".tmp-" in name(r)]


def stored_names(bk):
    return set(backing(bk))


def file_objects(bk, plain_size):
    """Paths of the file objects holding plain_size (< 32 KiB) bytes."""
    return [r for r, (k, d) in backing(bk).items()
            if k == "file" and len(d) == 256 + 28 + plain_size]


def tree(root):
    """{relative path: bytes or ("link", target) or "dir"} of a mounted tree."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = Path(dirpath) / n
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = p.read_bytes()
    return out


def fill(v):
    """A small tree with every kind of entry (6 file names, one a hard link
    of another -- gdrive: a copy --, 2 symlinks, 3 directories); distinctive
    sizes."""
    files = {
        "a.txt": marker() + b"a" * 1000,
        "empty": b"",
        "docs/report.odt": marker() + os.urandom(70000),
        "docs/deep/er/note.md": marker() + b"n" * 33000,
        "L" * 200 + ".txt": marker() + b"l" * 4000,          # long name, side object
    }
    for rel, data in files.items():
        p = v.path(rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    os.symlink("docs/report.odt", v.path("link-to-report"))
    os.symlink("../../a.txt", v.path("docs/deep/up"))
    if BACKEND == "local":
        os.link(v.path("docs/deep/er/note.md"), v.path("docs/note-hardlink.md"))
    else:                                # Drive has no hard links (EOPNOTSUPP)
        v.path("docs/note-hardlink.md").write_bytes(files["docs/deep/er/note.md"])
    os.chmod(v.path("a.txt"), 0o640)
    os.utime(v.path("a.txt"), (1_600_000_000, 1_600_000_000))
    return files


def setup_shared(group, n_extra=0):
    """alice and bob share files in epoch 1.  Returns alice's tree as seen
    in her mount."""
    va = group.vaults["alice"]
    group.add("alice", "bob")
    group.join("bob")
    va.mount()
    fill(va)
    for i in range(n_extra):
        va.path(f"many/f{i:03d}").parent.mkdir(exist_ok=True)
        va.path(f"many/f{i:03d}").write_bytes(marker() + os.urandom(5000 + i))
    before = tree(va.path())
    va.unmount()
    return before


def setup_removed(group, n_extra=0):
    """alice and bob share files in epoch 1; bob is removed (epoch 2).
    Returns (alice's tree as seen in her mount, bob's state before removal)."""
    alice, bob = group.users["alice"], group.users["bob"]
    before = setup_shared(group, n_extra)
    stale_bob = bob.clone(group.tmp / "home-bob-stale")
    alice.ctl("member", "remove", "bob")
    assert set(epochs(group.backing).values()) == {1}
    return before, stale_bob


def rekey(user, *args, check=True, **kw):
    return user.ctl("rekey", *args, check=check, **kw)


def rekey_status(user):
    r = rekey(user, "status")
    return dict(line.split(": ", 1) for line in r.stdout.splitlines() if ": " in line)


def mounted_tree(v):
    v.mount(args=FAST)
    try:
        return tree(v.path())
    finally:
        v.unmount()


# ---------------------------------------------------------------- progress lines

BAR = re.compile(r"re-key to epoch (\d+): \[([#.]{20})\] (\d+)/(\d+) files, "
                 r"([\d.]+ (?:[KMGT]i)?B)/([\d.]+ (?:[KMGT]i)?B)(.*)")
UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


def nbytes(text):
    n, unit = text.split()
    return float(n) * UNITS[unit]


def bars(text):
    """Every progress line in text: dicts of epoch, bar, files done and
    total, bytes done and total (approximate), rest of the line."""
    out = []
    for m in BAR.finditer(text):
        out.append(dict(epoch=int(m[1]), bar=m[2], files=int(m[3]), total=int(m[4]),
                        bytes=nbytes(m[5]), bytes_total=nbytes(m[6]), rest=m[7]))
    return out


def sane(b):
    assert b["files"] <= b["total"] and b["bytes"] <= b["bytes_total"] * 1.001, b
    want = round(20 * b["bytes"] / b["bytes_total"]) if b["bytes_total"] else 20
    assert abs(b["bar"].count("#") - want) <= 1 and re.fullmatch(r"#*\.*", b["bar"]), b


def progress_records(user):
    return list((user.home / ".cache/scsfs/rekey").glob("*.progress"))


# ---------------------------------------------------------------- end states

def stray_temps(bk):
    """Temporary objects anywhere in the backing folder, .scsfs included."""
    return [r for r in bk.entries(meta=True) if ".tmp-" in name(r)]


def end_state(user, v):
    """What must be the same after a run with a crash and one without:
    the tree through a fresh mount, the kinds of stored entries, their
    epochs, the keyring history, what rekey status says, the group
    metadata (how many objects of each kind), and no temporaries."""
    log = user.ctl("log", v.remote).stdout.splitlines()[1:]
    bk = v.backing
    meta = Counter(r.rpartition("/")[0] for r, k in bk.entries(meta=True).items()
                   if k == "file" and r.startswith(".scsfs/"))
    st = rekey(user, "status", v.remote).stdout
    return dict(tree=mounted_tree(v), kinds=Counter(k for k, _ in backing(bk).values()),
                epochs=set(epochs(bk).values()), log=[l.split()[5] for l in log],
                status=st, meta=meta, temps=stray_temps(bk),
                records=progress_records(user))


def reference(group):
    """A copy of the folder as it is now (hard links kept; gdrive: copied
    by another Drive client) and a copy of alice with her state, to run
    the same steps without a crash."""
    ref_cloud = group.tmp / "cloud-ref"
    if BACKEND == "local":
        subprocess.run(["cp", "-a", str(group.cloud), str(ref_cloud)], check=True)
    user = group.users["alice"].clone(group.tmp / "home-alice-ref")
    ref = Vault(user, ref_cloud, group.tmp / "mnt-ref")
    if BACKEND != "local":
        group.backing.copy_to(ref.backing)
    return user, ref


# ---------------------------------------------------------------- tests

def test_rekey_moves_everything_and_retires_epoch_1(group):
    alice = group.users["alice"]
    va = group.vaults["alice"]
    before, stale_bob = setup_removed(group)
    bk = group.backing
    names_before = stored_names(bk)
    st = rekey_status(alice)
    assert st["epoch"] == "2" and st["retired"] == "none"
    assert st["in older epochs"].startswith("6 files"), st
    assert st["re-key"].startswith("6 files"), st
    assert status(alice)["re-key"].startswith("6 files")
    r = rekey(alice, "wait", "--timeout", "1", check=False)
    assert r.returncode == 1 and "timed out: 6 files" in r.stderr

    r = rekey(alice, "run")
    assert "re-encrypted 6 files" in r.stdout
    assert "2 symbolic links" in r.stdout
    assert "epochs below 2 are retired" in r.stdout
    assert r.stdout.rstrip().endswith("re-key: done")
    # The server's view: everything in epoch 2, every name re-encrypted.
    eps = epochs(bk)
    assert len(eps) == 8 and set(eps.values()) == {2}, eps
    if BACKEND == "local":
        # The hard link is still one object with two names.
        size = 256 + 28 * 2 + len(before["docs/deep/er/note.md"])
        linked = [(group.cloud / r).stat() for r, (k, d) in backing(bk).items()
                  if k == "file" and len(d) == size]
        assert len(linked) == 2 and linked[0].st_ino == linked[1].st_ino and \
            linked[0].st_nlink == 2
    after = stored_names(bk)
    assert len(after) == len(names_before)
    assert not (after & names_before), "names still encrypted under epoch 1"
    assert not temps(bk)
    # What the programs say.
    st = rekey_status(alice)
    assert st["re-key"] == "done" and st["retired"] == "epochs below 2", st
    assert status(alice)["re-key"] == "done"
    assert "no file is in an older epoch" in rekey(alice, "wait", "--timeout", "0").stdout
    log = alice.ctl("log").stdout.splitlines()
    assert " retire " in log[-1], log[-1]
    # Contents, names, links, modes and times unchanged through alice's mount.
    assert mounted_tree(va) == before
    va.mount()
    s = va.path("a.txt").stat()
    va.unmount()
    assert s.st_mode & 0o777 == 0o640
    times = int(s.st_mtime)           # (checked last: gdrive loses them, see the end)
    # A second run finds nothing to do and writes no second retire entry.
    n = len(bk.listdir(".scsfs/keyring"))
    r = rekey(alice, "run")
    assert "re-encrypted 0 files" in r.stdout
    assert len(bk.listdir(".scsfs/keyring")) == n

    # bob with his machine as it was before the removal (epoch-1 key only)
    # cannot mount, and the server holds nothing his key opens.
    vb = group.vaults["bob"]
    r = stale_bob.run([SCSFS, vb.remote, vb.mnt])
    refused(r, vb.mnt, "not a member")
    refused(stale_bob.ctl("status", check=False), None, "not a member")
    assert 1 not in set(epochs(bk).values())
    # (gdrive: the pass sets the times on its new object, then renames it
    # over the old one; the rename's PATCH carries the modifiedTime along)
    assert times == 1_600_000_000


def test_rekey_is_admin_only(group):
    group.add("alice", "carol")
    group.join("carol")
    setup_removed(group)
    carol = group.users["carol"]
    # Refused before any passphrase is asked.
    r = rekey(carol, "run", check=False, passfile=False)
    refused(r, None, "only an admin")
    assert set(epochs(group.backing).values()) == {1}
    # status needs no keys at all and works for members.
    assert rekey_status(carol)["re-key"].startswith("6 files")


@pytest.mark.parametrize("stop", ["written:0", "written:4", "content:3", "link:1", "name:5",
                                  "dir:2", "retire"])
def test_rekey_crash_at_each_step(group, stop):
    """The pass killed at each of its steps (SCSFS_REKEY_STOP, rekey.h):
    nothing is lost meanwhile, and running it again ends in the state of a
    run without the crash."""
    alice = group.users["alice"]
    va = group.vaults["alice"]
    before, _ = setup_removed(group, n_extra=3)
    n_files = 6 + 3
    ref_user, ref = reference(group)
    r = alice.run([SCSCTL, "rekey", "run"], env={"SCSFS_REKEY_STOP": stop})
    assert r.returncode == 9, r.stdout + r.stderr
    assert f"SCSFS_REKEY_STOP={stop} reached" in r.stderr
    step, _, n = stop.partition(":")
    n = int(n or 0)
    bk = group.backing
    held = backing(bk)
    new_files = sum(1 for r, (k, d) in held.items()
                    if k == "file" and ".tmp-" not in name(r) and epoch_of(k, d) == 2)
    new_links = sum(1 for r, (k, d) in held.items() if k == "link" and epoch_of(k, d) == 2)
    if step == "written":
        # Killed right before replacing a file: its new copy is a stale
        # temporary, the original stays the one visible copy.
        assert len(temps(bk)) == 1 and new_files == n
    else:
        assert not stray_temps(bk)
    if step == "content":
        assert new_files == n + 1
    if step == "link":
        assert new_links == n + 1
    if step == "retire":
        assert set(epochs(bk).values()) == {2}
        assert " retire " not in alice.ctl("log").stdout
    # Nothing lost meanwhile; the pass's record is left, but its process is gone.
    assert mounted_tree(va) == before
    assert progress_records(alice) or step == "retire"
    st = rekey(alice, "status").stdout
    (b,) = bars(st)
    assert b["rest"] == " (no pass running here)" and b["total"] == n_files, st
    if step == "written":
        assert f"in older epochs: {n_files - n} files" in st
        assert "temporary objects" in st
    # Resume.
    r = rekey(alice, "run")
    assert "epochs below 2 are retired" in r.stdout
    rekey(ref_user, "run", ref.remote)
    got, want = end_state(alice, va), end_state(ref_user, ref)
    assert got == want
    assert got["epochs"] == {2} and not got["temps"] and not got["records"]
    assert got["log"][-1] == "retire" and got["log"].count("retire") == 1
    assert got["tree"] == before


@pytest.mark.parametrize("stop", ["snapshot", "entry"])
def test_removal_crash_at_each_step(group, stop):
    """`member remove` killed after the removal snapshot is stored (nothing
    changed for the group: run it again) or right after the remove entry
    is stored (the removal stands): the re-key pass then ends in the state
    of a removal and pass without the crash."""
    alice = group.users["alice"]
    va = group.vaults["alice"]
    before = setup_shared(group)
    ref_user, ref = reference(group)
    r = alice.run([SCSCTL, "member", "remove", "bob"], env={"SCSFS_REKEY_STOP": stop})
    assert r.returncode == 9, r.stdout + r.stderr
    assert f"SCSFS_REKEY_STOP={stop} reached" in r.stderr
    st = status(alice)
    if stop == "snapshot":
        assert st["epoch"] == "1" and st["members"] == "2", st
        alice.ctl("member", "remove", "bob")
    else:
        assert st["epoch"] == "2" and st["members"] == "1", st
        assert "bob" not in alice.ctl("member", "list").stdout
        refused(alice.ctl("member", "remove", "bob", check=False), None, "no member")
    assert mounted_tree(va) == before
    rekey(alice, "run")
    ref_user.ctl("member", "remove", "bob", "--remote", ref.remote)
    rekey(ref_user, "run", ref.remote)
    got, want = end_state(alice, va), end_state(ref_user, ref)
    assert got == want
    assert got["epochs"] == {2} and not got["temps"]
    assert got["log"] == ["genesis", "add", "remove", "retire"]
    assert got["tree"] == before


def test_progress_of_a_running_pass(group):
    """While `scsctl rekey run` runs (slowed down by SCSFS_REKEY_PAUSE),
    `rekey status` and `status` show its progress line from the pass's
    record, with numbers that rise; without a terminal the run itself
    prints plain progress lines; at the end the record is gone and the
    line is computed from the folder."""
    alice = group.users["alice"]
    setup_removed(group, n_extra=2)
    n_files = 6 + 2
    total = sum(len(d) for k, d in backing(group.backing).values() if k == "file")
    (b,) = bars(rekey(alice, "status").stdout)
    assert (b["files"], b["total"], b["bytes"]) == (0, n_files, 0), b
    assert b["rest"] == " (no pass running here)" and b["bar"] == "." * 20
    assert bars(alice.ctl("status").stdout) == [b]
    err = group.tmp / "run.err"
    with open(err, "w") as fh:
        p = subprocess.Popen([str(SCSCTL), "rekey", "run"], env=alice.env(SCSFS_REKEY_PAUSE=1),
                             stdout=subprocess.PIPE, stderr=fh, text=True,
                             start_new_session=True)
    seen, in_status = [], []
    try:
        while p.poll() is None:
            for line in bars(rekey(alice, "status").stdout):
                if line["rest"] != " (no pass running here)":
                    seen.append(line)
            if p.poll() is None and not in_status:
                in_status = [b for b in bars(alice.ctl("status").stdout)
                             if b["rest"] != " (no pass running here)"]
            time.sleep(0.4)
        out = p.communicate(timeout=60)[0]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err.read_text()
    assert f"re-encrypted {n_files} files" in out
    # What status showed while the pass ran: the pass's numbers, rising.
    assert len(seen) >= 4, seen
    assert in_status and in_status[0]["total"] == n_files, in_status
    for b in seen:
        sane(b)
        assert b["epoch"] == 2 and b["total"] == n_files, b
        assert abs(b["bytes_total"] - total) <= total * 0.06, (b, total)
        assert re.fullmatch(r", [\d.]+ (?:[KMGT]i)?B/s, ETA (\?|\d+ s|\d+ min \d+ s)", b["rest"]), b
    assert [b["files"] for b in seen] == sorted(b["files"] for b in seen)
    assert [b["bytes"] for b in seen] == sorted(b["bytes"] for b in seen)
    assert seen[-1]["files"] > seen[0]["files"] and seen[-1]["bytes"] > seen[0]["bytes"], seen
    assert 0 < seen[-1]["files"] < n_files or seen[0]["files"] < n_files
    # The run's own progress on a file: plain lines, no terminal control.
    text = err.read_text()
    assert "\r" not in text and "\033" not in text
    lines = [b for b in bars(text)]
    assert len(lines) >= 2, text
    for b in lines:
        sane(b)
    assert (lines[-1]["files"], lines[-1]["bar"]) == (n_files, "#" * 20), lines[-1]
    assert lines[0]["files"] < n_files
    # Afterwards: no record, and the folder says everything is done.
    assert not progress_records(alice)
    (b,) = bars(rekey(alice, "status").stdout)
    assert (b["files"], b["total"], b["bar"]) == (n_files, n_files, "#" * 20), b
    assert b["rest"] == " (no pass running here)"


def test_rekey_run_draws_a_bar_on_a_terminal(group):
    """With standard error on a terminal, `rekey run` redraws one progress
    line with \\r (cut to the terminal's width); the summary still goes to
    standard output."""
    alice = group.users["alice"]
    setup_removed(group, n_extra=2)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 70, 0, 0))
    p = subprocess.Popen([str(SCSCTL), "rekey", "run"], env=alice.env(), stdout=subprocess.PIPE,
                         stderr=slave, stdin=subprocess.DEVNULL, start_new_session=True)
    os.close(slave)
    raw = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:                # EIO: the last writer closed it
            break
        if not chunk:
            break
        raw += chunk
    os.close(master)
    out = p.stdout.read().decode()
    p.wait(timeout=60)
    assert p.returncode == 0, raw
    assert "re-encrypted 8 files" in out and "\r" not in out
    text = raw.decode()
    assert "\r\033[K" in text and "\n" not in text.replace("\r\n", ""), text
    draws = [d for d in text.split("\r\033[K") if d]
    assert draws and all(len(d) <= 69 for d in draws), draws
    assert draws[-1].startswith("re-key to epoch 2: [" + "#" * 20 + "] 8/8 files"), draws


def test_admin_mount_pass_shows_progress(group):
    """The background pass of an admin's mount keeps the same record:
    `rekey status` shows its progress while it runs."""
    alice = group.users["alice"]
    va = group.vaults["alice"]
    group.add("alice", "bob")
    va.mount(foreground=True, args=["-o", "keyring_refresh=1"], env={"SCSFS_REKEY_PAUSE": "1"})
    try:
        fill(va)
        va.uploaded()     # (gdrive: else the uploads move them, README "Re-key")
        alice.ctl("member", "remove", "bob")
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and rekey_status(alice)["re-key"] != "done":
            seen += [b for b in bars(rekey(alice, "status").stdout)
                     if b["rest"] != " (no pass running here)"]
            time.sleep(0.3)
        assert rekey_status(alice)["re-key"] == "done", va.log()
    finally:
        va.unmount()
    assert len(seen) >= 2, seen
    for b in seen:
        sane(b)
        assert b["total"] == 6, b
    assert seen[-1]["files"] > seen[0]["files"], seen
    assert not progress_records(alice)


def test_rekey_killed_at_random_points_converges(group):
    alice = group.users["alice"]
    va = group.vaults["alice"]
    before, _ = setup_removed(group, n_extra=20)
    for delay in (0.05, 0.2, 0.4):
        p = subprocess.Popen([str(SCSCTL), "rekey", "run"], env=alice.env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        time.sleep(delay)
        p.kill()
        p.wait()
        assert mounted_tree(va) == before
    rekey(alice, "run")
    assert set(epochs(group.backing).values()) == {2}
    assert not temps(group.backing)
    assert mounted_tree(va) == before


def test_concurrent_write_during_rekey_is_not_lost(group):
    alice = group.users["alice"]
    va = group.vaults["alice"]
    setup_removed(group)
    va.mount(args=["-o", "norekey"] + FAST)     # the pass under test is scsctl's
    p = subprocess.Popen([str(SCSCTL), "rekey", "run"], env=alice.env(SCSFS_REKEY_PAUSE=2),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    new = marker() + b"written while the pass ran"
    target = None
    try:
        for line in p.stderr:
            if line.startswith("rekey: pausing before replacing "):
                target = line.split("replacing ", 1)[1].rstrip()
                if target == "a.txt":
                    break
        assert target == "a.txt"
        # The pass has re-encrypted a.txt beside it and sleeps before the swap.
        with open(va.path("a.txt"), "r+b") as f:
            f.truncate(0)
            f.write(new)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    va.unmount()
    va.mount()
    assert va.path("a.txt").read_bytes() == new, "the concurrent write was lost"
    va.unmount()
    assert set(epochs(group.backing).values()) == {2}


@pytest.mark.local_only     # the pass's write lease exists on a local folder only (scsctl(1))
def test_file_held_open_for_writing_is_left_for_later(group):
    """A mount's file open for writing across the pass: replacing it would
    send the rest of that write to the replaced object.  The pass leaves it
    (and says so), and the next pass after the close moves the new content.
    (The file is opened before the removal: a write-open after it would
    move the file to the new epoch first, test_upgrade_on_write.py.)"""
    alice = group.users["alice"]
    va = group.vaults["alice"]
    group.add("alice", "bob")
    group.join("bob")
    va.mount(args=["-o", "norekey"] + FAST)     # the pass under test is scsctl's
    fill(va)
    new = marker() + b"written through a file held open during the pass"
    try:
        with open(va.path("a.txt"), "r+b") as f:
            alice.ctl("member", "remove", "bob")
            va.uploaded()
            assert set(epochs(group.backing).values()) == {1}
            f.write(b"x")
            f.flush()
            os.fsync(f.fileno())
            r = rekey(alice, "run", check=False)
            assert r.returncode == 1, r.stdout + r.stderr
            assert "1 changed during the pass" in r.stderr, r.stderr
            assert "re-encrypted 5 files" in r.stdout
            f.seek(0)
            f.truncate(0)
            f.write(new)
        r = rekey(alice, "run")
        assert "re-encrypted 1 files" in r.stdout
    finally:
        va.unmount()
    va.mount()
    assert va.path("a.txt").read_bytes() == new, "the write through the held file was lost"
    va.unmount()
    assert set(epochs(group.backing).values()) == {2}


@pytest.mark.gdrive_only   # (local: the write lease, the test above)
@pytest.mark.parametrize("knows", ["late", "soon"])
def test_file_held_open_across_the_pass_loses_nothing(group, knows):
    """gdrive: the pass cannot see a file another machine holds open, and
    replaces it; what is written through the held file afterwards reaches
    the group as a conflict copy beside the re-keyed file, in the current
    epoch (readable, nothing sealed in the retired one), and the held file
    goes on working: truncate, write, fsync, close all succeed.  late: the
    mount has not looked at the keyring since the pass (it learns of it
    from the vanished object); soon: it has."""
    alice = group.users["alice"]
    va = group.vaults["alice"]
    group.add("alice", "bob")
    group.join("bob")
    refresh = "0" if knows == "late" else "1"
    va.mount(foreground=True, args=["-o", f"norekey,keyring_refresh={refresh}"] + FAST)
    try:
        fill(va)
        new = marker() + b"written through a file held open during the pass"
        with open(va.path("a.txt"), "r+b") as f:
            old = f.read()
            alice.ctl("member", "remove", "bob")
            va.uploaded()
            rekey(alice, "run")
            if knows == "soon":
                time.sleep(2.5)      # two looks at the keyring
            f.seek(0)
            f.truncate(0)
            f.write(new)
            f.flush()
            os.fsync(f.fileno())
            f.write(b" and after the fsync")
        va.uploaded()
        assert "a re-key pass moved this file to the new epoch while it was open here" \
            in va.log(), va.log()
        r = rekey(alice, "run")      # nothing left for it: the copy is in epoch 2
        assert "re-encrypted 0 files" in r.stdout, r.stdout
        st = alice.ctl("status").stdout
        assert "re-key: done" in st and "still claim a retired epoch" not in st, st
    finally:
        va.unmount()
    assert set(epochs(group.backing).values()) == {2}
    got = mounted_tree(va)
    copies = [k for k in got if k.startswith("a (conflict from alice ") and k.endswith(").txt")]
    assert len(copies) == 1, sorted(got)
    assert got[copies[0]] == new + b" and after the fsync"
    assert got["a.txt"] == old


def test_retired_epoch_is_refused(group):
    alice = group.users["alice"]
    va = group.vaults["alice"]
    before, _ = setup_removed(group)
    bk = group.backing
    # The server keeps copies of epoch-1 objects.
    size = len(before["a.txt"])
    old_obj = file_objects(bk, size)
    assert len(old_obj) == 1
    saved = bk.read(old_obj[0])
    rekey(alice, "run")
    new_obj = file_objects(bk, size)
    assert len(new_obj) == 1
    # 1. An old copy put back under the current name.
    bk.write(new_obj[0], saved)
    # 2. An old copy put back under its old (epoch-1) name.
    bk.write(name(old_obj[0]), saved)
    va.mount(foreground=True)
    try:
        with pytest.raises(OSError) as e:
            va.path("a.txt").read_bytes()
        assert e.value.errno in (errno.EACCES, errno.EIO)
        assert "retired" in va.log()
        assert sorted(os.listdir(va.path())) == sorted(
            n for n in before if "/" not in n), "an epoch-1 name was listed"
    finally:
        va.unmount()
    r = alice.ctl("verify", check=False)
    assert r.returncode == 1
    assert "a.txt" in r.stdout and "retired" in r.stdout, r.stdout


def test_running_mount_keeps_working_through_the_pass(group):
    """A mount that was running during the pass (its inodes know the old
    names) still reads every file, and writes in the new epoch."""
    alice = group.users["alice"]
    va = group.vaults["alice"]
    before, _ = setup_removed(group)
    va.mount(args=["-o", "keyring_refresh=1,norekey"] + FAST)   # the pass is scsctl's
    bk = group.backing
    (old,) = file_objects(bk, len(before["a.txt"]))
    saved = bk.read(old)
    try:
        assert tree(va.path()) == before
        rekey(alice, "run")
        time.sleep(2)           # the mount re-reads the keyring (retired epoch 1)
        assert tree(va.path()) == before
        # The server puts the old object back under its old name: the
        # running mount no longer lists names of the retired epoch.
        bk.write(old, saved)
        time.sleep(1.5 if BACKEND == "local" else 2.5)   # past entry_timeout (gdrive: and a poll)
        assert tree(va.path()) == before, "an epoch-1 name was listed after retirement"
        new = marker()
        va.path("docs/report.odt").write_bytes(new)
        assert va.path("docs/report.odt").read_bytes() == new
    finally:
        va.unmount()
    bk.remove(old)
    assert set(epochs(bk).values()) == {2}


@pytest.mark.parametrize("opts", ["keyring_refresh=1", "keyring_refresh=1,rekey"])
def test_admin_mount_rekeys_in_the_background(group, opts):
    """By default (and with -o rekey, kept for old command lines) an admin's
    running mount sees the removal and runs the pass itself, ending with
    the retire entry."""
    alice = group.users["alice"]
    va = group.vaults["alice"]
    group.add("alice", "bob")
    va.mount(foreground=True, args=["-o", opts])
    try:
        fill(va)
        # (gdrive: the pass of this mount racing its own queued uploads can
        # leave a conflict copy; README "Not done yet")
        va.uploaded()
        before = tree(va.path())
        alice.ctl("member", "remove", "bob")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and rekey_status(alice)["re-key"] != "done":
            time.sleep(0.5)
        assert rekey_status(alice)["re-key"] == "done", va.log()
        assert rekey_status(alice)["retired"] == "epochs below 2"
        assert "re-key: done" in va.log()
        assert tree(va.path()) == before
    finally:
        va.unmount()
    assert set(epochs(group.backing).values()) == {2}
    assert mounted_tree(va) == before


def test_admin_mounts_own_pass_leaves_its_open_file_for_later(group):
    """An admin's mount runs the pass itself; a file that very mount holds
    open for writing is left for later (local: the write lease; gdrive: the
    hold sees the mount's own writers), not replaced under the open file: no
    conflict copy, what is written through it stays in the file, and the
    next pass moves it once it is closed."""
    alice = group.users["alice"]
    va = group.vaults["alice"]
    group.add("alice", "bob")
    va.mount(foreground=True, args=["-o", "keyring_refresh=1"] + FAST)
    new = marker() + b"written while the mount's own pass ran"
    try:
        fill(va)
        va.uploaded()
        with open(va.path("a.txt"), "r+b") as f:
            alice.ctl("member", "remove", "bob")
            eventually(lambda: "1 changed during the pass" in va.log(), 60,
                       "the mount's pass leaving the open file", interval=0.5)
            f.seek(0)
            f.truncate(0)
            f.write(new)
        va.uploaded()
        r = rekey(alice, "run")
        assert "re-encrypted 1 files" in r.stdout, r.stdout
        assert "re-key: done" in rekey(alice, "status").stdout
        assert "moved this file to the new epoch while it was open" not in va.log(), va.log()
    finally:
        va.unmount()
    assert set(epochs(group.backing).values()) == {2}
    got = mounted_tree(va)
    assert got["a.txt"] == new
    assert not [k for k in got if "conflict" in k], sorted(got)


def test_norekey_mount_does_not_rekey(group):
    """-o norekey: the background pass is off (it is on by default)."""
    alice = group.users["alice"]
    va = group.vaults["alice"]
    group.add("alice", "bob")
    va.mount(foreground=True, args=["-o", "keyring_refresh=1,norekey"])
    try:
        fill(va)
        va.uploaded()     # (gdrive: else the uploads move them, README "Re-key")
        alice.ctl("member", "remove", "bob")
        time.sleep(3)
        assert "re-key" not in va.log()
    finally:
        va.unmount()
    assert set(epochs(group.backing).values()) == {1}


def test_a_members_mount_never_rekeys(group):
    """Only an admin's mount runs the pass (it ends with a keyring entry):
    bob's mount, with the default options, leaves the files alone."""
    alice = group.users["alice"]
    vb = group.vaults["bob"]
    group.add("alice", "bob")
    group.add("alice", "carol")
    group.join("bob")
    vb.mount(foreground=True, args=["-o", "keyring_refresh=1"])
    try:
        fill(vb)
        vb.uploaded()     # (gdrive: else the uploads move them, README "Re-key")
        alice.ctl("member", "remove", "carol")
        eventually(lambda: "now at epoch 2" in vb.log(), 20, "bob's mount to see epoch 2")
        time.sleep(3)
        assert "re-key" not in vb.log(), vb.log()
    finally:
        vb.unmount()
    assert set(epochs(group.backing).values()) == {1}


def test_lazy_removal_starts_no_background_pass(group):
    """member remove --lazy: the entry says so, admins' mounts leave the old
    files in their epoch, status says the re-key is lazy and what that
    means; `scsctl rekey run` still moves everything and retires."""
    alice = group.users["alice"]
    va = group.vaults["alice"]
    group.add("alice", "bob")
    va.mount(foreground=True, args=["-o", "keyring_refresh=1"])
    try:
        before = fill(va)
        va.uploaded()     # (gdrive: else the uploads move them, README "Re-key")
        r = alice.ctl("member", "remove", "bob", "--lazy")
        assert "re-key is lazy" in r.stdout, r.stdout
        time.sleep(4)           # four refreshes of alice's mount
        assert "re-key" not in va.log(), va.log()
        assert va.path("a.txt").read_bytes() == before["a.txt"]
    finally:
        va.unmount()
    bk = group.backing
    assert set(epochs(bk).values()) == {1}
    entry = [n for n in bk.listdir(".scsfs/keyring") if n.endswith(".entry")][-1]
    payload = base64.b64decode(json.loads(bk.read(f".scsfs/keyring/{entry}"))["payload"])
    assert b'"kind":"remove"' in payload and b'"lazy":true' in payload
    st = status(alice)
    assert st["re-key mode"].startswith("lazy"), st
    assert "can read every file not re-encrypted since" in st["re-key mode"]
    assert rekey_status(alice)["re-key"].startswith("6 files")
    r = rekey(alice, "run")
    assert "epochs below 2 are retired" in r.stdout
    assert set(epochs(bk).values()) == {2}
    assert "re-key mode" not in status(alice)


def test_non_lazy_removal_after_a_lazy_one_rekeys(group):
    """A later removal without --lazy asks for the pass again."""
    alice = group.users["alice"]
    va = group.vaults["alice"]
    group.add("alice", "bob")
    group.add("alice", "carol")
    va.mount(foreground=True, args=["-o", "keyring_refresh=1"])
    try:
        before = fill(va)
        alice.ctl("member", "remove", "bob", "--lazy")
        time.sleep(2)
        assert "re-key" not in va.log()
        alice.ctl("member", "remove", "carol")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and rekey_status(alice)["re-key"] != "done":
            time.sleep(0.5)
        assert rekey_status(alice)["retired"] == "epochs below 3", va.log()
        assert va.path("a.txt").read_bytes() == before["a.txt"]
    finally:
        va.unmount()
    assert set(epochs(group.backing).values()) == {3}
