"""Running mounts follow keyring changes made elsewhere, without a remount
(DESIGN.md: "Keyring changes made elsewhere are picked up by running
mounts"): a member added while alice's mount runs can be read by it, and
after a removal the running mount writes in the new epoch; the running
mount of the removed member is refused what was re-keyed or written since
and changes nothing any more; three people's mounts at once through a
removal, the re-key pass and adding the removed member back.  Epochs are
read from the header of the object the provider holds (Vault.backing;
gdrive: once the writer's mount has uploaded it)."""
import os
import shutil
import struct
import time

import pytest

from scsmount import (BACKEND, Group, SCSFS, Vault, eventually, make_user, marker,
                      refused)


def pin(user, owner, remote):
    """`scsctl join` with the fingerprint the owner reads out (or, without
    a join command, the owner's pinned state copied)."""
    st = owner.ctl("status").stdout
    fpr = [l for l in st.splitlines() if l.startswith("group fingerprint: ")][0].split(": ", 1)[1]
    r = user.ctl("join", remote, "--fingerprint", fpr, check=False)
    if r.returncode == 0:
        return
    assert "unknown command" in r.stderr, f"scsctl join failed: {r.stderr!r}"
    shutil.copytree(owner.data_dir / "groups", user.data_dir / "groups", dirs_exist_ok=True)


def header_epoch(v, plain_size, wait=True):
    """The epoch in the header (the u32be after "SCSF" and the u16 version)
    of the object of v's group holding plain_size bytes, once v's machine
    has uploaded what it wrote (wait=False: the caller made sure)."""
    if wait:
        v.uploaded()
    bk = v.backing
    h = bk.read(bk.find(plain_size))[:10]
    assert h[:4] == b"SCSF"
    return struct.unpack(">I", h[6:10])[0]



@pytest.fixture
def pair(fuse, vault, mallory, tmp_path):
    m = Vault(mallory, vault.cloud, tmp_path / "mnt-mallory")
    yield vault, m
    m.cleanup()


def add(vault, who, tmp_path):
    idfile = tmp_path / f"{who.name}.id"
    idfile.write_text(who.ctl("id", "export").stdout)
    vault.user.ctl("member", "add", str(idfile))
    pin(who, vault.user, vault.remote)


def test_member_added_while_mounted_is_readable(pair, tmp_path):
    alice, mallory = pair
    alice.mount()                       # default options
    try:
        (alice.mnt / "shared.txt").write_bytes(b"for everyone\n")
        add(alice, mallory.user, tmp_path)
        # (gdrive: another machine sees a new file once its upload is on
        # Drive, about a second after close; README "Using Google Drive")
        alice.uploaded()
        mallory.mount()
        assert (mallory.mnt / "shared.txt").read_bytes() == b"for everyone\n"
        (mallory.mnt / "new-member.txt").write_bytes(b"signed by a member alice's mount "
                                                     b"did not know at mount time\n")
        mallory.unmount()
        eventually(lambda: (alice.mnt / "new-member.txt").read_bytes().startswith(b"signed by"),
                   30, "a file signed by a member added after the mount started")
    finally:
        alice.unmount()


def test_removal_reaches_a_running_mount(pair, tmp_path):
    alice, mallory = pair
    add(alice, mallory.user, tmp_path)
    alice.mount()                       # default options
    try:
        (alice.mnt / "before").write_bytes(b"b" * 20001)
        assert header_epoch(alice, 20001) == 1
        laptop = alice.user.clone(tmp_path / "home-alice-laptop")
        laptop.ctl("member", "remove", "mallory")
        deadline = time.monotonic() + 30
        n = 0
        while True:
            n += 1
            (alice.mnt / f"after-{n}").write_bytes(b"a" * (30000 + n))
            if header_epoch(alice, 30000 + n) == 2:
                break
            assert time.monotonic() < deadline, \
                "the running mount still writes epoch-1 files (readable by the removed " \
                "member) 30 s after the removal"
            time.sleep(0.5)
        assert (alice.mnt / "before").read_bytes() == b"b" * 20001
    finally:
        alice.unmount()
    r = mallory.user.run([SCSFS, mallory.remote, mallory.mnt], timeout=60)
    refused(r, mallory.mnt)


# ---------------------------------------------------------------- several people

