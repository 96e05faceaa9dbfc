"""`python -m tools.wheel_folders`: each platform's folder holds the wheels its markers ask for, and resolves offline.

`pip download --platform` alone evaluates markers for this Linux machine, so a Windows folder would lack
``colorama`` (tqdm's dependency there) and a macOS one ``appnope``. Needs the package registry, as the set-up does.
"""

from __future__ import annotations

import pytest

from tools.wheel_folders import ROOT, TARGETS, Target, check_folder, folder_name, main, make_folder

MARKED = "colorama ; sys_platform == 'win32'\nappnope ; sys_platform == 'darwin'\nsix\n"
"""Three pins of constraints.txt, two of them for one operating system each."""


def wheel_names(folder) -> set[str]:
    return {path.name.split("-")[0].lower() for path in folder.glob("*.whl")}


@pytest.fixture(scope="module")
def marked(tmp_path_factory):
    requirements = tmp_path_factory.mktemp("marked") / "requirements.txt"
    requirements.write_text(MARKED)
    return requirements


@pytest.mark.parametrize(
    "target, expected",
    [("windows-x86_64", {"colorama", "six"}), ("macos14-arm64", {"appnope", "six"}), ("linux-x86_64", {"six"})],
)
def test_each_folder_has_the_wheels_its_platform_needs(marked, tmp_path, target, expected):
    folder = tmp_path / folder_name("marked", target, "3.12")
    pinned = make_folder([marked], TARGETS[target], "3.12", folder)
    assert wheel_names(folder) == expected and len(pinned) == len(expected)
    assert check_folder([marked], TARGETS[target], "3.12", folder).returncode == 0


def test_a_folder_missing_a_wheel_does_not_resolve(marked, tmp_path):
    folder = tmp_path / "windows"
    make_folder([marked], TARGETS["windows-x86_64"], "3.12", folder)
    next(folder.glob("colorama-*.whl")).unlink()
    check = check_folder([marked], TARGETS["windows-x86_64"], "3.12", folder)
    assert check.returncode != 0 and "colorama" in check.stderr


def test_a_failed_folder_leaves_nothing_behind(tmp_path):
    """pywinpty has Windows wheels only: with Linux's 32-bit tag pip finds none, an error, and no folder is left."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pywinpty ; sys_platform == 'win32'\n")
    wrong_tags = Target(TARGETS["windows-x86_64"].uv_platform, ("linux_i686",))
    with pytest.raises(RuntimeError, match="pip download failed.*pywinpty"):
        make_folder([requirements], wrong_tags, "3.12", tmp_path / "folders" / "wrong")
    assert list((tmp_path / "folders").iterdir()) == []


def test_the_light_install_for_windows_resolves_from_its_folder(tmp_path, capsys):
    """The real thing, for the target pip gets wrong from Linux: the light install's folder for Windows and
    Python 3.12 (about 250 MiB, from pip's cache after the first run)."""
    assert main([str(tmp_path), "--targets", "windows-x86_64", "--pythons", "3.12"]) == 0
    folder = tmp_path / folder_name("light", "windows-x86_64", "3.12")
    assert {"colorama", "pywinpty", "openvino"} <= wheel_names(folder)
    assert "resolves offline for windows-x86_64, Python 3.12" in capsys.readouterr().out
    assert (folder / "requirements.txt").read_text().count("==") == len(list(folder.glob("*.whl")))
    assert (ROOT / "requirements-light.txt").is_file()
