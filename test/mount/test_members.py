"""Group membership through the real programs: `scsctl member add/remove/list`,
`scsctl log`, `scsctl join`, and mounts of two and three users, each with
their own HOME (alice the founder and admin, bob, carol, dave, erin).

Running mounts do not follow keyring changes in these tests: every mount is
unmounted before a membership change and mounted again after it."""

import os
import re
import struct
import subprocess
import time

import pytest

from scsmount import SCSCTL, SCSFS, Group, Vault, make_user, marker, one_line, refused

NAMES = ("alice", "bob", "carol", "dave", "erin")


# ---------------------------------------------------------------- helpers

@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    """Each person's identity, made once per module (RSA keygen is slow)."""
    base = tmp_path_factory.mktemp("people")
    return {n: make_user(base / n, n) for n in NAMES}


@pytest.fixture
def group(fuse, templates, tmp_path):
    g = Group(templates, tmp_path)
    yield g
    g.cleanup()


def status(user, *args, check=True):
    r = user.ctl("status", *args, check=check)
    return dict(line.split(": ", 1) for line in r.stdout.splitlines() if ": " in line)


def keyring_entries(group):
    return group.backing.listdir(".scsfs/keyring")


def object_epoch(backing, plain_size):
    """The epoch field of the header (after "SCSF" and the u16 version,
    scsfs-format(5)) of the object holding plain_size bytes."""
    rel = backing.find(plain_size)
    head = backing.read(rel)[:10]
    assert head[:4] == b"SCSF", rel
    return struct.unpack(">I", head[6:10])[0]


def fpr_of(user):
    r = user.ctl("id", "show")
    return re.search(r"^fingerprint: ([0-9a-f ]+)$", r.stdout, re.M).group(1)


def member_rows(user):
    """{name: (role, fingerprint, since)} from `scsctl member list`."""
    lines = user.ctl("member", "list").stdout.splitlines()
    assert lines[0].split() == ["NAME", "ROLE", "FINGERPRINT", "SINCE"], lines[0]
    rows = {}
    for line in lines[1:]:
        m = re.match(r"^(\S+)\s+(admin|member)\s+((?:[0-9a-f]{4} ){15}[0-9a-f]{4})\s+(entry \d+, "
                     r"\d{4}-\d\d-\d\d)$", line)
        assert m, f"bad member list line {line!r}"
        rows[m.group(1)] = (m.group(2), m.group(3), m.group(4))
    return rows


def log_rows(user):
    """[(seq, author, kind, subject, epoch)] from `scsctl log`."""
    lines = user.ctl("log").stdout.splitlines()
    assert lines[0].split() == ["SEQ", "DATE", "AUTHOR", "KIND", "SUBJECT", "EPOCH"], lines[0]
    rows = []
    for line in lines[1:]:
        m = re.match(r"^(\d+)\s+\d{4}-\d\d-\d\d \d\d:\d\d UTC\s+(\S+)\s+(\S+)\s+(\S+(?: \((?:admin|"
                     r"member)\))?|epochs < \d+)\s+(\d+)$", line)
        assert m, f"bad log line {line!r}"
        rows.append((int(m.group(1)), m.group(2), m.group(3), m.group(4), int(m.group(5))))
    return rows


def write(v, rel, data):
    p = v.path(rel)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)


# ---------------------------------------------------------------- add, join, mount

def test_add_join_and_share_files(group):
    alice, bob = group.users["alice"], group.users["bob"]
    va, vb = group.vaults["alice"], group.vaults["bob"]
    mine = marker()
    va.mount()
    write(va, "docs/plan.txt", mine)
    va.unmount()

    r = group.add("alice", "bob")
    assert "adding bob as a member" in r.stdout
    assert f"fingerprint: {fpr_of(bob)}" in r.stdout
    assert "compare this fingerprint with bob over a channel you trust" in r.stdout
    assert group.fpr in r.stdout, "the group fingerprint to give bob"
    st = status(alice)
    assert (st["members"], st["epoch"], st["keyring entries"]) == ("2", "1", "2")
    # alice's high-water mark moved to the new entry.
    (pinfile,) = (alice.data_dir / "groups").glob("*.json")
    pin = pinfile.read_text()
    assert '"seq":1' in pin

    # bob, on his own machine: join after comparing, then mount.
    r = group.join("bob")
    assert "you are a member" in r.stdout
    assert status(bob)["you"] == "bob (member)"
    vb.mount()
    assert vb.path("docs/plan.txt").read_bytes() == mine
    theirs = marker()
    write(vb, "docs/from-bob.txt", theirs)
    vb.unmount()
    va.mount()
    assert va.path("docs/from-bob.txt").read_bytes() == theirs
    va.unmount()


