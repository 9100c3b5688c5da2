"""The generator cache (rag_helpers/_infra/gguf_cache.py): the packaged GGUF converted once to safetensors."""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest

import rag_helpers as rh
from conftest import JUPITER, VENUS
from rag_helpers._infra import gguf_cache, models

ROOT = Path(__file__).resolve().parent.parent


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
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # this run's "system" temporary folder
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


# ------------------------------------------- the manifest pattern, shared with the ONNX export (_infra/cache.py)
def test_both_caches_check_their_entries_with_the_one_shared_helper(monkeypatch, tmp_path):
    from rag_helpers._infra import cache, onnx_encoder

    seen = []
    monkeypatch.setattr(gguf_cache, "check_manifest", lambda folder, **kw: seen.append(("gguf", kw)) or "x")
    monkeypatch.setattr(onnx_encoder, "check_manifest", lambda folder, **kw: seen.append(("onnx", kw)) or "y")
    assert gguf_cache.check_converted(tmp_path, models.packaged_generator_gguf()) == "x"
    assert onnx_encoder.check_exported(tmp_path, models.packaged_encoder_path()) == "y"
    assert [who for who, _ in seen] == ["gguf", "onnx"]
    assert seen[1][1]["required"] == ("encoder.onnx",)
    assert "def check_manifest" not in (ROOT / "rag_helpers/_infra/gguf_cache.py").read_text()
    assert "hashlib" not in (ROOT / "rag_helpers/_infra/onnx_encoder.py").read_text()
    assert cache.check_manifest.__module__ == "rag_helpers._infra.cache"


def test_a_written_manifest_vouches_for_every_file_and_catches_each_change(tmp_path):
    from rag_helpers._infra import cache

    (tmp_path / "a.bin").write_bytes(b"x" * 1000)
    (tmp_path / "b.json").write_text("{}")
    manifest = cache.write_manifest(tmp_path, fmt=3, source={"id": 1}, note="kept")
    assert set(manifest["files"]) == {"a.bin", "b.json"} and manifest["note"] == "kept"
    assert manifest["files"]["a.bin"]["sha256"] == hashlib.sha256(b"x" * 1000).hexdigest()

    def check(**kw):
        options = {"fmt": 3, "source": lambda: {"id": 1}, "other_source": "from elsewhere", **kw}
        return cache.check_manifest(tmp_path, **options)

    assert check() is None
    assert check(fmt=4) == "older cache format"
    assert check(source=lambda: {"id": 2}) == "from elsewhere"
    assert check(required=("c.onnx",)) == "malformed manifest: c.onnx is not listed"
    (tmp_path / "a.bin").write_bytes(b"y" * 1000)
    assert check() == "a.bin does not match its checksum"


def test_an_interrupted_build_leaves_nothing_that_looks_finished(tmp_path):
    from rag_helpers._infra import cache

    folder = tmp_path / "entry"

    def dies_half_way(tmp):
        (tmp / "half.bin").write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.build_atomically(folder, dies_half_way)
    assert list(tmp_path.iterdir()) == []
    cache.build_atomically(folder, lambda tmp: (tmp / "done").write_text("yes"))
    assert (folder / "done").read_text() == "yes" and list(tmp_path.iterdir()) == [folder]


# ------------------------------------------- read-only caches, caches that fail to load
def read_only(monkeypatch, *folders):
    """Make ``folders`` read-only: chmod for a normal user, and ``os.access`` saying so for root too.

    (root writes through any mode bits, so chmod alone proves nothing when the
    tests run as root; the cache code asks ``os.access``, patched to answer as
    it would for another user.)
    """
    for folder in folders:
        folder.chmod(0o555)
    real_access = os.access

    def access(path, mode, *args, **kwargs):
        if mode & os.W_OK and any(str(os.path.abspath(path)).startswith(str(f)) for f in folders):
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)


def test_a_valid_cache_that_cannot_be_written_is_read(fake_conversion, monkeypatch, tmp_path, capsys):
    from rag_helpers._infra import cache

    gguf = models.packaged_generator_gguf()
    folder = gguf_cache.converted_dir(gguf)
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"converted weights")
    cache.write_manifest(folder, fmt=gguf_cache._FORMAT, source=gguf_cache._source_id(gguf))
    try:
        read_only(monkeypatch, folder, folder.parent, folder.parent.parent)
        assert gguf_cache.ensure_converted(gguf) == folder
    finally:
        for f in (folder, folder.parent, folder.parent.parent):
            f.chmod(0o755)
    assert fake_conversion == [], "converted again although the cache was valid"
    assert capsys.readouterr().err == ""


def test_a_cache_that_fails_to_load_is_said_to_fail_to_load(fresh_cache, tmp_path, monkeypatch, capsys):
    from rag_helpers._infra import cache, generator_loading

    _, good = fresh_cache
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path / "cache"))
    gguf = models.packaged_generator_gguf()
    folder = gguf_cache.converted_dir(gguf)
    shutil.copytree(good, folder)
    (folder / "config.json").write_text('{"model_type": "no-such-model"}')  # edited, manifest and all
    cache.write_manifest(folder, fmt=gguf_cache._FORMAT, source=gguf_cache._source_id(gguf))
    assert gguf_cache.check_converted(folder, gguf) is None  # it passes its checks, then fails to load

    def reconvert(gguf_path, target):  # the 40 s conversion, replaced by a copy of a good one
        cache.build_atomically(target, lambda tmp: [shutil.copy2(p, tmp) for p in good.iterdir()])

    monkeypatch.setattr(gguf_cache, "_convert", reconvert)
    model, _, name, _ = generator_loading.resolve_and_load(models.PACKAGED_GENERATOR, "cpu")
    err = capsys.readouterr().err
    assert "failed to load" in err and "rebuilding it" in err and "no manifest" not in err
    assert err.count("\n") == 1, err
    assert name == models.PACKAGED_GENERATOR and gguf_cache.check_converted(folder, gguf) is None
