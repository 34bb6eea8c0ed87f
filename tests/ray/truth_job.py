"""A Ray job for the truth tests: three named actors owned by this driver, so they die with it when the job
is stopped: one alive, one that crashes, one pending on a GPU a CPU-only head does not have."""

import os
import sys
import time

import ray

ray.init(namespace="fleetdeck-truth")


@ray.remote(num_cpus=0)
class Worker:
    def ping(self) -> str:
        return "pong"

    def crash(self) -> None:
        os._exit(1)


@ray.remote(num_cpus=0, num_gpus=1)
class GpuWorker:
    def ping(self) -> str:
        return "pong"


tag = sys.argv[1]
alive = Worker.options(name=f"alive-{tag}").remote()  # type: ignore[attr-defined]
crasher = Worker.options(name=f"crasher-{tag}").remote()  # type: ignore[attr-defined]
print(ray.get([alive.ping.remote(), crasher.ping.remote()]), flush=True)
crasher.crash.remote()
gpu = GpuWorker.options(name=f"gpu-{tag}").remote()  # type: ignore[attr-defined]
print("actors up", flush=True)
time.sleep(600)
