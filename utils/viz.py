"""Drawing helpers in the style of the segment-anything notebooks (matplotlib axes in, nothing returned)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import TwoSlopeNorm

MASK_RGB = (30, 144, 255)
"""The blue of the segment-anything notebooks; the widget and the gradio app draw masks in it too."""
MASK_ALPHA = 0.6
MASK_COLOR = (*(channel / 255 for channel in MASK_RGB), MASK_ALPHA)
"""`MASK_RGB` as matplotlib's translucent RGBA in 0..1."""


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
        ax.scatter(
            chosen[:, 0], chosen[:, 1], color=color, marker="*", s=marker_size, edgecolor="white", linewidth=1.25
        )


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


def show_result(
    image: np.ndarray,
    mask: np.ndarray | None = None,
    title: str = "",
    points: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    box: np.ndarray | None = None,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Image, one mask, its points and box, and a title on one axes (a new figure when ``ax`` is None)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 8 * image.shape[0] / image.shape[1]))
    ax.imshow(image)
    if mask is not None:
        show_mask(mask, ax)
    if points is not None:
        show_points(points, labels if labels is not None else np.ones(len(points)), ax)
    if box is not None:
        show_box(box, ax)
    ax.set_title(title)
    ax.axis("off")
    return ax


def show_preprocessing(image: np.ndarray, point: np.ndarray) -> plt.Figure:
    """What the encoder sees: the image, resized to a longest side of 1024, then normalised and padded.

    ``point`` (x, y in image pixels) is drawn in each frame where SAM's coordinate mapping puts it.
    """
    from utils.transforms import apply_coords, encoder_input, resize_longest_side, to_rgb_uint8

    image = to_rgb_uint8(image)  # a clear error for anything but an HxWx3 (or gray / RGBA) uint8 image
    resized = resize_longest_side(image)
    padded = encoder_input(image)[0].transpose(1, 2, 0)  # 1024x1024x3, normalised
    point = np.asarray(point, dtype=float)
    mapped = apply_coords(point[None], image.shape[:2])[0]
    shown = (padded - padded.min()) / (padded.max() - padded.min())  # only for display
    panels = (
        (image, point, f"original {image.shape[1]}x{image.shape[0]}, point ({point[0]:.0f}, {point[1]:.0f})"),
        (
            resized,
            mapped,
            f"longest side 1024: {resized.shape[1]}x{resized.shape[0]}, point ({mapped[0]:.1f}, {mapped[1]:.1f})",
        ),
        (
            shown,
            mapped,
            "normalised and zero-padded to 1024x1024\n"
            "(drawn min-max rescaled: the padding, 0, is the mean colour, shown grey)",
        ),
    )
    figure, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    for ax, (picture, where, title) in zip(axes, panels):
        ax.imshow(picture)
        show_points(np.asarray(where)[None], np.array([1]), ax, marker_size=200)
        ax.set_title(title, fontsize=10)
        ax.set_xlim(-10, max(picture.shape[1], 1024 if picture is shown else 0) + 10)
        ax.set_ylim(max(picture.shape[0], 1024 if picture is shown else 0) + 10, -10)
    figure.tight_layout()
    return figure


def attention_by_hand(tokens: np.ndarray, query_index: int, temperature: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Attention for one query, written out: ``(weights, output)`` for ``tokens`` [N, D].

    Here a token is its own query, key and value, L2-normalised (a transformer learns three projections for
    them instead); the scores are the query's dot products with every key over ``temperature`` (1/sqrt(D) in
    a transformer), the weights their softmax, and the output the weights' mix of the values."""
    unit = tokens / np.maximum(np.linalg.norm(tokens, axis=1, keepdims=True), 1e-8)
    scores = unit @ unit[query_index] / temperature
    weights = np.exp(scores - scores.max())
    weights /= weights.sum()
    return weights, weights @ tokens


