"""Other members' changes on gdrive: two mounts of one Drive folder, each with
its own cache (two machines), against the Drive v3 emulator.  What one
writes, renames or deletes shows in the other within the poll interval
(-o poll) without a remount, although the second mount is told to cache
names and attributes for an hour: only the changes feed can refresh it.
Duplicate names made by other Drive clients are listed with stable
suffixes and reachable; conflict copies keep both versions."""
import hashlib
import os
import secrets
import shutil
import sys
import time
from pathlib import Path

import pytest

from scsmount import eventually, rnd
from test_gdrive_mount import GVault

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "emulator"))
from emulator_util import Emulator  # noqa: E402

CACHED = "entry_timeout=3600,attr_timeout=3600,negative_timeout=3600"
FEED = 15          # seconds allowed for a change to show (poll=1, emulator under load)


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    e = Emulator.start(tmp_path_factory.mktemp("drive"), python="/usr/bin/python3")
    yield e
    e.stop()


@pytest.fixture(scope="module")
def signed_in(emu, fuse, alice_template, tmp_path_factory):
    env = {"SCSFS_GDRIVE_ENDPOINT": emu.base}
    user = alice_template.clone(tmp_path_factory.mktemp("gchanges") / "alice")
    r = user.ctl("auth", "gdrive", "--device", "--client-id", "test-client",
                 "--client-secret", "test-secret", env=env, timeout=120)
    assert "signed in" in r.stdout + r.stderr
    return user, env


@pytest.fixture
def pair(signed_in, tmp_path, request):
    """alice's group folder mounted twice: a (writer) and b (the other
    machine: its own HOME and cache, names and attributes cached an hour)."""
    user, env = signed_in
    folder = f"/scsfs-ch-{secrets.token_hex(4)}"
    a = GVault(user, folder, tmp_path / "mnt-a", env)
    user.ctl("init", a.remote, env=env, timeout=120)
    ub = user.clone(tmp_path / "home-b")
    shutil.rmtree(ub.home / ".cache")
    (ub.home / ".cache").mkdir()
    b = GVault(ub, folder, tmp_path / "mnt-b", env)
    made = []

    def mount(poll_b=1, poll_a=1):
        a.mount(args=("-o", f"poll={poll_a}"))
        b.mount(foreground=True, args=("-o", f"poll={poll_b},{CACHED}"))
        made.extend([a, b])
        return a, b
    yield mount
    for v in made:
        v.cleanup()


def test_write_rename_delete_show_in_the_other_mount(pair):
    a, b = pair()
    # A new file shows in ls (the name was looked up before: a negative entry).
    assert not (b.mnt / "doc.txt").exists()
    (a.mnt / "doc.txt").write_bytes(b"A" * 5000)
    eventually(lambda: "doc.txt" in os.listdir(b.mnt), FEED, "new file in ls")
    eventually(lambda: (b.mnt / "doc.txt").read_bytes() == b"A" * 5000, FEED, "new file readable")

    # Rewritten while b has it open and cached: the open handle reads the
    # new bytes (same size), a fresh open the new file (another size).
    with open(b.mnt / "doc.txt", "rb") as held:
        assert held.read() == b"A" * 5000
        (a.mnt / "doc.txt").write_bytes(b"B" * 5000)

        def held_sees_b():
            held.seek(0)
            return held.read() == b"B" * 5000
        eventually(held_sees_b, FEED, "the change through an open handle")
        new = rnd(70000, 5)
        (a.mnt / "doc.txt").write_bytes(new)
        eventually(lambda: (b.mnt / "doc.txt").read_bytes() == new, FEED,
                   "the change in a fresh open while the file is open")
        assert os.stat(b.mnt / "doc.txt").st_size == len(new)

    # Appended in place (same object, new version).
    with open(a.mnt / "doc.txt", "ab") as f:
        f.write(b"tail")
    eventually(lambda: (b.mnt / "doc.txt").read_bytes() == new + b"tail", FEED, "an append")

    # Rename, also into a new directory.
    (a.mnt / "doc.txt").rename(a.mnt / "renamed.txt")
    eventually(lambda: not (b.mnt / "doc.txt").exists() and
               (b.mnt / "renamed.txt").read_bytes() == new + b"tail", FEED, "a rename")
    (a.mnt / "sub").mkdir()
    (a.mnt / "renamed.txt").rename(a.mnt / "sub" / "moved.txt")
    eventually(lambda: sorted(os.listdir(b.mnt)) == ["sub"] and
               os.listdir(b.mnt / "sub") == ["moved.txt"], FEED, "a move into a new directory")
    (a.mnt / "sub").rename(a.mnt / "sub2")
    eventually(lambda: (b.mnt / "sub2" / "moved.txt").read_bytes() == new + b"tail" and
               not (b.mnt / "sub").exists(), FEED, "a directory rename")

    # Delete.
    (a.mnt / "sub2" / "moved.txt").unlink()
    eventually(lambda: not (b.mnt / "sub2" / "moved.txt").exists() and
               os.listdir(b.mnt / "sub2") == [], FEED, "a delete")
    (a.mnt / "sub2").rmdir()
    eventually(lambda: os.listdir(b.mnt) == [], FEED, "a directory delete")

    # And the other way round.
    (b.mnt / "from-b.txt").write_bytes(b"hello from b")
    eventually(lambda: (a.mnt / "from-b.txt").read_bytes() == b"hello from b", FEED, "b's file in a")