REFRESH = ["-o", "keyring_refresh=0.5"]
if BACKEND == "gdrive":                 # other members' files: the changes feed every second
    REFRESH += ["-o", "poll=1"]
REMOVED_LINE = "you were removed from the group at entry"


@pytest.fixture(scope="module")
def people(alice_template, tmp_path_factory):
    """alice, bob and carol, each with their own identity (made once)."""
    base = tmp_path_factory.mktemp("people")
    return {"alice": alice_template, "bob": make_user(base / "bob", "bob"),
            "carol": make_user(base / "carol", "carol")}


@pytest.fixture
def trio(fuse, people, tmp_path):
    """alice's group with bob and carol added and joined, nothing mounted."""
    g = Group(people, tmp_path)
    for n in ("bob", "carol"):
        g.add("alice", n)
        g.join(n)
    yield g
    g.cleanup()


def denied(fn):
    """fn() fails with EACCES (PermissionError); other OSErrors propagate
    (eventually() counts them as not yet)."""
    try:
        fn()
    except PermissionError:
        return True
    return False


def reads(v, rel, data):
    """v's mount shows rel with exactly data."""
    return (v.mnt / rel).read_bytes() == data


def write_until_epoch(v, stem, size, epoch, timeout=15):
    """Write new files through v's mount until one is stored in epoch (the
    mount's refresh saw the change); return its name and contents."""
    deadline = time.monotonic() + timeout
    while True:
        size += 1
        name, data = f"{stem}-{size}", marker() + b"w" * size
        (v.mnt / name).write_bytes(data)
        if header_epoch(v, len(data)) == epoch:
            return name, data
        assert time.monotonic() < deadline, \
            f"{v.user.name}'s running mount still writes epoch {epoch - 1} files {timeout} s later"
        time.sleep(0.3)


def rekey_done(user):
    st = user.ctl("rekey", "status").stdout
    return any(l.startswith("re-key: done") for l in st.splitlines())


@pytest.mark.timeout(90)
def test_removed_members_running_mount_is_refused(trio):
    va, vb, vc = (trio.vaults[n] for n in ("alice", "bob", "carol"))
    alice = trio.users["alice"]
    va.mount(args=REFRESH + ["-o", "norekey"])      # the pass: scsctl rekey run below
    vb.mount(foreground=True, args=REFRESH)
    vc.mount(args=REFRESH)
    old = marker() + b"o" * 20000
    (va.mnt / "old.txt").write_bytes(old)
    eventually(lambda: reads(vb, "old.txt", old), 10, "bob reading alice's file")
    mine = marker() + b"b" * 21000
    (vb.mnt / "bob.txt").write_bytes(mine)
    vb.uploaded()                       # (gdrive: the folder has it before the removal)

    alice.ctl("member", "remove", "bob")
    eventually(lambda: REMOVED_LINE in vb.log(), 15, "the removal line in bob's log")
    # What bob's key opens stays readable until re-keyed (he may have a copy
    # anyway); nothing is created or changed through his mount any more.
    assert reads(vb, "old.txt", old)
    for _ in range(3):
        with pytest.raises(PermissionError):
            open(vb.mnt / "new-by-bob.txt", "xb")
    with pytest.raises(PermissionError):
        open(vb.mnt / "old.txt", "r+b")
    with pytest.raises(PermissionError):
        (vb.mnt / "bob.txt").unlink()
    with pytest.raises(PermissionError):
        (vb.mnt / "sub").mkdir()
    assert not trio.backing.exists("sub")

    # alice's mount writes in epoch 2, the pass moves everything there.
    after, new = write_until_epoch(va, "after", 30000, 2)
    r = alice.ctl("rekey", "run")
    assert "epochs below 2 are retired" in r.stdout
    assert header_epoch(va, len(old)) == 2
    assert header_epoch(va, len(mine)) == 2

    eventually(lambda: denied(lambda: (vb.mnt / "old.txt").read_bytes()), 15,
               "EACCES for bob opening a re-keyed file")
    assert denied(lambda: (vb.mnt / after).read_bytes()), "a file written after the removal"
    assert denied(lambda: (vb.mnt / "bob.txt").read_bytes()), "his own file, re-keyed"
    assert denied(lambda: open(vb.mnt / "new-by-bob.txt", "xb"))
    assert os.listdir(vb.mnt) == [], "names under the epoch-2 key are not shown"
    log = vb.log()
    lines = [l for l in log.splitlines() if REMOVED_LINE in l]
    assert len(lines) == 1, lines
    assert "entry 3 by alice" in lines[0] and "cannot be opened" in lines[0], lines[0]
    assert "old.txt: cannot be opened" in log, log
    assert log.count("new-by-bob.txt: not created") == 1, "one line per file (rate-limited)"
    assert "names cannot be read with the keys you still hold" in log

    # alice's and carol's mounts keep working, in epoch 2.
    eventually(lambda: reads(vc, "old.txt", old) and reads(vc, after, new), 10,
               "carol reading the re-keyed and the new file")
    assert reads(vc, "bob.txt", mine)
    theirs = marker() + b"c" * 22000
    (vc.mnt / "carol.txt").write_bytes(theirs)
    assert header_epoch(vc, len(theirs)) == 2
    eventually(lambda: reads(va, "carol.txt", theirs), 10, "alice reading carol's new file")
    for v in (va, vb, vc):
        v.unmount()


