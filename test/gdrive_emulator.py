#!/usr/bin/env python3
"""Google Drive v3 emulator for scsfs tests (Python standard library only).

Run:  python3 test/gdrive_emulator.py --port PORT --root DIR [--latency-ms N]

With --port 0 a free port is chosen.  The first stdout line is always
"listening on http://127.0.0.1:PORT" (flushed) so tests can find the server.

Everything listens on one loopback port, so one SCSFS_GDRIVE_ENDPOINT base
covers all of these:

  Drive API       /drive/v3/...            (files, changes, about)
  Uploads         /upload/drive/v3/files[/ID]?uploadType=media|multipart|resumable
  OAuth           GET  /o/oauth2/v2/auth   (consent: 302 to redirect_uri?code&state)
                  POST /token              (authorization_code+PKCE, refresh_token,
                                            device_code, jwt-bearer)
                  POST /device/code        (device authorization)
                  POST /revoke
  Test control    POST /__control          (JSON; see Control below)
                  GET  /__control/log      (request log)  DELETE clears it
                  GET  /__control/state    (files, sessions, settings)

State lives under --root: blobs/<fileId> holds each file's bytes as a plain
file, uploads/<uploadId> holds partial resumable uploads, and the metadata is
a JSON snapshot (index.json, replaced atomically) plus an append-only journal
(journal.jsonl) that is folded into the snapshot from time to time.  A
restart with the same --root keeps files, changes, upload sessions and tokens.

The control API, the behaviours and the known gaps are documented in
test/emulator/README.md.
"""

import argparse
import base64
import hashlib
import http.server
import json
import os
import re
import secrets
import socket
import socketserver
import sys
import threading
import time
import urllib.parse

FOLDER_MIME = "application/vnd.google-apps.folder"
SHORTCUT_MIME = "application/vnd.google-apps.shortcut"
GOOGLE_APPS_PREFIX = "application/vnd.google-apps."
CHUNK_GRANULARITY = 256 * 1024
SESSION_LIFETIME = 7 * 24 * 3600
CODE_LIFETIME = 600
DEVICE_CODE_LIFETIME = 1800
ID_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
SCOPE_DRIVE = "https://www.googleapis.com/auth/drive"
SCOPE_DRIVE_FILE = "https://www.googleapis.com/auth/drive.file"
SCOPE_DRIVE_READONLY = "https://www.googleapis.com/auth/drive.readonly"
DEVICE_ALLOWED_SCOPES = {
    "openid", "email", "profile",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/userinfo.profile",
    "https://www.googleapis.com/auth/drive.appdata",
    SCOPE_DRIVE_FILE,
    "https://www.googleapis.com/auth/youtube",
    "https://www.googleapis.com/auth/youtube.readonly",
}
USER_EMAIL = "emulated.user@example.com"

DEFAULT_SETTINGS = {
    "token_lifetime": 3599,        # seconds an access token lives
    "page_size_cap": 100,          # files.list pageSize cap (values above are lowered)
    "page_size_default": 100,
    "page_pattern": None,          # e.g. [0, 3]: page i holds at most pattern[i % n] files
    "list_delay_ms": 0,            # new/changed entries invisible to list+changes for N ms
    "quota_limit": 15 * 1024 ** 3, # storageQuota.limit in bytes
    "upload_final_status": 200,    # 200 or 201 for the last resumable chunk
    "device_pending_polls": 2,     # authorization_pending answers before one slow_down
    "device_interval": 1,          # interval returned by /device/code (seconds)
    "latency_ms": 0,
}

# Every field name of the v3 File resource; fields= selections are checked against it.
FILE_FIELDS = set("""
kind driveId fileExtension copyRequiresWriterPermission md5Checksum contentHints
writersCanShare viewedByMe mimeType exportLinks parents thumbnailLink iconLink shared
lastModifyingUser owners headRevisionId sharingUser webViewLink webContentLink size
viewersCanCopyContent permissions hasThumbnail spaces folderColorRgb id name description
starred trashed explicitlyTrashed createdTime modifiedTime modifiedByMeTime viewedByMeTime
sharedWithMeTime quotaBytesUsed version originalFilename ownedByMe fullFileExtension
properties appProperties isAppAuthorized teamDriveId capabilities hasAugmentedPermissions
trashingUser thumbnailVersion trashedTime modifiedByMe permissionIds imageMediaMetadata
videoMediaMetadata shortcutDetails contentRestrictions resourceKey linkShareMetadata
labelInfo sha1Checksum sha256Checksum inheritedPermissionsDisabled downloadRestrictions
""".split())
FILE_SCHEMA = {f: None for f in FILE_FIELDS}
SCHEMAS = {
    "file": FILE_SCHEMA,
    "fileList": {"kind": None, "nextPageToken": None, "incompleteSearch": None,
                 "files": FILE_SCHEMA},
    "changeList": {"kind": None, "nextPageToken": None, "newStartPageToken": None,
                   "changes": {"kind": None, "changeType": None, "time": None,
                               "removed": None, "fileId": None, "file": FILE_SCHEMA,
                               "driveId": None, "drive": None, "teamDriveId": None,
                               "teamDrive": None, "type": None}},
    "about": {f: None for f in (
        "kind user storageQuota importFormats exportFormats maxImportSizes maxUploadSize "
        "appInstalled folderColorPalette driveThemes canCreateDrives canCreateTeamDrives "
        "teamDriveThemes").split()},
    "startPageToken": {"kind": None, "startPageToken": None},
    "generatedIds": {"kind": None, "space": None, "ids": None},
}
DEFAULT_FIELDS = {
    "file": "kind,id,name,mimeType,resourceKey",
    "fileList": "kind,nextPageToken,incompleteSearch,files(kind,id,name,mimeType,resourceKey)",
    "changeList": "*",
    "startPageToken": "*",
    "generatedIds": "*",
}
# Fields a client may set in files.create / files.update bodies.
CREATE_WRITABLE = {"id", "name", "mimeType", "parents", "description", "appProperties",
                   "properties", "createdTime", "modifiedTime", "starred", "trashed",
                   "originalFilename", "folderColorRgb", "contentHints", "shortcutDetails",
                   "writersCanShare", "copyRequiresWriterPermission", "viewedByMeTime",
                   "contentRestrictions", "driveId", "teamDriveId", "kind"}
UPDATE_WRITABLE = {"name", "mimeType", "description", "appProperties", "properties",
                   "modifiedTime", "starred", "trashed", "originalFilename",
                   "folderColorRgb", "contentHints", "writersCanShare",
                   "copyRequiresWriterPermission", "viewedByMeTime", "contentRestrictions",
                   "kind"}
ORDER_KEYS = {"createdTime", "folder", "modifiedByMeTime", "modifiedTime", "name",
              "name_natural", "quotaBytesUsed", "recency", "sharedWithMeTime", "starred",
              "viewedByMeTime"}


# --------------------------------------------------------------------------- errors

class DriveError(Exception):
    """An error answered with Google's JSON error body."""

    def __init__(self, code, reason, message, domain="global", location=None,
                 location_type="parameter", headers=None):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.domain, self.location, self.location_type = domain, location, location_type
        self.headers = headers or {}

    def body(self):
        err = {"domain": self.domain, "reason": self.reason, "message": self.message}
        if self.location:
            err["locationType"] = self.location_type
            err["location"] = self.location
        return {"error": {"code": self.code, "message": self.message, "errors": [err]}}


class OAuthError(Exception):
    """An error answered with the OAuth token endpoint's shape."""

    def __init__(self, error, description, code=400):
        super().__init__(description)
        self.error, self.description, self.code = error, description, code


class DropConnection(Exception):
    """Close the socket without answering (fault injection)."""


def bad_request(message, location=None, reason="badRequest"):
    return DriveError(400, reason, message, location=location)


def invalid_value(location):
    return DriveError(400, "invalid", "Invalid Value", location=location)


def not_found(file_id):
    return DriveError(404, "notFound", "File not found: %s." % file_id, location="fileId")


def auth_error():
    return DriveError(401, "authError", "Invalid Credentials", location="Authorization",
                      location_type="header",
                      headers={"WWW-Authenticate":
                               'Bearer realm="https://accounts.google.com/", '
                               'error="invalid_token"'})


STATUS_BODIES = {
    403: ("usageLimits", "userRateLimitExceeded", "User Rate Limit Exceeded"),
    429: ("usageLimits", "rateLimitExceeded", "Rate Limit Exceeded"),
    500: ("global", "backendError", "Backend Error"),
    502: ("global", "backendError", "Bad Gateway"),
    503: ("global", "backendError", "Service Unavailable"),
    504: ("global", "backendError", "Gateway Timeout"),
}


# --------------------------------------------------------------------------- helpers

def rfc3339(t):
    ms = int(round(t * 1000))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)


_TIME_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(\.\d+)?)?"
                      r"(Z|[+-]\d{2}:\d{2})?$")


