"""Running mounts follow keyring changes made elsewhere, without a remount
(DESIGN.md: "Keyring changes made elsewhere are picked up by running
mounts"): a member added while alice's mount runs can be read by it, and
after a removal the running mount writes in the new epoch."""
import shutil
import struct
import time

import pytest

from scsmount import eventually, SCSFS, Vault, find_object, refused


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


def header_epoch(obj):
    with open(obj, "rb") as f:
        h = f.read(10)
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
        assert header_epoch(find_object(alice.cloud, 20001)) == 1
        laptop = alice.user.clone(tmp_path / "home-alice-laptop")
        laptop.ctl("member", "remove", "mallory")
        deadline = time.monotonic() + 30
        n = 0
        while True:
            n += 1
            (alice.mnt / f"after-{n}").write_bytes(b"a" * (30000 + n))
            if header_epoch(find_object(alice.cloud, 30000 + n)) == 2:
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