def test_add_refusals(group, tmp_path):
    alice = group.users["alice"]
    group.add("alice", "bob")
    before = keyring_entries(group)
    # Already a member.
    line = refused(group.add("alice", "bob", check=False), None, "already a member")
    assert "bob" in line
    # Another identity under a name the group already has.
    twin = make_user(tmp_path / "home-twin", "bob")
    twin_id = tmp_path / "twin.id"
    twin_id.write_text(twin.ctl("id", "export").stdout)
    refused(alice.ctl("member", "add", twin_id, check=False), None, "already has a member named")
    # Files that are not public identities, parsed strictly.
    good = group.idfile("carol").read_text()
    bad = {
        "private.id": (alice.data_dir / "identity.key").read_text(),
        "extra.id": good.rstrip().rstrip("}") + ',"admin":true}',
        "empty.id": "",
        "huge.id": " " * 9000 + good,
    }
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
        refused(alice.ctl("member", "add", tmp_path / name, check=False), None,
                "not a valid public identity", "larger than")
    refused(alice.ctl("member", "add", tmp_path / "missing.id", check=False), None, "cannot read")
    # Usage errors.
    refused(alice.ctl("member", "add", check=False), None, "usage")
    refused(alice.ctl("member", "frobnicate", check=False), None, "usage")
    assert keyring_entries(group) == before, "a refusal wrote nothing"


def test_non_admin_is_refused_before_the_passphrase(group):
    group.add("alice", "bob")
    group.add("alice", "carol", admin=True)
    group.join("bob")
    bob = group.users["bob"]
    before = keyring_entries(group)
    # No passphrase file: a refusal that needed the passphrase would fail differently.
    r = bob.ctl("member", "add", group.idfile("dave"), check=False, passfile=False)
    line = refused(r, None, "only an admin can add members")
    assert "ask one of: alice, carol" in line
    r = bob.ctl("member", "remove", "alice", check=False, passfile=False)
    line = refused(r, None, "only an admin can remove members")
    assert "alice, carol" in line
    assert keyring_entries(group) == before


def test_an_added_admin_can_add_and_remove(group):
    group.add("alice", "carol", admin=True)
    group.join("carol")
    carol = group.users["carol"]
    r = group.add("carol", "dave")
    assert "dave added" in r.stdout
    r = carol.ctl("member", "remove", "dave")
    assert "dave removed; new epoch 2" in r.stdout
    rows = member_rows(group.users["alice"])
    assert sorted(rows) == ["alice", "carol"]
    assert rows["carol"][0] == "admin"


def test_member_role_promotes_and_demotes(group):
    alice, bob, carol = (group.users[n] for n in ("alice", "bob", "carol"))
    group.add("alice", "bob")
    group.add("alice", "carol")
    for n in ("bob", "carol"):
        group.join(n)
    # a plain member cannot change roles, and is told whom to ask
    refused(bob.ctl("member", "role", "carol", "admin", check=False), None,
            "only an admin can change a member's role", "alice")
    refused(alice.ctl("member", "role", "nobody", "admin", check=False), None, "no member")
    refused(alice.ctl("member", "role", "bob", "owner", check=False), None, "usage")
    refused(alice.ctl("member", "role", "bob", "member", check=False), None, "already")

    r = alice.ctl("member", "role", "bob", "admin")
    assert r.stdout.startswith("bob is now an admin"), r.stdout
    assert member_rows(carol)["bob"][0] == "admin"
    assert status(bob)["you"] == "bob (admin)"
    # bob, now an admin, adds dave and demotes alice
    assert "dave added" in group.add("bob", "dave").stdout
    r = bob.ctl("member", "role", alice_fpr := fpr_of(alice), "member")
    assert r.stdout.startswith("alice is now a member"), r.stdout
    refused(group.add("alice", "erin", check=False), None, "only an admin can add members",
            "bob")
    # the last admin cannot make himself a plain member
    refused(bob.ctl("member", "role", "bob", "member", check=False), None, "last admin")
    rows = member_rows(carol)
    assert (rows["alice"][0], rows["bob"][0], rows["carol"][0]) == ("member", "admin", "member")
    assert rows["alice"][1] == alice_fpr
    # roles change no epoch; the log shows each change with its new role
    assert status(carol)["epoch"] == "1"
    kinds = [(a, k, s) for _, a, k, s, _ in log_rows(carol)]
    assert ("alice", "set_role", "bob (admin)") in kinds, kinds
    assert ("bob", "set_role", "alice (member)") in kinds, kinds


