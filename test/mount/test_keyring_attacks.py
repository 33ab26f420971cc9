"""Attacks on the keyring by whoever controls the storage (or a member who
can write to it), through the real programs: the test plays the malicious
server by editing .scsfs/keyring in what the provider stores (the group's
backing: the local folder, or under SCSFS_TEST_BACKEND=gdrive the Drive
folder, edited as a malicious Drive would through the emulator).  Every
forged state must be refused by `scsctl status` and by the mount, with the
message naming what is wrong, and the member's pin (high-water mark) must
not move.

Hostile entries are built here from the members' real keys (python3
cryptography, the PKCS#8 files are standard), exactly as scsctl builds them
(scsfs-format(5), KEYRING), so each attack differs from a valid entry in the
one point under test; test_forger_builds_valid_entries shows the same
builder makes entries that verify."""

import base64
import errno
import hashlib
import json
import os
import re
import struct
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from scsmount import (BACKEND, SCSCTL, SCSFS, Group, Vault, eventually, make_user, one_line,
                      refused)

NAMES = ("alice", "bob", "carol", "mallory")

# gdrive: a running mount learns of the server's edits from Drive's changes
# feed: read it every second rather than every 5 s.
FAST = ["-o", "poll=1"] if BACKEND == "gdrive" else []


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    base = tmp_path_factory.mktemp("people")
    return {n: make_user(base / n, n) for n in NAMES}


# ---------------------------------------------------------------- forging

def b64(b):
    return base64.b64encode(b).decode()


def canon(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def seal(payload, ed_key):
    sig = ed_key.sign(b"scsfs v1 keyring entry" + payload)
    return b'{"payload":"' + b64(payload).encode() + b'","sig":"' + b64(sig).encode() + b'"}'


def open_entry(data):
    o = json.loads(data)
    return json.loads(base64.b64decode(o["payload"]))


def private_keys(user):
    """(rsa, ed25519) private keys of a user, from identity.key."""
    text = (user.data_dir / "identity.key").read_text()
    blocks = re.findall(r"-----BEGIN ENCRYPTED PRIVATE KEY-----.*?-----END ENCRYPTED PRIVATE "
                        r"KEY-----", text, re.S)
    rsa, ed = (serialization.load_pem_private_key(b.encode(), user.passphrase.encode())
               for b in blocks)
    return rsa, ed


def member_record(user, role="member"):
    pub = json.loads((user.data_dir / "identity.pub").read_text())
    ed, spki = base64.b64decode(pub["ed25519"]), base64.b64decode(pub["rsa_spki"])
    fpr = hashlib.sha256(b"scsfs v1 member" + struct.pack(">I", len(ed)) + ed +
                         struct.pack(">I", len(spki)) + spki).hexdigest()
    return {"ed25519": pub["ed25519"], "fpr": fpr, "name": pub["name"], "role": role,
            "rsa_spki": pub["rsa_spki"]}


# What the provider stores is reached through a backing (scsmount's
# LocalBacking or DriveBacking, paths relative to the group folder).

KR = ".scsfs/keyring"


def entry_rel(seq):
    return f"{KR}/{seq:08d}.entry"


def entry_names(bk):
    """The entries' names in the keyring, in order (not the snap-* objects,
    nor a second version of an entry)."""
    return [n for n in bk.listdir(KR) if re.fullmatch(r"[0-9]{8}\.entry", n)]


def read_entry(bk, seq):
    return bk.read(entry_rel(seq))


def put_entry(bk, seq, data):
    """The server stores data as entry seq (replacing what is there)."""
    bk.write(entry_rel(seq), data)


def drop_entry(bk, seq):
    bk.remove(entry_rel(seq))


def keyring_of(bk):
    """{name: bytes} of every object in bk's keyring (a view the server keeps)."""
    return {n: bk.read(f"{KR}/{n}") for n in bk.listdir(KR)}


def show_keyring(objs, bk):
    """The server makes bk's keyring hold objs ({name: bytes}) instead, one
    object at a time: snapshots first, then the entries in order (replaced
    in place or added), then the others removed, so that a mount reading
    between two steps sees each entry whole and next to what it names."""
    have = keyring_of(bk)
    for n in sorted(objs, key=lambda n: (not n.startswith("snap-"), n)):
        if have.get(n) != objs[n]:
            bk.write(f"{KR}/{n}", objs[n])
    for n in sorted(set(have) - set(objs), reverse=True):
        bk.remove(f"{KR}/{n}")


def oaep(label):
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=label)


def wrap_label(binding, epoch, fpr):
    return b"scsfs v1 epoch wrap" + binding + struct.pack(">I", epoch) + bytes.fromhex(fpr)


def wrap(rec, binding, epoch, key):
    """key wrapped to member record rec for epoch (base64), as scsctl does."""
    spki = serialization.load_der_public_key(base64.b64decode(rec["rsa_spki"]))
    return b64(spki.encrypt(key, oaep(wrap_label(binding, epoch, rec["fpr"]))))


def hkdf(key, info):
    return HKDF(hashes.SHA256(), 32, None, info).derive(key)


def gcm_seal(key, info, aad, pt):
    """nonce || GCM(HKDF(key, info), nonce, aad, pt)."""
    nonce = os.urandom(12)
    return nonce + AESGCM(hkdf(key, info)).encrypt(nonce, pt, aad)


