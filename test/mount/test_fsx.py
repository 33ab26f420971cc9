"""fsx-style exercisers: long random sequences of reads, writes, truncates and
shared-mmap accesses on files in the mount, checked after every step against
an in-memory model (the algorithm of the classic fsx tool), plus parallel
writers and readers.  They catch the chunk-boundary, last-chunk, size and
cache-coherence bugs that short hand-written tests miss."""

import mmap
import os
import random
import threading

import pytest

CHUNK = 32768
# Offsets and lengths cluster around chunk boundaries, where bugs live.
HOT = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK - 1, 2 * CHUNK, 3 * CHUNK + 7]


class Model:
    def __init__(self):
        self.data = bytearray()

    def write(self, off, buf):
        if off > len(self.data):
            self.data.extend(b"\0" * (off - len(self.data)))
        self.data[off:off + len(buf)] = buf

    def truncate(self, size):
        if size < len(self.data):
            del self.data[size:]
        else:
            self.data.extend(b"\0" * (size - len(self.data)))


def pick_off(rng, size, maxsize):
    r = rng.random()
    if r < 0.35:
        return min(rng.choice(HOT), maxsize - 1)
    if r < 0.5 and 0 < size < maxsize:
        return size  # append
    return rng.randrange(0, maxsize)


def pick_len(rng):
    r = rng.random()
    if r < 0.3:
        return rng.randint(1, 16)
    if r < 0.6:
        return rng.choice([4096, CHUNK - 1, CHUNK, CHUNK + 1])
    return rng.randint(1, 3 * CHUNK)


def check_read(fd, model, off, n, ctx):
    got = os.pread(fd, n, off)
    want = bytes(model.data[off:off + n])
    if got != want:
        first = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
        raise AssertionError(f"{ctx}: read({off}, {n}) differs at +{first} "
                             f"(got {len(got)} bytes, want {len(want)})")


def run_fsx(path, seed, nops, maxsize, use_mmap=True, reopen_every=97):
    rng = random.Random(seed)
    model = Model()
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    fd2 = os.open(path, os.O_RDONLY)  # a second handle must see every change
    try:
        for i in range(nops):
            op = rng.random()
            ctx = f"seed {seed} op {i}"
            size = len(model.data)
            if op < 0.30:
                off = pick_off(rng, size, maxsize)
                buf = rng.randbytes(min(pick_len(rng), maxsize - off))
                assert os.pwrite(fd, buf, off) == len(buf), ctx
                model.write(off, buf)
            elif op < 0.55:
                off = pick_off(rng, size, maxsize)
                check_read(rng.choice([fd, fd2]), model, off, pick_len(rng), ctx)
            elif op < 0.65:
                new = rng.choice([0, 1, CHUNK - 1, CHUNK, CHUNK + 1, rng.randrange(0, maxsize)])
                os.ftruncate(fd, new)
                model.truncate(new)
            elif op < 0.80 and use_mmap and size > 0:
                # shared writable mapping: write through it, msync, then the
                # model and plain reads must agree.
                with mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as m:
                    off = rng.randrange(0, size)
                    n = min(rng.randint(1, 3 * 4096), size - off)
                    buf = rng.randbytes(n)
                    m[off:off + n] = buf
                    m.flush()
                    model.write(off, buf)
                    roff = rng.randrange(0, size)
                    rn = min(rng.randint(1, CHUNK), size - roff)
                    assert m[roff:roff + rn] == bytes(model.data[roff:roff + rn]), f"{ctx}: mmap read"
            elif op < 0.85:
                os.fsync(fd) if rng.random() < 0.5 else os.fdatasync(fd)
            elif op < 0.90:
                assert os.fstat(fd2).st_size == len(model.data), f"{ctx}: fstat size"
                assert os.stat(path).st_size == len(model.data), f"{ctx}: stat size"
            else:
                # sequential read of everything through the second handle
                check_read(fd2, model, 0, len(model.data) + 10, ctx)
            if reopen_every and i % reopen_every == reopen_every - 1:
                os.close(fd)
                os.close(fd2)
                fd = os.open(path, os.O_RDWR)
                fd2 = os.open(path, os.O_RDONLY)
                check_read(fd2, model, 0, len(model.data) + 1, f"{ctx} after reopen")
    finally:
        os.close(fd)
        os.close(fd2)
    return model


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fsx_random_ops_match_model(mounted, seed):
    path = mounted.path(f"fsx-{seed}")
    model = run_fsx(path, seed, nops=1200, maxsize=5 * CHUNK + 123)
    with open(path, "rb") as f:
        assert f.read() == bytes(model.data)
    # and the same bytes after a remount: nothing lived only in a cache
    mounted.remount()
    with open(path, "rb") as f:
        assert f.read() == bytes(model.data)


def test_fsx_large_sparse_file(mounted):
    """Offsets up to 8 MiB: writes far past the end fill real zeros."""
    path = mounted.path("fsx-big")
    model = run_fsx(path, 42, nops=400, maxsize=8 << 20, use_mmap=False)
    mounted.remount()
    with open(path, "rb") as f:
        assert f.read() == bytes(model.data)


def test_parallel_writers_and_readers(mounted):
    """Eight threads each rewrite their own file in random order while eight
    readers stream them: no torn or mixed-up data, no errors."""
    n = 8
    size = 6 * CHUNK + 999
    errors = []
    final = {}

    def writer(k):
        try:
            rng = random.Random(100 + k)
            data = bytearray(rng.randbytes(size))
            p = mounted.path(f"par-{k}")
            with open(p, "wb") as f:
                f.write(data)
            fd = os.open(p, os.O_RDWR)
            try:
                for _ in range(150):
                    off = rng.randrange(0, size)
                    buf = rng.randbytes(min(rng.randint(1, 20000), size - off))
                    os.pwrite(fd, buf, off)
                    data[off:off + len(buf)] = buf
            finally:
                os.close(fd)
            final[k] = bytes(data)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(f"writer {k}: {e!r}")

    def reader(k):
        try:
            p = mounted.path(f"par-{k}")
            for _ in range(30):
                try:
                    with open(p, "rb") as f:
                        while f.read(65536):
                            pass
                except FileNotFoundError:
                    pass
        except Exception as e:  # pragma: no cover - reported below
            errors.append(f"reader {k}: {e!r}")

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(n)]
    threads += [threading.Thread(target=reader, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    for k in range(n):
        with open(mounted.path(f"par-{k}"), "rb") as f:
            assert f.read() == final[k], f"file {k}"
    mounted.remount()
    for k in range(n):
        with open(mounted.path(f"par-{k}"), "rb") as f:
            assert f.read() == final[k], f"file {k} after remount"
