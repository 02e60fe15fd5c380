"""The Docker images cannot be built here: check what can be checked without a Docker engine."""

import argparse
import re
import shlex
from pathlib import Path

import pytest
import yaml

from augrgb.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
DOCKERFILES = sorted((REPO / "docker").glob("Dockerfile.*"))
COMPOSE_FILE = REPO / "docker" / "compose.yaml"
COMPOSE = yaml.safe_load(COMPOSE_FILE.read_text())
STAGES = [["extract", "rgb"], ["extract", "flow"], ["distill", "teacher"], ["distill", "student"], ["detect"]]


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


def check_image_installs_with_the_readme_command_and_runs_augrgb(dockerfile: Path) -> None:
    instructions = _instructions(dockerfile)
    runs = " ".join(args for word, args in instructions if word == "RUN")
    install = readme_install_command()
    assert install in runs, f"{dockerfile.name} does not use the README's install command: {install}"
    assert 'pip install -e ".[distributed]"' in runs, f"{dockerfile.name}: no Ray, so its containers cannot be Ray nodes"
    assert ("ENTRYPOINT", '["augrgb"]') in instructions
    base = next(args for word, args in instructions if word == "FROM")
    if dockerfile.name.endswith("gpu"):
        assert "cuda" in base and "runtime" in base


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_image_installs_with_the_readme_command_and_runs_augrgb(dockerfile):
    check_image_installs_with_the_readme_command_and_runs_augrgb(dockerfile)


def _variant(service: dict) -> str:
    return Path(service["build"]["dockerfile"]).suffix.lstrip(".")


def _chain(variant: str) -> list[str]:
    """The services of one profile in the order depends_on runs them (each waits for exactly one)."""
    services = {n: s for n, s in COMPOSE["services"].items() if _variant(s) == variant}
    first = [n for n, s in services.items() if "depends_on" not in s]
    assert len(first) == 1, f"{variant}: one stage must start the job, found {first}"
    order = first
    while True:
        after = [n for n, s in services.items() if order[-1] in s.get("depends_on", {})]
        if not after:
            break
        assert len(after) == 1, f"{variant}: stages after {order[-1]}: {after}"
        order.append(after[0])
    assert sorted(order) == sorted(services), f"{variant}: stages outside the chain"
    return order


def test_compose_parses_and_has_a_gpu_and_a_cpu_batch_job():
    assert isinstance(COMPOSE, dict) and COMPOSE["services"]
    assert {_variant(s) for s in COMPOSE["services"].values()} == {"gpu", "cpu"}


@pytest.mark.parametrize("name", sorted(COMPOSE["services"]))
def test_every_compose_service_runs_an_image_built_from_our_dockerfiles(name):
    service = COMPOSE["services"][name]
    context = (COMPOSE_FILE.parent / service["build"]["context"]).resolve()
    dockerfile = context / service["build"]["dockerfile"]
    assert context == REPO and dockerfile.is_file() and dockerfile in DOCKERFILES
    check_image_installs_with_the_readme_command_and_runs_augrgb(dockerfile)
    variant = _variant(service)
    assert service["image"] == f"augrgb:{variant}" and service["profiles"] == [variant]
    assert any(volume.rsplit(":", 1)[1] == "/data" for volume in service["volumes"])
    devices = service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
    if variant == "gpu":
        assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    else:
        assert not devices
    for condition in service.get("depends_on", {}).values():
        assert condition == {"condition": "service_completed_successfully"}  # one-shot jobs


def test_the_data_folder_defaults_to_data_at_the_repository_root():
    for service in COMPOSE["services"].values():
        host = service["volumes"][0].rsplit(":", 1)[0]
        default = re.fullmatch(r"\$\{AUGRGB_DATA:-(.+)\}", host).group(1)
        assert (COMPOSE_FILE.parent / default).resolve() == REPO / "data"


def test_gpu_and_cpu_jobs_run_the_same_stages_with_the_same_commands():
    gpu, cpu = _chain("gpu"), _chain("cpu")
    services = COMPOSE["services"]
    gpu_commands = [services[n]["command"] for n in gpu]
    assert [c[: len(stage)] for c, stage in zip(gpu_commands, STAGES)] == STAGES and len(gpu) == len(STAGES)
    for g, c in zip(gpu, cpu):
        command = services[g]["command"]
        if "--device" in command:
            at = command.index("--device")
            assert command[at + 1] == "cuda"
            command = command[:at] + command[at + 2:]
        assert services[c]["command"] == command, f"{c} and {g} differ"


@pytest.mark.parametrize("name", sorted(COMPOSE["services"]))
def test_compose_commands_parse_with_our_command_line(name):
    command = COMPOSE["services"][name]["command"]
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    if command[0] not in commands:
        pytest.skip(f"`augrgb {command[0]}` is not in this build yet")
    args = parser.parse_args(command)
    # the service reaches the handler of its stage, with the stage's own inputs and output folder
    handler = {"extract": "_run_extract", "distill": f"_run_{command[1]}", "detect": "_run"}[command[0]]
    assert args.func.__name__ == handler and args.command == command[0]
    if command[0] == "extract":
        assert args.extract_command == command[1] and args.inputs == [command[2]]
    for option in ("--out", "--config", "--model"):
        if option in command:
            assert getattr(args, option[2:]) == command[command.index(option) + 1], option