def new_epoch_fields(gid, epoch, members, key, old_keys):
    """wraps, canary and prev_epochs_box of an entry starting epoch with key."""
    return {"wraps": [{"fpr": m["fpr"], "key": wrap(m, gid, epoch, key)} for m in members],
            "canary": b64(gcm_seal(key, b"scsfs v1 canary", gid + struct.pack(">I", epoch), b"")),
            "prev_epochs_box": b64(gcm_seal(key, b"scsfs v1 prev epochs", b"scsfs v1 prev epochs" +
                                            gid + struct.pack(">I", epoch), b"".join(old_keys)))}


def entries(bk):
    return [open_entry(bk.read(f"{KR}/{n}")) for n in entry_names(bk)]


def binding(p):
    return base64.b64decode(p["nonce"]) if p["kind"] == "genesis" else bytes.fromhex(p["group"])


def epoch_keys(bk, user):
    """[K(1), ..., K(E)] of the keyring in backing bk, unlocked as member
    user does (scsfs-format(5), Epoch keys, wraps, canaries)."""
    es = entries(bk)
    top = es[-1]["epoch"]
    fpr = member_record(user)["fpr"]
    we, w = next((e, w) for e in reversed(es) if e["epoch"] == top
                 for w in e.get("wraps", []) if w["fpr"] == fpr)
    key = private_keys(user)[0].decrypt(base64.b64decode(w["key"]),
                                        oaep(wrap_label(binding(we), top, fpr)))
    if top == 1:
        return [key]
    intro = next(e for e in es if e["epoch"] == top)
    box = base64.b64decode(intro["prev_epochs_box"])
    old = AESGCM(hkdf(key, b"scsfs v1 prev epochs")).decrypt(
        box[:12], box[12:], b"scsfs v1 prev epochs" + bytes.fromhex(intro["group"]) +
        struct.pack(">I", top))
    return [old[i:i + 32] for i in range(0, len(old), 32)] + [key]


def forge_add(bk, signer, newcomer, *, seq=None, group=None, role="member"):
    """An add entry for `newcomer` after the last entry of the keyring in
    backing bk, signed by `signer` (whose fingerprint is its author).
    Returns bytes."""
    names = entry_names(bk)
    last = bk.read(f"{KR}/{names[-1]}")
    lp = open_entry(last)
    gid = hashlib.sha256(bk.read(f"{KR}/{names[0]}")).hexdigest()
    if group is not None:
        gid = group
    rec = member_record(newcomer, role)
    p = {"version": 1, "kind": "add", "seq": lp["seq"] + 1 if seq is None else seq,
         "epoch": lp["epoch"], "author": member_record(signer)["fpr"],
         "created_at": int(time.time()), "group": gid,
         "prev": hashlib.sha256(last).hexdigest(), "subject": rec["fpr"],
         "members": lp["members"] + [rec],
         "wraps": [{"fpr": rec["fpr"], "key": wrap(rec, bytes.fromhex(gid), lp["epoch"], bytes(32))}]}
    return seal(canon(p), private_keys(signer)[1])


# ---------------------------------------------------------------- the group

class AttackGroup(Group):
    """alice's group with bob (member) and carol (admin); alice's and bob's
    machines have seen the whole keyring."""

    def __init__(self, templates, tmp_path):
        super().__init__(templates, tmp_path)
        self.add("alice", "bob")
        self.add("alice", "carol", admin=True)
        for n in ("bob", "carol"):
            self.join(n)
        self.bk = self.backing           # what the provider stores

    def refused_everywhere(self, who, *words):
        """status and the mount of each of who are refused naming one of
        words; their pins do not move.  Returns the status message."""
        line = None
        for n in who:
            u, v = self.users[n], self.vaults[n]
            pin = self.pin(n)
            line = refused(u.ctl("status", check=False), None, *words)
            refused(u.run([SCSFS, v.remote, v.mnt]), v.mnt, *words)
            assert self.pin(n) == pin, f"{n}'s pin moved although the keyring was refused"
        return line


@pytest.fixture
def group(fuse, templates, tmp_path):
    g = AttackGroup(templates, tmp_path)
    yield g
    g.cleanup()


# ---------------------------------------------------------------- tests

def test_forger_builds_valid_entries(group):
    """Control: the forger's entry signed by an admin verifies, so the
    refusals below come from the one point each attack changes."""
    put_entry(group.bk, 3, forge_add(group.bk, group.users["alice"], group.users["mallory"]))
    st = group.users["bob"].ctl("status").stdout
    assert "members: 4" in st
    assert '"seq":3' in group.pin("bob")


def test_entry_with_a_bad_signature(group):
    data = forge_add(group.bk, group.users["alice"], group.users["mallory"])
    o = json.loads(data)
    sig = bytearray(base64.b64decode(o["sig"]))
    sig[10] ^= 1
    put_entry(group.bk, 3, b'{"payload":"' + o["payload"].encode() + b'","sig":"' +
              b64(bytes(sig)).encode() + b'"}')
    line = group.refused_everywhere(("alice", "bob"), "bad signature")
    assert "00000003" in line


def test_payload_changed_after_signing(group):
    """A validly signed add of mallory as a member, edited to make her an
    admin (a change the rules allow, so only the signature stops it)."""
    data = forge_add(group.bk, group.users["alice"], group.users["mallory"])
    o = json.loads(data)
    p = json.loads(base64.b64decode(o["payload"]))
    p["members"][3]["role"] = "admin"
    put_entry(group.bk, 3, b'{"payload":"' + b64(canon(p)).encode() + b'","sig":"' +
              o["sig"].encode() + b'"}')
    group.refused_everywhere(("alice",), "bad signature")


