"""Omniglot (Lake et al., 2015): loading, the resized 28×28 cache and the paper's split.

Accepted sources (``data_dir``, or env ``RLMAML_DATA``, or ``../shared/data/omniglot``):

* the packed arrays ``images_background.npz`` + ``images_evaluation.npz`` (``images``: bool
  ``(C, 20, 105, 105)``, True = background), directly in the folder or under ``npz/``;
* the official archives ``images_background.zip`` / ``images_evaluation.zip`` (or any zip
  holding ``<Alphabet>/characterNN/IIII_DD.png``);
* extracted folders ``<Alphabet>/characterNN/*.png``;
* a single ``.npz`` or ``.zip`` file.

All characters found are ordered by their global id (the ``IIII`` in ``IIII_DD.png``; the
npz index otherwise), resized to 28×28 (LANCZOS, ink = 1) and cached as one uint8 array
``(C, 20, 28, 28)`` under ``cache_dir`` (env ``RLMAML_CACHE``, default ``~/.cache/rlmaml``).

Split (Finn et al., 2017): a permutation of all characters seeded by ``split_seed``; the first
``meta_train_characters`` (1200 of 1623) are for meta-training, each also rotated by 90°, 180°
and 270° to make new classes (4800 classes), the rest (423) are held out for meta-testing.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import zipfile
from pathlib import Path

import numpy as np

from ..errors import UserError

IMAGE_SIZE = 28
DRAWERS = 20
_PNG = re.compile(r"(?:^|/)([^/]+)/(character\d+)/(\d+)_(\d+)\.png$")
EXPECTED = ("images_background.npz + images_evaluation.npz (bool (C, 20, 105, 105)), "
            "images_background.zip / images_evaluation.zip, or folders <Alphabet>/characterNN/*.png")


class DataError(UserError):
    """Missing or malformed Omniglot data (message is one line)."""


def default_data_dir() -> Path:
    """``$RLMAML_DATA``, else ``../shared/data/omniglot`` from the working directory, else beside the repo."""
    env = os.environ.get("RLMAML_DATA")
    if env:
        return Path(env)
    cwd_guess = Path.cwd().parent / "shared" / "data" / "omniglot"
    if cwd_guess.exists():
        return cwd_guess
    return Path(__file__).resolve().parents[2].parent / "shared" / "data" / "omniglot"


def default_cache_dir() -> Path:
    return Path(os.environ.get("RLMAML_CACHE") or Path.home() / ".cache" / "rlmaml")


# ---------------------------------------------------------------------------- discovering sources

def find_sources(data_dir: str | Path) -> list[Path]:
    """The files/folders under ``data_dir`` that hold Omniglot characters (npz preferred)."""
    root = Path(data_dir)
    if not root.exists():
        raise DataError(f"Omniglot data path {str(root)!r} does not exist; expected {EXPECTED} "
                        "(set data_dir=... or RLMAML_DATA)")
    if root.is_file():
        if root.suffix not in (".npz", ".zip"):
            raise DataError(f"Omniglot data file {str(root)!r} is not a .npz or .zip; expected {EXPECTED}")
        return [root]
    for folder in (root, root / "npz"):
        npz = [folder / f"images_{part}.npz" for part in ("background", "evaluation")]
        if all(p.is_file() for p in npz):
            return npz
    zips = [root / f"images_{part}.zip" for part in ("background", "evaluation")]
    folders = [root / f"images_{part}" for part in ("background", "evaluation")]
    found = [f if f.is_dir() else z for z, f in zip(zips, folders) if f.is_dir() or z.is_file()]
    if found:
        return found
    if any(root.glob("*/character*/*.png")):
        return [root]
    raise DataError(f"no Omniglot data in {str(root)!r}; expected {EXPECTED}")


# ---------------------------------------------------------------------------- reading

def _resize(background: np.ndarray) -> np.ndarray:
    """bool (..., 105, 105) with True = background -> uint8 (..., 28, 28) ink intensity."""
    from PIL import Image

    flat = background.reshape(-1, *background.shape[-2:])
    out = np.empty((len(flat), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    for i, img in enumerate(flat):
        ink = Image.fromarray(np.where(img, 0, 255).astype(np.uint8))
        out[i] = np.asarray(ink.resize((IMAGE_SIZE, IMAGE_SIZE), Image.LANCZOS))
    return out.reshape(*background.shape[:-2], IMAGE_SIZE, IMAGE_SIZE)


def _read_npz(path: Path) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as data:
            images = data["images"]
    except KeyError:
        raise DataError(f"Omniglot archive {str(path)!r} has no 'images' array; expected bool (C, 20, 105, 105)") from None
    except Exception as exc:  # noqa: BLE001 - any read failure is a malformed file
        raise DataError(f"Omniglot archive {str(path)!r} is not a readable .npz ({type(exc).__name__}); "
                        "expected 'images' bool (C, 20, 105, 105)") from None
    if images.dtype != np.bool_ or images.ndim != 4 or images.shape[1:] != (DRAWERS, 105, 105):
        raise DataError(f"Omniglot archive {str(path)!r}: 'images' is {images.dtype} {images.shape}; "
                        "expected bool (C, 20, 105, 105) with True = background")
    return images


def _read_png(data: bytes, name: str) -> np.ndarray:
    from PIL import Image

    try:
        img = Image.open(io.BytesIO(data)).convert("L")
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"Omniglot image {name!r} is not a readable PNG ({type(exc).__name__})") from None
    if img.size != (105, 105):
        raise DataError(f"Omniglot image {name!r} is {img.size[0]}x{img.size[1]}; expected 105x105")
    return np.asarray(img) > 127


def _collect(entries: list[tuple[str, callable]], source: Path) -> tuple[list[int], np.ndarray]:
    """Group PNG entries (path, read_bytes) into characters ordered by global id."""
    chars: dict[tuple, dict[int, callable]] = {}
    for name, read in entries:
        m = _PNG.search(name)
        if m:
            alphabet, character, char_id, drawer = m.groups()
            chars.setdefault((int(char_id), alphabet, character), {})[int(drawer)] = (name, read)
    if not chars:
        raise DataError(f"no Omniglot images in {str(source)!r}; expected {EXPECTED}")
    keys = sorted(chars)
    images = np.empty((len(keys), DRAWERS, 105, 105), bool)
    for i, key in enumerate(keys):
        drawers = chars[key]
        if len(drawers) != DRAWERS:
            raise DataError(f"Omniglot character {key[1]}/{key[2]} in {str(source)!r} has {len(drawers)} "
                            f"images; expected {DRAWERS}")
        for j, d in enumerate(sorted(drawers)):
            name, read = drawers[d]
            images[i, j] = _read_png(read(), name)
    return [k[0] for k in keys], images


def _read_zip(path: Path) -> tuple[list[int], np.ndarray]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"Omniglot archive {str(path)!r} is not a valid zip ({type(exc).__name__}); "
                        f"expected {EXPECTED}") from None
    with archive:
        entries = [(n, (lambda n=n: archive.read(n))) for n in archive.namelist() if n.endswith(".png")]
        return _collect(entries, path)


def _read_folder(path: Path) -> tuple[list[int], np.ndarray]:
    entries = [(p.as_posix(), p.read_bytes) for p in path.rglob("*.png")]
    return _collect(entries, path)


def read_source(path: Path) -> tuple[list[int] | None, np.ndarray]:
    """(global character ids or None, bool images (C, 20, 105, 105) with True = background)."""
    if path.suffix == ".npz":
        return None, _read_npz(path)
    if path.suffix == ".zip":
        return _read_zip(path)
    return _read_folder(path)


# ---------------------------------------------------------------------------- the cache

def _fingerprint(sources: list[Path]) -> str:
    h = hashlib.sha256()
    for s in sources:
        files = [s] if s.is_file() else sorted(s.rglob("*.png"))
        h.update(str(s.resolve()).encode())
        h.update(str(len(files)).encode())
        for f in files[:: max(1, len(files) // 64)]:
            st = f.stat()
            h.update(f"{f.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


def load_omniglot(data_dir: str | Path | None = None, cache_dir: str | Path | None = None,
                  progress: bool = False) -> np.ndarray:
    """All characters as uint8 ``(C, 20, 28, 28)`` (ink = 255), from the cache when present."""
    data_dir = Path(data_dir) if data_dir else default_data_dir()
    sources = find_sources(data_dir)
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    cache = cache_dir / f"omniglot28-{_fingerprint(sources)}.npy"
    if cache.is_file():
        try:
            images = np.load(cache, allow_pickle=False)
            if images.dtype == np.uint8 and images.ndim == 4 and images.shape[1:] == (DRAWERS, IMAGE_SIZE, IMAGE_SIZE):
                return images
        except Exception:  # noqa: BLE001, S110 - a broken cache is rebuilt
            pass
    parts, ids = [], []
    for source in sources:
        char_ids, images = read_source(source)
        parts.append(_resize(images))
        ids.append(char_ids)
    if all(i is not None for i in ids):  # order PNG sources by global character id, drop duplicates
        flat_ids = [i for part in ids for i in part]
        order = sorted(set(flat_ids))
        first = {cid: k for k, cid in reversed(list(enumerate(flat_ids)))}
        stacked = np.concatenate(parts)
        images = stacked[[first[c] for c in order]]
    else:
        images = np.concatenate(parts)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.name + f".tmp{os.getpid()}.npy")
    np.save(tmp, images)
    os.replace(tmp, cache)
    return images


def split_characters(num_characters: int, meta_train_characters: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed seeded permutation of all characters -> (meta-train ids, meta-test ids)."""
    if not 0 < meta_train_characters < num_characters:
        raise DataError(f"meta_train_characters={meta_train_characters} must be between 1 and "
                        f"{num_characters - 1} (the data holds {num_characters} characters)")
    order = np.random.default_rng(seed).permutation(num_characters)
    return np.sort(order[:meta_train_characters]), np.sort(order[meta_train_characters:])