def test_rekey_rotate_moves_everyone_to_a_new_epoch(group):
    alice, bob = group.users["alice"], group.users["bob"]
    va, vb = group.vaults["alice"], group.vaults["bob"]
    group.add("alice", "bob")
    group.join("bob")
    old = marker()
    va.mount(args=["-o", "norekey"])
    write(va, "old.txt", old + b"o" * 700)
    va.unmount()
    refused(bob.ctl("rekey", "rotate", check=False), None,
            "only an admin can rotate the group key", "alice")
    r = alice.ctl("rekey", "rotate")
    assert r.stdout.startswith("group key rotated: new epoch 2"), r.stdout
    st = status(bob)
    assert (st["epoch"], st["members"]) == ("2", "2")
    assert object_epoch(group.backing, len(old) + 700) == 1
    new = marker()
    vb.mount(args=["-o", "norekey"])
    write(vb, "new.txt", new + b"n" * 900)
    assert vb.path("old.txt").read_bytes() == old + b"o" * 700
    vb.unmount()
    assert object_epoch(group.backing, len(new) + 900) == 2
    alice.ctl("rekey", "run")
    assert object_epoch(group.backing, len(old) + 700) == 2
    assert "retired: epochs below 2" in alice.ctl("rekey", "status").stdout
    for v in (va, vb):
        v.mount(args=["-o", "norekey"])
        assert v.path("old.txt").read_bytes() == old + b"o" * 700
        assert v.path("new.txt").read_bytes() == new + b"n" * 900
        v.unmount()
    assert ("alice", "rotate") in [(a, k) for _, a, k, _, _ in log_rows(bob)]


# ---------------------------------------------------------------- removal

def test_remove_rotates_and_locks_out(group, tmp_path):
    alice, bob, carol = (group.users[n] for n in ("alice", "bob", "carol"))
    va, vb, vc = (group.vaults[n] for n in ("alice", "bob", "carol"))
    group.add("alice", "bob")
    group.add("alice", "carol", admin=True)
    for n in ("bob", "carol"):
        group.join(n)
    old = marker()
    va.mount()
    write(va, "old.txt", old + b"o" * 1000)
    va.unmount()
    vb.mount()
    assert vb.path("old.txt").read_bytes() == old + b"o" * 1000
    vb.unmount()
    # bob's machine as it is before the removal (he may keep a copy of it).
    stale_bob = bob.clone(tmp_path / "home-bob-stale")

    r = carol.ctl("member", "remove", "bob")
    assert r.stdout.splitlines()[0] == (
        "bob removed; new epoch 2: files written from now on are unreadable to them")
    assert "`scsctl rekey run`" in r.stdout
    for u in (alice, carol):
        st = status(u)
        assert (st["epoch"], st["members"]) == ("2", "2")
    assert "bob" not in member_rows(alice)

    # bob is refused, by the mount and by scsctl.
    line = refused(bob.run([SCSFS, vb.remote, vb.mnt]), vb.mnt, "not a member")
    assert "carol removed you" in line
    refused(bob.ctl("status", check=False), None, "not a member")

    # alice writes at the new epoch; alice and carol read old and new.
    new = marker()
    va.mount(args=["-o", "norekey"])     # old.txt stays in epoch 1 (checked below)
    write(va, "new.txt", new + b"n" * 2000)
    write(va, "sub/deeper.txt", new + b"d" * 3000)
    assert va.path("old.txt").read_bytes() == old + b"o" * 1000
    va.unmount()                         # (gdrive: uploads what is queued first)
    assert object_epoch(group.backing, len(old) + 1000) == 1
    assert object_epoch(group.backing, len(new) + 2000) == 2
    assert object_epoch(group.backing, len(new) + 3000) == 2
    vc.mount(args=["-o", "norekey"])
    assert vc.path("old.txt").read_bytes() == old + b"o" * 1000
    assert vc.path("new.txt").read_bytes() == new + b"n" * 2000
    assert vc.path("sub/deeper.txt").read_bytes() == new + b"d" * 3000
    vc.unmount()

    # bob with only the epoch-1 key: a copy of the folder whose keyring
    # ends before his removal (his pin has not seen it) mounts, shows the
    # old file, and nothing written after the removal.
    sv = Vault(stale_bob, tmp_path / "cloud-stale", tmp_path / "mnt-bob-stale")
    group.backing.copy_to(sv.backing)
    last = [n for n in sv.backing.listdir(".scsfs/keyring") if n.endswith(".entry")][-1]
    sv.backing.remove(f".scsfs/keyring/{last}")          # (not a snap-*)
    try:
        sv.mount()
        assert sv.path("old.txt").read_bytes() == old + b"o" * 1000
        seen = b""
        for dirpath, dirnames, filenames in os.walk(sv.mnt):
            for n in filenames:
                try:
                    seen += open(os.path.join(dirpath, n), "rb").read()
                except OSError:
                    pass
        assert new not in seen, "a file of epoch 2 was readable with the epoch 1 key"
        for rel in ("new.txt", "sub/deeper.txt"):
            with pytest.raises(OSError):
                open(sv.path(rel), "rb").read()
    finally:
        sv.cleanup()