def test_add_signed_by_a_member_who_is_not_an_admin(group):
    """bob is a member, not an admin: his entry adding mallory is refused
    although everything else about it is right."""
    put_entry(group.bk, 3, forge_add(group.bk, group.users["bob"], group.users["mallory"]))
    group.refused_everywhere(("alice", "carol"), "not an admin")


def test_add_made_in_a_copy_where_the_signer_is_admin(group, tmp_path):
    """With the real programs: in a copy of the folder bob is made an admin
    (by a copy of alice), adds mallory there; that entry grafted into the
    real folder (where bob is not an admin) is refused.  (Its number and
    chain give it away as well; the forged entry of the test above isolates
    the admin rule.)"""
    alice2 = group.users["alice"].clone(tmp_path / "home-alice-copy")
    bob2 = group.users["bob"].clone(tmp_path / "home-bob-copy")
    copy = Vault(alice2, tmp_path / "cloud-copy", tmp_path / "mnt-copy")
    group.bk.copy_to(copy.backing)       # (gdrive: another Drive folder)
    idf = tmp_path / "bob.id"
    idf.write_text(bob2.ctl("id", "export").stdout)
    alice2.ctl("member", "remove", "bob", "--remote", copy.remote)
    alice2.ctl("member", "add", idf, "--admin", "--remote", copy.remote)
    idm = tmp_path / "mallory.id"
    idm.write_text(group.users["mallory"].ctl("id", "export").stdout)
    bob2.ctl("member", "add", idm, "--remote", copy.remote)
    # bob's entry in the copy is entry 5; graft it into the real folder at 3.
    grafted = read_entry(copy.backing, 5)
    assert open_entry(grafted)["author"] == member_record(group.users["bob"])["fpr"]
    put_entry(group.bk, 3, grafted)
    group.refused_everywhere(("alice",), "claims to be entry", "not an admin", "does not follow")


def test_add_signed_by_a_removed_admin(group):
    alice = group.users["alice"]
    alice.ctl("member", "remove", "carol")
    put_entry(group.bk, 4, forge_add(group.bk, group.users["carol"], group.users["mallory"]))
    group.refused_everywhere(("alice", "bob"), "not an admin")


def test_removal_rolled_back(group):
    """alice removes bob; the server deletes that entry to let bob back in.
    alice's machine has seen it: refused as a rollback."""
    alice = group.users["alice"]
    alice.ctl("member", "remove", "bob")
    assert '"seq":3' in group.pin("alice")
    drop_entry(group.bk, 3)
    line = group.refused_everywhere(("alice",), "rolled back")
    assert "entry 2" in line and "entry 3" in line


def test_keyring_truncated_further(group):
    drop_entry(group.bk, 2)
    group.refused_everywhere(("alice", "bob"), "rolled back")


def test_two_entries_for_one_number(group):
    """Two valid entries 3 (two admins, or a sync client's conflict copy):
    the keyring is forked and refused.  On Drive also the way two admins
    there would leave it: two objects of the one name 00000003.entry."""
    by_carol = forge_add(group.bk, group.users["carol"], group.users["mallory"])
    put_entry(group.bk, 3, forge_add(group.bk, group.users["alice"], group.users["mallory"]))
    group.bk.write(f"{KR}/00000003 (1).entry", by_carol)
    group.refused_everywhere(("alice", "bob"), "forked")
    if BACKEND == "gdrive":
        group.bk.remove(f"{KR}/00000003 (1).entry")
        assert "members: 4" in group.users["alice"].ctl("status").stdout
        group.bk._control(action="insert", name="00000003.entry", content_b64=b64(by_carol),
                          parents=[group.bk._walk()[KR][0]])
        line = group.refused_everywhere(("alice", "bob"), "forked")
        assert "00000003.entry (duplicate " in line, line


def test_entry_replaced_after_it_was_seen(group):
    """A fork shown to two clients: alice saw entry 3 (adding mallory as a
    member); the server later shows a different, validly signed entry 3
    (mallory as an admin)."""
    put_entry(group.bk, 3, forge_add(group.bk, group.users["alice"], group.users["mallory"]))
    group.users["alice"].ctl("status")
    drop_entry(group.bk, 3)               # (another object takes its place)
    put_entry(group.bk, 3, forge_add(group.bk, group.users["carol"], group.users["mallory"],
                                     role="admin"))
    group.refused_everywhere(("alice",), "fork", "rewritten")


def test_entry_from_another_group(group, tmp_path):
    """alice's own entry from another group she runs, put in as entry 3."""
    alice2 = group.users["alice"].clone(tmp_path / "home-alice-other")
    other = Vault(alice2, tmp_path / "other", tmp_path / "mnt-other").make_folder()
    alice2.ctl("init", other.remote)
    for n in ("bob", "carol"):
        idf = tmp_path / f"{n}.id"
        idf.write_text(group.users[n].ctl("id", "export").stdout)
        alice2.ctl("member", "add", idf)
    idm = tmp_path / "mallory.id"
    idm.write_text(group.users["mallory"].ctl("id", "export").stdout)
    alice2.ctl("member", "add", idm)
    put_entry(group.bk, 3, read_entry(other.backing, 3))
    group.refused_everywhere(("alice", "bob"), "another group", "does not follow")


