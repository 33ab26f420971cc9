"""A re-key pass run elsewhere while a gdrive: mount's uploads wait: what the
mount sends afterwards still lands in the group's current epoch.

bob's mount writes; its uploads are held back (-o upload_delay, a stalled
upload request, an outage); meanwhile alice removes carol on her own machine
and runs `scsctl rekey run` to the end, which retires epoch 1.  The pass
cannot see what bob's mount has not sent (a new file stays hidden from other
members until its first upload lands, what was made offline is not on Drive
at all), and bob's mount has not read the keyring (keyring_refresh=0: it
never looks by itself).  Before it sends, or once a first upload that was in
flight lands, the mount looks at the keyring and moves what it wrote to
epoch 2: content (a fresh file key) and names.  Then every member reads it,
every stored object and name is in epoch 2, `scsctl verify` is clean and
`scsctl rekey status` has nothing left.  Without that, the file arrives in
the retired epoch and every member refuses it, bob too.

The test is the server: it reads the header epoch of what Drive holds (the
u32be after "SCSF" and the u16 version, scsfs-format(5))."""

import base64
import json
import os
import signal
import struct
import time
import urllib.request

import pytest

from scsmount import eventually, fusermount_u, marker
from test_members import group, templates  # noqa: F401 (fixtures)

pytestmark = pytest.mark.gdrive_only

FAST = ["poll=1"]               # other members' changes: the feed every second
BOB = ",".join(["keyring_refresh=0"] + FAST)
RACE_FILE = 4000 + 33           # plain sizes that nothing else has
OFF_FILE = 5000 + 17
OFF_INNER = 6000 + 5


def emu_state(bk):
    with urllib.request.urlopen(bk.drive.endpoint + "/__control/state", timeout=30) as r:
        return json.load(r)


def epoch_of(data):
    if data[:2] == b"S1":        # a symbolic link's target: "S1" + base64url(u32be(epoch)...)
        raw = base64.urlsafe_b64decode(data[2:] + b"=" * (-len(data[2:]) % 4))
        return struct.unpack(">I", raw[:4])[0]
    assert data[:4] == b"SCSF", data[:10]
    return struct.unpack(">I", data[6:10])[0]


def stored_epochs(bk):
    """{path: epoch} of every file object (header) and symbolic link
    (target) of the group (not .scsdir, not long-name side objects)."""
    out = {}
    for rel in bk.files() + bk.links():
        name = rel.rpartition("/")[2]
        if name == ".scsdir" or name.endswith(".name"):
            continue
        out[rel] = epoch_of(bk.read(rel))
    return out


def no_duplicates(bk):
    """Drive holds no two entries of one name in one folder."""
    seen = {}
    for fid, m in emu_state(bk)["files"].items():
        if m and not m.get("trashed") and m.get("parents"):
            key = (tuple(m["parents"]), m["name"])
            assert key not in seen, f"duplicate name on Drive: {m['name']}"
            seen[key] = fid


def share(group):
    """alice (admin), bob and carol share the folder in epoch 1."""
    for n in ("bob", "carol"):
        group.add("alice", n)
        group.join(n)
    return group.users["alice"], group.users["bob"], group.vaults["bob"]


def remove_and_rekey(alice):
    """On alice's machine: carol goes, every file the pass sees moves to
    epoch 2, epoch 1 is retired."""
    alice.ctl("member", "remove", "carol")
    r = alice.ctl("rekey", "run")
    assert "epochs below 2 are retired" in r.stdout, r.stdout + r.stderr


def status_text(user):
    r = user.ctl("status", check=False, timeout=60)
    return r.stdout + r.stderr


def pending(user):
    return "uploads: none pending" not in status_text(user)


def converged(group, files, links=None):
    """Everything bob wrote reaches every member, in epoch 2, names too
    (links: {path: target} of symbolic links)."""
    alice = group.users["alice"]
    bk = group.backing
    epochs = stored_epochs(bk)
    assert epochs and set(epochs.values()) == {2}, epochs
    assert not bk.temps(), bk.temps()
    no_duplicates(bk)
    r = alice.ctl("verify", check=False, timeout=120)
    assert r.returncode == 0 and ", 0 damaged" in r.stdout, r.stdout + r.stderr
    st = alice.ctl("rekey", "status").stdout
    assert "re-key: done" in st and "in older epochs: 0 files" in st, st
    for who in ("alice", "bob"):
        v = group.vaults[who]
        v.mount(args=["-o", ",".join(FAST)])
        try:
            for rel, data in files.items():
                assert v.path(rel).read_bytes() == data, f"{who} cannot read {rel}"
            for rel, target in (links or {}).items():
                assert os.readlink(v.path(rel)) == target, f"{who} cannot read {rel}"
        finally:
            v.unmount()


