# ruff: noqa: E501  (one line of Python per module: data)
"""What "use it" means for each extension module of erlang._owngil's
allow-list: a few lines that import the module (through the standard
library module that wraps it, where there is one) and exercise it.

Shared by the plain-interpreter probe (test_owngil.py, own-GIL
sub-interpreters made with CPython's _interpreters module) and the in-VM
suite that runs them in own-GIL contexts.
"""

from __future__ import annotations

USAGE: dict[str, str] = {
    "_json": "import json; assert json.loads(json.dumps({'a': [1, 2.5, None]})) == {'a': [1, 2.5, None]}",
    "_pickle": "import pickle; assert pickle.loads(pickle.dumps({1: (2, 'x')})) == {1: (2, 'x')}",
    "math": "import math; assert math.isclose(math.sqrt(2) ** 2, 2.0)",
    "_struct": "import struct; assert struct.unpack('<iq', struct.pack('<iq', -5, 2**40)) == (-5, 2**40)",
    "array": "import array; a = array.array('d', [1.0, 2.0]); a.append(3.0); assert sum(a) == 6.0",
    "zlib": "import zlib; d = b'x' * 10000; assert zlib.decompress(zlib.compress(d)) == d",
    "_random": "import random; r = random.Random(7); assert 0 <= r.random() < 1; r.shuffle(list(range(50)))",
    "_csv": "import csv, io; rows = list(csv.reader(io.StringIO('a,b\\n1,2\\n'))); assert rows == [['a', 'b'], ['1', '2']]",
    "unicodedata": "import unicodedata; assert unicodedata.name('\\u00e9') == 'LATIN SMALL LETTER E WITH ACUTE'",
    "_socket": "import socket; a, b = socket.socketpair(); a.sendall(b'hi'); assert b.recv(2) == b'hi'; a.close(); b.close()",
    "select": "import select, socket; a, b = socket.socketpair(); a.send(b'x'); assert select.select([b], [], [], 1)[0]; a.close(); b.close()",
    "_bisect": "import bisect; xs = [1, 3, 5]; bisect.insort(xs, 4); assert xs == [1, 3, 4, 5]",
    "_heapq": "import heapq; h = [5, 1, 3]; heapq.heapify(h); assert heapq.heappop(h) == 1",
    "binascii": "import base64; assert base64.b64decode(base64.b64encode(b'erlang')) == b'erlang'",
    "_contextvars": "import contextvars; v = contextvars.ContextVar('v'); v.set(3); assert contextvars.copy_context()[v] == 3",
    "_opcode": "import dis; assert 'LOAD_CONST' in dis.opmap",
    "fcntl": "import fcntl, os; r, w = os.pipe(); fcntl.fcntl(r, fcntl.F_GETFL); os.close(r); os.close(w)",
    "_statistics": "import statistics; assert statistics.median([3, 1, 2]) == 2; statistics.NormalDist(0, 1).inv_cdf(0.5)",
    "cmath": "import cmath; assert abs(cmath.exp(1j * cmath.pi) + 1) < 1e-12",
    "_blake2": "import _blake2; assert len(_blake2.blake2b(b'x').digest()) == 64",
    "_sha2": "import _sha2; assert len(_sha2.sha256(b'x').hexdigest()) == 64",
    "_md5": "import _md5; assert _md5.md5(b'').hexdigest() == 'd41d8cd98f00b204e9800998ecf8427e'",
    "_sha1": "import _sha1; assert len(_sha1.sha1(b'x').digest()) == 20",
    "_sha3": "import _sha3; assert len(_sha3.sha3_256(b'x').digest()) == 32",
    "_queue": "import queue; q = queue.SimpleQueue(); q.put(1); assert q.get() == 1",
    "grp": "import grp; grp.getgrgid(0)",
    "_posixsubprocess": "import subprocess; assert subprocess.list2cmdline(['a b', 'c']) == '\"a b\" c'",
}