def test_entry_naming_another_group_but_chained(group):
    """The same with the chain right (prev = our entry 2) and only the group
    id foreign: refused by the group id alone."""
    put_entry(group.bk, 3, forge_add(group.bk, group.users["alice"], group.users["mallory"],
                                     group="ab" * 32))
    group.refused_everywhere(("alice", "bob"), "another group")


def test_refused_keyring_is_accepted_again_once_repaired(group):
    """A refusal keeps the last good state: removing the forged entry makes
    the group usable again, nothing was lost."""
    good = group.pin("alice")
    put_entry(group.bk, 3, forge_add(group.bk, group.users["bob"], group.users["mallory"]))
    group.refused_everywhere(("alice",), "not an admin")
    drop_entry(group.bk, 3)
    assert "members: 3" in group.users["alice"].ctl("status").stdout
    assert group.pin("alice") == good


def forge_payload(bk, signer, change):
    """A payload after the last entry of bk's keyring, made by signer,
    edited by change(p)."""
    names = entry_names(bk)
    last = bk.read(f"{KR}/{names[-1]}")
    lp = open_entry(last)
    p = {"version": 1, "seq": lp["seq"] + 1, "epoch": lp["epoch"],
         "author": member_record(signer)["fpr"], "created_at": int(time.time()),
         "group": hashlib.sha256(bk.read(f"{KR}/{names[0]}")).hexdigest(),
         "prev": hashlib.sha256(last).hexdigest(), "members": lp["members"]}
    change(p)
    return seal(canon(p), private_keys(signer)[1])


def test_member_key_swapped(group):
    """An admin-signed add whose member list puts mallory's keys under
    carol's name and fingerprint: refused (other members changed)."""
    mal = member_record(group.users["mallory"])
    data = forge_add(group.bk, group.users["alice"], group.users["mallory"])
    o = json.loads(data)
    p = json.loads(base64.b64decode(o["payload"]))
    p["members"][2]["ed25519"] = mal["ed25519"]
    p["members"][2]["rsa_spki"] = mal["rsa_spki"]
    _, ed = private_keys(group.users["alice"])
    put_entry(group.bk, 3, seal(canon(p), ed))
    group.refused_everywhere(("alice", "bob"), "changes other members")


def test_gap_in_sequence(group):
    data = forge_add(group.bk, group.users["alice"], group.users["mallory"], seq=4)
    put_entry(group.bk, 4, data)
    group.refused_everywhere(("alice", "bob"), "missing")


def test_removal_without_a_new_epoch(group):
    """A remove entry that keeps the epoch (so the removed member keeps the
    current key): refused, removal always rotates."""
    bob = member_record(group.users["bob"])

    def change(p):
        p.update(kind="remove", subject=bob["fpr"],
                 members=[m for m in p["members"] if m["fpr"] != bob["fpr"]],
                 wraps=[{"fpr": m["fpr"], "key": b64(bytes(384))} for m in p["members"]
                        if m["fpr"] != bob["fpr"]],
                 canary=b64(bytes(28)), prev_epochs_box=b64(bytes(12 + 16)))
    put_entry(group.bk, 3, forge_payload(group.bk, group.users["alice"], change))
    group.refused_everywhere(("alice",), "epoch must rise")


def test_downgraded_version_and_unsigned_entry(group):
    def v0(p):
        p.update(kind="add", version=0)
    put_entry(group.bk, 3, forge_payload(group.bk, group.users["alice"], v0))
    group.refused_everywhere(("alice",), "unsupported keyring entry version")
    data = forge_add(group.bk, group.users["alice"], group.users["mallory"])
    unsigned = data[:data.index(b',"sig"')] + b"}"
    put_entry(group.bk, 3, unsigned)
    group.refused_everywhere(("alice", "bob"), "malformed")


# ------------------------------------------ a removed member writing with a cached old key

def snapshots(bk):
    """The snapshot objects of bk's keyring (their paths in bk)."""
    return [f"{KR}/{n}" for n in bk.listdir(KR) if n.startswith("snap-")]


def bob_writes_after_removal(group):
    """bob writes bob-before.txt while a member; bob's mount keeps its
    keyring for an hour (-o keyring_refresh=3600), so after alice removes
    him it still holds the epoch-1 key and his signing key: through it he
    rewrites alice.txt and creates forged.txt, both signed by him in epoch
    1.  Returns the contents alice wrote and bob wrote before."""
    va, vb = group.vaults["alice"], group.vaults["bob"]
    alice_data, bob_data = b"alice's words\n" * 100, b"bob, still a member\n" * 50
    va.mount(args=["-o", "norekey"])
    try:
        va.path("alice.txt").write_bytes(alice_data)
    finally:
        va.unmount()
    vb.mount(args=["-o", "keyring_refresh=3600"])
    try:
        vb.path("bob-before.txt").write_bytes(bob_data)
        assert vb.path("alice.txt").read_bytes() == alice_data
        vb.uploaded()                    # (gdrive: the removal's snapshot lists it)
        r = group.users["alice"].ctl("member", "remove", "bob")
        assert "the 1 files bob wrote so far stay accepted" in r.stdout, r.stdout
        # bob's mount has not looked at the keyring again: he writes on.
        with open(vb.path("alice.txt"), "r+b") as f:
            f.write(b"BOB WAS HERE ")
        vb.path("forged.txt").write_bytes(b"planted after the removal\n")
    finally:
        vb.unmount()
    return alice_data, bob_data


