"""The bad-input corpus: each case builds its bad input in a fresh folder and names the dqcl
command that meets it and what the one-line error must say.

A case is ``build(root) -> Case``. Data cases put one bad pair (or file) into an otherwise good
``data/`` folder read by a study's folder domain; spec and store cases break those instead.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

GOOD_SIZE = 96


@dataclass
class Case:
    argv: list[str]
    says: list[str]  # substrings the error line must hold (the file or key, and the problem)
    skippable: bool = False  # --skip-bad may leave the bad pair out and go on
    patch: Callable | None = None  # a monkeypatch(monkeypatch) to apply first (what root cannot make real)
    extra: dict = field(default_factory=dict)


def _arrays(n: int = 3):
    from dqcl.data.domains import DOMAINS

    d = DOMAINS.get("nuclei").factory(seed=0, n_train=n, n_test=1, size=GOOD_SIZE, generator=1)  # fixed-size squares
    return [(np.clip(i, 0, 1.5) * 40000).astype(np.uint16) for i in d.train.images], [m.astype(np.uint16) for m in d.train.masks]


def _save(path: Path, arr: np.ndarray) -> None:
    import tifffile
    from skimage import io

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".tif":
        tifffile.imwrite(path, arr)
    else:
        io.imsave(path, arr, check_contrast=False)


def good_folder(root: Path) -> Path:
    imgs, masks = _arrays()
    data = root / "data"
    for split, idx in (("train", (0, 1)), ("test", (2,))):
        for i in idx:
            _save(data / split / f"s{i}_img.png", imgs[i])
            _save(data / split / f"s{i}_masks.png", masks[i])
    return data


SPEC = """
[study]
name = "bad"
seeds = [0]
orderings = [["mine", "histo"]]
device = "cpu"

[data]
patch_size = 48
stride = 48
cache_dir = "{cache}"

[domains.mine]
kind = "folder"
path = "{path}"

[domains.histo]
n_train = 2
n_test = 1
size = 96

[model]
widths = [8, 16, 32, 64]

[train]
epochs = 1
batch_size = 4

[eval]
niter = 50

