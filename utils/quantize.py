"""INT8 post-training quantization of SAM's image encoder with NNCF: SAM 1's, SAM 2.1's and EdgeTAM's.

For one image and a few prompts the encoder is where SAM spends its time
(seconds per image against milliseconds per prompt), so it is the half worth
quantizing; the mask generator, which decodes a thousand prompts or more per
image, spends most of its time in the decoder and gains little from it. `nncf.quantize`
runs the FP IR on a few calibration images, records the range of every
activation that feeds a MatMul or convolution, and inserts FakeQuantize nodes
that the CPU plugin turns into INT8 kernels. ``model_type=TRANSFORMER`` keeps
the numerically fragile parts of a ViT (LayerNorm, Softmax, GELU inputs) in
floating point and applies SmoothQuant to the linear layers; EdgeTAM's convolutional
trunk is quantized the same way (on random weights its error was no larger than with
NNCF's default model type, at the same speed). The calibration images go through the
pre-processing of the encoder's family (SAM 1's resize and padding, or SAM 2's
whole-square resize), which `quantize_encoder` reads from the IR (`is_sam2_encoder`).

The INT8 IR is written next to the FP IR it came from, with a stamp naming that
source and the calibration set; `ensure_int8_encoder` reuses it while the stamp
matches, so a notebook re-run does not quantize again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import openvino as ov

from utils.atomic import staged_files, write_text_atomically
from utils.convert import ensure_sam_ir
from utils.ir_store import (
    INT8_ENCODER_XML,
    STAMP_FILE,
    int8_files,
    missing_nncf,
    read_stamp,
    take_int8_from_kit,
)
from utils.memory import release_freed_memory
from utils.model_spec import ModelSpec
from utils.predictor import is_sam2_encoder
from utils.transforms import encoder_input, read_rgb_image, sam2_encoder_input

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
DEFAULT_CALIBRATION_DIR = Path(__file__).resolve().parent.parent / "data" / "calibration"
DEFAULT_SUBSET_SIZE = 128
"""NNCF's usual calibration size; the loop stops earlier when the folder has fewer images."""

logger = logging.getLogger(__name__)


class CalibrationError(ValueError):
    """The calibration folder cannot be used; the message says what to put there."""


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The files in ``folder`` with an image suffix, sorted, without reading them; an error if there are none.

    Files without an image suffix (a README, a licence) are skipped with a log message.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CalibrationError(
            f"Calibration folder {folder} does not exist. Pass a folder of JPEG/PNG images that look like "
            "what you will segment (100-300 is typical), or use data/calibration/ from this repository."
        )
    files = sorted(path for path in folder.iterdir() if path.is_file() and not path.name.startswith("."))
    images = [path for path in files if path.suffix.lower() in IMAGE_SUFFIXES]
    skipped = [path.name for path in files if path not in images]
    if not images:
        found = f"only {', '.join(skipped)}" if skipped else "nothing"
        raise CalibrationError(
            f"No images in calibration folder {folder} (found {found}). "
            f"Copy a few {'/'.join(IMAGE_SUFFIXES)} files there, or pass another folder."
        )
    if skipped:
        logger.info("Calibration: skipping %d non-image file(s) in %s: %s", len(skipped), folder, ", ".join(skipped))
    return images


def calibration_images(folder: str | os.PathLike) -> list[Path]:
    """`image_files` after decoding each one: a file named like an image that does not decode is an error,
    since calibrating on fewer images than the user thinks would be silent damage."""
    folder = Path(folder)
    images = image_files(folder)
    unreadable = []
    for path in images:
        try:
            read_rgb_image(path)
        except (OSError, ValueError) as error:
            unreadable.append(f"{path.name} ({error})")
    if unreadable:
        raise CalibrationError(
            f"Calibration folder {folder} holds files named like images that cannot be read: "
            f"{'; '.join(unreadable)}. Remove or replace them."
        )
    return images


def calibration_sample(path: Path, sam2: bool = False) -> np.ndarray:
    """One calibration sample: the image as the predictor feeds it to the encoder, 1x3x1024x1024 float32
    (``sam2``: SAM 2's pre-processing, `utils.transforms.sam2_encoder_input`)."""
    image = read_rgb_image(path)
    return sam2_encoder_input(image) if sam2 else encoder_input(image)


