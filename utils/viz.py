"""Drawing helpers in the style of the segment-anything notebooks (matplotlib axes in, nothing returned)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

MASK_COLOR = (30 / 255, 144 / 255, 255 / 255, 0.6)
"""The translucent blue of the segment-anything notebooks."""


def show_mask(mask: np.ndarray, ax: plt.Axes, color: tuple[float, float, float, float] = MASK_COLOR) -> None:
    """Overlay a boolean HxW mask on ``ax`` in a translucent colour (RGBA, 0..1)."""
    overlay = np.zeros((*mask.shape[-2:], 4), dtype=np.float32)
    overlay[mask.reshape(mask.shape[-2:]).astype(bool)] = color
    ax.imshow(overlay)


def show_points(coords: np.ndarray, labels: np.ndarray, ax: plt.Axes, marker_size: int = 375) -> None:
    """Draw positive points as green stars and negative points as red stars."""
    coords, labels = np.asarray(coords), np.asarray(labels)
    for label, color in ((1, "green"), (0, "red")):
        chosen = coords[labels == label]
        ax.scatter(chosen[:, 0], chosen[:, 1], color=color, marker="*", s=marker_size, edgecolor="white", linewidth=1.25)


def show_box(box: np.ndarray, ax: plt.Axes, color: str = "green") -> None:
    """Draw an XYXY box as an unfilled rectangle."""
    x0, y0, x1, y1 = np.asarray(box, dtype=float)
    ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, edgecolor=color, facecolor=(0, 0, 0, 0), lw=2))


def show_candidates(
    image: np.ndarray,
    masks: np.ndarray,
    scores: np.ndarray,
    point_coords: np.ndarray | None = None,
    point_labels: np.ndarray | None = None,
    box: np.ndarray | None = None,
    size: float = 5.0,
) -> plt.Figure:
    """Draw each mask candidate side by side on the image with its predicted IoU in the title."""
    fig, axes = plt.subplots(1, len(masks), figsize=(size * len(masks), size * image.shape[0] / image.shape[1]))
    for index, (ax, mask, score) in enumerate(zip(np.atleast_1d(axes), masks, scores)):
        ax.imshow(image)
        show_mask(mask, ax)
        if point_coords is not None:
            show_points(point_coords, point_labels, ax, marker_size=int(size * 40))
        if box is not None:
            show_box(box, ax)
        ax.set_title(f"Mask {index + 1}, score {score:.3f}")
        ax.axis("off")
    fig.tight_layout()
    return fig


def draw_anns(image: np.ndarray, anns: list[dict], alpha: float = 0.35, seed: int | None = 0) -> np.ndarray:
    """Paint every mask of an automatic-mask-generator result on the image, largest first.

    Each mask gets a random colour, blended ``alpha`` over the image (about 65/35 by
    default), so small masks painted last stay visible on top of large ones. The
    result is an RGB uint8 image to show with ``plt.imshow`` or save with
    ``cv2.imwrite``. The same ``seed`` gives the same colours.

    ``anns`` are the records of `OVSamAutomaticMaskGenerator.generate` (or
    upstream's) in ``binary_mask`` output mode.
    """
    rng = np.random.default_rng(seed)
    canvas = image.astype(np.float32).copy()
    for ann in sorted(anns, key=lambda ann: ann["area"], reverse=True):
        mask = np.asarray(ann["segmentation"], dtype=bool)
        color = rng.integers(0, 256, 3).astype(np.float32)
        canvas[mask] = (1 - alpha) * canvas[mask] + alpha * color
    return canvas.round().astype(np.uint8)