[strategies.naive]
"""


def spec_for(root: Path, path: str | None = None, text: str | None = None) -> Path:
    p = root / "study.toml"
    p.write_text(text if text is not None else SPEC.format(cache=(root / "cache").as_posix(), path=path or (root / "data").as_posix()))
    return p


def _run(root: Path, **kw) -> list[str]:
    return ["run", "benchmark", str(spec_for(root, **kw)), "--store", str(root / "store.sqlite"), "--quiet"]


def _data_case(make: Callable[[Path], Path], *says: str, skippable: bool = True) -> Callable[[Path], Case]:
    """``skippable``: the bad pair can be left out with --skip-bad (a pairing problem, which leaves
    unclear which file is meant, cannot)."""

    def build(root: Path) -> Case:
        good_folder(root)
        bad = make(root / "data" / "train")
        return Case(_run(root), [str(bad), *says], skippable=skippable)

    build.data_case = True  # a bad file in a data folder: `dqcl data register` meets it too
    return build


def _truncated_png(d: Path) -> Path:
    p = d / "s0_img.png"
    p.write_bytes(p.read_bytes()[:200])
    return p


def _truncated_tiff(d: Path) -> Path:
    imgs, _ = _arrays(1)
    p = d / "s0_img.tif"
    (d / "s0_img.png").unlink()
    _save(p, imgs[0])
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 3])
    return p


def _zero_bytes(d: Path) -> Path:
    p = d / "s0_masks.png"
    p.write_bytes(b"")
    return p


def _size_mismatch(d: Path) -> Path:
    p = d / "s0_masks.png"
    _save(p, np.zeros((GOOD_SIZE // 2, GOOD_SIZE), np.uint16) + 1)
    return p


def _float_mask(d: Path) -> Path:
    (d / "s0_masks.png").unlink()
    p = d / "s0_masks.tif"
    _save(p, np.full((GOOD_SIZE, GOOD_SIZE), 0.5, np.float32))
    return p


def _negative_mask(d: Path) -> Path:
    (d / "s0_masks.png").unlink()
    p = d / "s0_masks.tif"
    m = np.zeros((GOOD_SIZE, GOOD_SIZE), np.int16)
    m[10:20, 10:20] = -3
    _save(p, m)
    return p


def _all_background(d: Path) -> Path:
    p = d / "s0_masks.png"
    _save(p, np.zeros((GOOD_SIZE, GOOD_SIZE), np.uint16))
    return p


def _stack_3d(d: Path) -> Path:
    imgs, _ = _arrays(1)
    (d / "s0_img.png").unlink()
    p = d / "s0_img.tif"
    _save(p, np.stack([imgs[0]] * 5))
    return p


def _huge(d: Path) -> Path:
    import tifffile

    (d / "s0_img.png").unlink()
    p = d / "s0_img.tif"
    m = tifffile.memmap(p, shape=(20000, 20000), dtype=np.uint8)  # sparse on disk; 400 M pixels in its header
    del m
    return p


def _not_an_image(d: Path) -> Path:
    p = d / "s0_img.png"
    p.write_text("this is a lab notebook entry, not a picture\n")
    return p


def _symlink_loop(d: Path) -> Path:
    p = d / "s0_img.png"
    p.unlink()
    os.symlink(p.name, p)  # a link to itself
    return p


def _unreadable(d: Path) -> Path:
    p = d / "s0_img.png"
    os.chmod(p, 0)
    return p


def _duplicate_stem(d: Path) -> Path:
    imgs, _ = _arrays(1)
    p = d / "s0_img.tif"
    _save(p, imgs[0])
    return p


def _missing_mask(d: Path) -> Path:
    (d / "s1_masks.png").unlink()
    return d / "s1_img.png"


def _colour_mask(d: Path) -> Path:
    p = d / "s0_masks.png"
    rgb = np.zeros((GOOD_SIZE, GOOD_SIZE, 3), np.uint8)
    rgb[5:20, 5:20] = (255, 0, 0)
    rgb[30:50, 30:50] = (0, 255, 0)
    _save(p, rgb)
    return p


def _unreadable_case(root: Path) -> Case:
    case = _data_case(_unreadable, "permission denied")(root)
    if os.geteuid() == 0:  # root reads any file: make the reader meet the EACCES a user would get
        target = case.says[0]

        def patch(mp):
            import dqcl.data.imageio as io_

            real = io_._header_shape

            def denied(path):
                if str(path) == target:
                    raise PermissionError(13, "Permission denied", str(path))
                return real(path)

            mp.setattr(io_, "_header_shape", denied)

        case.patch = patch
    return case


_unreadable_case.data_case = True


def _spec_text_case(mutate: Callable[[str], str], *says: str) -> Callable[[Path], Case]:
    def build(root: Path) -> Case:
        good_folder(root)
        text = mutate(SPEC.format(cache=(root / "cache").as_posix(), path=(root / "data").as_posix()))
        spec = spec_for(root, text=text)
        return Case(_run(root, text=text), [str(spec), *says])

    return build


def _path_escape(root: Path) -> Case:
    good_folder(root)
    sub = root / "specs"
    sub.mkdir()
    spec = sub / "study.toml"
    spec.write_text(SPEC.format(cache="cache", path="../../../../../../etc"))
    return Case(["run", "benchmark", str(spec), "--store", str(root / "store.sqlite"), "--quiet"],
                [str(spec), "domains.mine.path", "leads outside"])


def _store_case(kind: str) -> Callable[[Path], Case]:
    def build(root: Path) -> Case:
        good_folder(root)
        case = Case(_run(root), [str(root / "store.sqlite")], extra={"store": kind})
        if kind == "corrupted":
            case.says.append("not a usable dqcl results store")
        elif kind == "locked":
            case.says.append("locked by another process")
        elif kind == "readonly":
            case.says.append("read-only")

            def patch(mp):
                import dqcl.results.store as st

                real = sqlite3.connect
                def read_only(path, **kw):  # every connection opens the file as a read-only file opens
                    kw.pop("uri", None)
                    return real(str(path) if str(path).startswith("file:") else f"file:{path}?mode=ro", uri=True, **kw)

                mp.setattr(st.sqlite3, "connect", read_only)

            case.patch = patch  # root writes any file: open the store the way a read-only file opens
        return case

    return build


def _sparse_tib(d: Path) -> Path:
    """A 1 TiB sparse file among the pairs: refused by size before a byte is hashed or read."""
    import shutil

    p = d / "s9_img.png"
    with open(p, "wb") as fh:
        fh.truncate(2**40)
    shutil.copy(d / "s0_masks.png", d / "s9_masks.png")
    return p


def _device_links(d: Path) -> Path:
    """An image and its mask that are links to a device: reported, never silently dropped."""
    for name in ("s8_img.png", "s8_masks.png"):
        (d / name).symlink_to("/dev/null")
    return d / "s8_masks.png"  # masks are listed first


def _many_small_axes(d: Path) -> Path:
    """A TIFF whose small extra axes multiply its values past the limit (4^5 x 2048^2): read from its header."""
    import tifffile

    p = d / "s0_img.tif"
    (d / "s0_img.png").unlink()
    tifffile.imwrite(p, shape=(4, 4, 4, 4, 4, 2048, 2048), dtype="uint8")  # sparse: a few kB on disk
    return p


def _foreign_db(root: Path) -> Case:
    """Another application's SQLite file given as --store: refused, not a byte written to it."""
    good_folder(root)
    case = Case(_run(root), [str(root / "store.sqlite"), "not a dqcl results store", "users"], extra={"store": "foreign"})
    return case