def test_file_open_for_writing_stays_on_its_version(pair):
    """A handle open for writing keeps reading the version its edit is based
    on (the upload then finds the conflict); fresh opens see the new one."""
    a, b = pair()
    (a.mnt / "e.txt").write_bytes(b"base")
    eventually(lambda: (b.mnt / "e.txt").read_bytes() == b"base", FEED, "the base version")
    with open(b.mnt / "e.txt", "r+b") as editing:
        assert editing.read() == b"base"
        (a.mnt / "e.txt").write_bytes(b"news")
        with open(b.mnt / "other-reader", "wb"):
            pass
        eventually(lambda: (a.mnt / "other-reader").exists(), FEED, "the feed working")
        time.sleep(2)
        editing.seek(0)
        assert editing.read() == b"base", "an edit in progress was switched to another version"


def test_poll_0_turns_the_feed_off(pair, emu):
    a, b = pair(poll_b=0)
    (a.mnt / "f.txt").write_bytes(b"one")
    a.unmount()               # on Drive whole before b first looks: b never learns more
    a.mount(args=("-o", "poll=1"))
    assert (b.mnt / "f.txt").read_bytes() == b"one"
    start = len(emu.log())
    with open(b.mnt / "f.txt", "rb") as held:
        assert held.read() == b"one"
        (a.mnt / "f.txt").write_bytes(b"two")
        (a.mnt / "g.txt").write_bytes(b"new")
        time.sleep(4)             # four poll intervals of a
        held.seek(0)
        assert held.read() == b"one", "b followed the change without a feed"
    # The feed was there to be read: a (poll=1) read it.
    assert [r for r in emu.log()[start:] if r["path"] == "/drive/v3/changes"]
    # Listings still ask Drive; cached contents wait for a remount.
    assert "g.txt" in os.listdir(b.mnt)
    b.unmount()
    b.mount(foreground=True, args=("-o", f"poll=0,{CACHED}"))
    assert (b.mnt / "f.txt").read_bytes() == b"two"


# ------------------------------------------------------------- duplicates

def _api(emu):
    c = emu.client(emu.token())
    return c


def _children(c, folder_id):
    r = c.get("/drive/v3/files", query={"q": f"'{folder_id}' in parents and trashed = false",
                                         "fields": "files(id,name,mimeType)", "pageSize": "1000"})
    assert r.status == 200, r
    return {f["id"]: f["name"] for f in r.json()["files"]}


def _folder_id(c, path):
    fid = "root"
    for part in path.strip("/").split("/"):
        r = c.get("/drive/v3/files", query={
            "q": f"'{fid}' in parents and name = '{part}' and trashed = false",
            "fields": "files(id)"})
        assert r.status == 200, r
        fid = r.json()["files"][0]["id"]
    return fid


def _tag(drive_id):
    return hashlib.sha256(drive_id.encode()).hexdigest()[:8]


def _duplicate(v, c, root, first, second):
    """Write files first and second (name, bytes) through mount v, then give
    second's Drive entry first's (encrypted) Drive name, as another Drive
    client could.  Returns their Drive ids and that name."""
    before = _children(c, root)
    (v.mnt / first[0]).write_bytes(first[1])
    mid = _children(c, root)
    (v.mnt / second[0]).write_bytes(second[1])
    after = _children(c, root)
    (id1,) = set(mid) - set(before)
    (id2,) = set(after) - set(mid)

    def uploaded():      # v uploads in the background after close
        sizes = []
        for fid in (id1, id2):
            r = c.get(f"/drive/v3/files/{fid}", query={"fields": "size"})
            sizes.append(r.status == 200 and int(r.json().get("size", 0)) > 0)
        return all(sizes)
    eventually(uploaded, FEED, "both files on Drive")
    r = c.patch(f"/drive/v3/files/{id2}", {"name": after[id1]}, query={"fields": "id,name"})
    assert r.status == 200, r
    return id1, id2, after[id1]


