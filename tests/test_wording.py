"""The one English list join every caption, rationale and pretraining target uses."""

from vpd.wording import join_and


def test_join_and() -> None:
    assert join_and([]) == ""
    assert join_and(["a red cube"]) == "a red cube"
    assert join_and(["a", "b"]) == "a and b"
    assert join_and(iter(["a", "b", "c"])) == "a, b and c"
