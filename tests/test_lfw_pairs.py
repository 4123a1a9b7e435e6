"""LFW pairs files: parsing, fold structure, and the person-disjointness of View 2 folds."""

from __future__ import annotations

import pytest

from rnnface.errors import DataError
from rnnface.lab.data.lfw import read_pairs


def test_handmade_pairs_file(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("2\t1\nAnn\t1\t2\nBob\t3\tCid\t1\nDan\t1\t4\nEve\t2\tFay\t10\n")
    pairs = read_pairs(path)
    assert [(p.fold, p.a, p.b, p.same) for p in pairs] == [
        (0, "Ann/Ann_0001.jpg", "Ann/Ann_0002.jpg", True),
        (0, "Bob/Bob_0003.jpg", "Cid/Cid_0001.jpg", False),
        (1, "Dan/Dan_0001.jpg", "Dan/Dan_0004.jpg", True),
        (1, "Eve/Eve_0002.jpg", "Fay/Fay_0010.jpg", False),
    ]


def test_malformed_pairs_file(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("1\t2\nAnn\t1\t2\n")
    with pytest.raises(DataError, match="expected 4 pairs"):
        read_pairs(path)


def test_official_view2(lfw_root):
    pairs = read_pairs(lfw_root / "pairs.txt")
    assert len(pairs) == 6000
    people_by_fold = [set() for _ in range(10)]
    for p in pairs:
        people_by_fold[p.fold] |= {p.a.split("/")[0], p.b.split("/")[0]}
        assert (lfw_root / "lfw" / p.a).is_file() and (lfw_root / "lfw" / p.b).is_file()
    assert sum(p.same for p in pairs) == 3000
    for i in range(10):
        for j in range(i + 1, 10):
            assert not people_by_fold[i] & people_by_fold[j]
