"""Public datasets a user can bring in: where they live, their licence and size, and how they
become the folder layout dqcl reads (``train/`` and ``test/`` of ``NAME_img.png`` +
``NAME_masks.tif``).

A recipe with ``files`` can be fetched directly (`dqcl data fetch NAME --to DIR`): each file is
downloaded (resuming a partial download), checked against its SHA-256 where the recipe
knows it, unpacked and converted. A recipe without files needs a licence click or a
registration first; `dqcl data fetch` then prints the steps, and `--from DIR` converts what
the user downloaded. The addresses and layouts are those the datasets' own pages give;
``--mirror URL`` fetches the same file names from another server (an institutional mirror).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...core.registry import Registry

__all__ = ["Recipe", "Download", "RECIPES", "add_recipe"]


@dataclass(frozen=True)
class Download:
    url: str
    sha256: str | None = None  # None: not published; the digest seen is recorded in the manifest
    max_bytes: int | None = None  # the most this file can hold (its published size with a margin): a server sending more is cut off there


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    license: str
    size: str
    homepage: str
    converter: str  # see dqcl.data.sources.convert.CONVERTERS
    source_layout: str  # what the download holds
    domain: str  # the kind of images: cyto, nuclei, histo, ...
    files: tuple[Download, ...] = ()
    manual: str = ""  # steps where there is no direct download
    options: dict = field(default_factory=dict)  # converter options


RECIPES: Registry = Registry("dataset recipe")


def _add(recipe: Recipe) -> Recipe:
    """Register a recipe (a lab can add its own: ``from dqcl.data.sources.recipes import Recipe, add_recipe``)."""
    RECIPES.register(recipe.name, description=recipe.title, reference=recipe.homepage)(recipe)
    return recipe


add_recipe = _add


_CELLPOSE_STEPS = (
    "1. open {page} and accept the licence (non-commercial research use);\n"
    "2. download the zip offered there ({what});\n"
    "3. unzip it and run: dqcl data fetch {name} --from UNZIPPED_FOLDER --to DIR"
)

_add(Recipe(
    "cellpose-cyto", "Cellpose 'cyto' training set (cells, cytoplasm + nuclei)", "Cellpose dataset licence (non-commercial)",
    "~540 train + 68 test images, ~0.4 GB", "https://www.cellpose.org/dataset", "cellpose_pairs",
    "train/NNN_img.png + NNN_masks.png, test/ the same", "cyto",
    manual=_CELLPOSE_STEPS.format(page="https://www.cellpose.org/dataset", what="train.zip and test.zip", name="cellpose-cyto"),
))
_add(Recipe(
    "cellpose-cyto2", "Cellpose 'cyto2' training set (cyto + user-submitted images)", "Cellpose dataset licence (non-commercial)",
    "~800 train images, ~0.6 GB", "https://www.cellpose.org/dataset", "cellpose_pairs",
    "train/NNN_img.png + NNN_masks.png, test/ the same", "cyto",
    manual=_CELLPOSE_STEPS.format(page="https://www.cellpose.org/dataset", what="train_cyto2.zip and test.zip", name="cellpose-cyto2"),
))
_add(Recipe(
    "cellpose-nuclei", "Cellpose 'nuclei' training set", "Cellpose dataset licence (non-commercial)",
    "~1,100 train + 110 test images, ~0.3 GB", "https://www.cellpose.org/dataset_nuclei", "cellpose_pairs",
    "train/NNN_img.png + NNN_masks.png, test/ the same", "nuclei",
    manual=_CELLPOSE_STEPS.format(page="https://www.cellpose.org/dataset_nuclei", what="the nuclei zip", name="cellpose-nuclei"),
))
_add(Recipe(
    "bbbc038", "2018 Data Science Bowl nuclei, stage 1 training set (BBBC038v1)", "CC0 1.0",
    "670 images, 82 MB zip", "https://bbbc.broadinstitute.org/BBBC038", "instance_folders",
    "ID/images/ID.png + ID/masks/*.png (one PNG per nucleus)", "nuclei",
    files=(Download("https://data.broadinstitute.org/bbbc/BBBC038/stage1_train.zip", max_bytes=200 * 2**20),),
    options={"test_fraction": 0.2},
))
_add(Recipe(
    "livecell", "LIVECell: label-free phase-contrast cells, 8 cell types (COCO annotations)", "CC BY-NC 4.0",
    "5,239 images, ~1.3 GB images + ~1.2 GB annotations", "https://sartorius-research.github.io/LIVECell/", "coco",
    "images/livecell_train_val_images/*.tif, images/livecell_test_images/*.tif + livecell_coco_{train,test}.json", "cyto",
    files=(
        Download("https://livecell-dataset.s3.eu-central-1.amazonaws.com/LIVECell_dataset_2021/images.zip", max_bytes=3 * 2**30),
        Download("https://livecell-dataset.s3.eu-central-1.amazonaws.com/LIVECell_dataset_2021/annotations/LIVECell/livecell_coco_train.json", max_bytes=2 * 2**30),
        Download("https://livecell-dataset.s3.eu-central-1.amazonaws.com/LIVECell_dataset_2021/annotations/LIVECell/livecell_coco_test.json", max_bytes=2 * 2**30),
    ),
    options={"train": "livecell_coco_train.json", "test": "livecell_coco_test.json"},
))
_add(Recipe(
    "tissuenet", "TissueNet 1.0: multiplexed tissue images, whole-cell and nuclear labels", "Modified Apache 2.0 (non-commercial)",
    "~7,000 train crops of 512 px + val/test, ~10 GB", "https://datasets.deepcell.org/", "npz",
    "tissuenet_v1.0_{train,val,test}.npz with X (N, H, W, 2) and y (N, H, W, 2)", "histo",
    manual=(
        "1. register at https://datasets.deepcell.org/ and accept the licence;\n"
        "2. download TissueNet v1.0 (tissuenet_v1.0.zip) and unzip it;\n"
        "3. run: dqcl data fetch tissuenet --from UNZIPPED_FOLDER --to DIR"
    ),
    options={"train": "tissuenet_v1.0_train.npz", "test": "tissuenet_v1.0_test.npz", "label": 0},
))
_add(Recipe(
    "monuseg", "MoNuSeg 2018: H&E nuclei from 7 organs (polygon XML annotations)", "CC BY-NC-SA 4.0",
    "37 train + 14 test images of 1000 px, ~0.2 GB", "https://monuseg.grand-challenge.org/Data/", "polygon_xml",
    "Tissue Images/*.tif + Annotations/*.xml (Aperio ImageScope regions)", "histo",
    manual=(
        "1. open https://monuseg.grand-challenge.org/Data/ and follow the Google Drive links for the training\n"
        "   and the test data;\n"
        "2. unzip both into one folder as train/ (MoNuSeg 2018 Training Data) and test/ (MoNuSegTestData);\n"
        "3. run: dqcl data fetch monuseg --from THAT_FOLDER --to DIR"
    ),
))
_add(Recipe(
    "nuinsseg", "NuInsSeg: H&E nuclei from 31 human and mouse organs", "CC BY 4.0",
    "665 images of 512 px, ~1.5 GB zip", "https://zenodo.org/records/10518968", "organ_folders",
    "ORGAN/tissue images/*.png + ORGAN/label masks modify/*.tif", "histo",
    files=(Download("https://zenodo.org/records/10518968/files/NuInsSeg.zip", max_bytes=3 * 2**30),),
    options={"test_fraction": 0.2, "images": "tissue images", "masks": "label masks modify"},
))
