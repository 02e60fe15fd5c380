"""The Docker images cannot be built here: check what can be checked without a Docker engine."""

import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILES = sorted((REPO / "docker").glob("Dockerfile.*"))


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            pairs.append((word.upper(), rest.strip()))
    return pairs


def readme_install_command() -> str:
    """The `pip install ...` part of the README's main (demo) command."""
    readme = (REPO / "README.md").read_text()
    main = next(line for line in readme.splitlines() if "augrgb demo" in line and "pip install" in line)
    return re.search(r"pip install [^&]+", main).group(0).strip()


def test_there_is_a_gpu_and_a_cpu_image():
    assert {p.name for p in DOCKERFILES} >= {"Dockerfile.gpu", "Dockerfile.cpu"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_copy_source_exists(dockerfile):
    copies = [shlex.split(args) for word, args in _instructions(dockerfile) if word == "COPY"]
    assert copies
    for parts in copies:
        for source in [p for p in parts[:-1] if not p.startswith("--")]:
            assert (REPO / source).exists(), f"{dockerfile.name}: COPY source {source} missing"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_image_installs_with_the_readme_command_and_runs_augrgb(dockerfile):
    instructions = _instructions(dockerfile)
    runs = " ".join(args for word, args in instructions if word == "RUN")
    install = readme_install_command()
    assert install in runs, f"{dockerfile.name} does not use the README's install command: {install}"
    assert ("ENTRYPOINT", '["augrgb"]') in instructions
    base = next(args for word, args in instructions if word == "FROM")
    if dockerfile.name.endswith("gpu"):
        assert "cuda" in base and "runtime" in base