def test_duplicate_names_get_stable_suffixes(pair, emu):
    a, b = pair()
    c = _api(emu)
    root = _folder_id(c, a.folder)
    id1, id2, dname1 = _duplicate(a, c, root, ("report.txt", b"first report"),
                                  ("other.txt", b"second report"))
    # The smaller id keeps the name; the other gets its id's suffix.
    content = {id1: b"first report", id2: b"second report"}
    keep, dup = sorted([id1, id2])
    dname = f"report (duplicate {_tag(dup)}).txt"
    for v in (a, b):
        eventually(lambda: sorted(os.listdir(v.mnt)) == sorted(["report.txt", dname]), FEED,
                   f"both entries in {v.mnt.name}")
        eventually(lambda: (v.mnt / "report.txt").read_bytes() == content[keep], FEED,
                   "the name reaches the smaller id")
        eventually(lambda: (v.mnt / dname).read_bytes() == content[dup], FEED,
                   "the suffixed name reaches the other")
    # Stable: the same names after a remount with an empty cache.
    b.unmount()
    b.drop_cache()
    b.mount(foreground=True, args=("-o", f"poll=1,{CACHED}"))
    assert sorted(os.listdir(b.mnt)) == sorted(["report.txt", dname])
    assert (b.mnt / dname).read_bytes() == content[dup]
    # Writable, renameable and removable by that name: each reaches its entry.
    with open(b.mnt / dname, "r+b") as f:
        f.write(b"SECOND")
    edited = b"SECOND" + content[dup][6:]
    assert (b.mnt / dname).read_bytes() == edited
    assert (b.mnt / "report.txt").read_bytes() == content[keep]
    (b.mnt / dname).rename(b.mnt / "second.txt")
    assert sorted(os.listdir(b.mnt)) == ["report.txt", "second.txt"]
    assert (b.mnt / "second.txt").read_bytes() == edited
    assert _children(c, root)[dup] != dname1
    (b.mnt / "second.txt").unlink()
    assert dup not in _children(c, root)
    assert (b.mnt / "report.txt").read_bytes() == content[keep]
    eventually(lambda: os.listdir(a.mnt) == ["report.txt"], FEED, "the removal in a")


def test_duplicate_removed_by_its_suffixed_name(pair, emu):
    a, b = pair()
    c = _api(emu)
    root = _folder_id(c, a.folder)
    idx, idy, _ = _duplicate(a, c, root, ("x.bin", b"x"), ("y.bin", b"y"))
    keep, dup = sorted([idx, idy])
    dname = f"x (duplicate {_tag(dup)}).bin"
    eventually(lambda: sorted(os.listdir(b.mnt)) == sorted(["x.bin", dname]), FEED,
               "the duplicate")
    (b.mnt / dname).unlink()
    assert os.listdir(b.mnt) == ["x.bin"]
    left = _children(c, root)
    assert dup not in left and keep in left
    assert (b.mnt / "x.bin").read_bytes() == (b"x" if keep == idx else b"y")
    # A real name of the reserved form cannot be made, so none hides a duplicate.
    with pytest.raises(OSError) as ei:
        (b.mnt / "z (duplicate 0123abcd).txt").write_bytes(b"no")
    assert ei.value.errno == 22
    with pytest.raises(OSError) as ei:
        (b.mnt / "x.bin").rename(b.mnt / "x (duplicate 0123abcd).bin")
    assert ei.value.errno == 22


# ------------------------------------------------------------- conflicts

def test_both_edit_one_file_both_versions_kept(pair):
    a, b = pair()
    (a.mnt / "shared.odt").write_bytes(b"base version\n")
    eventually(lambda: (b.mnt / "shared.odt").read_bytes() == b"base version\n", FEED,
               "the base version")
    with open(b.mnt / "shared.odt", "r+b") as fb:
        fb.read()
        (a.mnt / "shared.odt").write_bytes(b"alice on machine a\n")
        fb.seek(0)
        fb.write(b"alice on machine b\n")
    # Both kept: a's (uploaded first) under the name, b's as a conflict copy.
    def settled():
        names = os.listdir(a.mnt)
        return len(names) == 2 and any(n.startswith("shared (conflict from alice ") for n in names)
    eventually(settled, 60, "the conflict copy")
    names = sorted(os.listdir(a.mnt))
    copy = next(n for n in names if n != "shared.odt")
    assert copy.endswith(").odt")
    assert time.strftime("%Y-%m-%d") in copy
    assert (a.mnt / "shared.odt").read_bytes() == b"alice on machine a\n"
    assert (a.mnt / copy).read_bytes() == b"alice on machine b\n"
    eventually(lambda: sorted(os.listdir(b.mnt)) == names, FEED, "the copy in b")
