#!/usr/bin/python3
"""Independent check of the golden vectors against man/scsfs-format.5.

Re-derives everything in inputs.txt and file-70000.obj from the
specification with python-cryptography and pycryptodome (whose AES is not
OpenSSL's).  Not part of CI (it needs python3-cryptography and
python3-pycryptodome); run it by hand after touching the vectors or the spec:

    /usr/bin/python3 test/golden/vectors/cross_check.py
"""
import base64
import hashlib
import os
import struct
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from Cryptodome.Cipher import AES

HERE = os.path.dirname(os.path.abspath(__file__))
CHUNK = 32768


def hkdf(ikm, info, n):
    return HKDF(hashes.SHA256(), n, None, info).derive(ikm)


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def unb64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def main():
    v = {}
    for line in open(os.path.join(HERE, "inputs.txt"), encoding="utf-8"):
        if line.startswith("#") or " = " not in line:
            continue
        k, val = line.rstrip("\n").split(" = ", 1)
        v[k] = val
    hx = lambda k: bytes.fromhex(v[k])
    ek = hx("epoch_key")

    obj = open(os.path.join(HERE, "file-70000.obj"), "rb").read()
    h = obj[:256]
    assert h[:4] == b"SCSF" and struct.unpack(">H", h[4:6])[0] == 1
    epoch, = struct.unpack(">I", h[6:10])
    assert epoch == int(v["epoch"])
    assert h[10:26] == hx("file_id")
    assert struct.unpack(">Q", h[26:34])[0] == int(v["file_version"])
    assert h[34:66] == hx("writer_fpr")
    assert h[158:192] == bytes(34)
    pub = Ed25519PrivateKey.from_private_bytes(hx("writer_seed")).public_key()
    pub.verify(h[192:256], b"scsfs v1 header sig" + h[:192])
    assert hashlib.sha256(obj[256:]).digest() == h[126:158]
    wk = hkdf(ek, b"scsfs v1 file-key wrap", 32)
    fk = AESGCM(wk).decrypt(h[66:78], h[78:110] + h[110:126], h[:66])
    assert fk == hx("file_key")
    body = obj[256:]
    n = (len(body) + CHUNK + 28 - 1) // (CHUNK + 28)
    pt = b""
    for i in range(n):
        rec = body[i * (CHUNK + 28):(i + 1) * (CHUNK + 28)]
        aad = b"scsfs chunk" + h[10:26] + struct.pack(">QB", i, int(i == n - 1))
        pt += AESGCM(fk).decrypt(rec[:12], rec[12:], aad)
    assert pt == bytes((k * 31 + k // 251) & 0xff for k in range(70000))

    nk = hkdf(ek, b"scsfs v1 name key", 64)
    did = hx("dir_id")

    def siv(name):
        c = AES.new(nk, AES.MODE_SIV)
        c.update(did)
        ct, tag = c.encrypt_and_digest(name.encode())
        return b64url(tag + ct)

    assert siv(v["name_plain"]) == v["name_enc"]
    full = siv(v["long_name_plain_char"] * int(v["long_name_len"]))
    assert full == v["long_name_enc"] and len(full) > 220
    assert "L~" + b64url(hashlib.sha256(full.encode()).digest()) == v["long_name_stored"]

    raw = unb64url(v["symlink_enc"][2:])
    assert v["symlink_enc"][:2] == "S1" and raw[:4] == struct.pack(">I", epoch)
    sk = hkdf(ek, b"scsfs v1 symlink key", 32)
    t = AESGCM(sk).decrypt(raw[4:16], raw[16:], b"scsfs symlink" + did + raw[:4])
    assert t.decode() == v["symlink_plain"]

    assert hx("scsdir_obj") == b"SCSD\x00\x01" + did
    assert hashlib.sha256(b"scsfs v1 root dir id" + hx("group_id")).digest()[:16] == hx("root_dir_id")
    print("golden vectors: consistent with the specification")
    return 0


if __name__ == "__main__":
    sys.exit(main())