def test_new_file_uploaded_after_the_pass_goes_in_the_new_epoch(group):
    """The upload waits (upload_delay) while the pass runs and retires
    epoch 1: before it sends, the mount looks at the keyring and moves the
    file (and its name) to epoch 2."""
    alice, bob, vb = share(group)
    vb.mount(foreground=True, args=["-o", BOB + ",upload_delay=20"])
    data = marker() + os.urandom(RACE_FILE - 50)
    try:
        vb.path("made-before.txt").write_bytes(data)
        remove_and_rekey(alice)
        assert pending(bob), "bob's upload went before the pass: nothing raced"
        vb.uploaded(timeout=90)
        assert vb.path("made-before.txt").read_bytes() == data
    finally:
        vb.unmount()
    converged(group, {"made-before.txt": data})
    log = vb.log()
    assert "which is no longer the current one; moved to epoch 2 (a fresh key) before " \
           "its upload" in log, log
    assert "re-encrypted under the current one before Drive gets it" in log, log


def test_first_upload_in_flight_during_the_pass_is_moved_once_it_lands(group):
    """The upload request is under way (stalled by the server) while the
    pass runs and retires epoch 1: the file lands in epoch 1, hidden from
    the pass until then; the mount looks again once it landed and moves it."""
    alice, bob, vb = share(group)
    bk = group.backing
    vb.mount(foreground=True, args=["-o", BOB])
    data = marker() + os.urandom(RACE_FILE - 50)
    try:
        bk._control(action="stall", method="PATCH", path="/upload/", ms=25000, count=1)
        vb.path("in-flight.txt").write_bytes(data)
        eventually(lambda: not emu_state(bk)["faults"], 30, "bob's upload to be under way")
        remove_and_rekey(alice)
        assert pending(bob), "bob's upload landed before the pass ended: nothing raced"
        vb.uploaded(timeout=90)
    finally:
        bk._control(action="clear_faults")
        vb.unmount()
    converged(group, {"in-flight.txt": data})
    log = vb.log()
    assert "moved to epoch 2 (a fresh key) once its upload, in flight while the keyring " \
           "moved on, had landed" in log, log


def test_file_and_folder_made_offline_land_in_the_new_epoch(group):
    """Made while Drive was unreachable, in epoch 1: the folder's name is
    moved to epoch 2 before the folder is made on Drive, the files' names
    and contents before they are sent."""
    alice, bob, vb = share(group)
    bk = group.backing
    vb.mount(foreground=True, args=["-o", BOB + ",upload_delay=25"])
    files = {"offline.txt": marker() + os.urandom(OFF_FILE - 50),
             "made-offline/inside.txt": marker() + os.urandom(OFF_INNER - 50)}
    try:
        os.listdir(vb.path())    # (offline, names are answered from what was seen)
        bk._control(action="outage", on=True)
        eventually(lambda: "offline since" in status_text(bob), 60,
                   "bob's mount to know it is offline")
        vb.path("made-offline").mkdir()
        for rel, data in files.items():
            vb.path(rel).write_bytes(data)
        bk._control(action="outage", on=False)
        remove_and_rekey(alice)
        assert pending(bob), "bob's uploads went before the pass: nothing raced"
        vb.uploaded(timeout=120)
        for rel, data in files.items():
            assert vb.path(rel).read_bytes() == data
    finally:
        bk._control(action="outage", on=False)
        vb.unmount()
    converged(group, files)
    log = vb.log()
    assert "made-offline: its name, encrypted under an older epoch's key, is " \
           "re-encrypted under the current one" in log, log