def test_remove_by_fingerprint_and_refusals(group):
    alice = group.users["alice"]
    group.add("alice", "bob")
    before = keyring_entries(group)
    # The last admin cannot be removed (here: alice, by herself).
    line = refused(alice.ctl("member", "remove", "alice", check=False), None, "last admin")
    assert "--admin" in line
    refused(alice.ctl("member", "remove", "nobody", check=False), None, "no member")
    assert keyring_entries(group) == before
    # By fingerprint, typed loosely.
    fpr = fpr_of(group.users["bob"]).replace(" ", "").upper()
    r = alice.ctl("member", "remove", fpr)
    assert r.stdout.startswith("bob removed; new epoch 2")
    assert status(alice)["members"] == "1"
    refused(alice.ctl("member", "remove", "bob", check=False), None, "no member")


# ---------------------------------------------------------------- list, log

def test_member_list_and_log(group):
    alice = group.users["alice"]
    group.add("alice", "bob")
    group.add("alice", "carol", admin=True)
    group.join("carol")
    group.users["carol"].ctl("member", "remove", "bob")
    group.add("carol", "dave")
    rows = member_rows(alice)
    assert list(rows) == ["alice", "carol", "dave"]
    assert rows["alice"][0] == "admin" and rows["carol"][0] == "admin" and rows["dave"][0] == "member"
    assert rows["alice"][1] == fpr_of(alice)
    assert rows["dave"][1] == fpr_of(group.users["dave"])
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert rows["alice"][2] == f"entry 0, {today}"
    assert rows["carol"][2] == f"entry 2, {today}"
    assert rows["dave"][2] == f"entry 4, {today}"
    assert log_rows(alice) == [
        (0, "alice", "genesis", "alice (admin)", 1),
        (1, "alice", "add", "bob (member)", 1),
        (2, "alice", "add", "carol (admin)", 1),
        (3, "carol", "remove", "bob", 2),
        (4, "carol", "add", "dave (member)", 2),
    ]
    # Any member may read them; both need no passphrase.
    group.join("dave")
    dave = group.users["dave"]
    assert dave.ctl("log", passfile=False).stdout == alice.ctl("log").stdout
    assert list(member_rows(dave)) == ["alice", "carol", "dave"]
    # dave, added in epoch 2, reads what alice writes.
    va, vd = group.vaults["alice"], group.vaults["dave"]
    va.mount()
    write(va, "for-dave.txt", b"hello dave")
    va.unmount()
    vd.mount()
    assert vd.path("for-dave.txt").read_bytes() == b"hello dave"
    vd.unmount()


def test_member_added_later_reads_history(group):
    """Old epoch keys reach a newcomer through the newest epoch's box."""
    va = group.vaults["alice"]
    group.add("alice", "bob")
    va.mount()
    write(va, "e1.txt", b"epoch one")
    va.unmount()
    group.users["alice"].ctl("member", "remove", "bob")
    va.mount()
    write(va, "e2.txt", b"epoch two")
    va.unmount()
    group.add("alice", "erin")
    group.join("erin")
    ve = group.vaults["erin"]
    ve.mount()
    assert ve.path("e1.txt").read_bytes() == b"epoch one"
    assert ve.path("e2.txt").read_bytes() == b"epoch two"
    ve.unmount()


# ---------------------------------------------------------------- concurrent admins

