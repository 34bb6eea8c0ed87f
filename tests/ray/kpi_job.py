"""A Ray job for the KPI tests: one named actor that finishes 5 calls, fails 3, is busy with a 4th and has
a 5th waiting behind it (an actor runs one call at a time), then says so and waits."""

import contextlib
import sys
import time

import ray

ray.init()


@ray.remote(num_cpus=0)
class Counter:
    def ok(self, i: int) -> int:
        return i

    def bad(self, i: int) -> None:
        raise ValueError(f"bad call {i}")

    def slow(self) -> None:
        time.sleep(600)


counter = Counter.options(name=f"counter-{sys.argv[1]}").remote()  # type: ignore[attr-defined]
ray.get([counter.ok.remote(i) for i in range(5)])
for i in range(3):
    with contextlib.suppress(ValueError):  # Ray raises the call's own error type
        ray.get(counter.bad.remote(i))
busy, waiting = counter.slow.remote(), counter.slow.remote()
print("counted", flush=True)
time.sleep(600)