def _store_row_case(kind: str) -> Callable[[Path], Case]:
    """A store whose run row holds truncated JSON, or whose schema field is not a number: leaderboard build."""
    def build(root: Path) -> Case:
        good_folder(root)
        says = ["not valid JSON"] if kind == "bad_json" else ["schema field", "not a number"]
        return Case(["leaderboard", "build", "--store", str(root / "store.sqlite"), "--out", str(root / "lb")],
                    [str(root / "store.sqlite"), *says], extra={"store": kind})

    return build


def _select_case(kind: str) -> Callable[[Path], Case]:
    def build(root: Path) -> Case:
        good_folder(root)
        feats = root / "f.npy"
        if kind == "empty_npy":
            feats.write_bytes(b"")
            return Case(["select", str(feats), "--ratio", "0.5", "--out", str(root / "o.npy")], [str(feats), "not a NumPy .npy array"])
        np.save(feats, np.random.default_rng(0).standard_normal((20, 4)))
        (root / "afile").write_text("a regular file")
        out = root / "afile" / "o.npy"
        return Case(["select", str(feats), "--ratio", "0.5", "--out", str(out)], [str(out), "is a file, not a folder"])

    return build


def _argv_case(extra: list[str], *says: str, patch: Callable | None = None, text: Callable[[str], str] | None = None) -> Callable[[Path], Case]:
    """``dqcl run benchmark`` on the good spec (``text`` changes it) with ``extra`` arguments."""
    def build(root: Path) -> Case:
        good_folder(root)
        body = SPEC.format(cache=(root / "cache").as_posix(), path=(root / "data").as_posix())
        return Case(_run(root, text=text(body) if text else body) + extra, list(says), patch=patch)

    return build


def _damaged_init(root: Path) -> Case:
    """A model.init file whose bytes are a pickle of something other than tensors."""
    import pickle

    good_folder(root)
    bad = root / "model.pth"
    bad.write_bytes(pickle.dumps({"w": Case}))
    text = SPEC.format(cache=(root / "cache").as_posix(), path=(root / "data").as_posix()).replace("[model]\n", '[model]\ninit = "model.pth"\n')
    return Case(_run(root, text=text), [str(bad), "not a file of tensors", "other Python objects"])


def _copy_over_users_folder(root: Path) -> Case:
    data = good_folder(root)
    mine = root / "mine"
    mine.mkdir()
    (mine / "holiday.png").write_bytes(b"not dqcl's")
    return Case(["select", str(data / "train"), "--rate", "0.5", "--bins", "1", "--copy-to", str(mine)],
                [str(mine), "not filled by dqcl select", "holiday.png"])


def _runs_folder_is_a_file(root: Path) -> Case:
    good_folder(root)
    (root / "runs").write_text("a file where runs/ would go")
    return Case(_run(root) + ["--csv-log"], [str(root / "runs"), "cannot be made"])


