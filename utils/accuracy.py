"""How far one predictor's output is from another's: embeddings, masks and scores on fixed prompts.

Used to check OpenVINO against PyTorch (parity, default precision) and INT8 against
FP. The prompts sit at fixed fractions of the image, so the same code gives
comparable figures on any image, and with a real checkpoint the figures mean
something about mask quality; with random weights they only prove the pipeline.
"""

from __future__ import annotations

from typing import Any

import numpy as np

PARITY_EMBEDDING_TOLERANCE = 1e-4
"""The largest embedding relative error (`agreement`'s, max |difference| / max |reference|) allowed at f32 between
an OpenVINO (or ONNX Runtime) encoder and PyTorch's on the same weights and image: the same maths rounded in
another order. The parity tests assert it and print the error they measure."""
PARITY_MIN_MASK_IOU = 0.99
"""The smallest IoU allowed at f32 between a mask and PyTorch's for the same prompt on the same weights."""
PARITY_SCORE_TOLERANCE = 1e-3
"""The largest difference allowed at f32 between a predicted IoU score and PyTorch's, absolute."""
PARITY_LOGIT_TOLERANCE = 1e-3
"""The largest difference allowed at f32 between a mask logit (low-res or upscaled) and PyTorch's, absolute."""


def fixed_prompts(image: np.ndarray) -> dict[str, dict]:
    """A point, three points (one negative), a box, a box with a negative point, at fixed fractions of the image."""
    h, w = image.shape[:2]
    box = np.array([0.24 * w, 0.5 * h, 0.39 * w, 0.73 * h])
    return {
        "one point": dict(point_coords=np.array([[0.28 * w, 0.31 * h]]), point_labels=np.array([1])),
        "three points": dict(
            point_coords=np.array([[0.28 * w, 0.31 * h], [0.62 * w, 0.52 * h], [0.1 * w, 0.8 * h]]),
            point_labels=np.array([1, 1, 0]),
        ),
        "box": dict(box=box),
        "box + negative point": dict(
            box=box, point_coords=np.array([[0.32 * w, 0.62 * h]]), point_labels=np.array([0])
        ),
    }


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boolean masks; two empty masks count as identical."""
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def _numpy(array: Any) -> np.ndarray:
    """torch tensors (SamPredictor) and numpy arrays (OVSamPredictor) alike."""
    return array.detach().cpu().numpy() if hasattr(array, "detach") else np.asarray(array)


def agreement(predictor, reference, prompts: dict[str, dict]) -> dict:
    """Compare two predictors already set to the same image.

    Returns the embedding relative error (max abs difference / max |reference|),
    the worst and mean mask IoU over every prompt with multimask on and off, and
    the largest score difference.
    """
    expected = _numpy(reference.get_image_embedding())
    embedding = _numpy(predictor.get_image_embedding())
    ious, score_diffs = [], []
    for kwargs in prompts.values():
        for multimask_output in (True, False):
            masks, scores, _ = predictor.predict(**kwargs, multimask_output=multimask_output)
            ref_masks, ref_scores, _ = reference.predict(**kwargs, multimask_output=multimask_output)
            ious += [mask_iou(a, b) for a, b in zip(masks, ref_masks)]
            score_diffs.append(float(np.abs(scores - ref_scores).max()))
    return {
        "embedding_relative_error": float(np.abs(embedding - expected).max() / np.abs(expected).max()),
        "min_mask_iou": min(ious),
        "mean_mask_iou": float(np.mean(ious)),
        "max_score_difference": max(score_diffs),
    }


def compare_on_images(predictor, reference, images: dict[str, np.ndarray]) -> dict:
    """`agreement` on every image (each predictor runs its own encoder), with the mean and worst over images."""
    per_image = {}
    for name, image in images.items():
        predictor.set_image(image)
        reference.set_image(image)
        per_image[name] = agreement(predictor, reference, fixed_prompts(image))
    rows = list(per_image.values())
    return {
        "per_image": per_image,
        "mean_embedding_relative_error": float(np.mean([row["embedding_relative_error"] for row in rows])),
        "worst_embedding_relative_error": max(row["embedding_relative_error"] for row in rows),
        "mean_mask_iou": float(np.mean([row["mean_mask_iou"] for row in rows])),
        "worst_mask_iou": min(row["min_mask_iou"] for row in rows),
        "worst_score_difference": max(row["max_score_difference"] for row in rows),
    }
