"""Start the Drive emulator in a subprocess and talk to it (standard library only).

Usable from any pytest suite:

    from emulator_util import Emulator
    emu = Emulator.start(tmp_path / "drive")      # port 0: a free port is picked
    token = emu.token()                           # an access token (scope drive)
    emu.control(action="fault", status=503, count=2, path="/drive/v3/files")
    ...
    emu.stop()
"""

import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse

EMULATOR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "gdrive_emulator.py")


class Reply:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name)

    def __repr__(self):
        return "Reply(%d, %r)" % (self.status, self.body[:300])


class Client:
    """A keep-alive HTTP/1.1 connection to the emulator."""

    def __init__(self, port, token=None, timeout=30):
        self.port, self.token, self.timeout = port, token, timeout
        self.conn = None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, headers=None, query=None, auth=True):
        if query:
            path = path + ("&" if "?" in path else "?") + urllib.parse.urlencode(query)
        hdrs = dict(headers or {})
        if auth and self.token and "Authorization" not in hdrs:
            hdrs["Authorization"] = "Bearer " + self.token
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json; charset=UTF-8")
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                   timeout=self.timeout)
        try:
            self.conn.request(method, path, body=body, headers=hdrs)
            resp = self.conn.getresponse()
            data = resp.read()
        except (ConnectionError, http.client.HTTPException, OSError):
            self.close()
            raise
        headers = {k: v for k, v in resp.getheaders()}
        if resp.will_close:
            self.close()
        return Reply(resp.status, headers, data)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


class Emulator:
    def __init__(self, proc, port, root):
        self.proc, self.port, self.root = proc, port, root
        self.base = "http://127.0.0.1:%d" % port
        self.ctl = Client(port)

    @classmethod
    def start(cls, root, port=0, extra_args=(), python=sys.executable):
        # stderr (an emulator bug's traceback) goes to a file: a pipe that
        # nobody reads until stop() would, once full, block the thread that
        # writes to it, and the request it serves, for good.
        err = tempfile.TemporaryFile(mode="w+", prefix="gdrive-emulator-", suffix=".err")
        proc = subprocess.Popen([python, EMULATOR, "--port", str(port), "--root", str(root)]
                                + list(extra_args),
                                stdout=subprocess.PIPE, stderr=err, text=True)
        proc.err_file = err
        line = proc.stdout.readline()
        if not line.startswith("listening on http://127.0.0.1:"):
            proc.kill()
            proc.wait()
            err.seek(0)
            raise RuntimeError("emulator did not start: %r %s" % (line, err.read()))
        return cls(proc, int(line.rsplit(":", 1)[1]), root)

    def errors(self):
        """What the emulator wrote to stderr so far (an emulator bug's
        traceback: a request it answered with 500)."""
        self.proc.err_file.seek(0)
        return self.proc.err_file.read()

    def stop(self):
        self.ctl.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        err = self.errors()
        self.proc.stdout.close()
        self.proc.err_file.close()
        return err

    def client(self, token=None):
        return Client(self.port, token)

    def control(self, **cmd):
        r = self.ctl.post("/__control", cmd, auth=False)
        if r.status != 200:
            raise RuntimeError("control %r failed: %r" % (cmd, r))
        return r.json()

    def token(self, scope="https://www.googleapis.com/auth/drive"):
        return self.control(action="issue_token", scope=scope)["access_token"]

    def log(self, since=0):
        return self.ctl.get("/__control/log?since=%d" % since, auth=False).json()["requests"]

    def clear_log(self):
        self.ctl.delete("/__control/log", auth=False)

    def state(self):
        return self.ctl.get("/__control/state", auth=False).json()


def wait_for(pred, timeout=5.0, step=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()