def _bad_datasets_json(root: Path) -> Case:
    home = root / "home"
    home.mkdir()
    (home / "datasets.json").write_text('["a list", "not a table of folders"]')
    return Case(["data", "list"], [str(home / "datasets.json")], patch=lambda mp: mp.setenv("DQCL_HOME", str(home)))


def _store_shape_case(sql: str, *says: str) -> Callable[[Path], Case]:
    """A store whose run row is valid JSON of the wrong shape: leaderboard build."""
    def build(root: Path) -> Case:
        good_folder(root)
        return Case(["leaderboard", "build", "--store", str(root / "store.sqlite"), "--out", str(root / "lb")],
                    [str(root / "store.sqlite"), *says], extra={"store": "sql", "sql": sql})

    return build


CASES: dict[str, Callable[[Path], Case]] = {
    "truncated_png": _data_case(_truncated_png, "cannot read as an image"),
    "truncated_tiff": _data_case(_truncated_tiff, "cannot read as an image"),
    "zero_byte_file": _data_case(_zero_bytes, "empty file"),
    "image_mask_size_mismatch": _data_case(_size_mismatch, "differs from image shape"),
    "float_mask": _data_case(_float_mask, "non-integer values"),
    "negative_labels": _data_case(_negative_mask, "negative labels"),
    "all_background_mask": _data_case(_all_background, "no labelled object"),
    "3d_stack_for_2d": _data_case(_stack_3d, "expected a 2-D image"),
    "huge_image": _data_case(_huge, "over dqcl's limit"),
    "text_file_named_png": _data_case(_not_an_image, "cannot read as an image"),
    "symlink_loop": _data_case(_symlink_loop, "symbolic-link loop", skippable=False),
    "unreadable_permissions": _unreadable_case,
    "duplicate_stems": _data_case(_duplicate_stem, "duplicate stem", skippable=False),
    "image_without_mask": _data_case(_missing_mask, "has no mask", skippable=False),
    "colour_coded_mask": _data_case(_colour_mask, "expected a 2-D instance mask"),
    "malformed_toml": _spec_text_case(lambda t: t.replace("[study]", "[study"), "malformed TOML"),
    "unknown_spec_key": _spec_text_case(lambda t: t.replace("epochs = 1", "epocs = 1"), "unknown key 'epocs'", "did you mean 'epochs'"),
    "wrong_type_in_spec": _spec_text_case(lambda t: t.replace("batch_size = 4", 'batch_size = "four"'), "train.batch_size", "expected int"),
    "subfolder_escapes_domain": _spec_text_case(lambda t: t.replace('kind = "folder"', 'kind = "folder"\ntrain_dir = "../../.."'), "train_dir", "inside the domain"),
    "path_traversal_in_spec": _path_escape,
    "store_corrupted": _store_case("corrupted"),
    "store_locked": _store_case("locked"),
    "store_read_only": _store_case("readonly"),
    # issue 13: hostile input
    "sparse_1_tib_file": _data_case(_sparse_tib, "over dqcl's limit", skippable=False),
    "links_to_a_device": _data_case(_device_links, "not a regular file", skippable=False),
    "tiff_of_many_small_axes": _data_case(_many_small_axes, "over dqcl's limit"),
    "cache_dir_outside": _spec_text_case(lambda t: t.replace('cache_dir = "', 'cache_dir = "../../../../../tmp/evil-'), "data.cache_dir", "leads outside"),
    "lr_nan": _spec_text_case(lambda t: t.replace("batch_size = 4", "batch_size = 4\nlr = nan"), "train.lr", "got nan"),
    "negative_seed": _spec_text_case(lambda t: t.replace("seeds = [0]", "seeds = [-1]"), "study.seeds", "in [0, 4294967295]"),
    "seed_too_large": _spec_text_case(lambda t: t.replace("seeds = [0]", "seeds = [4294967296]"), "study.seeds", "got 4294967296"),
    "negative_data_seed": _spec_text_case(lambda t: t.replace("seeds = [0]", "seeds = [0]\ndata_seed = -3"), "study.data_seed", "got -3"),
    "data_seed_misspelt_per_seed": _spec_text_case(lambda t: t.replace("seeds = [0]", 'seeds = [0]\ndata_seed = "per-seed"'),
                                                   "study.data_seed", "did you mean 'per_seed'"),
    "negative_builtin_size": _spec_text_case(lambda t: t.replace("size = 96", "size = -96"), "domains.histo.size", "got -96"),
    "zero_builtin_n_train": _spec_text_case(lambda t: t.replace("n_train = 2", "n_train = 0"), "domains.histo.n_train", "in [1, 100000], got 0"),
    "memory_bomb_patch": _spec_text_case(lambda t: t.replace("patch_size = 48", "patch_size = 60000\npad = true").replace("stride = 48", "stride = 60000"), "needs about", "GiB"),
    "memory_bomb_widths": _spec_text_case(lambda t: t.replace("widths = [8, 16, 32, 64]", "widths = [65536, 16, 32, 64]"), "needs about", "GiB"),
    "someone_elses_database": _foreign_db,
    "store_row_truncated_json": _store_row_case("bad_json"),
    "store_schema_not_a_number": _store_row_case("bad_schema"),
    "select_empty_npy": _select_case("empty_npy"),
    "select_out_under_a_file": _select_case("out_under_file"),
    # issue 16: hostile input, second pass
    "domain_named_like_a_path": _spec_text_case(
        lambda t: t.replace("[domains.histo]", '[domains."x/../../victim"]').replace('"histo"]]', '"x/../../victim"]]'),
        "domain name", "path separator"),
    "study_name_with_a_newline": _spec_text_case(lambda t: t.replace('name = "bad"', 'name = "bad\\n# heading"'), "study.name", "U+000A"),
    "all_orderings_past_the_run_bound": _argv_case(["--set", 'study.orderings="all"'], "2 orderings", "DQCL_MAX_RUNS",
                                                    patch=lambda mp: mp.setenv("DQCL_MAX_RUNS", "1")),
    "integer_past_float_range": _argv_case(["--set", "train.lr=" + "9" * 400], "train.lr", "400 digits"),
    "workers_past_float_range": _argv_case(["--workers", "9" * 400], "--workers", "400 digits"),
    "set_key_of_100000_characters": _argv_case(["--set", "k" * 100_000 + "=1"], "unknown key"),
    "cuda_on_a_machine_without_one": _argv_case(["--device", "cuda:99"], "cuda:99", "GPU"),
    "home_of_a_user_who_does_not_exist": _spec_text_case(lambda t: t.replace('path = "', 'path = "~nosuchuser_dqcl/'), "~nosuchuser_dqcl", "no such user"),
    "damaged_model_init": _damaged_init,
    "copy_to_a_users_folder": _copy_over_users_folder,
    "logger_folder_cannot_be_made": _runs_folder_is_a_file,
    "datasets_json_of_the_wrong_shape": _bad_datasets_json,
    "fetch_to_a_user_who_does_not_exist": lambda root: Case(["data", "fetch", "bbbc038", "--to", "~nosuchuser_dqcl/x"], ["--to", "~nosuchuser_dqcl"]),
    "fetch_from_a_mirror_that_is_not_http": lambda root: Case(["data", "fetch", "bbbc038", "--to", str(root / "d"), "--mirror", "file:///etc"], ["--mirror", "file:///etc"]),
    "gallery_over_an_image_of_the_folder": lambda root: Case(
        ["domains", "gallery", "folder", "--path", str(good_folder(root)), "--out", str(root / "data" / "train" / "s0_img.png")],
        ["inside the domain folder"]),
    "gallery_of_zero_samples": lambda root: Case(["domains", "gallery", "cyto", "--out", str(root / "g.png"), "-n", "0"], ["-n"]),
    "store_row_with_null_R": _store_shape_case("UPDATE runs SET result = json_set(result, '$.R', json('null'))", "R"),
    "store_row_config_is_a_list": _store_shape_case("UPDATE runs SET config = '[1, 2]'", "config"),
    "store_row_deeply_nested": _store_shape_case("UPDATE runs SET result = '{\"R\": ' || replace(hex(zeroblob(100000)), '00', '[') || '}'", "nested"),
}
