"""Atomic writes: all or nothing, with the permissions of a plain write."""

from __future__ import annotations

import os

import pytest

from mmmi_hf.atomic import atomic_write_bytes, atomic_write_text


def test_atomic_write_replaces_whole_files_with_plain_permissions(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    path = tmp_path / "out.txt"
    atomic_write_text(path, "first")
    atomic_write_bytes(path, b"second")
    assert path.read_bytes() == b"second"
    assert os.stat(path).st_mode & 0o777 == os.stat(plain).st_mode & 0o777
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left
    with pytest.raises(TypeError):
        atomic_write_bytes(path, "not bytes")  # a failed write keeps the old content
    assert path.read_bytes() == b"second"