def test_removed_member_writing_with_a_cached_key_is_refused(group):
    alice = group.users["alice"]
    va = group.vaults["alice"]
    alice_data, bob_data = bob_writes_after_removal(group)
    p = open_entry(read_entry(group.bk, 3))
    assert (p["kind"], p["subject"], p["snapshot_files"]) == \
        ("remove", member_record(group.users["bob"])["fpr"], 1)
    (snap,) = snapshots(group.bk)
    assert snap == f"{KR}/snap-" + base64.b64decode(p["snapshot"]).hex()
    data = group.bk.read(snap)
    assert f"{KR}/snap-" + hashlib.sha256(data).hexdigest() == snap
    assert len(data) == 76 + 48, "one file listed: bob-before.txt"

    va.mount(foreground=True, args=["-o", "norekey"])
    try:
        for name in ("alice.txt", "forged.txt"):
            with pytest.raises(OSError) as e:
                va.path(name).read_bytes()
            assert e.value.errno == errno.EACCES, name
            assert re.search(rf"{name}: written by bob after bob was removed from the group "
                             r"\(keyring entry 3\); refusing it", va.log()), va.log()
        # What bob wrote while he was a member stays readable.
        assert va.path("bob-before.txt").read_bytes() == bob_data
    finally:
        va.unmount()
    r = alice.ctl("verify", check=False)
    assert r.returncode == 1
    for name in ("alice.txt", "forged.txt"):
        assert re.search(rf"{name}: written by bob after bob was removed from the group "
                         r"\(keyring entry 3\)", r.stdout), r.stdout
    assert "bob-before.txt" not in r.stdout

    # The re-key pass never re-signs the forgeries (that would launder
    # them), says so, and still retires epoch 1.
    r = alice.ctl("rekey", "run")
    assert "left 2 files written by a removed member after their removal" in r.stdout, r.stdout
    assert "epochs below 2 are retired" in r.stdout
    assert "rekey: /alice.txt: written by bob after bob was removed" in r.stderr or \
        "alice.txt: written by bob after bob was removed" in r.stderr, r.stderr
    log = alice.ctl("log").stdout.splitlines()
    assert " retire " in log[-1], log[-1]
    st = alice.ctl("rekey", "status").stdout
    assert "re-key: done; 2 files still claim a retired epoch and are refused" in st, st
    assert "re-key: done" in alice.ctl("rekey", "wait", "--timeout", "0").stdout
    va.mount(foreground=True, args=["-o", "norekey"])
    try:
        assert va.path("bob-before.txt").read_bytes() == bob_data
        for name in ("alice.txt", "forged.txt"):
            assert name not in os.listdir(va.path()), "an epoch-1 name is listed after retirement"
    finally:
        va.unmount()


def test_removal_snapshot_deleted_tampered_or_swapped(group):
    """The snapshot a remove entry names is part of the keyring: without
    it, or with other bytes under its name, the keyring is refused."""
    alice = group.users["alice"]
    alice.ctl("member", "remove", "bob")
    bk = group.bk
    (snap,) = snapshots(bk)
    good = bk.read(snap)

    bk.remove(snap)
    line = group.refused_everywhere(("alice",), "snapshot")
    assert "keyring entry 00000003" in line and "missing" in line, line
    bk.write(snap, good)
    assert "members: 2" in alice.ctl("status").stdout

    bad = bytearray(good)
    bad[-1] ^= 1
    bk.write(snap, bytes(bad))
    line = group.refused_everywhere(("alice",), "snapshot")
    assert "does not match its hash" in line, line

    # Swapped: another valid snapshot (carol's removal) under bob's name.
    bk.write(snap, good)
    alice.ctl("member", "remove", "carol")
    (other,) = [s for s in snapshots(bk) if s != snap]
    bk.write(snap, bk.read(other))
    line = group.refused_everywhere(("alice",), "snapshot")
    assert "keyring entry 00000003" in line and "does not match its hash" in line, line
    bk.write(snap, good)
    assert "members: 1" in alice.ctl("status").stdout


def test_crash_between_snapshot_and_entry(group):
    """scsctl killed after storing the snapshot, before the entry: nothing
    changed for the group; run again, it ends as an uninterrupted removal."""
    alice = group.users["alice"]
    bob_writes_before = group.vaults["bob"]
    bob_writes_before.mount()
    try:
        bob_writes_before.path("b.txt").write_bytes(b"b" * 3000)
    finally:
        bob_writes_before.unmount()
    r = alice.run([SCSCTL, "member", "remove", "bob"], env={"SCSFS_REMOVE_STOP": "snapshot"})
    assert r.returncode == 9, r.stderr
    (snap,) = snapshots(group.bk)
    assert not group.bk.exists(entry_rel(3))
    st = alice.ctl("status").stdout
    assert "members: 3" in st and "epoch: 1" in st, st
    assert "members: 3" in group.users["bob"].ctl("status").stdout

    alice.ctl("member", "remove", "bob")
    assert snapshots(group.bk) == [snap], "a retried removal makes the same snapshot"
    p = open_entry(read_entry(group.bk, 3))
    assert f"{KR}/snap-" + base64.b64decode(p["snapshot"]).hex() == snap
    assert p["snapshot_files"] == 1
    st = alice.ctl("status").stdout
    assert "members: 2" in st and "epoch: 2" in st, st


