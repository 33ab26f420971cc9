"""Tests of test/gdrive_emulator.py against the behaviour documented in
shared/reference/drive-v3.md (section 6) and test/emulator/README.md.

Run: /usr/bin/python3 -m pytest test/emulator -q
"""

import base64
import hashlib
import http.client
import json
import os
import secrets
import socket
import time
import urllib.parse

import pytest

from emulator_util import Emulator, wait_for

FOLDER = "application/vnd.google-apps.folder"
DRIVE = "https://www.googleapis.com/auth/drive"
DRIVE_FILE = "https://www.googleapis.com/auth/drive.file"
KIB256 = 256 * 1024


@pytest.fixture(scope="module")
def emu(tmp_path_factory):
    e = Emulator.start(tmp_path_factory.mktemp("drive"))
    yield e
    err = e.stop()
    assert "Traceback" not in err, err


@pytest.fixture(autouse=True)
def _reset(emu):
    emu.control(action="reset")
    yield


@pytest.fixture
def c(emu):
    cl = emu.client(emu.token())
    yield cl
    cl.close()


def mkfolder(c, name, parent=None):
    body = {"name": name, "mimeType": FOLDER}
    if parent:
        body["parents"] = [parent]
    r = c.post("/drive/v3/files", body)
    assert r.status == 200, r
    return r.json()["id"]


def upload(c, name, data, parent=None, fields="id,name,size,md5Checksum,version"):
    meta = {"name": name}
    if parent:
        meta["parents"] = [parent]
    body, ctype = multipart(meta, data)
    r = c.post("/upload/drive/v3/files", body, headers={"Content-Type": ctype},
               query={"uploadType": "multipart", "fields": fields})
    assert r.status == 200, r
    return r.json()


def multipart(meta, data, mime="application/octet-stream", boundary="emu_b0undary"):
    body = (b"--" + boundary.encode() + b"\r\nContent-Type: application/json; charset=UTF-8"
            b"\r\n\r\n" + json.dumps(meta).encode() + b"\r\n--" + boundary.encode() +
            b"\r\nContent-Type: " + mime.encode() + b"\r\n\r\n" + data + b"\r\n--" +
            boundary.encode() + b"--\r\n")
    return body, "multipart/related; boundary=" + boundary


def list_names(c, q, **extra):
    r = c.get("/drive/v3/files", query=dict({"q": q, "fields": "nextPageToken,files(name)",
                                              "pageSize": 1000}, **extra))
    assert r.status == 200, r
    return sorted(f["name"] for f in r.json()["files"])


def assert_error(r, status, reason=None):
    assert r.status == status, r
    err = r.json()["error"]
    assert err["code"] == status
    if reason:
        assert err["errors"][0]["reason"] == reason, err


# ------------------------------------------------------------------ start-up, HTTP

def test_startup_line_and_loopback_only(emu):
    assert emu.port > 0
    # Bound to 127.0.0.1 only: the wildcard address of another interface is not served.
    with socket.create_connection(("127.0.0.1", emu.port), timeout=2):
        pass


def test_keepalive_chunked_and_expect_continue(emu, c):
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=10)
    auth = {"Authorization": "Bearer " + c.token}
    # An error answered before the body was used must not desynchronise the connection.
    conn.request("POST", "/drive/v3/files", body=b'{"name": 1}',
                 headers=dict(auth, **{"Content-Type": "application/json"}))
    r = conn.getresponse()
    assert r.status == 400 and r.read()
    sock_before = conn.sock
    # Chunked request body, as curl sends for unknown-length uploads.
    conn.putrequest("POST", "/upload/drive/v3/files?uploadType=media&fields=size,md5Checksum")
    conn.putheader("Authorization", auth["Authorization"])
    conn.putheader("Transfer-Encoding", "chunked")
    conn.putheader("Content-Type", "text/plain")
    conn.endheaders()
    for part in (b"hello ", b"chunked ", b"world"):
        conn.send(b"%x\r\n%s\r\n" % (len(part), part))
    conn.send(b"0\r\n\r\n")
    r = conn.getresponse()
    meta = json.loads(r.read())
    assert r.status == 200
    assert meta == {"size": "19", "md5Checksum": hashlib.md5(b"hello chunked world").hexdigest()}
    assert conn.sock is sock_before  # same TCP connection
    conn.close()
    # Expect: 100-continue gets an interim 100 before the body is sent.
    s = socket.create_connection(("127.0.0.1", emu.port), timeout=5)
    s.sendall(b"POST /upload/drive/v3/files?uploadType=media HTTP/1.1\r\nHost: x\r\n"
              b"Authorization: " + auth["Authorization"].encode() + b"\r\n"
              b"Content-Length: 3\r\nExpect: 100-continue\r\n\r\n")
    assert s.recv(100).startswith(b"HTTP/1.1 100")
    s.sendall(b"abc")
    assert b"200 OK" in s.recv(4096)
    s.close()


# ------------------------------------------------------------------ auth

def test_bearer_required_and_error_body(emu):
    cl = emu.client()
    r = cl.get("/drive/v3/files")
    assert_error(r, 401, "authError")
    err = r.json()["error"]["errors"][0]
    assert err["location"] == "Authorization" and err["locationType"] == "header"
    assert err["message"] == "Invalid Credentials"
    assert cl.get("/drive/v3/files", headers={"Authorization": "Bearer nope"}).status == 401
    assert cl.get("/drive/v3/files", headers={"Authorization": "Basic eA=="}).status == 401


