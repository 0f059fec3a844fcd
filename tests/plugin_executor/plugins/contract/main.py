"""The contract suite's plugin: one function for each behaviour the `Sandbox` port promises."""

import json
import os
import time

TOUCHED = []  # a module's global: what one run appends, the next does not see


def echo(payload):
    return {"echo": payload}


def progress(payload):
    steps = payload["steps"]
    for done, message in enumerate(steps, start=1):
        yield {"progress": done / len(steps), "message": message}
    return {"steps": len(steps)}


def fail(payload):
    raise ValueError(f"no good: ran in {os.getcwd()} from {__file__}")


def a_list(payload):
    return [1, 2]


def a_set(payload):
    return {"numbers": {1, 2}}


def leave_traces(payload):
    name = payload["name"]
    found = {"work": os.listdir("."), "global": list(TOUCHED)}
    with open(name, "w") as file:
        file.write("left behind")
    written = {}
    for folder in ("/tmp", "/dev/shm"):
        try:
            with open(os.path.join(folder, name), "w") as file:
                file.write("left behind")
            written[folder] = True
        except OSError:
            written[folder] = False
    TOUCHED.append(name)
    json.LEFT_BEHIND = name
    return {"written": written, "found": found}


def find_traces(payload):
    name = payload["name"]
    return {
        "work": os.listdir("."),
        "tmp": os.path.exists(os.path.join("/tmp", name)),
        "shm": os.path.exists(os.path.join("/dev/shm", name)),
        "global": TOUCHED,
        "module": getattr(json, "LEFT_BEHIND", None),
    }


def wait(payload):
    yield {"progress": 0.0, "message": "waiting"}
    time.sleep(payload.get("seconds", 60))
    return {}


def big(payload):
    return {"text": "x" * payload["size"]}
