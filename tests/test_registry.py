"""The backend registry: built-ins by name, third-party backends by entry point, clear errors otherwise."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from backends import registry
from backends.base import Backend
from backends.demo import DemoBackend
from backends.errors import BackendError, Invalid
from backends.registry import ENTRY_POINT_GROUP, available, resolve

from .fake_backend import FakeBackend


def _entry_point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


@pytest.fixture
def entry_points(monkeypatch: pytest.MonkeyPatch):
    """Install the given entry points as if packages had registered them."""

    def install(*points: EntryPoint) -> None:
        monkeypatch.setattr(registry, "_entry_points", lambda: tuple(points))

    return install


def test_group_name() -> None:
    assert ENTRY_POINT_GROUP == "fleetdeck.backends"


def test_resolve_demo() -> None:
    backend_class = resolve("demo")
    assert backend_class is DemoBackend
    assert issubclass(backend_class, Backend)
    assert backend_class.name == "demo"


def test_available_lists_the_builtins(entry_points) -> None:
    entry_points()
    assert available() == {
        "demo": "backends.demo:DemoBackend",
        "local": "backends.local.backend:LocalBackend",
        "http": "backends.http:HttpBackend",
        "ray": "backends.ray:RayBackend",
    }


def test_unknown_name_lists_known_names(entry_points) -> None:
    entry_points(_entry_point("fake", "tests.fake_backend:FakeBackend"))
    with pytest.raises(Invalid) as caught:
        resolve("nope")
    message = str(caught.value)
    assert "'nope'" in message
    assert "demo" in message and "fake" in message
    assert isinstance(caught.value, BackendError)


def test_third_party_backend_by_entry_point(entry_points) -> None:
    entry_points(_entry_point("fake", "tests.fake_backend:FakeBackend"))
    assert resolve("fake") is FakeBackend
    known = available()
    assert known["fake"] == "tests.fake_backend:FakeBackend"
    assert "demo" in known


def test_a_builtin_name_cannot_be_taken_over(entry_points) -> None:
    entry_points(_entry_point("demo", "tests.fake_backend:FakeBackend"))
    assert resolve("demo") is DemoBackend
    assert available()["demo"] == "backends.demo:DemoBackend"


async def test_a_third_party_backend_works_in_the_console_layer(entry_points) -> None:
    from console.core.node_link import NodeLink

    entry_points(_entry_point("fake", "tests.fake_backend:FakeBackend"))
    link = NodeLink("fake-01", resolve("fake")(), clock=lambda: 1.0)
    assert await link.poll(timeout=5.0)
    assert link.snapshot is not None and link.snapshot.node.backend == "fake"


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("tests.fake_backend:NOT_A_BACKEND", "is not a fleetdeck Backend class"),
        ("tests.fake_backend:NotABackend", "is not a fleetdeck Backend class"),
        ("tests.fake_backend:Missing", "could not be loaded"),
        ("tests.no_such_module:Thing", "could not be loaded"),
    ],
    ids=["object", "class", "missing-attr", "missing-module"],
)
def test_bad_entry_point_is_invalid(entry_points, value: str, words: str) -> None:
    entry_points(_entry_point("broken", value))
    with pytest.raises(Invalid) as caught:
        resolve("broken")
    message = str(caught.value)
    assert words in message
    assert "'broken'" in message and value in message


def test_real_entry_points_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the stand-in, the registry asks importlib.metadata for the group."""
    asked = []

    def fake_entry_points(*, group: str):
        asked.append(group)
        return [_entry_point("fake", "tests.fake_backend:FakeBackend")]

    monkeypatch.setattr(registry, "entry_points", fake_entry_points)
    assert resolve("fake") is FakeBackend
    assert asked == [ENTRY_POINT_GROUP]