def test_token_expiry_lifetime_and_control(emu):
    emu.control(action="set", token_lifetime=60)
    tok = emu.control(action="issue_token")
    assert tok["expires_in"] == 60
    cl = emu.client(tok["access_token"])
    assert cl.get("/drive/v3/files").status == 200
    emu.control(action="advance_clock", seconds=61)
    assert cl.get("/drive/v3/files").status == 401
    emu.control(action="reset")
    tok = emu.control(action="issue_token")
    cl = emu.client(tok["access_token"])
    assert cl.get("/drive/v3/files").status == 200
    emu.control(action="expire_tokens")
    assert_error(cl.get("/drive/v3/files"), 401, "authError")
    # The refresh token still works and its access token is accepted.
    r = cl.post("/token", urllib.parse.urlencode({
        "grant_type": "refresh_token", "refresh_token": tok["refresh_token"],
        "client_id": "emulator-test-client", "client_secret": "x"}).encode(), auth=False,
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 200, r
    new = r.json()
    assert new["token_type"] == "Bearer" and "refresh_token" not in new
    assert emu.client(new["access_token"]).get("/drive/v3/files").status == 200
    # Revoked refresh tokens give invalid_grant.
    emu.control(action="revoke_refresh_tokens")
    r = cl.post("/token", urllib.parse.urlencode({
        "grant_type": "refresh_token", "refresh_token": tok["refresh_token"],
        "client_id": "emulator-test-client"}).encode(), auth=False,
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status == 400 and r.json()["error"] == "invalid_grant"
    # /revoke invalidates an access token at once; JSON bodies work like forms.
    tok = emu.control(action="issue_token")
    cl = emu.client(tok["access_token"])
    assert cl.get("/drive/v3/files").status == 200
    r = cl.post("/revoke", {"token": tok["access_token"]}, auth=False)
    assert r.status == 200
    assert cl.get("/drive/v3/files").status == 401
    conf = cl.get("/.well-known/openid-configuration", auth=False).json()
    assert conf["token_endpoint"] == emu.base + "/token"
    assert conf["device_authorization_endpoint"] == emu.base + "/device/code"


def form_post(cl, path, fields):
    return cl.post(path, urllib.parse.urlencode(fields).encode(), auth=False,
                   headers={"Content-Type": "application/x-www-form-urlencoded"})


def authorize(cl, challenge, method="S256", redirect="http://127.0.0.1:5555/cb",
              extra=None):
    q = {"client_id": "cid", "redirect_uri": redirect, "response_type": "code",
         "scope": DRIVE_FILE, "code_challenge": challenge, "code_challenge_method": method,
         "state": "st4te", "access_type": "offline"}
    q.update(extra or {})
    r = cl.get("/o/oauth2/v2/auth", query=q, auth=False)
    assert r.status == 302, r
    loc = urllib.parse.urlsplit(r.header("Location"))
    assert loc.scheme + "://" + loc.netloc + loc.path == redirect
    return dict(urllib.parse.parse_qsl(loc.query))


def test_loopback_pkce_flow(emu):
    cl = emu.client()
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()) \
        .rstrip(b"=").decode()
    back = authorize(cl, challenge)
    assert back["state"] == "st4te" and back["code"]
    exchange = {"grant_type": "authorization_code", "code": back["code"], "client_id": "cid",
                "client_secret": "s", "redirect_uri": "http://127.0.0.1:5555/cb",
                "code_verifier": verifier}
    r = form_post(cl, "/token", exchange)
    assert r.status == 200, r
    tok = r.json()
    assert tok["refresh_token"] and tok["scope"] == DRIVE_FILE and tok["expires_in"] > 0
    assert emu.client(tok["access_token"]).get("/drive/v3/files").status == 200
    # A code is single use.
    assert form_post(cl, "/token", exchange).json()["error"] == "invalid_grant"
    # PKCE mismatch is rejected.
    back = authorize(cl, challenge, extra={"prompt": "consent"})
    r = form_post(cl, "/token", dict(exchange, code=back["code"],
                                     code_verifier=secrets.token_urlsafe(48)))
    assert r.status == 400 and r.json()["error"] == "invalid_grant"
    # Missing verifier is rejected too.
    back = authorize(cl, challenge)
    bad = dict(exchange, code=back["code"])
    del bad["code_verifier"]
    assert form_post(cl, "/token", bad).json()["error"] == "invalid_grant"
    # redirect_uri must match the authorization request.
    back = authorize(cl, challenge)
    r = form_post(cl, "/token", dict(exchange, code=back["code"],
                                     redirect_uri="http://127.0.0.1:1/other"))
    assert r.status == 400 and r.json()["error"] == "redirect_uri_mismatch"
    # Only the first consent yields a refresh token unless prompt=consent is sent.
    back = authorize(cl, challenge)
    tok = form_post(cl, "/token", dict(exchange, code=back["code"])).json()
    assert "access_token" in tok and "refresh_token" not in tok
    back = authorize(cl, challenge, extra={"prompt": "consent"})
    assert "refresh_token" in form_post(cl, "/token", dict(exchange, code=back["code"])).json()
    # A non-loopback redirect is refused outright.
    r = cl.get("/o/oauth2/v2/auth", auth=False, query={
        "client_id": "cid", "redirect_uri": "https://evil.example/cb", "response_type": "code",
        "scope": DRIVE_FILE})
    assert r.status == 400


def test_device_flow(emu):
    cl = emu.client()
    r = form_post(cl, "/device/code", {"client_id": "cid", "scope": DRIVE})
    assert r.status == 400 and r.json()["error"] == "invalid_scope"  # full drive not allowed
    r = form_post(cl, "/device/code", {"client_id": "cid", "scope": DRIVE_FILE})
    assert r.status == 200, r
    dev = r.json()
    assert {"device_code", "user_code", "verification_url", "expires_in",
            "interval"} <= set(dev)
    poll = {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "client_id": "cid",
            "client_secret": "s", "device_code": dev["device_code"]}
    answers = [form_post(cl, "/token", poll) for _ in range(4)]
    assert [a.json().get("error") for a in answers] == \
        ["authorization_pending", "authorization_pending", "slow_down", None]
    tok = answers[3].json()
    assert tok["refresh_token"] and tok["scope"] == DRIVE_FILE
    # drive.file does not see files another app made.
    fid = emu.control(action="insert", name="foreign.txt", foreign=True,
                      content_b64=base64.b64encode(b"x").decode())["id"]
    dc = emu.client(tok["access_token"])
    assert fid not in [f["id"] for f in dc.get("/drive/v3/files").json()["files"]]
    assert_error(dc.get("/drive/v3/files/" + fid), 404, "notFound")
    full = emu.client(emu.token())
    assert full.get("/drive/v3/files/" + fid).status == 200
    # access_denied
    dev = form_post(cl, "/device/code", {"client_id": "cid", "scope": DRIVE_FILE}).json()
    emu.control(action="deny_device")
    r = form_post(cl, "/token", dict(poll, device_code=dev["device_code"]))
    assert r.json()["error"] == "access_denied"


def rsa_keypair(bits=1024):
    """A throwaway RSA key for the jwt-bearer test (Miller-Rabin primes)."""
    def probable_prime(n):
        while True:
            p = secrets.randbits(n) | (1 << (n - 1)) | 1
            if all(p % q for q in (3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)) and \
                    all(miller_rabin(p) for _ in range(20)):
                return p

    def miller_rabin(n):
        d, s = n - 1, 0
        while d % 2 == 0:
            d, s = d // 2, s + 1
        x = pow(secrets.randbelow(n - 3) + 2, d, n)
        if x in (1, n - 1):
            return True
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                return True
        return False
    e = 65537
    while True:
        p, q = probable_prime(bits // 2), probable_prime(bits // 2)
        phi = (p - 1) * (q - 1)
        if p != q and phi % e:
            return p * q, e, pow(e, -1, phi)


def test_jwt_bearer_service_account(emu):
    n, e, d = rsa_keypair()
    emu.control(action="register_service_account", email="sa@test.iam", n="%x" % n, e=e)

    def b64(obj):
        raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def sign(claims, key_d=d):
        signing = b64({"alg": "RS256", "typ": "JWT"}) + "." + b64(claims)
        k = (n.bit_length() + 7) // 8
        di = bytes.fromhex("3031300d060960864801650304020105000420") + \
            hashlib.sha256(signing.encode()).digest()
        em = b"\x00\x01" + b"\xff" * (k - len(di) - 3) + b"\x00" + di
        sig = pow(int.from_bytes(em, "big"), key_d, n).to_bytes(k, "big")
        return signing + "." + b64(sig)

    now = int(time.time())
    claims = {"iss": "sa@test.iam", "scope": DRIVE, "aud": emu.base + "/token",
              "iat": now, "exp": now + 3600}
    cl = emu.client()
    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    r = form_post(cl, "/token", {"grant_type": grant, "assertion": sign(claims)})
    assert r.status == 200, r
    assert emu.client(r.json()["access_token"]).get("/drive/v3/files").status == 200
    r = form_post(cl, "/token", {"grant_type": grant, "assertion": sign(claims, d + 2)})
    assert r.json()["error"] == "invalid_grant"


# ------------------------------------------------------------------ q, fields, paging

def test_q_parser(emu, c):
    top = mkfolder(c, "qtest")
    sub = mkfolder(c, "Sub Folder", top)
    for name in ("HelloWorld.txt", "hello world.txt", "quinn's paper\\essay", "Report 2026",
                 "report 2026"):
        upload(c, name, b"x", top)
    upload(c, "deep.txt", b"x", sub)
    tf = upload(c, "trashme", b"x", top)["id"]
    assert c.patch("/drive/v3/files/" + tf, {"trashed": True}).status == 200
    p = "'%s' in parents" % top
    alive = p + " and trashed = false"
    assert list_names(c, alive + " and name = 'report 2026'") == ["Report 2026", "report 2026"]
    assert list_names(c, alive + " and name != 'report 2026' and mimeType != '%s'" % FOLDER) \
        == ["HelloWorld.txt", "hello world.txt", "quinn's paper\\essay"]
    assert list_names(c, alive + " and name contains 'Hello'") == \
        ["HelloWorld.txt", "hello world.txt"]
    assert list_names(c, alive + " and name contains 'world'") == ["hello world.txt"]
    assert list_names(c, alive + r" and name = 'quinn\'s paper\\essay'") == \
        ["quinn's paper\\essay"]
    assert list_names(c, p + " and mimeType = '%s'" % FOLDER) == ["Sub Folder"]
    assert list_names(c, p + " and trashed = true") == ["trashme"]
    assert "trashme" in list_names(c, p)  # trashed files are listed unless filtered
    assert list_names(c, "(%s or '%s' in parents) and not name contains 'report' and "
                         "not name contains 'hello' and trashed=false and "
                         "mimeType!='%s'" % (p, sub, FOLDER)) == \
        ["deep.txt", "quinn's paper\\essay"]
    assert list_names(c, "name = 'deep.txt' AND trashed = false") == ["deep.txt"]
    assert list_names(c, "'%s' in parents and modifiedTime > '2000-01-01T00:00:00'" % sub) \
        == ["deep.txt"]
    # appProperties has {...}
    fid = upload(c, "tagged", b"x", top)["id"]
    assert c.patch("/drive/v3/files/" + fid, {"appProperties": {"k": "v"}}).status == 200
    assert list_names(c, p + " and appProperties has { key='k' and value='v' }") == ["tagged"]
    assert list_names(c, p + " and appProperties has { key='k' and value='w' }") == []
    # 'root' alias
    rid = c.get("/drive/v3/files/root", query={"fields": "id"}).json()["id"]
    assert "qtest" in list_names(c, "'root' in parents")
    assert "qtest" in list_names(c, "'%s' in parents" % rid)
    for bad in ["name = 'x", "name = x", "name == 'x'", "name = 'x' and", "(name = 'x'",
                "name = 'x')", "bogus = 'x'", "trashed = 'yes'", "name < 'x'",
                "'x' in nowhere", "name = 'a\\b'", "and", "name contains", "not",
                "modifiedTime > 'yesterday'", "appProperties has { key='k' }"]:
        r = c.get("/drive/v3/files", query={"q": bad})
        assert_error(r, 400, "invalid")
        assert r.json()["error"]["errors"][0]["location"] == "q", bad


def test_fields_partial_responses(emu, c):
    fid = upload(c, "f.txt", b"abc")["id"]
    r = c.get("/drive/v3/files/" + fid)
    assert set(r.json()) == {"kind", "id", "name", "mimeType"}  # default field set
    full = c.get("/drive/v3/files/" + fid, query={"fields": "*"}).json()
    assert full["size"] == "3" and full["version"] == "1" and full["md5Checksum"]
    assert "_abusive" not in full and all(not k.startswith("_") for k in full)
    r = c.get("/drive/v3/files/" + fid, query={"fields": "id,size,capabilities/canEdit"})
    assert r.json() == {"id": fid, "size": "3", "capabilities": {"canEdit": True}}
    r = c.get("/drive/v3/files", query={"q": "name = 'f.txt'",
                                        "fields": "files(id, parents)"})
    assert set(r.json()) == {"files"} and set(r.json()["files"][0]) == {"id", "parents"}
    assert_error(c.get("/drive/v3/files/" + fid, query={"fields": "nonsense"}), 400,
                 "invalidParameter")
    assert_error(c.get("/drive/v3/files", query={"fields": "files(id,bogus)"}), 400)
    assert_error(c.get("/drive/v3/files", query={"fields": "files(id"}), 400)


def test_paging(emu, c):
    top = mkfolder(c, "paging")
    names = ["p%02d" % i for i in range(25)]
    for n in names:
        assert c.post("/drive/v3/files", {"name": n, "parents": [top]}).status == 200
    q = "'%s' in parents and trashed = false" % top

    def collect(page_size=None, limit=50):
        got, token, pages = [], None, 0
        while True:
            query = {"q": q, "fields": "nextPageToken,files(name)"}
            if page_size:
                query["pageSize"] = page_size
            if token:
                query["pageToken"] = token
            r = c.get("/drive/v3/files", query=query)
            assert r.status == 200, r
            body = r.json()
            got += [f["name"] for f in body["files"]]
            pages += 1
            token = body.get("nextPageToken")
            if not token or pages > limit:
                return got, pages
    got, pages = collect(10)
    assert sorted(got) == names and pages == 3
    emu.control(action="set", page_size_cap=7)
    got, pages = collect(1000)  # values above the cap are lowered to it
    assert sorted(got) == names and pages == 4
    emu.control(action="reset")
    emu.control(action="set", page_pattern=[0, 4])  # empty and short pages before the end
    got, pages = collect(10)
    assert sorted(got) == names and pages == 14
    emu.control(action="reset")
    assert_error(c.get("/drive/v3/files", query={"q": q, "pageSize": 0}), 400)
    assert_error(c.get("/drive/v3/files", query={"q": q, "pageSize": "x"}), 400)
    r = c.get("/drive/v3/files", query={"q": q, "pageSize": 5})
    token = r.json()["nextPageToken"]
    # A token is bound to its query, and can be invalidated.
    assert_error(c.get("/drive/v3/files", query={"q": "trashed = false", "pageToken": token}),
                 400)
    emu.control(action="invalidate_page_tokens")
    r = c.get("/drive/v3/files", query={"q": q, "pageSize": 5, "pageToken": token})
    assert_error(r, 400, "invalid")
    assert r.json()["error"]["errors"][0]["location"] == "pageToken"
    # count=N: the next N requests with a page token find it rejected too;
    # first pages are still served, and the (N+1)th token is accepted.
    emu.control(action="invalidate_page_tokens", count=2)
    for _ in range(2):
        r = c.get("/drive/v3/files", query={"q": q, "pageSize": 5})
        assert r.status == 200 and len(r.json()["files"]) == 5, r
        r = c.get("/drive/v3/files", query={"q": q, "pageSize": 5,
                                             "pageToken": r.json()["nextPageToken"]})
        assert_error(r, 400, "invalid")
    r = c.get("/drive/v3/files", query={"q": q, "pageSize": 5})
    r = c.get("/drive/v3/files", query={"q": q, "pageSize": 5,
                                         "pageToken": r.json()["nextPageToken"]})
    assert r.status == 200 and len(r.json()["files"]) == 5, r
    # orderBy
    r = c.get("/drive/v3/files", query={"q": q, "orderBy": "name desc", "pageSize": 3})
    assert [f["name"] for f in r.json()["files"]] == ["p24", "p23", "p22"]
    assert_error(c.get("/drive/v3/files", query={"q": q, "orderBy": "size"}), 400)


# ------------------------------------------------------------------ media

def test_ranged_reads(emu, c):
    data = bytes(range(256)) * 40
    fid = upload(c, "ranged.bin", data)["id"]
    path = "/drive/v3/files/%s?alt=media" % fid
    r = c.get(path)
    assert r.status == 200 and r.body == data
    r = c.get(path, headers={"Range": "bytes=100-199"})
    assert r.status == 206 and r.body == data[100:200]
    assert r.header("Content-Range") == "bytes 100-199/%d" % len(data)
    r = c.get(path, headers={"Range": "bytes=10000-"})
    assert r.status == 206 and r.body == data[10000:]
    r = c.get(path, headers={"Range": "bytes=-16"})
    assert r.status == 206 and r.body == data[-16:]
    r = c.get(path, headers={"Range": "bytes=10200-99999"})  # clipped at the end
    assert r.status == 206 and r.body == data[10200:]
    r = c.get(path, headers={"Range": "bytes=%d-" % len(data)})
    assert r.status == 416 and r.header("Content-Range") == "bytes */%d" % len(data)
    empty = upload(c, "empty", b"")["id"]
    assert c.get("/drive/v3/files/%s?alt=media" % empty).body == b""
    assert c.get("/drive/v3/files/%s?alt=media" % empty,
                 headers={"Range": "bytes=0-0"}).status == 416
    folder = mkfolder(c, "nodl")
    assert_error(c.get("/drive/v3/files/%s?alt=media" % folder), 403, "fileNotDownloadable")
    doc = emu.control(action="insert", name="doc",
                      mimeType="application/vnd.google-apps.document")["id"]
    assert_error(c.get("/drive/v3/files/%s?alt=media" % doc), 403, "fileNotDownloadable")
    emu.control(action="set_abusive", id=fid)
    assert_error(c.get(path), 403, "cannotDownloadAbusiveFile")
    assert c.get(path + "&acknowledgeAbuse=true").body == data
    assert_error(c.get("/drive/v3/files/nosuchid"), 404, "notFound")


# ------------------------------------------------------------------ uploads

def test_media_and_multipart_uploads(emu, c):
    r = c.post("/upload/drive/v3/files?uploadType=media&fields=name,mimeType,size,parents",
               b"raw bytes", headers={"Content-Type": "text/plain"})
    assert r.status == 200
    rid = c.get("/drive/v3/files/root", query={"fields": "id"}).json()["id"]
    assert r.json() == {"name": "Untitled", "mimeType": "text/plain", "size": "9",
                        "parents": [rid]}
    top = mkfolder(c, "mp")
    data = os.urandom(5000) + b"\r\n--emu_b0undar\r\n"  # near-boundary bytes in the media
    meta = upload(c, "m.bin", data, top, fields="*")
    assert meta["parents"] == [top] and meta["size"] == str(len(data))
    assert meta["md5Checksum"] == hashlib.md5(data).hexdigest()
    assert meta["sha256Checksum"] == hashlib.sha256(data).hexdigest()
    assert c.get("/drive/v3/files/%s?alt=media" % meta["id"]).body == data
    assert open(os.path.join(emu.root, "blobs", meta["id"]), "rb").read() == data
    # Media update replaces content, bumps version and the revision.
    r = c.patch("/upload/drive/v3/files/%s?uploadType=media&fields=*" % meta["id"], b"new",
                headers={"Content-Type": "application/octet-stream"})
    new = r.json()
    assert r.status == 200 and new["size"] == "3" and int(new["version"]) > int(meta["version"])
    assert new["headRevisionId"] != meta["headRevisionId"]
    assert new["md5Checksum"] == hashlib.md5(b"new").hexdigest()
    # Multipart update: metadata and content in one request, moves via addParents.
    other = mkfolder(c, "mp2")
    body, ctype = multipart({"name": "m2.bin", "appProperties": {"x": "1"}}, b"both")
    r = c.patch("/upload/drive/v3/files/" + meta["id"], body, headers={"Content-Type": ctype},
                query={"uploadType": "multipart", "addParents": other, "removeParents": top,
                       "fields": "name,size,parents,appProperties"})
    assert r.status == 200, r
    assert r.json() == {"name": "m2.bin", "size": "4", "parents": [other],
                        "appProperties": {"x": "1"}}
    assert c.get("/drive/v3/files/%s?alt=media" % meta["id"]).body == b"both"
    assert_error(c.patch("/upload/drive/v3/files/%s?uploadType=media" % other, b"x"), 400)
    # Malformed multipart bodies are 400s.
    body, ctype = multipart({"name": "x"}, b"data")
    for bad_body, bad_type in [
            (body, "multipart/mixed; boundary=emu_b0undary"),
            (body, "multipart/related"),
            (body.replace(b"--emu_b0undary--", b""), ctype),
            (body.replace(b"application/json", b"text/plain"), ctype),
            (body.replace(b'{"name": "x"}', b"{nope"), ctype),
            (b"--emu_b0undary\r\nContent-Type: application/json\r\n\r\n{}\r\n"
             b"--emu_b0undary--", ctype)]:
        r = c.post("/upload/drive/v3/files?uploadType=multipart", bad_body,
                   headers={"Content-Type": bad_type})
        assert r.status == 400, (bad_type, bad_body[:60], r)
    assert_error(c.post("/upload/drive/v3/files", b"x"), 400)  # no uploadType
    assert_error(c.post("/upload/drive/v3/files?uploadType=foo", b"x"), 400)


def start_session(c, meta, total=None, file_id=None, query=None):
    headers = {"X-Upload-Content-Type": "application/octet-stream"}
    if total is not None:
        headers["X-Upload-Content-Length"] = str(total)
    path = "/upload/drive/v3/files" + ("/" + file_id if file_id else "")
    q = {"uploadType": "resumable", "fields": "id,name,size,md5Checksum"}
    q.update(query or {})
    r = c.request("PATCH" if file_id else "POST", path, meta, headers=headers, query=q)
    assert r.status == 200, r
    loc = r.header("Location")
    assert "upload_id=" in loc and loc.startswith("http://127.0.0.1:%d/" % c.port)
    return loc[len("http://127.0.0.1:%d" % c.port):]


def put_chunk(c, session, data, first, total):
    last = first + len(data) - 1
    return c.put(session, data, headers={
        "Content-Range": "bytes %d-%d/%s" % (first, last, total)})


def status_query(c, session, total):
    return c.put(session, b"", headers={"Content-Range": "bytes */%s" % total})


def test_resumable_upload(emu, c):
    data = os.urandom(2 * KIB256 + 1000)
    total = len(data)
    session = start_session(c, {"name": "big.bin"}, total)
    r = status_query(c, session, total)
    assert r.status == 308 and r.header("Range") is None  # nothing received yet
    r = put_chunk(c, session, data[:KIB256], 0, "*")
    assert r.status == 308 and r.header("Range") == "bytes=0-%d" % (KIB256 - 1)
    # The session URI is the credential: no access token needed (expired ones ignored).
    anon = emu.client()
    r = status_query(anon, session, total)
    assert r.status == 308 and r.header("Range") == "bytes=0-%d" % (KIB256 - 1)
    anon.close()
    # A non-final chunk that is not a multiple of 256 KiB is rejected.
    assert put_chunk(c, session, data[KIB256:KIB256 + 1000], KIB256, total).status == 400
    # Gaps are rejected; overlaps are fine (the server skips what it holds).
    assert put_chunk(c, session, data[2 * KIB256:], 2 * KIB256, total).status == 400
    r = put_chunk(c, session, data[KIB256 - KIB256:2 * KIB256], 0, total)
    assert r.status == 308 and r.header("Range") == "bytes=0-%d" % (2 * KIB256 - 1)
    r = status_query(c, session, total)
    assert r.status == 308 and r.header("Range") == "bytes=0-%d" % (2 * KIB256 - 1)
    # Body length must match Content-Range.
    r = c.put(session, data[2 * KIB256:], headers={
        "Content-Range": "bytes %d-%d/%d" % (2 * KIB256, total, total)})
    assert r.status == 400
    r = put_chunk(c, session, data[2 * KIB256:], 2 * KIB256, total)
    assert r.status == 200, r
    meta = r.json()
    assert meta["size"] == str(total) and meta["md5Checksum"] == hashlib.md5(data).hexdigest()
    assert c.get("/drive/v3/files/%s?alt=media" % meta["id"]).body == data
    # A finished session answers status queries with the file.
    r = status_query(c, session, total)
    assert r.status == 200 and r.json()["id"] == meta["id"]
    # 201 is configurable; POST works on the session URI; single-request resumable.
    emu.control(action="set", upload_final_status=201)
    s2 = start_session(c, {"name": "small.bin"})
    r = c.post(s2, b"whole thing")
    assert r.status == 201 and r.json()["size"] == "11"
    # Resumable update of an existing file; the declared size is enforced.
    s3 = start_session(c, {"name": "renamed.bin"}, 5, file_id=meta["id"])
    assert put_chunk(c, s3, b"123456", 0, 6).status == 400  # total differs from declared
    s3 = start_session(c, {"name": "renamed.bin"}, 5, file_id=meta["id"])
    r = put_chunk(c, s3, b"12345", 0, 5)
    assert r.status == 201 and r.json()["name"] == "renamed.bin" and r.json()["size"] == "5"


def test_media_update_with_metadata_deletes_null_properties(emu, c):
    """A content update that carries metadata (multipart, or a resumable
    session started with a body) applies it with the content: a property
    set to null is deleted, the others stay, one never set is no error."""
    q = {"fields": "id,size,appProperties"}
    body, ctype = multipart({"name": "n.bin", "appProperties": {"p": "1", "m": "644"}}, b"")
    r = c.post("/upload/drive/v3/files", body, headers={"Content-Type": ctype},
               query=dict(q, uploadType="multipart"))
    assert r.status == 200 and r.json()["appProperties"] == {"p": "1", "m": "644"}, r
    fid = r.json()["id"]
    body, ctype = multipart({"appProperties": {"p": None, "t": "5.0"}}, b"content")
    r = c.patch("/upload/drive/v3/files/" + fid, body, headers={"Content-Type": ctype},
                query=dict(q, uploadType="multipart"))
    assert r.status == 200 and r.json() == {"id": fid, "size": "7",
                                            "appProperties": {"m": "644", "t": "5.0"}}, r
    body, ctype = multipart({"appProperties": {"p": None}}, b"again")
    r = c.patch("/upload/drive/v3/files/" + fid, body, headers={"Content-Type": ctype},
                query=dict(q, uploadType="multipart"))
    assert r.status == 200 and r.json()["appProperties"] == {"m": "644", "t": "5.0"}, r
    # Resumable: the session's metadata is applied when the content is complete.
    assert c.patch("/drive/v3/files/" + fid, {"appProperties": {"p": "1"}}).status == 200
    s = start_session(c, {"appProperties": {"p": None}}, 3, file_id=fid,
                      query={"fields": "id,size,appProperties"})
    assert c.get("/drive/v3/files/%s?fields=appProperties" % fid).json()["appProperties"] == \
        {"m": "644", "t": "5.0", "p": "1"}
    r = put_chunk(c, s, b"abc", 0, 3)
    assert r.status in (200, 201) and r.json() == {"id": fid, "size": "3",
                                                   "appProperties": {"m": "644", "t": "5.0"}}, r
    assert c.get("/drive/v3/files/%s?fields=appProperties" % fid).json()["appProperties"] == \
        {"m": "644", "t": "5.0"}
    # Deleting every property leaves none.
    body, ctype = multipart({"appProperties": {"m": None, "t": None}}, b"x")
    r = c.patch("/upload/drive/v3/files/" + fid, body, headers={"Content-Type": ctype},
                query=dict(q, uploadType="multipart"))
    assert r.status == 200 and "appProperties" not in r.json(), r


def test_resumable_drop_and_resume(emu, c):
    data = os.urandom(3 * KIB256)
    total = len(data)
    session = start_session(c, {"name": "dropped.bin"}, total)
    emu.control(action="drop", path="/upload/", method="PUT", after_bytes=KIB256 + 5000)
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        put_chunk(c, session, data[:2 * KIB256], 0, total)
    c.close()
    # Only a 256 KiB-aligned prefix of what arrived was kept.
    r = status_query(c, session, total)
    assert r.status == 308 and r.header("Range") == "bytes=0-%d" % (KIB256 - 1)
    r = put_chunk(c, session, data[KIB256:], KIB256, total)
    assert r.status == 200, r
    assert r.json()["md5Checksum"] == hashlib.md5(data).hexdigest()
    assert [e["status"] for e in emu.log() if e["path"].startswith("/upload/")][-3:] == \
        ["dropped", 308, 200]


def test_upload_session_expiry(emu, c):
    session = start_session(c, {"name": "exp.bin"}, 10)
    emu.control(action="expire_upload_sessions")
    assert_error(put_chunk(c, session, b"0123456789", 0, 10), 404)
    session = start_session(c, {"name": "exp.bin"}, KIB256 + 1)
    assert put_chunk(c, session, b"\0" * KIB256, 0, KIB256 + 1).status == 308
    emu.control(action="advance_clock", seconds=6 * 86400)
    c.token = emu.token()  # access tokens live an hour
    assert status_query(c, session, KIB256 + 1).status == 308
    emu.control(action="advance_clock", seconds=2 * 86400)  # sessions live one week
    c.token = emu.token()
    assert status_query(c, session, KIB256 + 1).status == 404


def test_stall_holds_one_request_and_it_sees_the_state_after(emu, c):
    """A stalled request is handled when the stall ends: a GET held while
    another connection deletes the file answers 404, and requests that do
    not match the rule are not held."""
    import threading
    fid = upload(c, "held", b"x")["id"]
    emu.control(action="stall", method="GET", path_regex="/files/%s$" % fid, ms=1500)
    out, cl = {}, emu.client(emu.token())

    def get():
        t0 = time.time()
        out["r"] = cl.get("/drive/v3/files/" + fid, query={"fields": "id"})
        out["t"] = time.time() - t0
        cl.close()
    th = threading.Thread(target=get)
    th.start()
    assert wait_for(lambda: not emu.state()["faults"])     # the GET is being held
    t0 = time.time()
    assert c.request("DELETE", "/drive/v3/files/" + fid).status == 204
    assert time.time() - t0 < 1.0          # not held: the rule was used once
    th.join(10)
    assert out["t"] >= 1.4, out["t"]
    assert_error(out["r"], 404, "notFound")
    assert_error(c.post("/__control", {"action": "stall", "ms": "soon"}), 400)


def test_stall_of_the_reply_makes_the_change_at_once_and_answers_late(emu, c):
    """With "reply": true a stall holds the answer, not the request: the
    rename is seen by another connection while its own reply is held."""
    import threading
    fid = upload(c, "before", b"x")["id"]
    emu.control(action="stall", method="PATCH", path_regex="/files/%s$" % fid, ms=1500,
                reply=True)
    out, cl = {}, emu.client(emu.token())

    def rename():
        t0 = time.time()
        out["r"] = cl.request("PATCH", "/drive/v3/files/" + fid, {"name": "after"},
                              query={"fields": "name"})
        out["t"] = time.time() - t0
        cl.close()
    th = threading.Thread(target=rename)
    th.start()
    assert wait_for(lambda: not emu.state()["faults"])
    assert wait_for(lambda: c.get("/drive/v3/files/" + fid,
                                  query={"fields": "name"}).json()["name"] == "after")
    assert "r" not in out                  # renamed, its reply still held
    th.join(10)
    assert out["t"] >= 1.4, out["t"]
    assert out["r"].status == 200 and out["r"].json()["name"] == "after"


# ------------------------------------------------------------------ ids, update, delete

def test_pregenerated_ids(emu, c):
    r = c.get("/drive/v3/files/generateIds", query={"count": 3, "space": "drive"})
    ids = r.json()["ids"]
    assert r.status == 200 and len(set(ids)) == 3
    top = mkfolder(c, "ids")
    body = {"id": ids[0], "name": "once", "parents": [top]}
    assert c.post("/drive/v3/files", body).json()["id"] == ids[0]
    assert_error(c.post("/drive/v3/files", body), 409)
    # A create whose reply is lost: the retry gets 409, no duplicate exists.
    emu.control(action="drop_after_commit", path="/upload/drive/v3/files", method="POST")
    mbody, ctype = multipart({"id": ids[1], "name": "lost reply", "parents": [top]}, b"data")
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        c.post("/upload/drive/v3/files?uploadType=multipart", mbody,
               headers={"Content-Type": ctype})
    c.close()
    r = c.post("/upload/drive/v3/files?uploadType=multipart", mbody,
               headers={"Content-Type": ctype})
    assert_error(r, 409, "duplicate")
    assert list_names(c, "'%s' in parents" % top) == ["lost reply", "once"]
    # Resumable creates check the id at initiation.
    r = c.post("/upload/drive/v3/files?uploadType=resumable", {"id": ids[1], "name": "x"})
    assert r.status == 409
    # Ids not issued by generateIds are unusable.
    assert_error(c.post("/drive/v3/files", {"id": "1madeUpIdThatWasNeverGenerated00",
                                            "name": "x"}), 400)
    assert_error(c.get("/drive/v3/files/generateIds", query={"count": 1001}), 400)


def test_update_move_rename_and_properties(emu, c):
    a, b = mkfolder(c, "A"), mkfolder(c, "B")
    fid = upload(c, "f", b"x", a)["id"]
    v1 = int(c.get("/drive/v3/files/" + fid, query={"fields": "version"}).json()["version"])
    r = c.patch("/drive/v3/files/" + fid, {"name": "g"},
                query={"addParents": b, "removeParents": a, "fields": "name,parents,version"})
    assert r.status == 200 and r.json()["parents"] == [b] and r.json()["name"] == "g"
    assert int(r.json()["version"]) > v1
    assert_error(c.patch("/drive/v3/files/" + fid, {"parents": [a]}), 400, "fieldNotWritable")
    assert_error(c.patch("/drive/v3/files/" + fid, {"size": "3"}), 400, "fieldNotWritable")
    assert_error(c.patch("/drive/v3/files/" + fid, {}, query={"addParents": a}), 403,
                 "cannotAddParent")
    assert_error(c.patch("/drive/v3/files/" + a, {}, query={"addParents": a}), 400)
    assert_error(c.patch("/drive/v3/files/" + fid, {}, query={"addParents": "nope"}), 404)
    # Duplicate names in one folder are allowed.
    upload(c, "g", b"y", b)
    assert list_names(c, "'%s' in parents" % b) == ["g", "g"]
    # Properties: merge, null deletes, 124-byte limit, 30 per file.
    r = c.patch("/drive/v3/files/" + fid, {"appProperties": {"a": "1", "b": "2"}},
                query={"fields": "appProperties"})
    assert r.json()["appProperties"] == {"a": "1", "b": "2"}
    r = c.patch("/drive/v3/files/" + fid, {"appProperties": {"a": None}},
                query={"fields": "appProperties"})
    assert r.json()["appProperties"] == {"b": "2"}
    assert c.patch("/drive/v3/files/" + fid, {"appProperties": {"k": "v" * 124}}).status == 400
    many = {"k%d" % i: "v" for i in range(31)}
    assert c.patch("/drive/v3/files/" + fid, {"appProperties": many}).status == 400
    # modifiedTime is settable and kept to the millisecond.
    r = c.patch("/drive/v3/files/" + fid, {"modifiedTime": "2020-01-02T03:04:05.678Z"},
                query={"fields": "modifiedTime"})
    assert r.json()["modifiedTime"] == "2020-01-02T03:04:05.678Z"


def test_trash_delete_and_changes(emu, c):
    start = c.get("/drive/v3/changes/startPageToken").json()["startPageToken"]
    top = mkfolder(c, "chg")
    child = upload(c, "child", b"1", top)["id"]
    other = upload(c, "other", b"2", top)["id"]
    assert c.patch("/drive/v3/files/" + top, {"trashed": True}).status == 200
    meta = c.get("/drive/v3/files/" + child, query={"fields": "trashed,explicitlyTrashed"})
    assert meta.json() == {"trashed": True, "explicitlyTrashed": False}
    assert c.delete("/drive/v3/files/" + other).status == 204
    assert_error(c.get("/drive/v3/files/" + other), 404)

    changes, token, pages = [], start, 0
    while True:
        r = c.get("/drive/v3/changes", query={"pageToken": token, "pageSize": 1})
        assert r.status == 200, r
        body = r.json()
        changes += body["changes"]
        pages += 1
        if "newStartPageToken" in body:
            assert "nextPageToken" not in body
            new_start = body["newStartPageToken"]
            break
        token = body["nextPageToken"]
    assert pages == len(changes) == 3  # one entry per file, latest state
    by_id = {ch["fileId"]: ch for ch in changes}
    assert by_id[top]["file"]["trashed"] is True and by_id[child]["file"]["trashed"] is True
    assert by_id[other]["removed"] is True and "file" not in by_id[other]
    r = c.get("/drive/v3/changes", query={"pageToken": new_start})
    assert r.json()["changes"] == [] and r.json()["newStartPageToken"] == new_start
    r = c.get("/drive/v3/changes", query={"pageToken": start, "includeRemoved": "false",
                                          "fields": "changes(fileId)"})
    assert {ch["fileId"] for ch in r.json()["changes"]} == {top, child}
    assert_error(c.get("/drive/v3/changes", query={"pageToken": "garbage"}), 400)
    assert_error(c.get("/drive/v3/changes"), 400)
    # Deleting a folder removes its descendants; emptying the trash purges trashed items.
    d = mkfolder(c, "del")
    inner = upload(c, "inner", b"x", d)["id"]
    assert c.delete("/drive/v3/files/" + d).status == 204
    assert c.get("/drive/v3/files/" + inner).status == 404
    assert not os.path.exists(os.path.join(emu.root, "blobs", inner))
    # Untrashing restores what was trashed with the folder, not what was trashed alone.
    t2 = mkfolder(c, "t2")
    alone = upload(c, "alone", b"1", t2)["id"]
    withdir = upload(c, "withdir", b"2", t2)["id"]
    assert c.patch("/drive/v3/files/" + alone, {"trashed": True}).status == 200
    assert c.patch("/drive/v3/files/" + t2, {"trashed": True}).status == 200
    assert c.patch("/drive/v3/files/" + t2, {"trashed": False}).status == 200
    assert c.get("/drive/v3/files/" + withdir, query={"fields": "trashed"}).json() == \
        {"trashed": False}
    assert c.get("/drive/v3/files/" + alone, query={"fields": "trashed"}).json() == \
        {"trashed": True}
    assert c.delete("/drive/v3/files/trash").status == 204
    assert c.get("/drive/v3/files/" + alone).status == 404
    assert c.get("/drive/v3/files/" + withdir).status == 200
    assert c.get("/drive/v3/files/" + top).status == 404
    assert c.get("/drive/v3/files/" + child).status == 404


def test_about_and_storage_quota(emu, c):
    assert_error(c.get("/drive/v3/about"), 400, "required")
    r = c.get("/drive/v3/about", query={"fields": "storageQuota,user(emailAddress)"})
    q = r.json()["storageQuota"]
    assert int(q["usage"]) >= 0 and int(q["limit"]) > 0 and set(r.json()) == \
        {"storageQuota", "user"}
    emu.control(action="set", quota_limit=int(q["usage"]) + 10)
    upload(c, "fits", b"0123456789")
    body, ctype = multipart({"name": "too big"}, b"x")
    r = c.post("/upload/drive/v3/files?uploadType=multipart", body,
               headers={"Content-Type": ctype})
    assert_error(r, 403, "storageQuotaExceeded")
    r = c.post("/upload/drive/v3/files?uploadType=resumable", {"name": "big"},
               headers={"X-Upload-Content-Length": "100"})
    assert_error(r, 403, "storageQuotaExceeded")


# ------------------------------------------------------------------ faults

def test_error_bursts_retry_after_and_log(emu, c):
    emu.clear_log()
    emu.control(action="fault", status=403, reason="userRateLimitExceeded", count=2,
                retry_after=3, path="/drive/v3/files")
    for _ in range(2):
        r = c.get("/drive/v3/files")
        assert_error(r, 403, "userRateLimitExceeded")
        assert r.json()["error"]["errors"][0]["domain"] == "usageLimits"
        assert r.header("Retry-After") == "3"
    assert c.get("/drive/v3/files").status == 200
    emu.control(action="fault", status=429, count=1)
    assert_error(c.get("/drive/v3/about?fields=kind"), 429, "rateLimitExceeded")
    for status in (500, 502, 503):
        emu.control(action="fault", status=status, method="POST")
        assert c.get("/drive/v3/files").status == 200  # method filter: GET unaffected
        assert_error(c.post("/drive/v3/files", {"name": "x"}), status, "backendError")
    emu.control(action="fault", status=403, reason="rateLimitExceeded")
    assert c.get("/drive/v3/files").json()["error"]["errors"][0]["reason"] == \
        "rateLimitExceeded"
    emu.control(action="daily_limit")
    r = c.get("/drive/v3/files")
    assert r.status == 403 and r.json()["error"]["message"] == "User rate limit exceeded."
    # Path prefix matching: other paths pass.
    emu.control(action="fault", status=503, count=1, path="/upload/")
    assert c.get("/drive/v3/files").status == 200
    assert emu.state()["faults"][0]["path"] == "/upload/"
    emu.control(action="clear_faults")
    assert emu.state()["faults"] == []
    log = emu.log()
    assert [e["status"] for e in log[:3]] == [403, 403, 200]
    assert all({"method", "path", "query", "status", "time"} <= set(e) for e in log)
    assert log[0]["fault"] == "fault" and log[0]["time"] <= log[1]["time"]
    assert emu.log(since=len(log)) == []


def test_drop_connection_on_plain_request(emu, c):
    emu.control(action="drop", path="/drive/v3/about")
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        c.get("/drive/v3/about?fields=kind")
    c.close()
    assert c.get("/drive/v3/about?fields=kind").status == 200


def test_outage(emu, c):
    fid = upload(c, "during outage", b"x")["id"]
    emu.control(action="outage")  # every request: connection closed, nothing done
    for _ in range(3):
        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
            c.get("/drive/v3/files/" + fid)
        c.close()
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        c.post("/drive/v3/files", {"name": "lost"})
    c.close()
    assert emu.state()["outage"]["mode"] == "drop"  # the control endpoint still answers
    emu.control(action="outage", on=False)
    assert c.get("/drive/v3/files/" + fid).status == 200
    assert list_names(c, "name = 'lost'") == []
    emu.control(action="outage", mode=503, seconds=0.5)
    assert_error(c.get("/drive/v3/files/" + fid), 503, "backendError")
    assert wait_for(lambda: c.get("/drive/v3/files/" + fid).status == 200, 3)
    assert [e["status"] for e in emu.log()].count("dropped") >= 4


def test_delayed_listing_visibility(emu, c):
    start = c.get("/drive/v3/changes/startPageToken").json()["startPageToken"]
    emu.control(action="set", list_delay_ms=1500)
    top = mkfolder(c, "late")
    fid = upload(c, "late.txt", b"x", top)["id"]
    assert c.get("/drive/v3/files/" + fid).status == 200  # by id: immediate
    assert list_names(c, "name = 'late.txt'") == []
    assert c.get("/drive/v3/changes", query={"pageToken": start}).json()["changes"] == []
    assert c.patch("/drive/v3/files/" + fid, {"name": "renamed"}).status == 200
    assert wait_for(lambda: list_names(c, "'%s' in parents" % top) == ["renamed"], 6)
    r = c.get("/drive/v3/changes", query={"pageToken": start})
    assert {ch["fileId"] for ch in r.json()["changes"]} == {top, fid}
    # A rename keeps showing the old name in listings during the delay.
    assert c.patch("/drive/v3/files/" + fid, {"name": "again"}).status == 200
    assert list_names(c, "'%s' in parents" % top) == ["renamed"]
    assert wait_for(lambda: list_names(c, "'%s' in parents" % top) == ["again"], 6)


def test_latency_setting(emu, c):
    emu.control(action="set", latency_ms=200)
    t0 = time.time()
    c.get("/drive/v3/about?fields=kind")
    assert time.time() - t0 >= 0.2


# ------------------------------------------------------------------ persistence

def test_persistence_across_restart(tmp_path):
    root = tmp_path / "persist"
    e = Emulator.start(root, extra_args=["--latency-ms", "50"])
    try:
        tok = e.control(action="issue_token")
        c = e.client(tok["access_token"])
        t0 = time.time()
        top = mkfolder(c, "kept")
        assert time.time() - t0 >= 0.05  # --latency-ms
        meta = upload(c, "kept.bin", b"persistent bytes", top)
        start = c.get("/drive/v3/changes/startPageToken").json()["startPageToken"]
        session = start_session(c, {"name": "half.bin", "parents": [top]}, KIB256 + 3)
        assert put_chunk(c, session, b"a" * KIB256, 0, KIB256 + 3).status == 308
        c.close()
    finally:
        assert "Traceback" not in e.stop()
    assert (root / "index.json").exists()
    e = Emulator.start(root)
    try:
        c = e.client(tok["access_token"])  # tokens survive
        r = c.get("/drive/v3/files/%s?alt=media" % meta["id"])
        assert r.status == 200 and r.body == b"persistent bytes"
        assert list_names(c, "'%s' in parents" % top) == ["kept.bin"]
        r = status_query(c, session, KIB256 + 3)
        assert r.status == 308 and r.header("Range") == "bytes=0-%d" % (KIB256 - 1)
        r = put_chunk(c, session, b"bcd", KIB256, KIB256 + 3)
        assert r.status == 200 and r.json()["size"] == str(KIB256 + 3)
        r = c.get("/drive/v3/changes", query={"pageToken": start})
        assert [ch["file"]["name"] for ch in r.json()["changes"]] == ["half.bin"]
        c.close()
    finally:
        assert "Traceback" not in e.stop()
    # The journal is folded into index.json; a torn journal line is tolerated.
    with open(root / "journal.jsonl", "a") as f:
        f.write('{"t":"files","k":"torn')
    e = Emulator.start(root)
    try:
        c = e.client(tok["access_token"])
        assert c.get("/drive/v3/files/" + meta["id"]).status == 200
        c.close()
    finally:
        assert "Traceback" not in e.stop()


def test_inserted_foreign_items(emu, c):
    top = mkfolder(c, "foreign")
    mine = upload(c, "same", b"mine", top)["id"]
    dup = emu.control(action="insert", name="same", parents=[top],
                      content_b64=base64.b64encode(b"theirs").decode())["id"]
    doc = emu.control(action="insert", name="notes", parents=[top],
                      mimeType="application/vnd.google-apps.document")["id"]
    sc = emu.control(action="insert", name="link", parents=[top],
                     mimeType="application/vnd.google-apps.shortcut",
                     shortcutDetails={"targetId": "1danglingTargetThatDoesNotExist0",
                                      "targetMimeType": FOLDER})["id"]
    r = c.get("/drive/v3/files", query={
        "q": "'%s' in parents and trashed = false" % top, "orderBy": "name",
        "fields": "files(id,name,mimeType,size,shortcutDetails)"})
    files = {f["id"]: f for f in r.json()["files"]}
    assert set(files) == {mine, dup, doc, sc}
    assert "size" not in files[doc] and "size" not in files[sc]
    assert files[sc]["shortcutDetails"]["targetId"] == "1danglingTargetThatDoesNotExist0"
    assert c.get("/drive/v3/files/%s?alt=media" % dup).body == b"theirs"
    assert c.request("HEAD", "/drive/v3/files/" + mine).status == 405


def test_drop_before_commit_creates_nothing(emu, c):
    top = mkfolder(c, "nocommit")
    emu.control(action="drop", path="/upload/drive/v3/files", after_bytes=10)
    body, ctype = multipart({"name": "never", "parents": [top]}, b"x" * 1000)
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        c.post("/upload/drive/v3/files?uploadType=multipart", body,
               headers={"Content-Type": ctype})
    c.close()
    assert list_names(c, "'%s' in parents" % top) == []
    posts = [e for e in emu.log() if e["path"] == "/upload/drive/v3/files"]
    assert posts[-1]["status"] == "dropped" and posts[-1]["fault"] == "drop"