def test_snapshot_lists_only_headers_bob_signed(group):
    """The storage puts bob's fingerprint into the header of a file alice
    wrote before the removal: the snapshot must not list it (else bob
    could sign that content_hash later and have it accepted)."""
    alice, va = group.users["alice"], group.vaults["alice"]
    vb = group.vaults["bob"]
    va.mount(args=["-o", "norekey"])
    try:
        va.path("alice.txt").write_bytes(b"a" * 7001)
    finally:
        va.unmount()
    vb.mount(args=["-o", "norekey"])
    try:
        vb.path("bob.txt").write_bytes(b"b" * 7002)
    finally:
        vb.unmount()
    bk = group.bk
    obj = bk.find(7001)
    data = bytearray(bk.read(obj))
    data[34:66] = bytes.fromhex(member_record(group.users["bob"])["fpr"])
    bk.write(obj, bytes(data))
    r = alice.ctl("member", "remove", "bob")
    assert "the 1 files bob wrote so far" in r.stdout, r.stdout
    (snap,) = snapshots(bk)
    recs = bk.read(snap)[76:]
    assert len(recs) == 48
    h = bk.read(bk.find(7002))[:256]
    assert recs == h[10:26] + h[126:158], "the record is bob's own file"


def test_wraps_swapped_between_members_or_of_another_key(group):
    """An admin-signed removal whose epoch-key wraps are rearranged: bob's
    and carol's wraps swapped (each wrap's OAEP label names its member and
    epoch, so neither opens the other's), or carol's wrap holding some other
    key correctly labelled for her (the key canary does not match).  The
    member's mount is refused with the reason.  (The entries are re-signed
    with alice's key so that only the wrap and canary checks stand between
    them and acceptance; `scsctl status` needs no key and does not look.)"""
    alice = group.users["alice"]
    group.add("alice", "mallory")
    alice.ctl("member", "remove", "mallory", "--lazy")
    path = f"{KR}/{entry_names(group.bk)[-1]}"
    p = open_entry(group.bk.read(path))
    assert p["kind"] == "remove"
    fprs = {n: member_record(group.users[n])["fpr"] for n in ("bob", "carol")}
    _, ed = private_keys(alice)

    def rewrite(change):
        q = json.loads(json.dumps(p))
        change(q)
        group.bk.write(path, seal(canon(q), ed))

    def mount_refused(name, *words):
        u, v = group.users[name], group.vaults[name]
        return refused(u.run([SCSFS, v.remote, v.mnt]), v.mnt, *words)

    def swap(q):
        w = {x["fpr"]: x for x in q["wraps"]}
        w[fprs["bob"]]["key"], w[fprs["carol"]]["key"] = w[fprs["carol"]]["key"], w[fprs["bob"]]["key"]
    rewrite(swap)
    mount_refused("bob", "wrapped to you")

    def other_key(q):
        rec = member_record(group.users["carol"])
        for x in q["wraps"]:
            if x["fpr"] == rec["fpr"]:
                x["key"] = wrap(rec, bytes.fromhex(q["group"]), q["epoch"], os.urandom(32))
    rewrite(other_key)
    mount_refused("carol", "canary")


# ------------------------------------------------ epochs that jump or move

def forge_removal(bk, signer, removed, old_keys, epoch=None):
    """A remove entry of `removed` signed by signer, exactly as scsctl
    builds one (without a snapshot): a fresh key for `epoch` (default: one
    more) wrapped to every remaining member, its canary, and old_keys boxed
    under it.  Returns the entry bytes."""
    fpr = member_record(removed)["fpr"]

    def change(p):
        e = p["epoch"] + 1 if epoch is None else epoch
        members = [m for m in p["members"] if m["fpr"] != fpr]
        p.update(kind="remove", subject=fpr, epoch=e, members=members,
                 **new_epoch_fields(bytes.fromhex(p["group"]), e, members, os.urandom(32),
                                    old_keys))
    return forge_payload(bk, signer, change)


def test_removal_that_skips_an_epoch(group):
    """alice's signed removal of bob starting epoch 3 straight after epoch 1
    (a complete new epoch otherwise: wraps, canary and a box of two older
    keys): refused, the epoch rises by exactly one.  The same entry with
    epoch 2 is accepted and mounts, so the epoch alone was refused."""
    k1 = epoch_keys(group.bk, group.users["alice"])
    assert len(k1) == 1
    bob = group.users["bob"]
    put_entry(group.bk, 3, forge_removal(group.bk, group.users["alice"], bob,
                                         k1 + [os.urandom(32)], epoch=3))
    line = group.refused_everywhere(("alice", "carol"), "epoch must rise by exactly one")
    assert "remove entry 3" in line, line

    drop_entry(group.bk, 3)
    put_entry(group.bk, 3, forge_removal(group.bk, group.users["alice"], bob, k1))
    st = group.users["carol"].ctl("status").stdout
    assert "epoch: 2" in st and "members: 2" in st, st
    va = group.vaults["alice"]
    va.mount(args=["-o", "norekey"])
    va.unmount()


def test_add_that_changes_the_epoch(group):
    """alice's signed add of mallory that also moves the group to epoch 2
    (her wrap labelled for epoch 2): refused, only a new-epoch entry
    (genesis, remove, rotate) may change the epoch."""
    k1 = epoch_keys(group.bk, group.users["alice"])
    rec = member_record(group.users["mallory"])

    def change(p):
        e = p["epoch"] + 1
        p.update(kind="add", epoch=e, subject=rec["fpr"], members=p["members"] + [rec],
                 wraps=[{"fpr": rec["fpr"], "key": wrap(rec, bytes.fromhex(p["group"]), e, k1[0])}])
    put_entry(group.bk, 3, forge_payload(group.bk, group.users["alice"], change))
    line = group.refused_everywhere(("alice", "bob"), "the epoch must not change")
    assert "add entry 3" in line, line


