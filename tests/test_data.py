"""`dqcl data list/fetch/register` against a local HTTP server on 127.0.0.1: downloads,
checksums, resuming, safe unpacking, converters, manifests and provenance in tables."""

import hashlib
import io
import json
import sqlite3
import zipfile
from pathlib import Path

import numpy as np
import pytest
from skimage import io as skio

from dqcl.cli import main
from dqcl.data.sources.recipes import RECIPES, Download, Recipe, add_recipe

from conftest import small_domain_arrays, tiny_spec_text
from fixture_server import FileServer


@pytest.fixture(autouse=True)
def dqcl_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DQCL_HOME", str(tmp_path / "home"))


def _png(arr) -> bytes:
    buf = io.BytesIO()
    skio.imsave(buf, arr, extension=".png", check_contrast=False)
    return buf.getvalue()


def _bbbc038_zip(path: Path, n: int = 6) -> dict[str, int]:
    """A stage1_train.zip in the BBBC038 layout: ID/images/ID.png + ID/masks/*.png per object."""
    imgs, masks = small_domain_arrays(n=n, size=64)
    objects = {}
    with zipfile.ZipFile(path, "w") as zf:
        for i, (img, mask) in enumerate(zip(imgs, masks)):
            iid = hashlib.sha1(str(i).encode()).hexdigest()[:12]
            zf.writestr(f"{iid}/images/{iid}.png", _png((img // 256).astype(np.uint8)))
            labels = [v for v in np.unique(mask) if v]
            for k in labels:
                zf.writestr(f"{iid}/masks/m{k:03d}.png", _png(((mask == k) * 255).astype(np.uint8)))
            objects[iid] = len(labels)
    return objects


def _error_line(capsys) -> str:
    """The one error line (progress notes may precede it on stderr)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("dqcl: error: ")]
    assert len(lines) == 1 and err.strip().endswith(lines[0]), err
    return lines[0]


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "dqcl_manifest.json").read_text())


def test_data_list_names_every_recipe_with_licence_size_and_layout(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("cellpose-cyto", "cellpose-cyto2", "cellpose-nuclei", "bbbc038", "livecell", "tissuenet", "monuseg", "nuinsseg"):
        assert f"{name}\n" in out
    assert out.count("licence:") == len(RECIPES.names()) and "CC0 1.0" in out and "becomes: train/ and test/" in out


def test_fetch_bbbc038_from_a_mirror_converts_registers_and_trains(tmp_path, capsys):
    served = tmp_path / "served"
    served.mkdir()
    objects = _bbbc038_zip(served / "stage1_train.zip")
    out = tmp_path / "dsb"
    with FileServer(served) as srv:
        assert main(["data", "fetch", "bbbc038", "--to", str(out), "--mirror", srv.url]) == 0
    m = _manifest(out)
    pairs = m["splits"]["train"] + m["splits"]["test"]
    assert sorted(p["stem"] for p in pairs) == sorted(objects)  # every image came through, none twice
    assert all(p["objects"] == objects[p["stem"]] for p in pairs)  # one label per object mask
    assert m["splits"]["test"] and m["splits"]["train"]
    assert m["downloads"]["stage1_train.zip"] == hashlib.sha256((served / "stage1_train.zip").read_bytes()).hexdigest()
    for p in pairs:  # the manifest's hashes are the files' hashes
        assert p["mask"]["sha256"] == hashlib.sha256((out / p["mask"]["file"]).read_bytes()).hexdigest()
    assert main(["data", "list"]) == 0
    assert f"bbbc038: {out}" in capsys.readouterr().out

    # a study on the fetched folder records its manifest, and the leaderboard shows it
    spec = tmp_path / "s.toml"
    text = tiny_spec_text(tmp_path, "[strategies.naive]\n").replace('orderings = [["cyto", "histo"]]', 'orderings = [["dsb", "histo"]]')
    text = text.replace("[domains.cyto]\nn_train = 2\nn_test = 1\nsize = 96", f'[domains.dsb]\nkind = "folder"\npath = "{out.as_posix()}"')
    spec.write_text(text)
    store = tmp_path / "r.sqlite"
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--quiet"]) == 0
    with sqlite3.connect(store) as c:
        (cfg,) = [json.loads(r) for (r,) in c.execute("SELECT config FROM runs")]
    assert dict(cfg["data_manifests"])["dsb"] == "folder:" + m["manifest_hash"]
    assert main(["leaderboard", "build", "--store", str(store), "--out", str(tmp_path / "lb")]) == 0
    assert m["manifest_hash"] in (tmp_path / "lb" / "leaderboard.md").read_text()


@pytest.fixture
def fixture_recipe():
    names = []

    def make(name, files, converter="instance_folders", **options):
        rec = Recipe(name, "a fixture", "CC0", "tiny", "http://127.0.0.1/", converter, "fixture", "nuclei",
                     files=tuple(files), options=options or {"test_fraction": 0.3})
        if name not in RECIPES:
            add_recipe(rec)
        else:  # the registry refuses a second registration: replace the entry for this test
            RECIPES._entries[name] = RECIPES._entries[name].__class__(name, rec, rec.title, rec.homepage)
        names.append(name)
        return rec

    yield make
    for n in names:
        RECIPES.unregister(n)


def test_checksum_mismatch_is_refused_and_nothing_is_kept(tmp_path, capsys, fixture_recipe):
    served = tmp_path / "served"
    served.mkdir()
    _bbbc038_zip(served / "stage1_train.zip", n=3)
    with FileServer(served) as srv:
        fixture_recipe("fx-bad-sum", [Download(f"{srv.url}/stage1_train.zip", sha256="0" * 64)])
        assert main(["data", "fetch", "fx-bad-sum", "--to", str(tmp_path / "x")]) == 2
    err = _error_line(capsys)
    assert "checksum mismatch" in err and "stage1_train.zip" in err
    assert not list((tmp_path / "x" / "downloads").iterdir())
    assert not (tmp_path / "x" / "train").exists()


def test_an_interrupted_download_resumes_where_it_stopped(tmp_path, capsys, fixture_recipe):
    served = tmp_path / "served"
    served.mkdir()
    _bbbc038_zip(served / "stage1_train.zip", n=4)
    size = (served / "stage1_train.zip").stat().st_size
    digest = hashlib.sha256((served / "stage1_train.zip").read_bytes()).hexdigest()
    with FileServer(served) as srv:
        fixture_recipe("fx-resume", [Download(f"{srv.url}/stage1_train.zip", sha256=digest)])
        srv.cut_after["stage1_train.zip"] = size // 3
        assert main(["data", "fetch", "fx-resume", "--to", str(tmp_path / "y")]) == 2
        assert "interrupted" in _error_line(capsys)
        part = tmp_path / "y" / "downloads" / "stage1_train.zip.part"
        assert part.stat().st_size == size // 3
        assert main(["data", "fetch", "fx-resume", "--to", str(tmp_path / "y")]) == 0
    assert srv.requests[-1] == ("stage1_train.zip", f"bytes={size // 3}-")  # the second request asked for the rest only
    assert hashlib.sha256((tmp_path / "y" / "downloads" / "stage1_train.zip").read_bytes()).hexdigest() == digest
    assert _manifest(tmp_path / "y")["splits"]["train"]


def test_an_archive_that_writes_outside_its_folder_is_refused(tmp_path, capsys, fixture_recipe):
    served = tmp_path / "served"
    served.mkdir()
    with zipfile.ZipFile(served / "evil.zip", "w") as zf:
        zf.writestr("../../escaped.txt", "gotcha")
    with FileServer(served) as srv:
        fixture_recipe("fx-evil", [Download(f"{srv.url}/evil.zip")])
        assert main(["data", "fetch", "fx-evil", "--to", str(tmp_path / "z" / "d")]) == 2
    assert "outside" in _error_line(capsys)
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "z" / "escaped.txt").exists()


def _contour_polygons(mask):
    from skimage.measure import find_contours

    polys = []
    for k in [v for v in np.unique(mask) if v]:
        c = max(find_contours(np.pad(mask == k, 1).astype(float), 0.5), key=len) - 1
        polys.append(c[:, ::-1])  # (x, y)
    return polys


def test_livecell_coco_annotations_become_label_masks(tmp_path, fixture_recipe):
    import tifffile

    imgs, masks = small_domain_arrays(n=3, size=64)
    served = tmp_path / "served"
    served.mkdir()
    docs = {"train": {"images": [], "annotations": []}, "test": {"images": [], "annotations": []}}
    with zipfile.ZipFile(served / "images.zip", "w") as zf:
        for i, (img, mask) in enumerate(zip(imgs, masks)):
            split = "test" if i == 2 else "train"
            folder = "livecell_test_images" if split == "test" else "livecell_train_val_images"
            buf = io.BytesIO()
            tifffile.imwrite(buf, img)
            zf.writestr(f"images/{folder}/cell_{i}.tif", buf.getvalue())
            docs[split]["images"].append({"id": i, "file_name": f"cell_{i}.tif", "height": 64, "width": 64})
            for j, poly in enumerate(_contour_polygons(mask)):
                docs[split]["annotations"].append({"id": i * 100 + j, "image_id": i, "segmentation": [poly.ravel().tolist()]})
    for split, doc in docs.items():
        (served / f"livecell_coco_{split}.json").write_text(json.dumps(doc))
    out = tmp_path / "lc"
    with FileServer(served) as srv:
        assert main(["data", "fetch", "livecell", "--to", str(out), "--mirror", srv.url]) == 0
    m = _manifest(out)
    assert [p["stem"] for p in m["splits"]["test"]] == ["cell_2"]
    from dqcl.data.imageio import read_mask
    from dqcl.evaluation.metrics import score_masks

    for i, split in ((0, "train"), (2, "test")):
        got = read_mask(out / split / f"cell_{i}_masks.tif")
        assert len(np.unique(got)) - 1 == len(np.unique(masks[i])) - 1
        assert score_masks(masks[i].astype(np.int32), got)["ap50"] > 0.9


def test_manual_recipes_print_their_steps_and_convert_from_a_folder(tmp_path, capsys):
    assert main(["data", "fetch", "cellpose-cyto", "--to", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "https://www.cellpose.org/dataset" in err and "--from" in err
    imgs, masks = small_domain_arrays(n=3, size=64)
    from conftest import write_pair

    for split, idx in (("train", (0, 1)), ("test", (2,))):
        for i in idx:
            write_pair(tmp_path / "unzipped" / split, f"{i:03d}", imgs[i], masks[i])
    assert main(["data", "fetch", "cellpose-cyto", "--from", str(tmp_path / "unzipped"), "--to", str(tmp_path / "c")]) == 0
    m = _manifest(tmp_path / "c")
    assert [p["stem"] for p in m["splits"]["train"]] == ["000", "001"] and m["splits"]["test"][0]["stem"] == "002"


def test_monuseg_polygon_xml_and_tissuenet_npz_convert(tmp_path):
    imgs, masks = small_domain_arrays(n=2, size=64)
    src = tmp_path / "monuseg"
    for split, i in (("train", 0), ("test", 1)):
        (src / split / "Tissue Images").mkdir(parents=True)
        (src / split / "Annotations").mkdir(parents=True)
        skio.imsave(src / split / "Tissue Images" / f"TCGA-{i}.png", (imgs[i] // 256).astype(np.uint8), check_contrast=False)
        regions = "".join(
            "<Region><Vertices>" + "".join(f'<Vertex X="{x:.2f}" Y="{y:.2f}"/>' for x, y in poly) + "</Vertices></Region>"
            for poly in _contour_polygons(masks[i])
        )
        (src / split / "Annotations" / f"TCGA-{i}.xml").write_text(f"<Annotations><Annotation><Regions>{regions}</Regions></Annotation></Annotations>")
    assert main(["data", "fetch", "monuseg", "--from", str(src), "--to", str(tmp_path / "mo")]) == 0
    m = _manifest(tmp_path / "mo")
    assert m["splits"]["train"][0]["objects"] == len(np.unique(masks[0])) - 1

    X = np.stack([np.stack([im, im], -1) for im in imgs]).astype(np.float32)
    y = np.stack([np.stack([mk, mk], -1) for mk in masks]).astype(np.int32)
    (tmp_path / "tn").mkdir()
    for split in ("train", "test"):
        np.savez(tmp_path / "tn" / f"tissuenet_v1.0_{split}.npz", X=X, y=y)
    assert main(["data", "fetch", "tissuenet", "--from", str(tmp_path / "tn"), "--to", str(tmp_path / "tno")]) == 0
    assert _manifest(tmp_path / "tno")["stats"]["train"]["pairs"] == 2


def test_register_writes_a_manifest_whose_hash_keys_the_runs(tmp_path, capsys):
    from dqcl.core.provenance import folder_manifest
    from conftest import write_pair

    imgs, masks = small_domain_arrays(n=3, size=64)
    gappy = masks[0].copy()
    gappy[gappy == gappy.max()] = gappy.max() + 5  # a gap in the label numbering
    write_pair(tmp_path / "d" / "train", "a", imgs[0], gappy)
    write_pair(tmp_path / "d" / "train", "b", imgs[1], masks[1])
    write_pair(tmp_path / "d" / "test", "c", imgs[2], masks[2])
    assert main(["data", "register", "mine", str(tmp_path / "d")]) == 0
    m = _manifest(tmp_path / "d")
    assert m["manifest_hash"] == folder_manifest(tmp_path / "d")  # what every run on the folder records
    assert [p["label_gaps"] for p in m["splits"]["train"]] == [True, False]
    assert "mine: 2 train + 1 test pairs" in capsys.readouterr().out


def test_leaderboard_refuses_runs_on_different_data_unless_told(tmp_path, capsys):
    from conftest import write_pair

    imgs, masks = small_domain_arrays(n=3, size=96)
    d = tmp_path / "d"
    for split, idx in (("train", (0, 1)), ("test", (2,))):
        for i in idx:
            write_pair(d / split, f"s{i}", imgs[i], masks[i])

    def spec(strategies):
        p = tmp_path / "s.toml"
        text = tiny_spec_text(tmp_path, strategies).replace('orderings = [["cyto", "histo"]]', 'orderings = [["mine", "histo"]]')
        p.write_text(text.replace("[domains.cyto]\nn_train = 2\nn_test = 1\nsize = 96", f'[domains.mine]\nkind = "folder"\npath = "{d.as_posix()}"'))
        return str(p)

    store = tmp_path / "r.sqlite"
    assert main(["run", "benchmark", spec("[strategies.naive]\n[strategies.replay]\nrate = 0.5\n"), "--store", str(store), "--quiet"]) == 0
    write_pair(d / "train", "s0", imgs[0], (masks[0] > 0).astype(np.uint16))  # the data changes: one mask re-drawn
    # only naive is rerun on the new data: its table would hold naive (new data) beside replay (old data)
    assert main(["run", "benchmark", spec("[strategies.naive]\n"), "--store", str(store), "--quiet"]) == 0
    capsys.readouterr()
    with sqlite3.connect(store) as c:
        assert c.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 3  # new data, new run; the old ones kept
    assert main(["leaderboard", "build", "--store", str(store), "--out", str(tmp_path / "lb")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "domain 'mine'" in err and "--split-protocols" in err and "..." not in err
    # split: each data is a study of its own (never one table), named by its manifest; the old flag says the same
    for flag in ("--split-protocols", "--allow-mixed-data"):
        assert main(["leaderboard", "build", "--store", str(store), "--out", str(tmp_path / "lb"), flag]) == 0
        rows = json.loads((tmp_path / "lb" / "leaderboard.json").read_text())
        by_study = {st: {r["data_manifests"]["mine"] for r in rows if r["study"] == st} for st in {r["study"] for r in rows}}
        assert len(by_study) == 2 and all(len(m) == 1 for m in by_study.values())
        assert all(st.startswith("tiny (the data of domain 'mine' folder:") for st in by_study)
    # once replay is rerun on the new data too, the table is whole again (the newest run of each cell)
    assert main(["run", "benchmark", spec("[strategies.naive]\n[strategies.replay]\nrate = 0.5\n"), "--store", str(store), "--quiet"]) == 0
    assert main(["leaderboard", "build", "--store", str(store), "--out", str(tmp_path / "lb")]) == 0
    rows = json.loads((tmp_path / "lb" / "leaderboard.json").read_text())
    assert len({r["data_manifests"]["mine"] for r in rows}) == 1 and len(rows) == 2 * 10
