"""Every error of tfhub.errors survives pickling with its message and attributes.

The classes are found by walking the module, so a class appended to errors.py later is covered
without touching this file (its __init__ arguments are filled in from their annotations).
"""

from __future__ import annotations

import concurrent.futures
import inspect
import multiprocessing
import pickle
from typing import Any

import pytest

from tfhub import errors
from tfhub.errors import DownloadError, HubError


def _error_classes() -> list[type[BaseException]]:
    return [
        obj
        for obj in vars(errors).values()
        if isinstance(obj, type)
        and issubclass(obj, BaseException)
        and obj.__module__ == errors.__name__
    ]


def _sample_value(cls: type, name: str, annotation: Any) -> Any:
    text = str(annotation)
    if "int" in text and "str" not in text:
        return 400 + len(name)
    if "float" in text:
        return 2.5
    if "bool" in text and "str" not in text:
        return True
    return f"{name} of {cls.__name__}"


def _sample(cls: type[BaseException]) -> BaseException:
    """An instance with every argument of cls.__init__ set to a distinct value."""
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        known = any(t in str(p.annotation) for t in ("str", "int", "float", "bool"))
        if p.default is not p.empty and not known:
            continue  # an optional argument of a type we cannot make up
        value = _sample_value(cls, p.name, p.annotation)
        if p.kind is p.KEYWORD_ONLY:
            kwargs[p.name] = value
        else:
            args.append(value)
    return cls(*args, **kwargs)


def _same(a: BaseException, b: BaseException) -> None:
    assert type(b) is type(a)
    assert str(b) == str(a)
    assert b.args == a.args
    assert vars(b) == vars(a)


def test_errors_module_has_the_expected_classes():
    names = {cls.__name__ for cls in _error_classes()}
    assert {"HubError", "DownloadError", "RemoteNotFoundError", "ArchiveTooLargeError"} <= names


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_every_error_pickles_with_its_attributes(cls):
    assert issubclass(cls, HubError), f"{cls.__name__} must derive from HubError"
    error = _sample(cls)
    error.add_note("a note added on the way up")
    error.extra = ["set", "after", "raising"]  # type: ignore[attr-defined]
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        copy = pickle.loads(pickle.dumps(error, protocol=protocol))
        _same(error, copy)
        assert copy.__notes__ == ["a note added on the way up"]
    if "handle" in inspect.signature(cls.__init__).parameters:
        assert copy.handle == error.handle is not None  # type: ignore[attr-defined]


class _WithRequiredArgument(HubError, ValueError):
    """The shape of error that the default pickling cannot rebuild: __init__ takes more than
    the message, positionally, and derives the message from it."""

    def __init__(self, field: str, limit: int, *, handle: str | None = None) -> None:
        super().__init__(f"{field} is over {limit}", handle=handle)
        self.field = field
        self.limit = limit


def test_a_subclass_with_its_own_init_pickles():
    error = _WithRequiredArgument("size", 10, handle="pub/model/1")
    copy = pickle.loads(pickle.dumps(error))
    _same(error, copy)
    assert (copy.field, copy.limit, copy.handle) == ("size", 10, "pub/model/1")


def _fail_in_child(url: str) -> None:
    raise DownloadError(f"GET {url} failed", handle="pub/m/1", url=url, status=503)


def test_an_error_crosses_a_process_boundary():
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        future = pool.submit(_fail_in_child, "http://127.0.0.1:9/x")
        with pytest.raises(DownloadError) as info:
            future.result(timeout=120)
    error = info.value
    assert (error.handle, error.url, error.status) == ("pub/m/1", "http://127.0.0.1:9/x", 503)
    assert str(error) == "GET http://127.0.0.1:9/x failed"
    assert isinstance(error, ConnectionError)
