"""safe_join: an output path made from params stays inside the folder it is declared under."""

from __future__ import annotations

import pytest

from stages.lib.paths import PathEscapeError, safe_join


def test_names_inside_the_root_join_as_given(tmp_path):
    assert safe_join(tmp_path / "data", "packaged", "condition-2-zh-5k") == tmp_path / "data" / "packaged" / "condition-2-zh-5k"


@pytest.mark.parametrize("parts", [("x/../../../t",), ("/abs/dataset",), ("..",), ("",), ("a", "..")])
def test_a_path_outside_the_root_or_the_root_itself_is_refused(tmp_path, parts):
    with pytest.raises(PathEscapeError, match=r"is not inside .*data"):
        safe_join(tmp_path / "data", *parts)


def test_a_link_out_of_the_root_is_refused(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "escape").symlink_to(tmp_path)
    with pytest.raises(PathEscapeError, match="escape"):
        safe_join(tmp_path / "data", "escape", "t")