def parse_time(text):
    """RFC 3339 (as Drive accepts it) to epoch seconds, or None."""
    m = _TIME_RE.match(text)
    if not m:
        return None
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    try:
        import calendar
        t = calendar.timegm((int(y), int(mo), int(d), int(hh or 0), int(mi or 0),
                             int(ss or 0), 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    if frac:
        t += float(frac)
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        t -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    return t


def new_id(length=33):
    return "1" + "".join(secrets.choice(ID_ALPHABET) for _ in range(length - 1))


def b64url_nopad(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def json_bytes(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=False).encode()


class Clock:
    """Wall clock plus an offset tests can advance (token/session/code expiry)."""

    def __init__(self):
        self.offset = 0.0

    def now(self):
        return time.time() + self.offset


# --------------------------------------------------------------------------- fields=

def parse_fields(text):
    """Parse a fields selector ("a,b(c,d/e),f/g") into a nested dict tree.

    A leaf is None (select the whole value)."""
    pos = 0

    def parse_list(depth):
        nonlocal pos
        tree = {}
        while True:
            m = re.compile(r"\s*([A-Za-z0-9_*]+)").match(text, pos)
            if not m:
                raise invalid_fields(text)
            path = [m.group(1)]
            pos = m.end()
            while pos < len(text) and text[pos] == "/":
                m = re.compile(r"([A-Za-z0-9_*]+)").match(text, pos + 1)
                if not m:
                    raise invalid_fields(text)
                path.append(m.group(1))
                pos = m.end()
            sub = None
            if pos < len(text) and text[pos] == "(":
                pos += 1
                sub = parse_list(depth + 1)
                if pos >= len(text) or text[pos] != ")":
                    raise invalid_fields(text)
                pos += 1
            node = tree
            for name in path[:-1]:
                nxt = node.get(name, {})
                if nxt is None:
                    break
                node[name] = nxt
                node = nxt
            else:
                merge_tree(node, path[-1], sub)
            while pos < len(text) and text[pos] == " ":
                pos += 1
            if pos < len(text) and text[pos] == ",":
                pos += 1
                continue
            if depth == 0 and pos != len(text):
                raise invalid_fields(text)
            return tree

    if not text.strip():
        raise invalid_fields(text)
    return parse_list(0)


def merge_tree(node, name, sub):
    if name in node:
        if node[name] is None or sub is None:
            node[name] = None
        else:
            for k, v in sub.items():
                merge_tree(node[name], k, v)
    else:
        node[name] = sub


def invalid_fields(text):
    return DriveError(400, "invalidParameter", "Invalid field selection %s" % text,
                      location="fields")


def check_fields(tree, schema):
    if schema is None:
        return
    for name, sub in tree.items():
        if name == "*":
            continue
        if name not in schema:
            raise invalid_fields(name)
        if sub is not None:
            check_fields(sub, schema[name])


def apply_fields(obj, tree):
    if tree is None:
        return obj
    if isinstance(obj, list):
        return [apply_fields(o, tree) for o in obj]
    if not isinstance(obj, dict):
        return obj
    if "*" in tree:
        out = dict(obj)
        for name, sub in tree.items():
            if name != "*" and name in obj and sub is not None:
                out[name] = apply_fields(obj[name], sub)
        return out
    return {name: apply_fields(obj[name], sub) for name, sub in tree.items() if name in obj}


def select_fields(obj, fields_param, kind):
    """Apply the request's fields= (or the kind's default) to obj."""
    text = fields_param if fields_param is not None else DEFAULT_FIELDS.get(kind, "*")
    tree = parse_fields(text)
    check_fields(tree, SCHEMAS.get(kind))
    return apply_fields(obj, tree)


# --------------------------------------------------------------------------- q parser

class QueryParser:
    """Recursive-descent parser for the files.list q language.

    Grammar:  expr := and ('or' and)* ; and := unary ('and' unary)* ;
              unary := 'not' unary | '(' expr ')' | term
    Terms: 'v' in parents|owners|writers|readers ; FIELD OP VALUE ;
           (app)properties has { key='k' and value='v' } ; sharedWithMe.
    The result is a predicate taking (file_meta, context)."""

    TOKEN_RE = re.compile(r"\s*(?:(?P<str>')|(?P<op>!=|<=|>=|=|<|>)|(?P<punct>[(){}])"
                          r"|(?P<word>[A-Za-z_][A-Za-z0-9_.]*)|(?P<num>-?\d+(?:\.\d+)?))")

    STRING_FIELDS = {"name", "mimeType", "fullText", "visibility"}
    TIME_FIELDS = {"modifiedTime", "createdTime", "viewedByMeTime", "sharedWithMeTime"}
    BOOL_FIELDS = {"trashed", "starred", "hidden"}
    IN_FIELDS = {"parents", "owners", "writers", "readers"}

    def __init__(self, text):
        self.text = text
        self.tokens = self.tokenize(text)
        self.pos = 0

    @classmethod
    def tokenize(cls, text):
        tokens, pos = [], 0
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos >= len(text):
                break
            m = cls.TOKEN_RE.match(text, pos)
            if not m:
                raise invalid_value("q")
            if m.group("str"):
                value, i = [], m.end()
                while True:
                    if i >= len(text):
                        raise invalid_value("q")  # unterminated string
                    c = text[i]
                    if c == "\\":
                        if i + 1 >= len(text) or text[i + 1] not in "\\'":
                            raise invalid_value("q")
                        value.append(text[i + 1])
                        i += 2
                    elif c == "'":
                        i += 1
                        break
                    else:
                        value.append(c)
                        i += 1
                tokens.append(("str", "".join(value)))
                pos = i
            elif m.group("op"):
                tokens.append(("op", m.group("op")))
                pos = m.end()
            elif m.group("punct"):
                tokens.append((m.group("punct"), m.group("punct")))
                pos = m.end()
            elif m.group("word"):
                word = m.group("word")
                low = word.lower()
                if low in ("and", "or", "not", "in", "has", "contains", "true", "false"):
                    tokens.append((low, low))
                else:
                    tokens.append(("word", word))
                pos = m.end()
            else:
                tokens.append(("num", m.group("num")))
                pos = m.end()
        return tokens

    def peek(self, kind=None):
        if self.pos >= len(self.tokens):
            return None
        tok = self.tokens[self.pos]
        if kind is not None and tok[0] != kind:
            return None
        return tok

    def take(self, kind):
        tok = self.peek(kind)
        if tok is None:
            raise invalid_value("q")
        self.pos += 1
        return tok

    def parse(self):
        if not self.tokens:
            raise invalid_value("q")
        pred = self.parse_or()
        if self.pos != len(self.tokens):
            raise invalid_value("q")
        return pred

    def parse_or(self):
        preds = [self.parse_and()]
        while self.peek("or"):
            self.pos += 1
            preds.append(self.parse_and())
        return preds[0] if len(preds) == 1 else (lambda f, c: any(p(f, c) for p in preds))

    def parse_and(self):
        preds = [self.parse_unary()]
        while self.peek("and"):
            self.pos += 1
            preds.append(self.parse_unary())
        if len(preds) == 1:
            return preds[0]
        pred = lambda f, c: all(p(f, c) for p in preds)  # noqa: E731
        # A conjunction containing "'X' in parents" only matches children of X.
        pred.parents = [v for p in preds for v in getattr(p, "parents", [])]
        return pred

    def parse_unary(self):
        if self.peek("not"):
            self.pos += 1
            inner = self.parse_unary()
            return lambda f, c: not inner(f, c)
        if self.peek("("):
            self.pos += 1
            inner = self.parse_or()
            self.take(")")
            return inner
        return self.parse_term()

    def parse_term(self):
        tok = self.peek()
        if tok is None:
            raise invalid_value("q")
        if tok[0] == "str":
            self.pos += 1
            self.take("in")
            field = self.take("word")[1]
            if field not in self.IN_FIELDS:
                raise invalid_value("q")
            return self.in_term(tok[1], field)
        field = self.take("word")[1]
        if field in ("appProperties", "properties"):
            self.take("has")
            return self.has_term(field)
        if field == "sharedWithMe":
            return lambda f, c: False
        nxt = self.peek()
        if nxt is None:
            raise invalid_value("q")
        if nxt[0] == "contains":
            self.pos += 1
            value = self.take("str")[1]
            if field not in ("name", "fullText", "mimeType"):
                raise invalid_value("q")
            return self.contains_term(field, value)
        op = self.take("op")[1]
        if field in self.STRING_FIELDS and field != "fullText":
            value = self.take("str")[1]
            if op not in ("=", "!="):
                raise invalid_value("q")
            return self.string_term(field, op, value)
        if field in self.BOOL_FIELDS:
            vt = self.peek()
            if vt is None or vt[0] not in ("true", "false") or op not in ("=", "!="):
                raise invalid_value("q")
            self.pos += 1
            want = vt[0] == "true"
            if op == "!=":
                want = not want
            return lambda f, c: bool(f.get(field, False)) == want
        if field in self.TIME_FIELDS:
            t = parse_time(self.take("str")[1])
            if t is None:
                raise invalid_value("q")
            return self.time_term(field, op, t)
        raise invalid_value("q")

    @staticmethod
    def in_term(value, field):
        if field == "parents":
            pred = lambda f, c: c.resolve_id(value) in f.get("parents", [])  # noqa: E731
            pred.parents = [value]  # lets the store start from that folder's children
            return pred
        return lambda f, c: value in ("me", USER_EMAIL) and not f.get("_foreign")

    def has_term(self, field):
        self.take("{")
        if self.take("word")[1] != "key":
            raise invalid_value("q")
        if self.take("op")[1] != "=":
            raise invalid_value("q")
        key = self.take("str")[1]
        self.take("and")
        if self.take("word")[1] != "value":
            raise invalid_value("q")
        if self.take("op")[1] != "=":
            raise invalid_value("q")
        value = self.take("str")[1]
        self.take("}")
        return lambda f, c: (f.get(field) or {}).get(key) == value

    @staticmethod
    def contains_term(field, value):
        needle = value.lower()
        if field == "name":
            # Drive: prefix matching on the name and on each of its words.
            def pred(f, c):
                name = f.get("name", "").lower()
                words = [w for w in re.split(r"[^0-9a-z]+", name) if w]
                return name.startswith(needle) or any(w.startswith(needle) for w in words)
            return pred
        if field == "fullText":
            return lambda f, c: (needle in f.get("name", "").lower()
                                 or needle in f.get("description", "").lower())
        return lambda f, c: value in f.get(field, "")

    @staticmethod
    def string_term(field, op, value):
        if field == "name":  # name = is case-insensitive on Drive
            folded = value.casefold()
            eq = lambda f, c: f.get("name", "").casefold() == folded  # noqa: E731
        else:
            eq = lambda f, c: f.get(field) == value  # noqa: E731
        if op == "=":
            return eq
        return lambda f, c: not eq(f, c)

    @staticmethod
    def time_term(field, op, t):
        ops = {"=": lambda a: a == t, "!=": lambda a: a != t, "<": lambda a: a < t,
               "<=": lambda a: a <= t, ">": lambda a: a > t, ">=": lambda a: a >= t}
        cmp = ops[op]

        def pred(f, c):
            v = f.get(field)
            return v is not None and cmp(parse_time(v))
        return pred


def parse_query(text):
    return QueryParser(text).parse()


# --------------------------------------------------------------------------- storage

class Store:
    """All emulator state.  Tables are dicts of JSON values; every mutation is
    appended to a journal and the whole state is compacted into index.json
    (write to a temporary file, fsync, rename) every COMPACT_EVERY records."""

    TABLES = ("files", "changes", "sessions", "generated", "access", "refresh", "codes",
              "devices", "misc")
    COMPACT_EVERY = 2000

    def __init__(self, root, clock):
        self.root = root
        self.clock = clock
        self.lock = threading.RLock()
        self.blob_dir = os.path.join(root, "blobs")
        self.upload_dir = os.path.join(root, "uploads")
        os.makedirs(self.blob_dir, exist_ok=True)
        os.makedirs(self.upload_dir, exist_ok=True)
        for name in os.listdir(self.blob_dir):
            if name.startswith(".tmp-"):  # left by a kill in the middle of an upload
                os.unlink(os.path.join(self.blob_dir, name))
        self.index_path = os.path.join(root, "index.json")
        self.journal_path = os.path.join(root, "journal.jsonl")
        self.t = {name: {} for name in self.TABLES}
        self.defaults = dict(DEFAULT_SETTINGS)  # command-line options adjust these
        self.settings = {}  # set through /__control; not persisted
        self.load()
        self.journal = open(self.journal_path, "a", encoding="utf-8")
        self.journal_records = 0
        self.children = {}
        for fid, meta in self.t["files"].items():
            for p in meta.get("parents", []):
                self.children.setdefault(p, set()).add(fid)
        if "root_id" not in self.t["misc"]:
            self.create_root()

    # -- persistence
    def load(self):
        if os.path.exists(self.index_path):
            with open(self.index_path, encoding="utf-8") as f:
                snap = json.load(f)
            for name in self.TABLES:
                self.t[name] = snap.get(name, {})
        if os.path.exists(self.journal_path):
            with open(self.journal_path, encoding="utf-8") as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        break  # torn last line after a kill: ignore it
                    self.apply(rec["t"], rec["k"], rec.get("v"))
        # Fold the journal into a fresh snapshot so each start begins clean.
        self.write_snapshot()

    def apply(self, table, key, value):
        if value is None:
            self.t[table].pop(key, None)
        else:
            self.t[table][key] = value

    def write_snapshot(self):
        tmp = self.index_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.t, f, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.index_path)
        with open(self.journal_path, "w", encoding="utf-8"):
            pass
        dfd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def put(self, table, key, value):
        """Set (or with value None delete) one record, durably journaled."""
        self.apply(table, key, value)
        self.journal.write(json.dumps({"t": table, "k": key, "v": value},
                                      separators=(",", ":")) + "\n")
        self.journal.flush()
        self.journal_records += 1
        if self.journal_records >= self.COMPACT_EVERY:
            self.journal.close()
            self.write_snapshot()
            self.journal = open(self.journal_path, "a", encoding="utf-8")
            self.journal_records = 0

    def close(self):
        with self.lock:
            self.journal.close()
            self.write_snapshot()

    # -- files
    def create_root(self):
        rid = new_id(19)
        now = rfc3339(self.clock.now())
        self.put("files", rid, {"id": rid, "name": "My Drive", "mimeType": FOLDER_MIME,
                                "trashed": False, "explicitlyTrashed": False,
                                "createdTime": now, "modifiedTime": now, "version": 1,
                                "starred": False, "_root": True})
        self.put("misc", "root_id", rid)

    @property
    def root_id(self):
        return self.t["misc"]["root_id"]

    def resolve_id(self, file_id):
        return self.root_id if file_id == "root" else file_id

    def get_file(self, file_id, ctx=None):
        meta = self.t["files"].get(self.resolve_id(file_id))
        if meta is None or (ctx is not None and not ctx.can_see(meta)):
            raise not_found(file_id)
        return meta

    def blob_path(self, file_id):
        return os.path.join(self.blob_dir, file_id)

    def save_file(self, meta, change=True, removed=False):
        """Store meta (bumping version), index its parents, record a change."""
        fid = meta["id"]
        old = self.t["files"].get(fid)
        if old is not None:
            for p in old.get("parents", []):
                self.children.get(p, set()).discard(fid)
        for p in meta.get("parents", []):
            self.children.setdefault(p, set()).add(fid)
        delay = self.setting("list_delay_ms")
        now = self.clock.now()
        if delay:
            # Listings keep showing the previous state (nothing, for a new file) until
            # the delay has passed; files.get by id sees the new state at once.
            if old is not None and old.get("_listed_until", 0) > now:
                meta["_listed"] = old.get("_listed")
            elif old is not None:
                meta["_listed"] = {k: v for k, v in old.items() if not k.startswith("_")}
            else:
                meta["_listed"] = None
            meta["_listed_until"] = now + delay / 1000.0
        else:
            meta.pop("_listed", None)
            meta.pop("_listed_until", None)
        self.put("files", fid, meta)
        if change:
            self.add_change(fid, removed)

    def add_change(self, fid, removed):
        seq = self.t["misc"].get("change_seq", 1)
        now = self.clock.now()
        delay = self.setting("list_delay_ms")
        self.put("changes", str(seq), {"fileId": fid, "removed": removed, "time": rfc3339(now),
                                       "visibleAt": now + delay / 1000.0})
        self.put("misc", "change_seq", seq + 1)

    def delete_file(self, fid):
        meta = self.t["files"].get(fid)
        if meta is None:
            return
        for child in list(self.children.get(fid, ())):
            self.delete_file(child)
        for p in meta.get("parents", []):
            self.children.get(p, set()).discard(fid)
        self.children.pop(fid, None)
        self.put("files", fid, None)
        try:
            os.unlink(self.blob_path(fid))
        except FileNotFoundError:
            pass
        self.add_change(fid, True)

    def descendants(self, fid):
        out, stack = [], [fid]
        while stack:
            for child in self.children.get(stack.pop(), ()):
                out.append(child)
                stack.append(child)
        return out

    def usage(self):
        total = trash = 0
        for meta in self.t["files"].values():
            n = int(meta.get("size", 0))
            total += n
            if meta.get("trashed"):
                trash += n
        return total, trash

    # -- settings
    def setting(self, name):
        return self.settings.get(name, self.defaults[name])

    def set_settings(self, values):
        for k in values:
            if k not in DEFAULT_SETTINGS:
                raise ValueError("unknown setting %r" % k)
        self.settings.update(values)


def listed_view(meta, now):
    """What listings show of a file: during a delayed-visibility window the state
    before the last change (None for a file that is not listed yet)."""
    if meta is None:
        return None
    if meta.get("_listed_until", 0) > now:
        return meta.get("_listed")
    return meta


def public_meta(meta):
    """The File resource as the API shows it (internal keys dropped, int64 as strings)."""
    out = {"kind": "drive#file"}
    for k, v in meta.items():
        if k.startswith("_"):
            continue
        if k in ("size", "version", "quotaBytesUsed"):
            v = str(v)
        out[k] = v
    if meta.get("_root"):
        out.pop("trashed", None)
        out.pop("explicitlyTrashed", None)
    out["spaces"] = ["drive"]
    out["ownedByMe"] = not meta.get("_foreign", False)
    out["capabilities"] = {"canEdit": True, "canDelete": True, "canTrash": True,
                           "canDownload": not meta["mimeType"].startswith(GOOGLE_APPS_PREFIX),
                           "canAddChildren": meta["mimeType"] == FOLDER_MIME}
    if "size" in meta:
        out["quotaBytesUsed"] = str(meta["size"])
    return out


# --------------------------------------------------------------------------- faults

class Faults:
    """Scripted failures consumed by matching requests (method, path prefix, count),
    plus an outage switch that fails every request while it lasts."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []
        self.outage = None  # {"mode": "drop"|status, "until": time or None}

    def outage_rule(self):
        """The rule to apply while an outage lasts, else None."""
        with self.lock:
            o = self.outage
            if o is None:
                return None
            if o["until"] is not None and time.time() >= o["until"]:
                self.outage = None
                return None
            if o["mode"] == "drop":
                return {"kind": "drop", "after_bytes": 0, "immediate": True}
            return {"kind": "fault", "status": int(o["mode"])}

    def add(self, rule):
        rule = dict(rule)
        rule.setdefault("count", 1)
        with self.lock:
            self.rules.append(rule)

    def clear(self):
        with self.lock:
            self.rules = []
            self.outage = None

    def take(self, method, path):
        with self.lock:
            for rule in self.rules:
                if rule["count"] <= 0:
                    continue
                if rule.get("method") and rule["method"].upper() != method:
                    continue
                if rule.get("path") and not path.startswith(rule["path"]):
                    continue
                if rule.get("path_regex") and not re.search(rule["path_regex"], path):
                    continue
                rule["count"] -= 1
                return dict(rule)
        return None

    def snapshot(self):
        with self.lock:
            return [dict(r) for r in self.rules if r["count"] > 0]


# --------------------------------------------------------------------------- request context

class Request:
    """One parsed request plus its auth context."""

    def __init__(self, handler, method):
        self.handler = handler
        self.method = method
        parsed = urllib.parse.urlsplit(handler.path)
        self.path = parsed.path
        self.raw_query = parsed.query
        self.query = {}
        for k, v in urllib.parse.parse_qsl(parsed.query, keep_blank_values=True):
            self.query.setdefault(k, v)
        self.headers = handler.headers
        self.token = None
        self.drop_after = None
        self.drop_after_commit = False
        self.hold_reply = None     # a "stall" with "reply": seconds to hold the answer
        self._body = None

    def arg(self, name, default=None):
        return self.query.get(name, default)

    def bool_arg(self, name, default=False):
        v = self.query.get(name)
        if v is None:
            return default
        if v.lower() in ("true", "1"):
            return True
        if v.lower() in ("false", "0"):
            return False
        raise invalid_value(name)

    def body(self):
        if self._body is None:
            if self.drop_after is not None:
                self.handler.body.read(self.drop_after)
                raise DropConnection()
            self._body = self.handler.body.read_all()
        return self._body

    def json_body(self, allow_empty=True):
        raw = self.body()
        if not raw.strip():
            if allow_empty:
                return {}
            raise bad_request("Request body is empty.")
        try:
            obj = json.loads(raw)
        except ValueError:
            raise bad_request("Invalid JSON payload received.", reason="parseError")
        if not isinstance(obj, dict):
            raise bad_request("Invalid JSON payload received. Expected an object.",
                              reason="parseError")
        return obj

    def form(self):
        """Form-encoded fields (a JSON object body is accepted too, as Google does)."""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype == "application/json":
            obj = self.json_body()
            return {k: v if isinstance(v, str) else json.dumps(v) for k, v in obj.items()}
        raw = self.body().decode("utf-8", "replace")
        out = {}
        for k, v in urllib.parse.parse_qsl(raw, keep_blank_values=True):
            out.setdefault(k, v)
        return out

    # scope checks
    def can_see(self, meta):
        if self.token is None:
            return True
        scopes = self.token["scope"].split()
        if SCOPE_DRIVE in scopes or SCOPE_DRIVE_READONLY in scopes:
            return True
        return not meta.get("_foreign", False)

    def resolve_id(self, file_id):
        return self.handler.server.emu.store.resolve_id(file_id)


class BodyReader:
    """Reads a request body framed by Content-Length or chunked encoding."""

    def __init__(self, rfile, headers):
        self.rfile = rfile
        te = (headers.get("Transfer-Encoding") or "").lower()
        self.chunked = "chunked" in te
        self.remaining = None
        if not self.chunked:
            cl = headers.get("Content-Length")
            try:
                self.remaining = int(cl) if cl is not None else 0
            except ValueError:
                self.remaining = 0
            if self.remaining < 0:
                self.remaining = 0
        self.chunk_left = 0
        self.done = not self.chunked and self.remaining == 0
        self.total_read = 0

    def read(self, n):
        """Up to n bytes; b'' at the end of the body (or if the peer went away)."""
        if self.done or n <= 0:
            return b""
        if not self.chunked:
            data = self.rfile.read(min(n, self.remaining))
            self.remaining -= len(data)
            if not data or self.remaining == 0:
                self.done = True
            self.total_read += len(data)
            return data
        if self.chunk_left == 0:
            line = self.rfile.readline(65537)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                self.done = True
                return b""
            if size == 0:
                while True:  # trailers
                    line = self.rfile.readline(65537)
                    if line in (b"\r\n", b"\n", b""):
                        break
                self.done = True
                return b""
            self.chunk_left = size
        data = self.rfile.read(min(n, self.chunk_left))
        self.chunk_left -= len(data)
        if not data:
            self.done = True
        elif self.chunk_left == 0:
            self.rfile.readline(3)  # CRLF after the chunk
        self.total_read += len(data)
        return data

    def read_all(self):
        parts = []
        while True:
            data = self.read(1 << 20)
            if not data:
                break
            parts.append(data)
        return b"".join(parts)

    def drain(self):
        while self.read(1 << 20):
            pass

    def expected_length(self):
        return None if self.chunked else self.remaining + self.total_read


class Response:
    def __init__(self, status, body=b"", content_type="application/json; charset=UTF-8",
                 headers=None, stream=None, reason=None):
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}
        self.stream = stream  # (path, offset, length) streamed from disk
        self.reason = reason


def json_response(obj, status=200, headers=None):
    return Response(status, json_bytes(obj), headers=headers)


def empty_response(status=204, headers=None):
    return Response(status, b"", content_type=None, headers=headers)


# --------------------------------------------------------------------------- the emulator

class Emulator:
    def __init__(self, root, latency_ms=0, token_lifetime=None):
        self.clock = Clock()
        self.store = Store(root, self.clock)
        self.store.defaults["latency_ms"] = latency_ms
        if token_lifetime is not None:
            self.store.defaults["token_lifetime"] = token_lifetime
        self.faults = Faults()
        self.log = []
        self.log_lock = threading.Lock()
        self.page_tokens = {}
        self.page_epoch = secrets.token_hex(4)
        self.reject_page_tokens = 0   # the next N requests with a page token get 400
        self.base_url = None
        self.session_locks = {}  # upload_id -> Lock: one chunk at a time per session

    # -------------------------------------------------------------- routing
    ROUTES = [
        ("GET", r"/o/oauth2(?:/v2)?/auth", "oauth_consent", False),
        ("POST", r"/(?:token|o/oauth2/token)", "oauth_token", False),
        ("POST", r"/device/code", "oauth_device", False),
        ("POST", r"/revoke", "oauth_revoke", False),
        ("GET", r"/\.well-known/openid-configuration", "oidc_config", False),
        ("GET", r"/drive/v3/about", "about_get", True),
        ("GET", r"/drive/v3/changes/startPageToken", "changes_start", True),
        ("GET", r"/drive/v3/changes", "changes_list", True),
        ("GET", r"/drive/v3/files/generateIds", "files_generate_ids", True),
        ("DELETE", r"/drive/v3/files/trash", "files_empty_trash", True),
        ("GET", r"/drive/v3/files", "files_list", True),
        ("POST", r"/drive/v3/files", "files_create", True),
        ("GET", r"/drive/v3/files/(?P<id>[^/]+)", "files_get", True),
        ("PATCH", r"/drive/v3/files/(?P<id>[^/]+)", "files_update", True),
        ("DELETE", r"/drive/v3/files/(?P<id>[^/]+)", "files_delete", True),
        ("POST", r"/upload/drive/v3/files", "upload_create", True),
        ("PATCH", r"/upload/drive/v3/files/(?P<id>[^/]+)", "upload_update", True),
    ]
    COMPILED = [(m, re.compile(p + r"/?$"), h, a) for m, p, h, a in ROUTES]

    def route(self, req):
        # A resumable session URI answers PUT, POST and PATCH alike.  The upload_id is
        # the credential (Google's examples send no Authorization there), so an expired
        # access token does not interrupt an upload.
        if req.path.startswith("/upload/drive/v3/files") and "upload_id" in req.query:
            return self.upload_session(req)
        path_matched = False
        for method, regex, handler, needs_auth in self.COMPILED:
            m = regex.match(req.path)
            if not m:
                continue
            path_matched = True
            if method != req.method:
                continue
            if needs_auth:
                self.authenticate(req)
            return getattr(self, handler)(req, **m.groupdict())
        if path_matched:
            raise DriveError(405, "methodNotAllowed", "Method not allowed.")
        raise DriveError(404, "notFound", "Not Found")

    def authenticate(self, req):
        auth = req.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            raise auth_error()
        token = auth[7:].strip()
        with self.store.lock:
            rec = self.store.t["access"].get(token)
        if rec is None or rec["expires"] <= self.clock.now():
            raise auth_error()
        req.token = rec
        scopes = rec["scope"].split()
        if not any(s.startswith(SCOPE_DRIVE) for s in scopes):
            raise DriveError(403, "insufficientPermissions",
                             "Insufficient Permission: Request had insufficient "
                             "authentication scopes.")
        if req.method != "GET" and SCOPE_DRIVE not in scopes and SCOPE_DRIVE_FILE not in scopes \
                and not any(s.endswith("drive.appdata") for s in scopes):
            raise DriveError(403, "insufficientPermissions",
                             "Insufficient Permission: Request had insufficient "
                             "authentication scopes.")

    # -------------------------------------------------------------- OAuth
    def issue_tokens(self, client_id, scope, refresh=True):
        access = "ya29.emu-" + secrets.token_urlsafe(48)
        lifetime = int(self.store.setting("token_lifetime"))
        with self.store.lock:
            self.store.put("access", access, {"client_id": client_id, "scope": scope,
                                              "expires": self.clock.now() + lifetime})
            out = {"access_token": access, "expires_in": lifetime, "scope": scope,
                   "token_type": "Bearer"}
            if refresh:
                rt = "1//emu-" + secrets.token_urlsafe(48)
                self.store.put("refresh", rt, {"client_id": client_id, "scope": scope,
                                               "issued": self.clock.now()})
                out["refresh_token"] = rt
        return out

    def oauth_consent(self, req):
        q = req.query
        redirect = q.get("redirect_uri", "")
        parts = urllib.parse.urlsplit(redirect)
        if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "::1", "localhost"):
            return Response(400, b"Error 400: invalid_request\nredirect_uri must be a "
                            b"loopback http URI\n", content_type="text/plain")
        if not q.get("client_id"):
            return Response(401, b"Error 401: invalid_client\n", content_type="text/plain")

        def back(params):
            sep = "&" if parts.query else "?"
            if "state" in q:
                params["state"] = q["state"]
            return empty_response(302, {"Location": redirect + sep +
                                        urllib.parse.urlencode(params)})

        if q.get("response_type") != "code":
            return back({"error": "unsupported_response_type"})
        if not q.get("scope"):
            return back({"error": "invalid_request", "error_description": "Missing scope"})
        method = q.get("code_challenge_method", "plain" if "code_challenge" in q else None)
        if method not in (None, "plain", "S256"):
            return back({"error": "invalid_request",
                         "error_description": "Invalid code_challenge_method"})
        if q.get("_deny") == "1":
            return back({"error": "access_denied"})
        code = "4/emu-" + secrets.token_urlsafe(32)
        with self.store.lock:
            consented = self.store.t["misc"].get("consented", [])
            first = q["client_id"] not in consented
            self.store.put("codes", code, {
                "client_id": q["client_id"], "redirect_uri": redirect, "scope": q["scope"],
                "challenge": q.get("code_challenge"), "method": method,
                "expires": self.clock.now() + CODE_LIFETIME,
                "refresh": q.get("access_type") == "offline" and
                           (first or q.get("prompt") == "consent")})
            if first:
                self.store.put("misc", "consented", consented + [q["client_id"]])
        return back({"code": code, "scope": q["scope"]})

    def oauth_token(self, req):
        form = req.form()
        grant = form.get("grant_type")
        if not form.get("client_id") and grant != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            raise OAuthError("invalid_client", "The OAuth client was not found.", 401)
        if grant == "authorization_code":
            return self.grant_code(form)
        if grant == "refresh_token":
            return self.grant_refresh(form)
        if grant == "urn:ietf:params:oauth:grant-type:device_code":
            return self.grant_device(form)
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return self.grant_jwt(form)
        raise OAuthError("unsupported_grant_type", "Invalid grant_type: %s" % grant)

    def grant_code(self, form):
        with self.store.lock:
            rec = self.store.t["codes"].get(form.get("code", ""))
            if rec is not None:
                self.store.put("codes", form["code"], None)  # single use
        if rec is None or rec["expires"] <= self.clock.now():
            raise OAuthError("invalid_grant", "Malformed auth code.")
        if rec["client_id"] != form["client_id"]:
            raise OAuthError("invalid_grant", "The auth code was issued to another client.")
        if rec["redirect_uri"] != form.get("redirect_uri"):
            raise OAuthError("redirect_uri_mismatch", "Bad Request")
        if rec["challenge"] is not None:
            verifier = form.get("code_verifier", "")
            if not re.fullmatch(r"[A-Za-z0-9._~-]{43,128}", verifier):
                raise OAuthError("invalid_grant", "Missing code verifier."
                                 if not verifier else "Invalid code verifier.")
            if rec["method"] == "S256":
                computed = b64url_nopad(hashlib.sha256(verifier.encode()).digest())
            else:
                computed = verifier
            if not secrets.compare_digest(computed, rec["challenge"]):
                raise OAuthError("invalid_grant", "Invalid code verifier.")
        return json_response(self.issue_tokens(rec["client_id"], rec["scope"],
                                               refresh=rec["refresh"]))

    def grant_refresh(self, form):
        with self.store.lock:
            rec = self.store.t["refresh"].get(form.get("refresh_token", ""))
        if rec is None or rec.get("revoked"):
            raise OAuthError("invalid_grant", "Token has been expired or revoked.")
        if rec["client_id"] != form["client_id"]:
            raise OAuthError("unauthorized_client", "Unauthorized")
        out = self.issue_tokens(rec["client_id"], form.get("scope") or rec["scope"],
                                refresh=False)
        return json_response(out)

    def oauth_device(self, req):
        form = req.form()
        if not form.get("client_id"):
            raise OAuthError("invalid_client", "The OAuth client was not found.", 401)
        scopes = form.get("scope", "").split()
        if not scopes or any(s not in DEVICE_ALLOWED_SCOPES for s in scopes):
            raise OAuthError("invalid_scope", "Some requested scopes were invalid. "
                             "{invalid=[%s]}" % ", ".join(s for s in scopes
                                                         if s not in DEVICE_ALLOWED_SCOPES))
        device_code = "AH-emu-" + secrets.token_urlsafe(32)
        user_code = "%s-%s-%s" % tuple("".join(secrets.choice("BCDFGHJKLMNPQRSTVWXZ")
                                               for _ in range(n)) for n in (3, 4, 3))
        interval = int(self.store.setting("device_interval"))
        with self.store.lock:
            self.store.put("devices", device_code, {
                "client_id": form["client_id"], "scope": " ".join(scopes), "polls": 0,
                "expires": self.clock.now() + DEVICE_CODE_LIFETIME, "user_code": user_code,
                "denied": False})
        return json_response({"device_code": device_code, "user_code": user_code,
                              "expires_in": DEVICE_CODE_LIFETIME, "interval": interval,
                              "verification_url": "https://www.google.com/device"})

    def grant_device(self, form):
        code = form.get("device_code", "")
        with self.store.lock:
            rec = self.store.t["devices"].get(code)
            if rec is None or rec["client_id"] != form["client_id"]:
                raise OAuthError("invalid_grant", "Malformed auth code.")
            if rec["expires"] <= self.clock.now():
                raise OAuthError("expired_token", "Expired device code.", 400)
            if rec["denied"]:
                raise OAuthError("access_denied", "Forbidden", 403)
            rec = dict(rec, polls=rec["polls"] + 1)
            self.store.put("devices", code, rec)
            pending = int(self.store.setting("device_pending_polls"))
            if rec["polls"] <= pending:
                raise OAuthError("authorization_pending", "Precondition Required", 428)
            if rec["polls"] == pending + 1:
                raise OAuthError("slow_down", "Forbidden", 403)
            self.store.put("devices", code, None)
        return json_response(self.issue_tokens(rec["client_id"], rec["scope"]))

    def grant_jwt(self, form):
        assertion = form.get("assertion", "")
        try:
            head_b64, claims_b64, sig_b64 = assertion.split(".")
            header = json.loads(b64url_decode(head_b64))
            claims = json.loads(b64url_decode(claims_b64))
            sig = b64url_decode(sig_b64)
        except (ValueError, TypeError):
            raise OAuthError("invalid_grant", "Invalid JWT: malformed assertion.")
        if header.get("alg") != "RS256":
            raise OAuthError("invalid_grant", "Invalid JWT: unsupported algorithm.")
        with self.store.lock:
            key = self.store.t["misc"].get("service_accounts", {}).get(claims.get("iss", ""))
        if key is None:
            raise OAuthError("invalid_grant", "Invalid JWT Signature.")
        if not rsa_pkcs1_sha256_verify(int(key["n"], 16), int(key["e"]),
                                       (head_b64 + "." + claims_b64).encode(), sig):
            raise OAuthError("invalid_grant", "Invalid JWT Signature.")
        now = self.clock.now()
        if claims.get("aud") not in (self.base_url + "/token",
                                     "https://oauth2.googleapis.com/token"):
            raise OAuthError("invalid_grant", "Invalid JWT: aud mismatch.")
        iat, exp = claims.get("iat", 0), claims.get("exp", 0)
        if not (iat - 300 <= now <= exp + 300) or exp - iat > 3600:
            raise OAuthError("invalid_grant", "Invalid JWT: Token must be a short-lived "
                             "token (60 minutes) and in a reasonable timeframe.")
        out = self.issue_tokens(claims["iss"], claims.get("scope", ""), refresh=False)
        return json_response(out)

    def oauth_revoke(self, req):
        token = req.arg("token") or req.form().get("token", "")
        with self.store.lock:
            if token in self.store.t["access"]:
                self.store.put("access", token, None)
            elif token in self.store.t["refresh"]:
                self.store.put("refresh", token, dict(self.store.t["refresh"][token],
                                                      revoked=True))
            else:
                raise OAuthError("invalid_token", "Token expired or revoked")
        return json_response({})

    def oidc_config(self, req):
        b = self.base_url
        return json_response({
            "issuer": "https://accounts.google.com",
            "authorization_endpoint": b + "/o/oauth2/v2/auth",
            "device_authorization_endpoint": b + "/device/code",
            "token_endpoint": b + "/token", "revocation_endpoint": b + "/revoke",
            "code_challenge_methods_supported": ["plain", "S256"]})

    # -------------------------------------------------------------- about / changes
    def about_get(self, req):
        if "fields" not in req.query:
            raise DriveError(400, "required", "The 'fields' parameter is required for this "
                             "method.", location="fields")
        with self.store.lock:
            used, trash = self.store.usage()
            limit = int(self.store.setting("quota_limit"))
        about = {"kind": "drive#about",
                 "user": {"kind": "drive#user", "displayName": "Emulated User", "me": True,
                          "permissionId": "00000000000000000001",
                          "emailAddress": USER_EMAIL},
                 "storageQuota": {"limit": str(limit), "usage": str(used),
                                  "usageInDrive": str(used), "usageInDriveTrash": str(trash)},
                 "maxUploadSize": str(5120 * 1024 ** 3), "appInstalled": False,
                 "canCreateDrives": False, "canCreateTeamDrives": False}
        return json_response(select_fields(about, req.arg("fields"), "about"))

    def changes_start(self, req):
        with self.store.lock:
            seq = self.store.t["misc"].get("change_seq", 1)
        return json_response(select_fields({"kind": "drive#startPageToken",
                                            "startPageToken": str(seq)},
                                           req.arg("fields"), "startPageToken"))

    def changes_list(self, req):
        token = req.arg("pageToken")
        if token is None:
            raise DriveError(400, "required", "Required parameter: pageToken",
                             location="pageToken")
        page_size = self.page_size(req, cap=1000)
        include_removed = req.bool_arg("includeRemoved", True)
        now = self.clock.now()
        with self.store.lock:
            end = self.store.t["misc"].get("change_seq", 1)
            if not token.isdigit() or not 1 <= int(token) <= end:
                raise invalid_value("pageToken")
            start = int(token)
            changes = self.store.t["changes"]
            # Changes not yet visible (delayed visibility) stop the feed there.
            visible_end = start
            while visible_end < end and changes[str(visible_end)]["visibleAt"] <= now:
                visible_end += 1
            latest = {}
            for seq in range(start, visible_end):
                latest[changes[str(seq)]["fileId"]] = seq
            out, seq = [], start
            while seq < visible_end and len(out) < page_size:
                ch = changes[str(seq)]
                seq += 1
                if latest[ch["fileId"]] != seq - 1:
                    continue  # a later change of the same file supersedes this one
                meta = self.store.t["files"].get(ch["fileId"])
                removed = ch["removed"] or meta is None or not req.can_see(meta)
                if removed and not include_removed:
                    continue
                item = {"kind": "drive#change", "changeType": "file", "type": "file",
                        "time": ch["time"], "removed": removed, "fileId": ch["fileId"]}
                if not removed:
                    item["file"] = public_meta(meta)
                out.append(item)
            result = {"kind": "drive#changeList", "changes": out}
            while seq < visible_end and latest[changes[str(seq)]["fileId"]] != seq:
                seq += 1
            if seq < visible_end:
                result["nextPageToken"] = str(seq)
            else:
                result["newStartPageToken"] = str(visible_end)
        return json_response(select_fields(result, req.arg("fields"), "changeList"))

    def page_size(self, req, cap=None):
        raw = req.arg("pageSize")
        if raw is None:
            return int(self.store.setting("page_size_default"))
        try:
            n = int(raw)
        except ValueError:
            raise invalid_value("pageSize")
        if n < 1:
            raise invalid_value("pageSize")
        return min(n, cap or int(self.store.setting("page_size_cap")))

    # -------------------------------------------------------------- files.list
    def files_list(self, req):
        page_size = self.page_size(req)
        fields = req.arg("fields")
        if fields is not None:  # validate before doing any work
            check_fields(parse_fields(fields), SCHEMAS["fileList"])
        spaces = req.arg("spaces", "drive")
        if any(s not in ("drive", "appDataFolder", "photos") for s in spaces.split(",")):
            raise invalid_value("spaces")
        corpora = req.arg("corpora", "user")
        if corpora not in ("user", "drive", "allDrives", "domain"):
            raise invalid_value("corpora")
        token = req.arg("pageToken")
        if token:
            with self.store.lock:
                state = self.page_tokens.get(token)
                reject = self.reject_page_tokens > 0
                if reject:
                    self.reject_page_tokens -= 1
            if reject or state is None or state["epoch"] != self.page_epoch or \
                    state["query"] != (req.arg("q"), req.arg("orderBy")):
                raise invalid_value("pageToken")
            ids, offset, page_no = state["ids"], state["offset"], state["page"]
        else:
            ids = self.run_query(req) if spaces == "drive" or "drive" in spaces.split(",") \
                else []
            offset, page_no = 0, 0
        pattern = self.store.setting("page_pattern")
        take = page_size
        if pattern:
            take = min(page_size, int(pattern[page_no % len(pattern)]))
        page_ids = ids[offset:offset + take]
        result = {"kind": "drive#fileList", "incompleteSearch": False}
        with self.store.lock:
            files = []
            now = self.clock.now()
            for fid in page_ids:
                view = listed_view(self.store.t["files"].get(fid), now)
                if view is not None:
                    files.append(public_meta(view))
            if offset + take < len(ids):
                tok = secrets.token_urlsafe(24)
                while len(self.page_tokens) >= 10000:  # forget the oldest tokens
                    del self.page_tokens[next(iter(self.page_tokens))]
                self.page_tokens[tok] = {"ids": ids, "offset": offset + take,
                                         "page": page_no + 1, "epoch": self.page_epoch,
                                         "query": (req.arg("q"), req.arg("orderBy"))}
                result["nextPageToken"] = tok
        result["files"] = files
        return json_response(select_fields(result, fields, "fileList"))

    def run_query(self, req):
        q = req.arg("q")
        pred = parse_query(q) if q is not None and q.strip() else (lambda f, c: True)
        order = self.order_key(req.arg("orderBy"))
        now = self.clock.now()
        with self.store.lock:
            matches = []
            files = self.store.t["files"]
            candidates = files.values()
            required = getattr(pred, "parents", None)
            if required and not self.store.setting("list_delay_ms"):
                ids = self.store.children.get(self.store.resolve_id(required[0]), ())
                candidates = [files[i] for i in ids if i in files]
            for meta in candidates:
                if meta.get("_root") or not req.can_see(meta):
                    continue
                view = listed_view(meta, now)
                if view is not None and pred(view, req):
                    matches.append(view)
            matches.sort(key=order)
            return [m["id"] for m in matches]

    @staticmethod
    def order_key(order_by):
        keys = []
        if order_by:
            for part in order_by.split(","):
                words = part.strip().split()
                if not words or words[0] not in ORDER_KEYS or len(words) > 2 or \
                        (len(words) == 2 and words[1].lower() != "desc"):
                    raise invalid_value("orderBy")
                keys.append((words[0], len(words) == 2))
        keys.append(("createdTime", False))
        keys.append(("id", False))

        def value(meta, name):
            if name == "folder":
                return 0 if meta.get("mimeType") == FOLDER_MIME else 1
            if name in ("name", "name_natural"):
                return meta.get("name", "").casefold()
            if name == "quotaBytesUsed":
                return int(meta.get("size", 0))
            if name == "starred":
                return 0 if meta.get("starred") else 1
            if name == "recency":
                return meta.get("modifiedTime", "")
            return meta.get(name, "") or ""

        class Key:
            __slots__ = ("meta",)

            def __init__(self, meta):
                self.meta = meta

            def __lt__(self, other):
                for name, desc in keys:
                    a, b = value(self.meta, name), value(other.meta, name)
                    if a != b:
                        return (a > b) if desc else (a < b)
                return False
        return Key

    # -------------------------------------------------------------- files.get
    def files_get(self, req, id):
        alt = req.arg("alt", "json")
        if alt not in ("json", "media"):
            raise invalid_value("alt")
        with self.store.lock:
            meta = dict(self.store.get_file(id, req))
        if alt == "json":
            return json_response(select_fields(public_meta(meta), req.arg("fields"), "file"))
        if meta["mimeType"].startswith(GOOGLE_APPS_PREFIX):
            raise DriveError(403, "fileNotDownloadable",
                             "Only files with binary content can be downloaded. Use Export "
                             "with Docs Editors files.", location="alt")
        if meta.get("_abusive") and not req.bool_arg("acknowledgeAbuse"):
            raise DriveError(403, "cannotDownloadAbusiveFile",
                             "This file has been identified as malware or spam and cannot "
                             "be downloaded.", location="acknowledgeAbuse")
        path = self.store.blob_path(meta["id"])
        size = int(meta.get("size", 0))
        try:
            fd = open(path, "rb")  # held open: a concurrent replace cannot tear the read
        except FileNotFoundError:
            fd = None
            size = 0
        headers = {"Accept-Ranges": "bytes"}
        status, offset, length = 200, 0, size
        rng = parse_range(req.headers.get("Range"), size)
        if rng == "unsatisfiable":
            if fd:
                fd.close()
            return Response(416, json_bytes(DriveError(
                416, "requestedRangeNotSatisfiable", "Request range not satisfiable").body()),
                headers={"Content-Range": "bytes */%d" % size})
        if rng is not None:
            offset, end = rng
            length = end - offset + 1
            status = 206
            headers["Content-Range"] = "bytes %d-%d/%d" % (offset, end, size)
        if meta.get("md5Checksum"):
            headers["X-Goog-Hash"] = "md5=" + base64.b64encode(
                bytes.fromhex(meta["md5Checksum"])).decode()
        return Response(status, content_type=meta["mimeType"], headers=headers,
                        stream=(fd, offset, length))

    def files_generate_ids(self, req):
        try:
            count = int(req.arg("count", "10"))
        except ValueError:
            raise invalid_value("count")
        if not 1 <= count <= 1000:
            raise invalid_value("count")
        space = req.arg("space", "drive")
        if space not in ("drive", "appDataFolder"):
            raise invalid_value("space")
        if req.arg("type", "files") not in ("files", "shortcuts"):
            raise invalid_value("type")
        ids = [new_id() for _ in range(count)]
        with self.store.lock:
            for i in ids:
                self.store.put("generated", i, 1)
        return json_response(select_fields({"kind": "drive#generatedIds", "space": space,
                                            "ids": ids}, req.arg("fields"), "generatedIds"))

    # -------------------------------------------------------------- create / update
    def check_property_maps(self, meta, body):
        for field in ("appProperties", "properties"):
            if field not in body:
                continue
            value = body[field]
            if value is None:
                meta.pop(field, None)
                continue
            if not isinstance(value, dict):
                raise bad_request("Invalid value for %s." % field, reason="invalid")
            merged = dict(meta.get(field) or {})
            for k, v in value.items():
                if v is None:
                    merged.pop(k, None)
                    continue
                if not isinstance(v, str):
                    v = json.dumps(v) if not isinstance(v, (int, float)) else str(v)
                if len((k + v).encode()) > 124:
                    raise bad_request("The size of the property '%s' exceeds the maximum "
                                      "of 124 bytes." % k, reason="invalid")
                merged[k] = v
            if len(merged) > 30:
                raise bad_request("The limit of 30 %s per file has been exceeded." % field,
                                  reason="invalid")
            if merged:
                meta[field] = merged
            else:
                meta.pop(field, None)
        if len(meta.get("appProperties", {})) + len(meta.get("properties", {})) > 100:
            raise bad_request("The limit for this file's properties has been exceeded.",
                              reason="invalid")

    def new_file_meta(self, req, body, media_mime=None):
        """Validate a create body (under the store lock) and build the metadata."""
        for k in body:
            if k not in CREATE_WRITABLE:
                if k in FILE_FIELDS:
                    raise bad_request("The resource body includes fields which are not "
                                      "directly writable.", reason="fieldNotWritable")
                raise bad_request("Invalid JSON payload received. Unknown name \"%s\"." % k,
                                  reason="invalid")
        store = self.store
        fid = body.get("id")
        if fid is not None:
            if isinstance(fid, str) and fid in store.t["files"]:
                raise DriveError(409, "duplicate", "A file already exists with the provided "
                                 "ID.", location="file.id")
            if not isinstance(fid, str) or fid not in store.t["generated"]:
                raise bad_request("The provided file ID is not usable.", location="file.id",
                                  reason="invalid")
        else:
            fid = new_id()
        parents = body.get("parents")
        if parents is None:
            parents = [store.root_id]
        if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
            raise bad_request("Invalid parents.", reason="invalid")
        if len(parents) > 1:
            raise DriveError(403, "cannotAddParent", "Increasing the number of parents is "
                             "not allowed. A file can only have one parent folder.")
        parents = [store.resolve_id(p) for p in parents]
        for p in parents:
            self.check_parent(p, req)
        name = body.get("name", "Untitled")
        if not isinstance(name, str):
            raise bad_request("Invalid value for name.", reason="invalid")
        mime = body.get("mimeType") or media_mime or "application/octet-stream"
        now = rfc3339(self.clock.now())
        meta = {"id": fid, "name": name, "mimeType": mime, "parents": parents,
                "trashed": False, "explicitlyTrashed": False, "starred": False,
                "createdTime": body.get("createdTime", now),
                "modifiedTime": body.get("modifiedTime", now), "version": 1}
        if body.get("createdTime") is not None and parse_time(body["createdTime"]) is None:
            raise invalid_value("createdTime")
        if body.get("modifiedTime") is not None and parse_time(body["modifiedTime"]) is None:
            raise invalid_value("modifiedTime")
        for k in ("description", "originalFilename", "folderColorRgb", "starred"):
            if k in body:
                meta[k] = body[k]
        if mime == SHORTCUT_MIME:
            target = (body.get("shortcutDetails") or {}).get("targetId")
            if not target:
                raise bad_request("A shortcut needs shortcutDetails.targetId.",
                                  reason="invalid")
            tmeta = store.t["files"].get(target)
            meta["shortcutDetails"] = {"targetId": target,
                                       "targetMimeType": tmeta["mimeType"] if tmeta else
                                       "application/octet-stream"}
        if body.get("trashed"):
            meta["trashed"] = meta["explicitlyTrashed"] = True
        self.check_property_maps(meta, body)
        return meta

    def check_parent(self, pid, req):
        pmeta = self.store.t["files"].get(pid)
        if pmeta is None or not req.can_see(pmeta):
            raise DriveError(404, "notFound", "File not found: %s." % pid, location="parentId")
        if pmeta["mimeType"] != FOLDER_MIME:
            raise bad_request("The specified parent is not a folder.", reason="invalid",
                              location="parents")

    def files_create(self, req):
        body = req.json_body()
        with self.store.lock:
            meta = self.new_file_meta(req, body)
            if meta["mimeType"] != FOLDER_MIME and meta["mimeType"] != SHORTCUT_MIME and \
                    not meta["mimeType"].startswith(GOOGLE_APPS_PREFIX):
                self.set_content(meta, b"")
            self.store.save_file(meta)
            self.store.put("generated", meta["id"], None)
        return json_response(select_fields(public_meta(meta), req.arg("fields"), "file"))

    def prepare_content(self, data=None, src_path=None):
        """Write bytes to a temporary file (or take src_path) and hash it.

        Done outside the store lock, so a large upload does not stall other requests."""
        if src_path is None:
            src_path = os.path.join(self.store.blob_dir, ".tmp-" + secrets.token_hex(8))
            with open(src_path, "wb") as f:
                f.write(data)
        md5, sha1, sha256 = hashlib.md5(), hashlib.sha1(), hashlib.sha256()
        size = 0
        with open(src_path, "rb") as f:
            while True:
                block = f.read(1 << 20)
                if not block:
                    break
                size += len(block)
                md5.update(block)
                sha1.update(block)
                sha256.update(block)
        return {"path": src_path, "size": size, "md5Checksum": md5.hexdigest(),
                "sha1Checksum": sha1.hexdigest(), "sha256Checksum": sha256.hexdigest()}

    def install_content(self, meta, prepared):
        """Rename prepared content into place as meta's bytes (under the store lock)."""
        os.replace(prepared["path"], self.store.blob_path(meta["id"]))
        meta.update({k: v for k, v in prepared.items() if k != "path"})
        meta["headRevisionId"] = "0B" + secrets.token_urlsafe(30)
        meta.pop("_abusive", None)

    def set_content(self, meta, data):
        self.install_content(meta, self.prepare_content(data))

    def check_quota(self, extra, replacing=None):
        used, _ = self.store.usage()
        if replacing is not None:
            used -= int(replacing.get("size", 0))
        if used + extra > int(self.store.setting("quota_limit")):
            raise DriveError(403, "storageQuotaExceeded",
                             "The user's Drive storage quota has been exceeded.",
                             domain="usageLimits")

    def apply_update(self, req, meta, body):
        """Apply a files.update body and addParents/removeParents to meta (in place)."""
        for k in body:
            if k not in UPDATE_WRITABLE:
                if k == "parents":
                    raise bad_request("The parents field is not directly writable in update "
                                      "requests. Use the addParents and removeParents "
                                      "parameters instead.", reason="fieldNotWritable")
                if k in FILE_FIELDS:
                    raise bad_request("The resource body includes fields which are not "
                                      "directly writable.", reason="fieldNotWritable")
                raise bad_request("Invalid JSON payload received. Unknown name \"%s\"." % k,
                                  reason="invalid")
        store = self.store
        if meta.get("_root") and body:
            raise DriveError(403, "insufficientFilePermissions",
                             "The user does not have sufficient permissions for this file.")
        parents = list(meta.get("parents", []))
        for p in filter(None, (req.arg("removeParents") or "").split(",")):
            p = store.resolve_id(p)
            if p in parents:
                parents.remove(p)
        for p in filter(None, (req.arg("addParents") or "").split(",")):
            p = store.resolve_id(p)
            self.check_parent(p, req)
            if p == meta["id"] or p in store.descendants(meta["id"]):
                raise bad_request("A folder cannot be moved into itself or one of its "
                                  "descendants.", reason="invalid", location="addParents")
            if p not in parents:
                parents.append(p)
        if len(parents) > 1:
            raise DriveError(403, "cannotAddParent", "Increasing the number of parents is "
                             "not allowed. A file can only have one parent folder.")
        meta["parents"] = parents
        if "name" in body:
            if not isinstance(body["name"], str):
                raise bad_request("Invalid value for name.", reason="invalid")
            meta["name"] = body["name"]
        for k in ("description", "originalFilename", "folderColorRgb", "starred", "mimeType"):
            if k in body:
                meta[k] = body[k]
        if "modifiedTime" in body:
            if parse_time(body["modifiedTime"] or "") is None:
                raise invalid_value("modifiedTime")
            meta["modifiedTime"] = body["modifiedTime"]
        self.check_property_maps(meta, body)
        trash_change = None
        if "trashed" in body and bool(body["trashed"]) != meta.get("explicitlyTrashed", False):
            trash_change = bool(body["trashed"])
            meta["trashed"] = meta["explicitlyTrashed"] = trash_change
            if trash_change:
                meta["trashedTime"] = rfc3339(self.clock.now())
            else:
                meta.pop("trashedTime", None)
        return trash_change

    def commit_update(self, meta, trash_change, touch=True):
        store = self.store
        meta["version"] = int(meta.get("version", 1)) + 1
        if touch:
            meta["modifiedTime"] = rfc3339(self.clock.now())
        store.save_file(meta)
        if trash_change is not None and meta["mimeType"] == FOLDER_MIME:
            # Trashing a folder trashes its descendants (implicitly); restoring restores
            # the ones that were not trashed on their own.
            for child in store.descendants(meta["id"]):
                cmeta = dict(store.t["files"][child])
                if cmeta.get("explicitlyTrashed"):
                    continue
                cmeta["trashed"] = trash_change
                cmeta["version"] = int(cmeta.get("version", 1)) + 1
                store.save_file(cmeta)

    def files_update(self, req, id):
        body = req.json_body()
        with self.store.lock:
            meta = dict(self.store.get_file(id, req))
            trash_change = self.apply_update(req, meta, body)
            self.commit_update(meta, trash_change, touch="modifiedTime" not in body)
        return json_response(select_fields(public_meta(meta), req.arg("fields"), "file"))

    def files_delete(self, req, id):
        req.body()
        with self.store.lock:
            meta = self.store.get_file(id, req)
            if meta.get("_root"):
                raise DriveError(403, "insufficientFilePermissions",
                                 "The user does not have sufficient permissions for this "
                                 "file.")
            self.store.delete_file(meta["id"])
        return empty_response(204)

    def files_empty_trash(self, req):
        req.body()
        with self.store.lock:
            for fid, meta in list(self.store.t["files"].items()):
                if meta.get("explicitlyTrashed") and fid in self.store.t["files"] and \
                        req.can_see(meta):
                    self.store.delete_file(fid)
        return empty_response(204)

    # -------------------------------------------------------------- uploads
    def upload_create(self, req):
        return self.upload(req, None)

    def upload_update(self, req, id):
        return self.upload(req, id)

    def upload(self, req, file_id):
        kind = req.arg("uploadType")
        if kind is None:
            raise DriveError(400, "required", "Required parameter: uploadType",
                             location="uploadType")
        if kind not in ("media", "multipart", "resumable"):
            raise invalid_value("uploadType")
        if kind == "resumable":
            return self.resumable_start(req, file_id)
        ctype = req.headers.get("Content-Type") or ""
        if kind == "media":
            body, data = {}, req.body()
            media_mime = ctype.split(";")[0].strip() or None
        else:
            body, data, media_mime = parse_multipart(ctype, req.body())
        return self.store_upload(req, file_id, body, media_mime, data=data)

    def store_upload(self, req, file_id, body, media_mime, data=None, src_path=None,
                     status=200):
        prepared = self.prepare_content(data, src_path)
        try:
            with self.store.lock:
                if file_id is None:
                    meta = self.new_file_meta(req, body, media_mime)
                    if meta["mimeType"] == FOLDER_MIME:
                        raise bad_request("A folder cannot have content.", reason="invalid")
                    self.check_quota(prepared["size"])
                    self.install_content(meta, prepared)
                    self.store.save_file(meta)
                    self.store.put("generated", meta["id"], None)
                else:
                    meta = dict(self.store.get_file(file_id, req))
                    if meta["mimeType"] == FOLDER_MIME:
                        raise bad_request("A folder cannot have content.", reason="invalid")
                    trash_change = self.apply_update(req, meta, body)
                    if media_mime and "mimeType" not in body:
                        meta["mimeType"] = media_mime
                    self.check_quota(prepared["size"], replacing=meta)
                    self.install_content(meta, prepared)
                    self.commit_update(meta, trash_change, touch="modifiedTime" not in body)
        finally:
            if src_path is None and os.path.exists(prepared["path"]):
                os.unlink(prepared["path"])  # not installed (the request failed)
        return json_response(select_fields(public_meta(meta), req.arg("fields"), "file"),
                             status=status)

    def resumable_start(self, req, file_id):
        body = req.json_body()
        declared = req.headers.get("X-Upload-Content-Length")
        if declared is not None:
            if not declared.isdigit():
                raise invalid_value("X-Upload-Content-Length")
            declared = int(declared)
        media_mime = (req.headers.get("X-Upload-Content-Type") or "").split(";")[0].strip()
        with self.store.lock:
            # Validate now so the client learns about bad metadata before sending bytes.
            if file_id is None:
                meta = self.new_file_meta(req, body, media_mime or None)
                self.check_quota(declared or 0)
            else:
                meta = dict(self.store.get_file(file_id, req))
                self.apply_update(req, meta, body)
                self.check_quota(declared or 0, replacing=meta)
            upload_id = "ADPycdu-emu" + secrets.token_urlsafe(24)
            self.store.put("sessions", upload_id, {
                "file_id": file_id, "metadata": body, "media_mime": media_mime or None,
                "declared": declared, "total": declared, "received": 0,
                "expires": self.clock.now() + SESSION_LIFETIME, "done": None,
                "query": {k: v for k, v in req.query.items() if k != "uploadType"}})
            open(os.path.join(self.store.upload_dir, upload_id), "wb").close()
        path = "/upload/drive/v3/files" + ("/" + file_id if file_id else "")
        params = dict(req.query)
        params["uploadType"] = "resumable"
        params["upload_id"] = upload_id
        location = self.base_url + path + "?" + urllib.parse.urlencode(params)
        return empty_response(200, {"Location": location, "X-GUploader-UploadID": upload_id})

    def upload_session(self, req):
        upload_id = req.arg("upload_id")
        with self.store.lock:
            lock = self.session_locks.setdefault(upload_id, threading.Lock())
        with lock:
            return self.upload_session_locked(req, upload_id)

    def upload_session_locked(self, req, upload_id):
        store = self.store
        with store.lock:
            sess = store.t["sessions"].get(upload_id)
            if sess is not None and sess["expires"] <= self.clock.now():
                self.drop_session(upload_id)
                sess = None
        if sess is None:
            req.handler.body.drain()
            raise DriveError(404, "notFound", "Upload session not found or expired.",
                             location="upload_id")
        if sess["done"] is not None:
            req.handler.body.drain()
            return json_response(sess["done"], status=200)
        if req.method not in ("PUT", "POST", "PATCH"):
            raise DriveError(405, "methodNotAllowed", "Method not allowed.")
        part_path = os.path.join(store.upload_dir, upload_id)
        received = sess["received"]
        crange = req.headers.get("Content-Range")
        body_len = req.handler.body.expected_length()
        if crange is None:
            # The whole file in one request (chunked bodies included).
            if received:
                raise bad_request("Content-Range is required once data was received.")
            if body_len is None:
                data = req.body()
                with open(part_path, "wb") as f:
                    f.write(data)
                with store.lock:
                    sess = dict(sess, received=len(data), total=len(data))
                    store.put("sessions", upload_id, sess)
                return self.finish_session(req, upload_id, sess, part_path, len(data))
            first, last, total = 0, body_len - 1, body_len
            if body_len == 0:
                return self.finish_session(req, upload_id, sess, part_path, 0)
        else:
            m = re.fullmatch(r"\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*", crange)
            if not m:
                raise bad_request("Invalid Content-Range header: %s" % crange)
            total = None if m.group(3) == "*" else int(m.group(3))
            if m.group(1) is None:
                first = last = None
            else:
                first, last = int(m.group(1)), int(m.group(2))
        if total is not None and sess["total"] is not None and total != sess["total"]:
            raise bad_request("Content-Range total %d does not match the upload size %d."
                              % (total, sess["total"]))
        if first is None:
            # Status query ("bytes */T"): report what was kept.
            req.handler.body.drain()
            if total is not None and total == received and received > 0 or \
                    (total == 0 and received == 0):
                return self.finish_session(req, upload_id, sess, part_path, total)
            return self.resume_incomplete(received)
        if last < first:
            raise bad_request("Invalid Content-Range header: %s" % crange)
        length = last - first + 1
        if body_len is not None and body_len != length:
            raise bad_request("The Content-Range (%d bytes) and the body length (%d bytes) "
                              "disagree." % (length, body_len))
        if first > received:
            raise bad_request("Invalid request. According to the Content-Range header, the "
                              "upload offset is %d byte(s), which exceeds already uploaded "
                              "size of %d byte(s)." % (first, received))
        if total is not None and last >= total:
            raise bad_request("The Content-Range end %d is beyond the total %d."
                              % (last, total))
        final = total is not None and last + 1 == total
        if not final and length % CHUNK_GRANULARITY != 0:
            raise bad_request("Invalid request. The number of bytes uploaded is required to "
                              "be equal or greater than 262144, except for the final "
                              "request (it's recommended to be the exact multiple of "
                              "262144). The received request contained %d bytes, which "
                              "does not meet this requirement." % length)
        # Receive the chunk into the part file, skipping bytes we already hold.
        got = self.receive_chunk(req, part_path, first, length, received, final)
        with store.lock:
            sess = dict(store.t["sessions"].get(upload_id) or sess)
            sess["received"] = max(sess["received"], got)
            if total is not None:
                sess["total"] = total
            store.put("sessions", upload_id, sess)
        if req.drop_after is not None:
            raise DropConnection()
        if final and sess["received"] == total:
            return self.finish_session(req, upload_id, sess, part_path, total)
        return self.resume_incomplete(sess["received"])

    def receive_chunk(self, req, part_path, first, length, received, final):
        """Read a chunk body; return the number of bytes of the file now held.

        A short body (peer dropped or an injected drop) keeps only a 256-KiB-aligned
        prefix of what arrived, as Google does."""
        reader = req.handler.body
        limit = length if req.drop_after is None else min(length, req.drop_after)
        pos = first
        with open(part_path, "r+b") as f:
            f.seek(received)
            while pos < first + limit:
                data = reader.read(min(1 << 20, first + limit - pos))
                if not data:
                    break
                skip = max(0, received - pos)
                if skip < len(data):
                    f.seek(max(pos, received))
                    f.write(data[skip:])
                pos += len(data)
            complete = pos == first + length
            held = max(received, pos)
            if not complete:
                held = max(received, first + ((pos - first) // CHUNK_GRANULARITY)
                           * CHUNK_GRANULARITY)
            f.truncate(held)
        return held

    @staticmethod
    def resume_incomplete(received):
        headers = {"X-GUploader-UploadID": "emu"}
        if received > 0:
            headers["Range"] = "bytes=0-%d" % (received - 1)
        return Response(308, b"", content_type=None, headers=headers,
                        reason="Resume Incomplete")

    def finish_session(self, req, upload_id, sess, part_path, total):
        if sess["declared"] is not None and total != sess["declared"]:
            raise bad_request("The uploaded size %d differs from X-Upload-Content-Length %d."
                              % (total, sess["declared"]))
        saved_query = req.query
        req.query = dict(sess["query"], **{k: v for k, v in saved_query.items()
                                           if k not in ("upload_id", "uploadType")})
        try:
            status = int(self.store.setting("upload_final_status"))
            resp = self.store_upload(req, sess["file_id"], sess["metadata"],
                                     sess["media_mime"], src_path=part_path, status=status)
        except DriveError:
            with self.store.lock:
                self.drop_session(upload_id)
            raise
        finally:
            req.query = saved_query
        with self.store.lock:
            self.store.put("sessions", upload_id, dict(sess, done=json.loads(resp.body)))
        return resp

    def drop_session(self, upload_id):
        self.store.put("sessions", upload_id, None)
        self.session_locks.pop(upload_id, None)
        try:
            os.unlink(os.path.join(self.store.upload_dir, upload_id))
        except FileNotFoundError:
            pass

    # -------------------------------------------------------------- control
    def control(self, req):
        if req.path == "/__control/log":
            if req.method == "DELETE":
                with self.log_lock:
                    self.log.clear()
                return json_response({"ok": True})
            since = int(req.arg("since", "0"))
            with self.log_lock:
                entries = self.log[since:]
            return json_response({"requests": entries, "next": since + len(entries)})
        if req.path == "/__control/state":
            with self.store.lock:
                files = {k: v for k, v in self.store.t["files"].items()}
                return json_response({
                    "root_id": self.store.root_id, "files": files,
                    "sessions": self.store.t["sessions"],
                    "change_seq": self.store.t["misc"].get("change_seq", 1),
                    "settings": {k: self.store.setting(k) for k in DEFAULT_SETTINGS},
                    "faults": self.faults.snapshot(), "outage": self.faults.outage,
                    "clock_offset": self.clock.offset})
        if req.path != "/__control" or req.method != "POST":
            raise DriveError(404, "notFound", "Unknown control path")
        cmd = req.json_body(allow_empty=False)
        cmds = cmd.get("actions") if "actions" in cmd else [cmd]
        results = []
        for c in cmds:
            try:
                results.append(self.control_action(c))
            except (KeyError, ValueError, TypeError) as e:
                raise bad_request("control: %s: %s" % (c.get("action"), e))
        return json_response(results[0] if len(results) == 1 else {"results": results})

    def control_action(self, c):
        action = c["action"]
        store = self.store
        if action in ("fault", "drop", "drop_after_commit", "daily_limit", "stall"):
            rule = {k: v for k, v in c.items() if k != "action"}
            rule["kind"] = action
            if action == "fault":
                int(rule["status"])
            if action == "stall":
                rule["ms"] = float(rule["ms"])
                if not 0 <= rule["ms"] <= 600000:
                    raise ValueError("ms must be 0..600000")
            if action == "drop":
                rule["after_bytes"] = int(rule.get("after_bytes", 0))
            self.faults.add(rule)
        elif action == "clear_faults":
            self.faults.clear()
        elif action == "outage":
            mode = c.get("mode", "drop")
            if mode != "drop":
                mode = int(mode)
            with self.faults.lock:
                if c.get("on", True):
                    secs = c.get("seconds")
                    self.faults.outage = {"mode": mode, "until": time.time() + float(secs)
                                          if secs is not None else None}
                else:
                    self.faults.outage = None
        elif action == "reset":
            # Faults, settings and the clock back to defaults (stored files stay).
            self.faults.clear()
            store.settings.clear()
            self.clock.offset = 0.0
            self.reject_page_tokens = 0
        elif action == "expire_tokens":
            with store.lock:
                for tok, rec in list(store.t["access"].items()):
                    store.put("access", tok, dict(rec, expires=0))
        elif action == "revoke_refresh_tokens":
            with store.lock:
                for tok, rec in list(store.t["refresh"].items()):
                    store.put("refresh", tok, dict(rec, revoked=True))
        elif action == "issue_token":
            return self.issue_tokens(c.get("client_id", "emulator-test-client"),
                                     c.get("scope", SCOPE_DRIVE))
        elif action == "set":
            store.set_settings({k: v for k, v in c.items() if k != "action"})
        elif action == "expire_upload_sessions":
            with store.lock:
                for sid, sess in list(store.t["sessions"].items()):
                    store.put("sessions", sid, dict(sess, expires=0))
        elif action == "advance_clock":
            self.clock.offset += float(c["seconds"])
        elif action == "invalidate_page_tokens":
            # count=N: each of the next N requests that present a page token
            # also finds it invalidated (as if this ran just before each).
            with store.lock:
                self.page_epoch = secrets.token_hex(4)
                self.page_tokens.clear()
                self.reject_page_tokens = int(c.get("count", 0))
        elif action == "set_abusive":
            with store.lock:
                meta = dict(store.t["files"][c["id"]])
                meta["_abusive"] = bool(c.get("abusive", True))
                store.put("files", c["id"], meta)
        elif action == "deny_device":
            with store.lock:
                for code, rec in list(store.t["devices"].items()):
                    store.put("devices", code, dict(rec, denied=True))
        elif action == "insert":
            return self.control_insert(c)
        elif action in ("server_write", "server_move", "server_delete"):
            self.control_server_edit(action, c)
        elif action == "register_service_account":
            with store.lock:
                accounts = dict(store.t["misc"].get("service_accounts", {}))
                accounts[c["email"]] = {"n": "%x" % int(c["n"], 16), "e": int(c["e"])}
                store.put("misc", "service_accounts", accounts)
        else:
            raise ValueError("unknown action")
        return {"ok": True}

    def control_server_edit(self, action, c):
        """The provider itself changes what it stores (tests of tamper evidence):
        server_write replaces a file's bytes (metadata follows: size, checksums,
        version, modifiedTime), server_move renames and/or moves it to another
        parent, server_delete removes it for good.  Each records a change."""
        store = self.store
        with store.lock:
            meta = dict(store.get_file(c["id"]))
            if action == "server_delete":
                store.delete_file(meta["id"])
                return
            if action == "server_write":
                self.set_content(meta, base64.b64decode(c["content_b64"]))
            else:
                if "name" in c:
                    meta["name"] = str(c["name"])
                if "parent" in c:
                    meta["parents"] = [store.resolve_id(c["parent"])]
            meta["version"] = int(meta.get("version", 1)) + 1
            meta["modifiedTime"] = rfc3339(self.clock.now())
            store.save_file(meta)

    def control_insert(self, c):
        """Insert a file as another Drive client would (no id rules, optional content)."""
        store = self.store
        with store.lock:
            fid = c.get("id") or new_id()
            parents = [store.resolve_id(p) for p in c.get("parents", [store.root_id])]
            now = rfc3339(self.clock.now())
            meta = {"id": fid, "name": c["name"],
                    "mimeType": c.get("mimeType", "application/octet-stream"),
                    "parents": parents, "trashed": False, "explicitlyTrashed": False,
                    "starred": False, "createdTime": now, "modifiedTime": now, "version": 1}
            if c.get("foreign"):
                meta["_foreign"] = True
            if "shortcutDetails" in c:
                meta["shortcutDetails"] = c["shortcutDetails"]
            for k in ("appProperties", "properties", "description"):
                if k in c:
                    meta[k] = c[k]
            if not meta["mimeType"].startswith(GOOGLE_APPS_PREFIX):
                self.set_content(meta, base64.b64decode(c.get("content_b64", "")))
            store.save_file(meta)
        return {"ok": True, "id": fid}


# --------------------------------------------------------------------------- parsing helpers

def parse_range(header, size):
    """(first, last) for a single satisfiable byte range, None for no/ignored Range,
    'unsatisfiable' for 416."""
    if not header:
        return None
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if not m or (m.group(1) == "" and m.group(2) == ""):
        return None  # malformed or multi-range: ignored, the whole body is sent
    if m.group(1) == "":
        n = int(m.group(2))
        if n == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - n), size - 1
    first = int(m.group(1))
    last = int(m.group(2)) if m.group(2) else None
    if last is not None and last < first:
        return None  # syntactically invalid: ignored
    if first >= size:
        return "unsatisfiable"
    if last is None:
        last = size - 1
    return first, min(last, size - 1)


def parse_multipart(content_type, raw):
    """Strict multipart/related: metadata JSON part, then the media part.
    Returns (metadata dict, media bytes, media mime type or None)."""
    bad = lambda why: bad_request("Malformed multipart body: %s" % why)  # noqa: E731
    mtype, params = parse_header_params(content_type)
    if mtype != "multipart/related":
        raise bad_request("Invalid multipart request with Content-Type %s; expected "
                          "multipart/related." % (content_type or "(none)"))
    boundary = params.get("boundary")
    if not boundary:
        raise bad("no boundary")
    delim = b"--" + boundary.encode()
    if raw.startswith(delim):
        pos = len(delim)
    else:
        i = raw.find(b"\r\n" + delim)
        if i < 0:
            raise bad("opening boundary not found")
        pos = i + 2 + len(delim)
    parts = []
    while True:
        if raw[pos:pos + 2] == b"--":
            break  # closing delimiter
        if raw[pos:pos + 2] != b"\r\n":
            raise bad("boundary line not terminated by CRLF")
        pos += 2
        nxt = raw.find(b"\r\n" + delim, pos)
        if nxt < 0:
            raise bad("closing boundary not found")
        parts.append(raw[pos:nxt])
        pos = nxt + 2 + len(delim)
    if len(parts) != 2:
        raise bad("expected 2 parts (metadata, media), found %d" % len(parts))
    parsed = []
    for part in parts:
        sep = part.find(b"\r\n\r\n")
        if sep < 0:
            if part.startswith(b"\r\n"):
                head, content = b"", part[2:]
            else:
                raise bad("part without header/body separator")
        else:
            head, content = part[:sep], part[sep + 4:]
        headers = {}
        for line in head.split(b"\r\n"):
            if not line:
                continue
            if b":" not in line:
                raise bad("bad part header line")
            k, v = line.split(b":", 1)
            headers[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
        parsed.append((headers, content))
    mh, mbody = parsed[0]
    if parse_header_params(mh.get("content-type", ""))[0] != "application/json":
        raise bad("first part must be application/json metadata")
    try:
        meta = json.loads(mbody) if mbody.strip() else {}
    except ValueError:
        raise bad_request("Invalid JSON payload received in the metadata part.",
                          reason="parseError")
    if not isinstance(meta, dict):
        raise bad("metadata must be a JSON object")
    dh, data = parsed[1]
    if dh.get("content-transfer-encoding", "").lower() == "base64":
        try:
            data = base64.b64decode(data, validate=False)
        except ValueError:
            raise bad("bad base64 media")
    media_mime = parse_header_params(dh.get("content-type", ""))[0] or None
    return meta, data, media_mime


def parse_header_params(value):
    pieces = (value or "").split(";")
    mtype = pieces[0].strip().lower()
    params = {}
    for p in pieces[1:]:
        if "=" in p:
            k, v = p.split("=", 1)
            v = v.strip()
            if len(v) >= 2 and v[0] == v[-1] == '"':
                v = v[1:-1]
            params[k.strip().lower()] = v
    return mtype, params


def rsa_pkcs1_sha256_verify(n, e, message, signature):
    """RSASSA-PKCS1-v1_5 with SHA-256 (for the jwt-bearer grant's test keys)."""
    k = (n.bit_length() + 7) // 8
    if len(signature) != k:
        return False
    em = pow(int.from_bytes(signature, "big"), e, n).to_bytes(k, "big")
    digest_info = bytes.fromhex("3031300d060960864801650304020105000420") + \
        hashlib.sha256(message).digest()
    expected = b"\x00\x01" + b"\xff" * (k - len(digest_info) - 3) + b"\x00" + digest_info
    return secrets.compare_digest(em, expected)


# --------------------------------------------------------------------------- HTTP plumbing

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "gdrive-emulator/1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle plus the
    # peer's delayed ACK would add ~40 ms to every small response.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # keep stderr quiet; tests read /__control/log
        pass

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_HEAD(self):
        self.dispatch("HEAD")

    def dispatch(self, method):
        emu = self.server.emu
        self.body = BodyReader(self.rfile, self.headers)
        req = Request(self, method)
        started = time.time()
        if req.path.startswith("/__control"):
            resp = self.run(emu.control, req)
            self.send(resp, method)
            return
        latency = emu.store.setting("latency_ms")
        if latency:
            time.sleep(latency / 1000.0)
        fault = emu.faults.outage_rule() or emu.faults.take(method, req.path)
        entry = {"method": method, "path": req.path, "query": req.raw_query,
                 "time": started, "status": None,
                 "range": self.headers.get("Range"),
                 "content_range": self.headers.get("Content-Range")}
        resp = None
        try:
            if fault is not None:
                entry["fault"] = fault["kind"]
                resp = self.apply_fault(fault, req)
            if resp is None:
                resp = self.run(emu.route, req)
            if req.drop_after_commit or req.drop_after is not None:
                raise DropConnection()
        except DropConnection:
            if resp is not None and resp.stream and resp.stream[0]:
                resp.stream[0].close()
            entry["status"] = "dropped"
            entry["duration"] = time.time() - started
            with emu.log_lock:
                emu.log.append(entry)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if req.hold_reply:
            time.sleep(req.hold_reply)
        entry["status"] = resp.status
        entry["duration"] = time.time() - started
        with emu.log_lock:
            emu.log.append(entry)
        self.send(resp, method)

    def apply_fault(self, fault, req):
        kind = fault["kind"]
        if kind == "drop" and fault.get("immediate"):
            raise DropConnection()  # outage: nothing is read or done
        if kind == "drop":
            req.drop_after = fault["after_bytes"]
            return None
        if kind == "drop_after_commit":
            req.drop_after_commit = True
            return None
        if kind == "stall":
            if fault.get("reply"):
                req.hold_reply = fault["ms"] / 1000.0   # handled now, answered later
            else:
                time.sleep(fault["ms"] / 1000.0)   # then handled as usual, at that moment
            return None
        self.body.drain()
        if kind == "daily_limit":
            status, (domain, reason, message) = 403, ("usageLimits", "userRateLimitExceeded",
                                                      "User rate limit exceeded.")
        else:
            status = int(fault["status"])
            domain, reason, message = STATUS_BODIES.get(
                status, ("global", "backendError", "Backend Error"))
            if status == 403 and fault.get("reason") == "rateLimitExceeded":
                message = "Rate Limit Exceeded"
        reason = fault.get("reason", reason)
        message = fault.get("message", message)
        err = DriveError(status, reason, message, domain=domain)
        headers = {}
        if fault.get("retry_after") is not None:
            headers["Retry-After"] = str(fault["retry_after"])
        return json_response(err.body(), status=status, headers=headers)

    def run(self, fn, req):
        try:
            return fn(req)
        except DriveError as e:
            return json_response(e.body(), status=e.code, headers=e.headers)
        except OAuthError as e:
            return json_response({"error": e.error, "error_description": e.description},
                                 status=e.code)
        except DropConnection:
            raise
        except (ConnectionError, socket.timeout):
            raise DropConnection()
        except Exception as e:  # a bug in the emulator: say so loudly
            import traceback
            traceback.print_exc()
            return json_response(DriveError(500, "internalError", "emulator bug: %r" % e)
                                 .body(), status=500)

    def send(self, resp, method):
        # Whatever the handler left unread must not be parsed as the next request.
        if not self.body.done:
            if self.body.chunked or (self.body.remaining or 0) <= (16 << 20):
                self.body.drain()
            else:
                self.close_connection = True
        length = resp.stream[2] if resp.stream else len(resp.body)
        try:
            self.send_response(resp.status, resp.reason)
            if resp.content_type and (length or resp.stream):
                self.send_header("Content-Type", resp.content_type)
            for k, v in resp.headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(length))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if method == "HEAD":
                return
            if resp.stream:
                fd, offset, remaining = resp.stream
                with fd:
                    fd.seek(offset)
                    while remaining > 0:
                        block = fd.read(min(1 << 20, remaining))
                        if not block:
                            break
                        self.wfile.write(block)
                        remaining -= len(block)
            else:
                self.wfile.write(resp.body)
        except (ConnectionError, socket.timeout):
            self.close_connection = True
        finally:
            if resp.stream and resp.stream[0] and not resp.stream[0].closed:
                resp.stream[0].close()


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # A peer that resets or drops its connection (a client closing a kept-alive
        # socket with bytes unread, or one of our own injected drops) is ordinary
        # network behaviour, not an emulator bug: only real bugs print a traceback.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, socket.timeout)):
            return
        super().handle_error(request, client_address)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Google Drive v3 emulator for scsfs tests")
    ap.add_argument("--port", type=int, required=True, help="TCP port (0: pick a free one)")
    ap.add_argument("--root", required=True, help="state directory")
    ap.add_argument("--latency-ms", type=int, default=0, help="delay added to each request")
    ap.add_argument("--token-lifetime", type=int, default=None,
                    help="access token lifetime in seconds (default 3599)")
    args = ap.parse_args(argv)
    os.makedirs(args.root, exist_ok=True)
    emu = Emulator(args.root, args.latency_ms, args.token_lifetime)
    server = Server(("127.0.0.1", args.port), Handler)
    server.emu = emu
    port = server.server_address[1]
    emu.base_url = "http://127.0.0.1:%d" % port
    print("listening on %s" % emu.base_url, flush=True)
    import signal

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        emu.store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