# ---------------------------------------------- a wrap from another epoch

def test_wrap_from_another_epoch(group):
    """After alice removes carol (entry 3 starts epoch 2), bob's wrap in
    entry 3 is replaced (and the entry re-signed by alice, so only the wrap
    checks stand in the way) by
      - bob's genuine wrap of epoch 1's key from entry 1, which let him in:
        its OAEP label names epoch 1, so it does not open as epoch 2's;
      - epoch 1's key wrapped to bob and labelled for epoch 2 (what an
        admin who kept K(1) could write): it opens, but fails the canary
        of epoch 2.
    bob's mount and `scsctl verify` (which unlock the keys) are refused with
    the reason.  (`scsctl status` reads only the public keyring and cannot
    see a wrap: it is not asked here.)"""
    alice, bob = group.users["alice"], group.users["bob"]
    alice.ctl("member", "remove", "carol")
    bob_rec = member_record(bob)
    p1, p3 = open_entry(read_entry(group.bk, 1)), open_entry(read_entry(group.bk, 3))
    assert (p1["kind"], p1["subject"], p1["epoch"]) == ("add", bob_rec["fpr"], 1)
    assert (p3["kind"], p3["epoch"]) == ("remove", 2)
    (pinfile,) = (bob.data_dir / "groups").glob("*.json")
    bob_pin = pinfile.read_bytes()
    _, ed = private_keys(alice)
    vb = group.vaults["bob"]

    def bob_refused(key, *words):
        q = json.loads(json.dumps(p3))
        for w in q["wraps"]:
            if w["fpr"] == bob_rec["fpr"]:
                w["key"] = key
        put_entry(group.bk, 3, seal(canon(q), ed))
        # bob may pin the re-signed entry (it verifies); each variant starts
        # from his pin before entry 3.
        pinfile.write_bytes(bob_pin)
        line = refused(bob.run([SCSFS, vb.remote, vb.mnt]), vb.mnt, *words)
        r = bob.ctl("verify", check=False)
        assert r.returncode != 0 and not r.stdout, (r.stdout, r.stderr)
        assert one_line(r.stderr).split(": ", 1)[1] == line.split(": ", 1)[1], (line, r.stderr)
        return line

    line = bob_refused(p1["wraps"][0]["key"], "the epoch 2 key wrapped to you in keyring entry 3 "
                       "does not open")
    assert "canary" not in line, line
    keys = epoch_keys(group.bk, alice)
    assert len(keys) == 2
    bob_refused(wrap(bob_rec, bytes.fromhex(p3["group"]), 2, keys[0]),
                "the epoch 2 key fails its canary (keyring entry 3 wraps a wrong key)")


# ------------------------------------------ a file header's format version

HEADER_WRAP_INFO = b"scsfs v1 file-key wrap"


def reseal_header(bk, obj, user, version):
    """Rewrite the header of object obj of backing bk (written by user) with
    another format version, as user could: the file key re-wrapped under the
    new header bytes (its AAD) and the header re-signed, so that nothing but
    the version is wrong (scsfs-format(5), Header)."""
    data = bytearray(bk.read(obj))
    epoch = struct.unpack(">I", data[6:10])[0]
    assert data[34:66] == bytes.fromhex(member_record(user)["fpr"])
    gcm = AESGCM(hkdf(epoch_keys(bk, user)[epoch - 1], HEADER_WRAP_INFO))
    file_key = gcm.decrypt(bytes(data[66:78]), bytes(data[78:126]), bytes(data[:66]))
    data[4:6] = struct.pack(">H", version)
    data[78:126] = gcm.encrypt(bytes(data[66:78]), file_key, bytes(data[:66]))
    data[192:256] = private_keys(user)[1].sign(b"scsfs v1 header sig" + bytes(data[:192]))
    bk.write(obj, bytes(data))


@pytest.mark.parametrize("version", [0, 2], ids=["downgraded", "newer"])
def test_file_header_of_another_format_version(vault, version):
    """The server edits the version field of one file's header (the
    signature and the key wrap's AAD cover it), and a member rewrites
    another's header with that version and everything else valid (re-wrapped
    and re-signed).  Both read as EIO through the mount, with one log line
    each naming the file and the header, and `scsctl verify` lists both as
    damaged.  A header re-sealed the same way at version 1 reads back: the
    version alone is refused."""
    files = {"edited.bin": os.urandom(5001), "forged.bin": os.urandom(5002),
             "control.bin": os.urandom(5003), "fine.txt": b"untouched\n"}
    vault.mount(args=["-o", "norekey"])
    try:
        for name, data in files.items():
            vault.path(name).write_bytes(data)
    finally:
        vault.unmount()
    bk = vault.backing
    edited = bk.find(5001)
    data = bytearray(bk.read(edited))
    assert struct.unpack(">H", data[4:6]) == (1,)
    data[4:6] = struct.pack(">H", version)
    bk.write(edited, bytes(data))
    reseal_header(bk, bk.find(5002), vault.user, version)
    reseal_header(bk, bk.find(5003), vault.user, 1)

    vault.mount(foreground=True, args=["-o", "norekey"])
    try:
        for name in ("edited.bin", "forged.bin"):
            try:
                vault.path(name).read_bytes()
            except OSError as e:
                assert e.errno == errno.EIO, (name, e)
            else:
                pytest.fail(f"{name} was read although its header has format version {version}")
        for name in ("control.bin", "fine.txt"):
            assert vault.path(name).read_bytes() == files[name], name
        log = vault.log()
    finally:
        vault.unmount()
    for name in ("edited.bin", "forged.bin"):
        lines = [l for l in log.splitlines() if name in l]
        assert len(lines) == 1 and "header" in lines[0], (name, log)
        # a newer version says what to do (upgrade) but not that it is fine
        assert ("newer format version" in lines[0]) == (version > 1), lines[0]
    assert "control.bin" not in log and "fine.txt" not in log, log
    r = vault.user.ctl("verify", check=False)
    assert r.returncode == 1, (r.stdout, r.stderr)
    for name in ("edited.bin", "forged.bin"):
        assert re.search(rf"^DAMAGED /{name}: .*header", r.stdout, re.M), r.stdout
    assert "control.bin" not in r.stdout and "fine.txt" not in r.stdout, r.stdout


