"""The generator cache (rag_helpers/_infra/gguf_cache.py): the packaged GGUF converted once to safetensors."""
from __future__ import annotations

import fcntl
import json
import shutil
import threading
import time

import pytest

import rag_helpers as rh
from conftest import JUPITER, VENUS
from rag_helpers._infra import gguf_cache, models


# ------------------------------------------------------------------ the cache
@pytest.fixture(scope="module")
def fresh_cache(tmp_path_factory):
    """A converted cache made from scratch in a temporary folder."""
    root = tmp_path_factory.mktemp("rag-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAG_CACHE_DIR", str(root))
        folder = gguf_cache.ensure_converted(models.packaged_generator_gguf())
    return root, folder


def test_first_load_converts_to_safetensors_with_a_manifest(fresh_cache):
    _, folder = fresh_cache
    manifest = json.loads((folder / "manifest.json").read_text())
    assert "model.safetensors" in manifest["files"]
    assert not list(folder.glob("*.gguf")) and not list(folder.glob("*.bin")) and not list(folder.glob("*.pkl"))
    assert gguf_cache.check_converted(folder, models.packaged_generator_gguf()) is None


def test_second_load_reuses_the_cache_without_converting(fresh_cache, monkeypatch, capsys):
    root, folder = fresh_cache
    monkeypatch.setenv("RAG_CACHE_DIR", str(root))
    monkeypatch.setattr(gguf_cache, "_convert", lambda *a: pytest.fail("converted again"))
    again = rh.load_generator(rh.PACKAGED_GENERATOR, device="cpu")
    assert "Converting" not in capsys.readouterr().err
    assert rh.generate_real_answer(rh.SAMPLE_QUESTION, [JUPITER, VENUS], again, max_new_tokens=16).count("Jupiter")


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda f: (f / "manifest.json").unlink(), "no manifest"),
        (lambda f: (f / "manifest.json").write_text("{not json"), "unreadable manifest"),
        (lambda f: (f / "tokenizer.json").unlink(), "tokenizer.json is missing"),
        (lambda f: _flip_a_byte(f / "model.safetensors"), "model.safetensors does not match its checksum"),
        (lambda f: _truncate(f / "model.safetensors"), "model.safetensors has the wrong size"),
    ],
)
def test_damaged_cache_is_detected(fresh_cache, tmp_path, damage, reason):
    import shutil

    _, folder = fresh_cache
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    damage(copy)
    assert gguf_cache.check_converted(copy, models.packaged_generator_gguf()) == reason


def test_corrupt_cache_is_rebuilt_on_load(fresh_cache, monkeypatch, capsys):
    root, folder = fresh_cache
    monkeypatch.setenv("RAG_CACHE_DIR", str(root))
    _flip_a_byte(folder / "model.safetensors")
    rebuilt = rh.load_generator(rh.PACKAGED_GENERATOR, device="cpu")
    assert "unusable (model.safetensors does not match its checksum); rebuilding" in capsys.readouterr().err
    assert gguf_cache.check_converted(folder, models.packaged_generator_gguf()) is None
    assert "Jupiter" in rh.generate_real_answer(rh.SAMPLE_QUESTION, [JUPITER], rebuilt, max_new_tokens=16)


def _flip_a_byte(path):
    with open(path, "r+b") as f:
        f.seek(path.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))


def _truncate(path):
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 100)


# ------------------------------------------------------- malformed manifests
@pytest.mark.parametrize(
    "manifest, reason",
    [
        ({"format": 1, "files": []}, "'files' is not a non-empty mapping"),
        ({"format": 1, "files": {}}, "'files' is not a non-empty mapping"),
        ({}, "'files' is not a non-empty mapping"),
        ([1, 2], "not an object"),
        ({"format": 1, "files": {"model.safetensors": 5}}, "entry 'model.safetensors' is not an object"),
        ({"format": 1, "files": {"model.safetensors": {"sha256": "0" * 64}}}, "has no valid size"),
        ({"format": 1, "files": {"model.safetensors": {"size": 1}}}, "has no valid sha256"),
        ({"format": 1, "files": {"../escape": {"size": 1, "sha256": "0" * 64}}}, "not a plain name"),
        ({"format": 1, "files": {"/etc/passwd": {"size": 1, "sha256": "0" * 64}}}, "not a plain name"),
    ],
)
def test_a_malformed_manifest_is_refused_never_verified(manifest, reason, tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    problem = gguf_cache.check_converted(tmp_path, models.packaged_generator_gguf())
    assert problem is not None and reason in problem


# ---------------------------------------- locks, leftovers, unusable folders
@pytest.fixture
def fake_conversion(monkeypatch, tmp_path):
    """ensure_converted with the 40 s conversion replaced by a recorder that writes a valid-looking folder."""
    calls = []

    def convert(gguf_path, folder):
        calls.append(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "converted").write_text("yes")

    monkeypatch.setattr(gguf_cache, "_convert", convert)
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    return calls


def test_a_conversion_killed_half_way_is_cleaned_up_next_time(fake_conversion, capsys):
    gguf = models.packaged_generator_gguf()
    folder = gguf_cache.converted_dir(gguf)
    leftover = folder.parent / (folder.name + ".x1y2z3")  # what mkdtemp left when the process was killed
    (leftover / "big").mkdir(parents=True)
    gguf_cache.ensure_converted(gguf)
    assert not leftover.exists() and fake_conversion == [folder]
    assert "left behind by an interrupted conversion" in capsys.readouterr().err


def test_a_second_process_waits_for_the_first_conversion(fake_conversion, monkeypatch, capsys):
    gguf = models.packaged_generator_gguf()
    folder = gguf_cache.converted_dir(gguf)
    folder.parent.mkdir(parents=True)
    done = {"converted": False}
    monkeypatch.setattr(gguf_cache, "check_converted",
                        lambda f, g: None if done["converted"] else "no manifest")
    with open(folder.parent / ".convert.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # "the first process" is converting
        waiter = threading.Thread(target=gguf_cache.ensure_converted, args=(gguf,))
        waiter.start()
        time.sleep(1.0)
        assert waiter.is_alive(), "the second conversion did not wait for the lock"
        done["converted"] = True  # the first process finished
        fcntl.flock(lock, fcntl.LOCK_UN)
    waiter.join(timeout=10)
    assert not waiter.is_alive()
    assert fake_conversion == [], "converted again instead of using the first conversion"
    assert "waiting for it" in capsys.readouterr().err


@pytest.mark.parametrize("make_unusable", ["a file", "under a file"])
def test_an_unusable_cache_folder_converts_for_this_run_only(make_unusable, fake_conversion, tmp_path,
                                                            monkeypatch, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    monkeypatch.setenv("RAG_CACHE_DIR", str(blocker if make_unusable == "a file" else blocker / "cache"))
    folder = gguf_cache.ensure_converted(models.packaged_generator_gguf())
    assert (folder / "converted").read_text() == "yes" and len(fake_conversion) == 1
    err = capsys.readouterr().err
    assert "cannot be used" in err and "RAG_CACHE_DIR" in err and str(blocker) in err
    assert err.count("\n") == 1
