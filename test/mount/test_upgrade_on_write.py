"""Upgrade on write (issue 3: "every member's mount switches to the new
epoch for all new writes"): after a removal, writing to a file written
before it first moves the file to the current epoch with a fresh file key
(as the re-key pass moves one file), so the removed member's old key does
not cover what is written from then on -- without the re-key pass, which a
plain mount does not run.  With O_TRUNC nothing is copied: a fresh empty
object.  A file already open in the mount is left as it is until its next
open.  The test reads header epochs from the backing folder (the server's
view): the u32be after "SCSF" and the u16 version (gdrive: once the
mount has uploaded what it wrote)."""
import os
import struct

from scsmount import BACKEND, eventually, marker
from test_keyring_live import add, pair  # noqa: F401 (fixture)

# gdrive: the test edits an object on Drive; the mount should know of it
# (the changes feed) well before it writes that file again.
FAST = ["-o", "poll=1"] if BACKEND == "gdrive" else []


def header_epoch(data):
    assert data[:4] == b"SCSF"
    return struct.unpack(">I", data[6:10])[0]


def epoch_of(v, plain_size):
    """The epoch of the object holding plain_size bytes in v's group."""
    v.uploaded()
    b = v.backing
    return header_epoch(b.read(b.find(plain_size)))


def content(size):
    return (marker() + os.urandom(size))[:size]


def test_write_moves_an_old_file_to_the_current_epoch(pair, tmp_path):
    alice, mallory = pair
    add(alice, mallory.user, tmp_path)
    alice.mount(foreground=True, args=["-o", "norekey"] + FAST)   # the pass must not move them
    try:
        old = {n: content(s) for n, s in (("old.txt", 20001), ("trunc.txt", 20002),
                                         ("held.txt", 20003), ("read.txt", 20004),
                                         ("set.txt", 40005))}
        for n, data in old.items():
            alice.path(n).write_bytes(data)
        for n, data in old.items():
            assert epoch_of(alice, len(data)) == 1
        # damage a record of trunc.txt (the server): a copy would not
        # authenticate, an O_TRUNC open copies nothing and must not care
        bk = alice.backing
        t = bk.find(20002)
        raw = bytearray(bk.read(t))
        raw[-5] ^= 1
        bk.write(t, bytes(raw))
        held = open(alice.path("held.txt"), "r+b")
        try:
            alice.user.ctl("member", "remove", "mallory")
            # the running mount follows the keyring: new files in epoch 2
            n = [0]

            def new_epoch():
                n[0] += 1
                alice.path(f"probe-{n[0]}").write_bytes(b"p" * (30000 + n[0]))
                return epoch_of(alice, 30000 + n[0]) == 2
            eventually(new_epoch, 30, "the mount writing new files in epoch 2")

            # append to an old file: moved first, contents intact
            with open(alice.path("old.txt"), "ab") as f:
                f.write(b"more")
            assert epoch_of(alice, 20005) == 2
            assert alice.path("old.txt").read_bytes() == old["old.txt"] + b"more"

            # O_TRUNC: a fresh empty object under epoch 2, the old (damaged)
            # records never read
            with open(alice.path("trunc.txt"), "wb") as f:
                f.write(b"fresh")
            assert epoch_of(alice, 5) == 2
            assert alice.path("trunc.txt").read_bytes() == b"fresh"

            # truncate(2) of a file not open: the same
            os.truncate(alice.path("set.txt"), 40000)
            assert epoch_of(alice, 40000) == 2
            assert alice.path("set.txt").read_bytes() == old["set.txt"][:40000]

            # reading does not move a file
            assert alice.path("read.txt").read_bytes() == old["read.txt"]
            assert epoch_of(alice, 20004) == 1

            # a file open since before the removal keeps working, in its epoch
            held.seek(0, 2)
            held.write(b"held")
            held.flush()
        finally:
            held.close()
        assert epoch_of(alice, 20007) == 1
        assert alice.path("held.txt").read_bytes() == old["held.txt"] + b"held"
        # ... and is moved at its next write-open
        with open(alice.path("held.txt"), "r+b") as f:
            f.seek(0)
            f.write(b"H")
        assert epoch_of(alice, 20007) == 2
        assert alice.path("held.txt").read_bytes() == b"H" + old["held.txt"][1:] + b"held"

        # no temporary left, and everything authenticates
        alice.uploaded()
        assert not bk.temps() and not [r for r in bk.listdir(".scsfs") if ".tmp-" in r]
        assert "moved to the current epoch before writing" in alice.log()
        assert alice.user.ctl("verify").returncode == 0
    finally:
        alice.unmount()
    # after a remount too
    alice.mount(args=["-o", "norekey"])
    try:
        assert alice.path("old.txt").read_bytes() == old["old.txt"] + b"more"
        assert alice.path("trunc.txt").read_bytes() == b"fresh"
    finally:
        alice.unmount()