def _start_blocked(user, args, tmp_path):
    """Start `scsctl ARGS` as user with its passphrase file a FIFO, and
    return once it has opened the FIFO: it has then read and checked the
    keyring and waits for the passphrase."""
    fifo = tmp_path / f"fifo-{user.name}"
    os.mkfifo(fifo, 0o600)
    p = subprocess.Popen([str(SCSCTL), *map(str, args)],
                         env=user.env(SCSFS_PASSPHRASE_FILE=fifo), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError:
            if p.poll() is not None or time.monotonic() > deadline:
                p.kill()
                out, err = p.communicate()
                pytest.fail(f"scsctl never asked for the passphrase: {out!r} {err!r}")
            time.sleep(0.02)
    return p, fd


def _finish(p, fd, user):
    os.set_blocking(fd, True)
    os.write(fd, (user.passphrase + "\n").encode())
    os.close(fd)
    out, err = p.communicate(timeout=60)
    return p.returncode, out, err


def test_concurrent_adds_retry_on_top(group, tmp_path):
    """alice and carol add different people at the same time: alice's entry
    number is taken when she stores it; she reads the keyring again and
    stores her change as the next entry.  No fork, both are members."""
    group.add("alice", "carol", admin=True)
    group.join("carol")
    alice = group.users["alice"]
    p, fd = _start_blocked(alice, ["member", "add", group.idfile("dave")], tmp_path)
    try:
        group.add("carol", "erin")                 # takes entry 2 meanwhile
    finally:
        rc, out, err = _finish(p, fd, alice)
    assert rc == 0, err
    assert "another admin changed the group at the same time (keyring entry 2)" in out
    assert "dave added (keyring entry 3" in out
    assert keyring_entries(group) == [f"{i:08d}.entry" for i in range(4)]
    assert sorted(member_rows(alice)) == ["alice", "carol", "dave", "erin"]
    assert [r[3] for r in log_rows(alice)][2:] == ["erin (member)", "dave (member)"]


def test_concurrent_add_of_the_same_person(group, tmp_path):
    group.add("alice", "carol", admin=True)
    group.join("carol")
    alice = group.users["alice"]
    p, fd = _start_blocked(alice, ["member", "add", group.idfile("dave")], tmp_path)
    try:
        group.add("carol", "dave")
    finally:
        rc, out, err = _finish(p, fd, alice)
    assert rc != 0
    assert "already a member" in one_line(err)
    assert keyring_entries(group) == [f"{i:08d}.entry" for i in range(3)]


def test_concurrent_remove_and_add(group, tmp_path):
    """carol removes bob (a new epoch) while alice adds dave: alice's retry
    wraps the epoch 2 key to dave, who can then read what alice writes."""
    group.add("alice", "bob")
    group.add("alice", "carol", admin=True)
    group.join("carol")
    alice = group.users["alice"]
    p, fd = _start_blocked(alice, ["member", "add", group.idfile("dave")], tmp_path)
    try:
        group.users["carol"].ctl("member", "remove", "bob")
    finally:
        rc, out, err = _finish(p, fd, alice)
    assert rc == 0, err
    assert "epoch 2" in out
    va, vd = group.vaults["alice"], group.vaults["dave"]
    va.mount()
    write(va, "x.txt", b"after the race")
    va.unmount()
    group.join("dave")
    vd.mount()
    assert vd.path("x.txt").read_bytes() == b"after the race"
    vd.unmount()


def test_retry_reads_every_new_entry(group, tmp_path):
    """Two entries appear while alice waits: her entry number collides once,
    and the retry reads the whole keyring again (not just one more entry),
    so her change lands as entry 4 on top of a new epoch."""
    group.add("alice", "carol", admin=True)
    group.join("carol")
    alice, carol = group.users["alice"], group.users["carol"]
    p, fd = _start_blocked(alice, ["member", "add", group.idfile("dave")], tmp_path)
    try:
        group.add("carol", "erin")
        carol.ctl("member", "remove", "erin")
    finally:
        rc, out, err = _finish(p, fd, alice)
    assert rc == 0, err
    assert "dave added (keyring entry 4, epoch 2" in out
    # the five entries, and the snapshot of erin's removal (she wrote nothing)
    names = keyring_entries(group)
    assert names[:5] == [f"{i:08d}.entry" for i in range(5)]
    assert len(names) == 6 and names[5].startswith("snap-"), names


def test_add_from_standard_input_and_wrong_passphrase(group, tmp_path):
    alice = group.users["alice"]
    text = group.idfile("bob").read_text()
    wrong = alice.write_passfile("not the passphrase", tmp_path / "wrong-pass")
    r = alice.ctl("member", "add", "-", check=False, input=text,
                  env={"SCSFS_PASSPHRASE_FILE": str(wrong)})
    refused(r, None, "wrong passphrase")
    assert keyring_entries(group) == ["00000000.entry"], "nothing written without the key"
    r = alice.ctl("member", "add", "-", input=text)
    assert "bob added (keyring entry 1" in r.stdout
    assert sorted(member_rows(alice)) == ["alice", "bob"]