# ------------------------------------------------------------ split view

def test_split_view_is_refused_once_the_views_meet(group, tmp_path):
    """Two different heads shown to two clients (a fork attack).

    The server keeps two diverging keyrings of one group.  View A (the real
    folder): alice removes carol (entry 3), then adds mallory (entry 4).
    View B (a copy that hides the removal): carol, still an admin there,
    adds mallory (a different, validly signed entry 3) and later removes
    alice (entry 4).  alice is pinned on A; bob on B, where his mount runs
    and he writes a file.  Then the server tries to bring them back to one
    view: bob's running mount is shown A, bob (scsctl and a new mount) is
    shown A, alice is shown B.  Every time the client refuses, saying the
    keyring was rewritten (a fork), and keeps its last good state: its pin
    does not move, its own view still works, and bob's mount still reads
    what he wrote.

    What this guarantees is fork consistency: once the server has shown two
    clients diverging entries, it can never again show either of them a
    keyring holding the other's branch (nor one shorter than what they saw:
    a rollback), so it must keep them apart for good, their changes can no
    longer meet, and any contact between the two views exposes the fork.
    What it does not guarantee: a client that is never shown the other
    branch cannot tell.  While bob only ever sees B, nothing in the folder
    tells him carol was removed (below, his status on B is clean and counts
    carol and mallory); likewise a server that merely withholds new entries
    (keeps bob at entry 2) is not detected.  Only comparing the membership
    history out of band (`scsctl log` on both machines) reveals the split."""
    alice, bob, carol = group.users["alice"], group.users["bob"], group.users["carol"]
    vb = Vault(bob, tmp_path / "cloud-B", tmp_path / "mnt-bob-B")
    view_b = vb.backing
    group.bk.copy_to(view_b)             # (gdrive: another Drive folder)
    alice.ctl("member", "remove", "carol")
    alice.ctl("member", "add", group.idfile("mallory"))
    carol.ctl("member", "add", group.idfile("mallory"), "--remote", vb.remote)
    a, b = open_entry(read_entry(group.bk, 3)), open_entry(read_entry(view_b, 3))
    assert (a["kind"], b["kind"], b["author"]) == ("remove", "add", member_record(carol)["fpr"])

    # bob on B: everything looks fine (the known limit), his mount works.
    st = bob.ctl("status", vb.remote).stdout
    assert "members: 4" in st and "epoch: 1" in st, st
    pins = {"alice": group.pin("alice"), "bob": group.pin("bob")}
    assert '"seq":4' in pins["alice"] and '"seq":3' in pins["bob"]
    vb.mount(foreground=True, args=["-o", "keyring_refresh=0.2", "-o", "norekey", *FAST])
    try:
        vb.path("bob.txt").write_bytes(b"written on view B\n")
        vb.uploaded()
        # The server reconciles bob's running mount to view A.
        kr_b = keyring_of(view_b)
        show_keyring(keyring_of(group.bk), view_b)
        eventually(lambda: re.search(r"keyring: the keyring (was rewritten: entry 3 differs from "
                                     r"the one this machine saw before \(a fork\)|changed under "
                                     r"this mount in a way that rewrites history \(entry 3 "
                                     r"differs\))", vb.log()),
                   what="the mount refusing view A")
        assert vb.path("bob.txt").read_bytes() == b"written on view B\n"
        assert group.pin("bob") == pins["bob"], "bob's pin moved to view A"
    finally:
        vb.unmount()
    show_keyring(kr_b, view_b)
    carol.ctl("member", "remove", "alice", "--lazy", "--remote", vb.remote)

    # New clients: bob shown A, alice shown B (each as long as what they saw).
    line = group.refused_everywhere(("bob",), "rewritten")
    assert "entry 3 differs" in line and "fork" in line, line
    va_b = Vault(alice, vb.cloud, tmp_path / "mnt-alice-B")
    line = refused(alice.ctl("status", va_b.remote, check=False), None, "rewritten")
    assert "entry 4 differs" in line and "fork" in line, line
    refused(alice.run([SCSFS, va_b.remote, va_b.mnt]), va_b.mnt, "rewritten")
    assert (group.pin("alice"), group.pin("bob")) == (pins["alice"], pins["bob"])
    # Each keeps its last good state, and its own view goes on.
    assert "members: 3" in alice.ctl("status").stdout
    st = bob.ctl("status", vb.remote).stdout
    assert "members: 3" in st and "epoch: 2" in st, st