def quantize_encoder(
    encoder_xml: str | os.PathLike,
    calibration_folder: str | os.PathLike = DEFAULT_CALIBRATION_DIR,
    subset_size: int = DEFAULT_SUBSET_SIZE,
    output_xml: str | os.PathLike | None = None,
) -> Path:
    """Quantize the encoder IR to INT8 and save it (default: ``image_encoder_int8.xml`` beside it).

    Args:
        encoder_xml: FP encoder IR from `utils.convert.convert_sam`.
        calibration_folder: folder of images to collect activation ranges on.
        subset_size: at most this many images are used (NNCF's ``subset_size``).
        output_xml: where to write; the file appears only once complete.

    NNCF draws its own progress bars (statistics collection, SmoothQuant, bias
    correction); each calibration image costs about one encoder run.
    Returns the path of the INT8 IR.
    """
    import nncf

    if subset_size < 1:
        raise ValueError(f"subset_size must be at least 1, got {subset_size}.")
    encoder_xml = Path(encoder_xml)
    output_xml = Path(output_xml) if output_xml else encoder_xml.with_name(INT8_ENCODER_XML)
    images = calibration_images(calibration_folder)[:subset_size]
    model = ov.Core().read_model(encoder_xml)
    with _plain_progress_under_tests():
        quantized = nncf.quantize(
            model,
            nncf.Dataset(images, partial(calibration_sample, sam2=is_sam2_encoder(model))),
            model_type=nncf.ModelType.TRANSFORMER,
            subset_size=len(images),
        )
    _save_atomically(quantized, output_xml)
    return output_xml


PLAIN_PROGRESS_ENV = "SAM_OV_PLAIN_PROGRESS"
"""Environment variable: when set (the tests set it), NNCF's progress bars are printed once, finished."""


@contextlib.contextmanager
def _plain_progress_under_tests() -> Iterator[None]:
    """NNCF's progress bars as rich draws them, unless ``$SAM_OV_PLAIN_PROGRESS`` is set.

    In a notebook rich redraws each bar in a widget ten times a second. Over a minute of calibration those
    messages overflow the queue between the kernel and nbval, which then loses the cell's end and fails it
    ("Timeout of 5 seconds exceeded waiting for output"). With the variable set, rich treats the notebook as
    a plain output and prints each bar once, when it is done.
    """
    if not os.environ.get(PLAIN_PROGRESS_ENV):
        yield
        return
    import rich

    console = rich.get_console()
    was_jupyter, console.is_jupyter = console.is_jupyter, False
    try:
        yield
    finally:
        console.is_jupyter = was_jupyter


def ensure_int8_encoder(
    model_type: str | ModelSpec = "vit_b",
    models_dir: str | os.PathLike = "models",
    calibration_folder: str | os.PathLike = DEFAULT_CALIBRATION_DIR,
    subset_size: int = DEFAULT_SUBSET_SIZE,
) -> Path:
    """Return the INT8 encoder IR for ``model_type``, converting and quantizing only what is missing.

    The stamp beside the INT8 IR records the FP IR's own stamp and the names of the
    calibration images used: change either and the encoder is quantized again.
    Checking the stamp lists the calibration folder without decoding the images.
    With ``$SAM_OV_MIRROR`` naming a workshop kit that holds a current INT8 encoder, it is
    copied from there, so the light install (no NNCF) needs no quantization.
    """
    encoder_xml, _ = ensure_sam_ir(model_type, models_dir)
    folder = encoder_xml.parent
    images = image_files(calibration_folder)[:subset_size]
    stamp = {
        "source": read_stamp(folder / STAMP_FILE),
        "calibration": [path.name for path in images],
    }
    *int8_ir, stamp_path = int8_files(folder)
    int8_xml = folder / INT8_ENCODER_XML
    if read_stamp(stamp_path) == stamp and all(path.is_file() for path in int8_ir):
        return int8_xml
    stamp_path.unlink(missing_ok=True)
    if take_int8_from_kit(folder, stamp):
        return int8_xml
    if missing_nncf():
        raise ModuleNotFoundError(
            "Quantizing needs NNCF, which this Python lacks: it is the light install. Install the full one "
            "(pip install -r requirements.txt -c constraints.txt), or point SAM_OV_MIRROR at a workshop kit "
            "that holds the INT8 encoder (python -m utils.prefetch KIT --with-ir, on a full install)."
        )
    release_freed_memory()  # what earlier conversions freed but the heap still holds, before calibration's own
    quantize_encoder(encoder_xml, calibration_folder, subset_size, int8_xml)
    release_freed_memory()  # what calibration freed, handed back to the system (utils.memory)
    write_text_atomically(stamp_path, json.dumps(stamp, indent=2))
    return int8_xml


def _save_atomically(model: ov.Model, output_xml: Path) -> None:
    """Save into a temporary folder beside ``output_xml``, then move .bin before .xml into place."""
    names = [output_xml.with_suffix(".bin").name, output_xml.name]
    with staged_files(output_xml.parent, names, prefix=".quantizing-") as (_, staged_xml):
        ov.save_model(model, staged_xml)


__all__ = [
    "CalibrationError",
    "calibration_images",
    "ensure_int8_encoder",
    "image_files",
    "quantize_encoder",
    "INT8_ENCODER_XML",
]