def show_attention_primer(image: np.ndarray, point: np.ndarray, grid: int = 16) -> plt.Figure:
    """Tokens and attention on a photo: the photo cut into ``grid`` x ``grid`` patch tokens (each its mean colour,
    centred), the token under ``point`` as the query, its attention weights over every token, and the mix."""
    import cv2

    from utils.transforms import to_rgb_uint8

    image = to_rgb_uint8(image)
    patches = cv2.resize(image, (grid, grid), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    mean = patches.reshape(-1, 3).mean(axis=0)
    tokens = (patches - mean).reshape(-1, 3)
    column = min(int(point[0] * grid / image.shape[1]), grid - 1)
    row = min(int(point[1] * grid / image.shape[0]), grid - 1)
    weights, output = attention_by_hand(tokens, row * grid + column)
    figure, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    axes[0].imshow(patches)
    axes[0].add_patch(plt.Rectangle((column - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
    axes[0].set_title(f"{grid * grid} tokens, one per patch (its mean colour);\nthe query: the patch under the click")
    shown = axes[1].imshow(weights.reshape(grid, grid), cmap="magma")
    figure.colorbar(shown, ax=axes[1], fraction=0.046)
    axes[1].set_title("the query's weights: softmax of its dot product\nwith every key (they sum to 1)")
    swatches = np.stack([patches[row, column], np.clip(output + mean, 0, 1)])[None]
    axes[2].imshow(swatches)
    axes[2].set_xticks([0, 1], ["the query's value", "its update: the\nweighted mix of values"])
    axes[2].set_yticks([])
    axes[2].set_title("the output replaces the token")
    for ax in axes[:2]:
        ax.axis("off")
    figure.tight_layout()
    return figure


def _sam1_frame(resized: np.ndarray) -> np.ndarray:
    """SAM 1's 1024x1024 encoder frame for display: the resized image top left, the rest the mean colour, as the
    encoder pads it (in uint8, before normalisation)."""
    from utils.transforms import IMAGE_SIZE, PIXEL_MEAN

    frame = np.full((IMAGE_SIZE, IMAGE_SIZE, 3), PIXEL_MEAN.round(), np.uint8)
    frame[: resized.shape[0], : resized.shape[1]] = resized
    return frame


def compare_preprocessing(image: np.ndarray, point: np.ndarray) -> plt.Figure:
    """SAM 1's encoder frame beside SAM 2's, ``point`` (x, y in image pixels) drawn where each family maps it.

    SAM 1 resizes the longest side to 1024 and pads the rest with the mean colour; SAM 2 resizes the
    image to the whole 1024x1024 square, so the aspect ratio is lost and nothing is padded.
    """
    from utils.transforms import (
        apply_coords,
        resize_longest_side,
        sam2_apply_coords,
        sam2_resize,
        to_rgb_uint8,
    )

    image = to_rgb_uint8(image)
    resized = resize_longest_side(image)
    point = np.asarray(point, dtype=float)[None]
    panels = (
        (
            _sam1_frame(resized),
            apply_coords(point, image.shape[:2])[0],
            f"SAM 1: longest side 1024 ({resized.shape[1]}x{resized.shape[0]}), padded",
        ),
        (sam2_resize(image), sam2_apply_coords(point, image.shape[:2])[0], "SAM 2: the whole 1024x1024, no padding"),
    )
    figure, axes = plt.subplots(1, 2, figsize=(11, 5.4))
    for ax, (frame, mapped, title) in zip(axes, panels):
        ax.imshow(frame)
        show_points(mapped[None], np.array([1]), ax, marker_size=200)
        ax.set_title(f"{title}\npoint ({point[0, 0]:.0f}, {point[0, 1]:.0f}) -> ({mapped[0]:.1f}, {mapped[1]:.1f})")
    figure.tight_layout()
    return figure


def draw_sam_diagram() -> plt.Figure:
    """SAM as this series runs it: which part runs once per image, which once per prompt, and what flows between."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    figure, ax = plt.subplots(figsize=(13, 5.2))
    ax.set_xlim(0, 13)
    ax.set_ylim(0, 5.2)
    ax.axis("off")

    def box(x, y, w, h, text, colour, style="round,pad=0.05", **kwargs):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle=style, facecolor=colour, edgecolor="#333", **kwargs))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=9.5, wrap=True)

    def arrow(start, end, text=""):
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=14, color="#333", lw=1.3))
        if text:
            ax.text(
                (start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.15, text, ha="center", va="bottom", fontsize=8.5
            )

    # the two OpenVINO models, as dashed frames
    ax.add_patch(
        FancyBboxPatch((2.85, 2.75), 3.0, 2.15, boxstyle="round,pad=0.1", fill=False, ls="--", edgecolor="#0068b5")
    )
    ax.text(4.35, 5.05, "image_encoder.xml: once per image", ha="center", color="#0068b5", fontsize=10, weight="bold")
    ax.add_patch(
        FancyBboxPatch((6.55, 0.25), 3.6, 2.6, boxstyle="round,pad=0.1", fill=False, ls="--", edgecolor="#c25400")
    )
    ax.text(
        8.35,
        0.0,
        "prompt_decoder.xml: once per prompt (milliseconds)",
        ha="center",
        color="#c25400",
        fontsize=10,
        weight="bold",
    )

    box(0.1, 3.3, 2.2, 1.1, "image\nH x W x 3, RGB uint8", "#eee")
    box(3.0, 3.3, 2.7, 1.1, "image encoder (ViT)\n1x3x1024x1024 in\nseconds on a CPU", "#cfe3f5")
    box(6.7, 3.3, 3.3, 1.1, "image embedding\n1 x 256 x 64 x 64\n(kept by set_image)", "#e8f1fa")
    box(0.1, 0.9, 2.2, 1.4, "prompts\npoints (+/-), a box,\na previous mask", "#eee")
    box(3.0, 0.9, 2.7, 1.4, "map to the 1024 frame\n(utils/transforms.py,\nno network)", "#f5f5f5")
    box(6.7, 1.55, 3.3, 1.1, "mask decoder\ntwo-way transformer:\nprompt tokens <-> embedding", "#fbe0cc")
    box(6.7, 0.4, 3.3, 0.9, "prompt encoder: points, box -> tokens;\nmask -> a map added to the embedding", "#fbe0cc")
    box(10.6, 0.4, 2.3, 2.2, "4 masks 256x256\n+ 4 IoU scores\n\n0: one mask\n1-3: candidates", "#eee")
    box(10.6, 3.3, 2.3, 1.1, "masks at H x W\n(upscaled logits > 0)", "#eee")

    arrow((2.3, 3.85), (3.0, 3.85), "resize,\npad")
    arrow((5.7, 3.85), (6.7, 3.85))
    arrow((2.3, 1.6), (3.0, 1.6))
    arrow((5.7, 1.3), (6.7, 0.85))
    arrow((8.35, 3.3), (8.35, 2.65))
    arrow((8.35, 1.3), (8.35, 1.55))
    arrow((10.0, 2.1), (10.6, 1.9))
    arrow((11.75, 2.6), (11.75, 3.3))
    ax.text(11.85, 2.95, "upscale", ha="left", va="center", fontsize=8.5)
    figure.tight_layout()
    return figure


def show_stage_counts(counts: dict[str, int], title: str = "", ax: plt.Axes | None = None) -> plt.Axes:
    """A horizontal bar per stage of the mask generator: how many masks were left after it."""
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.45 * len(counts) + 1))
    bars = ax.barh(list(counts), list(counts.values()), color="#0068b5")
    for bar, count in zip(bars, counts.values()):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {count}", va="center")
    ax.invert_yaxis()
    ax.set_xlabel("masks left after the stage")
    ax.set_xlim(0, max(list(counts.values()) + [1]) * 1.15)
    ax.set_title(title)
    return ax


LABEL_NAMES = {1: "1 foreground", 0: "0 background", 2: "2 box corner", 3: "3 box corner", -1: "-1 padding"}
LABEL_COLOURS = {1: "green", 0: "red", 2: "orange", 3: "orange", -1: "grey"}


def show_decoder_points(image: np.ndarray, prompts: dict[str, dict]) -> plt.Figure:
    """What the decoder receives for each prompt: its points in the 1024 frame, each with its label.

    ``prompts`` maps a title to ``predict``-style keywords (``point_coords``, ``point_labels``, ``box``).
    As in SAM's prompt encoder, a box becomes two corner points labelled 2 and 3, and a prompt
    without a box gets a padding point labelled -1 at (0, 0).
    """
    from utils.predictor import decoder_points
    from utils.transforms import IMAGE_SIZE, resize_longest_side, to_rgb_uint8

    resized = resize_longest_side(to_rgb_uint8(image))
    frame = _sam1_frame(resized)
    figure, axes = plt.subplots(1, len(prompts), figsize=(4.6 * len(prompts), 4.8), squeeze=False)
    for ax, (title, prompt) in zip(axes[0], prompts.items()):
        points = None
        if prompt.get("point_coords") is not None:
            points = (np.asarray(prompt["point_coords"], float)[None], np.asarray(prompt["point_labels"], float)[None])
        box = None if prompt.get("box") is None else np.asarray(prompt["box"], float)[None]
        coords, labels = decoder_points(points, box, image.shape[:2])  # exactly what OVSamPredictor sends
        coords, labels = coords[0], labels[0].astype(int)
        ax.imshow(frame)
        for (x, y), label in zip(coords, labels):
            ax.scatter([x], [y], s=140, color=LABEL_COLOURS[label], edgecolor="white", linewidth=1.5, zorder=3)
            ax.annotate(
                LABEL_NAMES[label],
                (x, y),
                xytext=(8, 8),
                textcoords="offset points",
                fontsize=9,
                color="white",
                bbox={"facecolor": LABEL_COLOURS[label], "alpha": 0.8, "pad": 1.5},
            )
        ax.set_title(f"{title}\n{len(coords)} decoder points", fontsize=10)
        ax.set_xlim(-40, IMAGE_SIZE + 10)
        ax.set_ylim(IMAGE_SIZE + 10, -40)
    figure.tight_layout()
    return figure


def show_upscaling(
    low_res_logits: np.ndarray, input_size: tuple[int, int], original_size: tuple[int, int]
) -> plt.Figure:
    """How 256x256 logits become a mask at the photo's size: upscale to 1024, cut the padding, resize, keep > 0."""
    import cv2

    from utils.transforms import IMAGE_SIZE, LOW_RES_MASK_SIZE, postprocess_masks

    logits = np.asarray(low_res_logits, np.float32).reshape(LOW_RES_MASK_SIZE, LOW_RES_MASK_SIZE)
    full = cv2.resize(logits, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_LINEAR)
    mask = postprocess_masks(logits[None, None], input_size, original_size)[0, 0] > 0
    valid = [size * LOW_RES_MASK_SIZE / IMAGE_SIZE for size in input_size]
    figure, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    # each sign gets the whole of its colour range: the positive logits are often far smaller than the negative
    norm = TwoSlopeNorm(vcenter=0.0, vmin=min(float(logits.min()), -1e-3), vmax=max(float(logits.max()), 1e-3))
    cropped = full[: input_size[0], : input_size[1]]
    for ax, shown in ((axes[0], logits), (axes[1], cropped)):
        ax.imshow(shown, cmap="RdBu_r", norm=norm)
        ax.contour(shown, levels=[0.0], colors="black", linewidths=1.2)  # where the logit crosses 0
    axes[0].add_patch(plt.Rectangle((-0.5, -0.5), valid[1], valid[0], fill=False, edgecolor="black", ls="--", lw=1.5))
    size = f"{LOW_RES_MASK_SIZE}x{LOW_RES_MASK_SIZE}"
    axes[0].set_title(f"decoder logits, {size} (red > 0, blue < 0)\ndashed: the image, below it padding", fontsize=10)
    axes[1].set_title(f"upscaled to 1024, padding cut: {input_size[1]}x{input_size[0]}", fontsize=10)
    axes[2].imshow(mask, cmap="gray")
    axes[2].set_title(
        f"resized to the photo, {original_size[1]}x{original_size[0]},\nthen logit > 0 is the mask", fontsize=10
    )
    figure.tight_layout()
    return figure