def test_link_made_and_folder_renamed_offline_land_in_the_new_epoch(group):
    """A symbolic link made while Drive was unreachable (its name and target
    in epoch 1) and a folder Drive has renamed then (its new name in epoch
    1, a queued move; its first try refused by the server, so that it is
    tried again after the pass): before the link is made on Drive and
    before the folder takes its new name there, both move to epoch 2."""
    alice, bob, vb = share(group)
    bk = group.backing
    vb.mount(foreground=True, args=["-o", BOB + ",upload_delay=25"])
    kept = marker() + os.urandom(OFF_INNER - 50)
    try:
        vb.path("old-dir").mkdir()
        vb.path("old-dir/kept.txt").write_bytes(kept)
        vb.uploaded()
        os.listdir(vb.path())
        os.listdir(vb.path("old-dir"))
        bk._control(action="outage", on=True)
        eventually(lambda: "offline since" in status_text(bob), 60,
                   "bob's mount to know it is offline")
        os.symlink("dir-renamed/kept.txt", vb.path("link-offline"))
        os.rename(vb.path("old-dir"), vb.path("dir-renamed"))
        (folder,) = [fid for rel, (fid, m) in bk._walk().items()
                     if rel and "/" not in rel and rel != ".scsfs" and bk._is_dir(m)]
        bk._control(action="fault", status=400, method="PATCH",
                    path=f"/drive/v3/files/{folder}", count=1)
        bk._control(action="outage", on=False)
        eventually(lambda: not emu_state(bk)["faults"], 60, "bob's rename to be tried")
        remove_and_rekey(alice)
        assert pending(bob), "bob's changes went before the pass: nothing raced"
        vb.uploaded(timeout=120)
        assert vb.path("link-offline").read_bytes() == kept
    finally:
        bk._control(action="outage", on=False)
        vb.unmount()
    converged(group, {"dir-renamed/kept.txt": kept},
              {"link-offline": "dir-renamed/kept.txt"})
    log = vb.log()
    assert "/link-offline: its target, encrypted under an older epoch's key, is " \
           "re-encrypted under the current one" in log, log
    assert "dir-renamed: its name, encrypted under an older epoch's key, is " \
           "re-encrypted under the current one" in log, log


def test_new_file_held_open_through_the_pass_moves_at_its_next_close(group):
    """A new file held open for writing (nothing of it on Drive yet: its
    uploads wait, upload_delay) while the pass runs and retires its epoch:
    its key is refused from then on, so its next seal could not be made in
    it; instead what it holds moves to epoch 2 in place, and the close
    succeeds with nothing lost."""
    alice, bob, vb = share(group)
    vb.mount(foreground=True,
             args=["-o", "keyring_refresh=1,upload_delay=30," + ",".join(FAST)])
    first = marker() + os.urandom(RACE_FILE - 50)
    more = marker() + b" written after the pass"
    try:
        with open(vb.path("held.txt"), "wb", buffering=0) as f:
            f.write(first)
            remove_and_rekey(alice)
            eventually(lambda: "epochs below 2 are retired" in vb.log(), 30,
                       "bob's mount to see the retirement")
            f.write(more)
        vb.uploaded(timeout=90)
        assert vb.path("held.txt").read_bytes() == first + more
    finally:
        vb.unmount()
    converged(group, {"held.txt": first + more})
    assert "epoch 1 was retired while this file was open here; what it holds moved to " \
           "epoch 2" in vb.log(), vb.log()


def dead(v):
    """The foreground daemon of v has died (or is killed now): reap it and
    clean up its mount."""
    if v.proc.poll() is None:
        v.proc.send_signal(signal.SIGKILL)
    v.proc.wait(timeout=30)
    v.proc = None
    v._log_fh.close()
    v._log_fh = None
    fusermount_u(v.mnt)


@pytest.mark.parametrize("when", ["in-flight", "mid-move"])
def test_writer_killed_in_the_middle_loses_nothing(group, when):
    """kill -9 of bob's mount while its first upload is in flight through the
    pass (in-flight), or right after it moved the file's name to epoch 2 and
    before anything else (mid-move, SCSFS_REKEY_STOP=upload); the next mount
    of bob's cache finishes the job: nothing lost, nothing refused."""
    alice, bob, vb = share(group)
    bk = group.backing
    data = marker() + os.urandom(RACE_FILE - 50)
    if when == "in-flight":
        vb.mount(foreground=True, args=["-o", BOB])
        bk._control(action="stall", method="PATCH", path="/upload/", ms=15000, count=1)
    else:
        vb.mount(foreground=True, args=["-o", BOB + ",upload_delay=20"],
                 env={"SCSFS_REKEY_STOP": "upload"})
    try:
        vb.path("killed.txt").write_bytes(data)
        if when == "in-flight":
            eventually(lambda: not emu_state(bk)["faults"], 30, "bob's upload to be under way")
        remove_and_rekey(alice)
        if when == "in-flight":
            dead(vb)
            time.sleep(16)       # (the stalled request meets a closed connection)
        else:
            eventually(lambda: vb.proc.poll() is not None, 60, "bob's mount to stop mid-move")
            assert "SCSFS_REKEY_STOP=upload reached" in vb.log(), vb.log()
            dead(vb)
        assert pending(bob)
        vb.mount(foreground=True, args=["-o", BOB])
        vb.uploaded(timeout=90)
        assert vb.path("killed.txt").read_bytes() == data
    finally:
        bk._control(action="clear_faults")
        if vb.proc is not None:
            vb.unmount(check=False)
    converged(group, {"killed.txt": data})
