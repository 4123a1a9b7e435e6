"""Teachers/peers on real photos, where their optional extra is installed (`make teacher`)."""

from __future__ import annotations

import pytest

from rnnface.errors import ModelError
from rnnface.io import load_image
from rnnface.training.teachers import create_teacher, list_teachers


@pytest.mark.parametrize("name", list_teachers())
def test_teacher_separates_people(name, lfw_images):
    try:
        teacher = create_teacher(name)
    except ModelError as exc:
        pytest.skip(f"{name} not installed: {exc}")
    bush = [teacher.embed(load_image(lfw_images / "George_W_Bush" / f"George_W_Bush_000{i}.jpg")) for i in (1, 2)]
    serena = teacher.embed(load_image(lfw_images / "Serena_Williams" / "Serena_Williams_0001.jpg"))
    assert bush[0].shape == (teacher.dim,)
    assert float(bush[0] @ bush[1]) > float(bush[0] @ serena) + 0.1


def test_unknown_teacher():
    with pytest.raises(KeyError, match="unknown teacher"):
        create_teacher("nope")