@pytest.mark.timeout(120)
def test_three_mounts_through_remove_rekey_and_readd(trio):
    names = ("alice", "bob", "carol")
    vs = {n: trio.vaults[n] for n in names}
    va, vb, vc = (vs[n] for n in names)
    alice = trio.users["alice"]
    va.mount(foreground=True, args=REFRESH)       # an admin's mount: runs the pass
    vb.mount(args=REFRESH)
    vc.mount(foreground=True, args=REFRESH)
    files = {}                                    # name -> contents, everyone reads them
    for i, n in enumerate(names):
        files[f"from-{n}.txt"] = marker() + n.encode() * (5000 + i)
        (vs[n].mnt / f"from-{n}.txt").write_bytes(files[f"from-{n}.txt"])

    def everyone_reads(who=names, what=None):
        what = what or files
        return all(reads(vs[n], f, d) for n in who for f, d in what.items())
    eventually(everyone_reads, 10, "each mount reading the other two's files")

    # alice removes carol: alice's and bob's mounts switch to epoch 2 for
    # new writes, alice's mount runs the re-key pass, carol's is refused.
    alice.ctl("member", "remove", "carol")
    out = {}
    for n, size in (("alice", 40000), ("bob", 41000)):
        out[n], files[out[n]] = write_until_epoch(vs[n], f"out-{n}", size, 2)
    eventually(lambda: rekey_done(alice), 30, "the re-key pass of alice's mount to finish")
    assert "re-key: done" in va.log()
    va.uploaded()                         # (gdrive: the pass's uploads, from alice's machine)
    for f, d in files.items():
        assert header_epoch(va, len(d), wait=False) == 2, f
    eventually(lambda: REMOVED_LINE in vc.log(), 10, "the removal line in carol's log")
    assert denied(lambda: open(vc.mnt / "while-out.txt", "xb"))
    eventually(lambda: denied(lambda: (vc.mnt / out["bob"]).read_bytes()), 10,
               "carol refused bob's epoch-2 file")
    eventually(lambda: denied(lambda: (vc.mnt / "from-alice.txt").read_bytes()), 10,
               "carol refused a re-keyed file")
    eventually(lambda: everyone_reads(("alice", "bob")), 10, "alice and bob reading everything")

    # alice adds carol back: her running mount opens everything again,
    # files written while she was out included, and writes in epoch 2.
    trio.add("alice", "carol")
    eventually(lambda: everyone_reads(("carol",)), 15, "carol's running mount reading again")
    assert "you were added back to the group at entry" in vc.log()
    back = {"back-carol.txt": marker() + b"C" * 7000}
    (vc.mnt / "back-carol.txt").write_bytes(back["back-carol.txt"])
    assert header_epoch(vc, 7000 + len(marker())) == 2
    for i, n in enumerate(("alice", "bob")):
        back[f"back-{n}.txt"] = marker() + n.encode() * (8000 + i)
        (vs[n].mnt / f"back-{n}.txt").write_bytes(back[f"back-{n}.txt"])
    files.update(back)
    eventually(everyone_reads, 15, "all three reading each other's new writes")
    # and so does a fresh mount of hers
    vc.unmount()
    vc.mount()
    assert everyone_reads(("carol",))
    for v in vs.values():
        v.unmount()
