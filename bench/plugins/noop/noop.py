"""The benchmark's trivial plugin: what a run costs when the plugin does nothing."""


def run(data: dict) -> dict:
    return {"n": data.get("n", 0)}
