"""A Ray job for the tests: makes a detached named actor (an agent in fleetdeck), says so, and waits."""

import time

import ray

ray.init()


@ray.remote(num_cpus=0)
class Worker:
    def ping(self) -> str:
        return "pong"


worker = Worker.options(  # type: ignore[attr-defined]
    name="fleetdeck-test-worker", lifetime="detached", namespace="fleetdeck"
).remote()
print(ray.get(worker.ping.remote()), flush=True)
print("actor up", flush=True)
time.sleep(300)
