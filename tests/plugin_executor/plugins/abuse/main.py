"""The abuse suite's plugin: each function tries one way out of the sandbox, or one way to hurt
the host."""

import asyncio
import contextlib
import ctypes
import gc
import itertools
import os
import re
import signal
import socket
import sys
import time


def fork_bomb(payload):
    while True:
        with contextlib.suppress(OSError):
            os.fork()


def memory_bomb(payload):
    chunks = []
    while True:
        chunks.append(bytearray(1 << 20))


def infinite_loop(payload):
    while True:
        pass


def catastrophic_regex(payload):
    return {"match": bool(re.match(r"(a+)+$", "a" * 64 + "!"))}


def stdout_flood(payload):
    while True:
        print("x" * 1000)


def huge_file(payload):
    chunk = b"\0" * (1 << 20)
    with open("huge", "wb") as file:
        for _ in range(1 << 10):
            file.write(chunk)
    return {}


def many_files(payload):
    chunk = b"\1" * (1 << 20)
    for n in range(64):  # 2 GiB in files of 32 MiB, each below the file-size limit
        with open(f"part-{n}", "wb") as file:
            for _ in range(32):
                file.write(chunk)
    return {}


def inode_bomb(payload):
    for n in range(1_000_000):
        open(f"empty-{n}", "wb").close()
    return {}


def fill_tmp(payload):
    chunk = b"\0" * (1 << 20)
    filled = {}
    for folder in ("/tmp", "/dev/shm"):
        try:
            with open(os.path.join(folder, payload["name"]), "wb") as file:
                for _ in range(8):
                    file.write(chunk)
            filled[folder] = True
        except OSError:
            filled[folder] = False
    return {"filled": filled}


def find_tmp(payload):
    return {
        folder: os.path.exists(os.path.join(folder, payload["name"]))
        for folder in ("/tmp", "/dev/shm")
    }


def read_file(payload):
    with open(payload["path"]) as file:
        return {"text": file.read()}


def environment(payload):
    return {"environment": dict(os.environ)}


def connect(payload):
    with socket.create_connection(("127.0.0.1", payload["port"]), timeout=1):
        return {"connected": True}


def connect_unix(payload):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(1)
        client.connect(payload["path"])
        return {"connected": True}


def dgram_pair(payload):
    mine, _ = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    mine.sendto(b"escaped", payload["path"])
    return {"sent": True}


def event_loop(payload):
    async def answer():
        await asyncio.sleep(0)
        return 42

    return {"answer": asyncio.run(answer())}


def peek(payload):
    """What of another run this process can still see: frames and live objects."""
    marker = payload["reversed"][::-1]
    found = []
    frame = sys._getframe().f_back
    while frame is not None:
        if marker in repr(frame.f_locals):
            found.append(f"frame {frame.f_code.co_name}")
        frame = frame.f_back
    for thing in gc.get_objects():
        if isinstance(thing, (dict, list, tuple)):
            with contextlib.suppress(Exception):
                if marker in repr(thing):
                    found.append(type(thing).__name__)
    return {"found": found}


def unsearchable(payload):
    os.mkdir("hidden")
    open("hidden/inside", "wb").close()
    os.chmod("hidden", 0o400)
    time.sleep(0.5)
    return {}


def daemon(payload):
    read, write = os.pipe()
    if os.fork() == 0:
        os.setsid()
        pid = os.fork()
        if pid == 0:
            os.close(read)
            os.write(write, str(os.getpid()).encode())
            os.close(write)
            time.sleep(600)
        os._exit(0)
    os.close(write)
    os.wait()
    with os.fdopen(read) as pipe:
        return {"pid": int(pipe.read())}


def symlink(payload):
    os.symlink(payload["target"], "escape")
    found = {}
    for what, mode in (("read", "r"), ("write", "w")):
        try:
            with open(f"escape/{'canary' if mode == 'r' else 'planted'}", mode):
                found[what] = True
        except OSError:
            found[what] = False
    return found


def system(payload):
    return {"status": ctypes.CDLL(None).system(payload["command"].encode())}


def stubborn(payload):
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU):
        signal.signal(number, signal.SIG_IGN)
    return {"sum": sum(itertools.repeat(1))}  # never returns to the interpreter
