"""A tiny stand-in for SAM's networks: masks with structure, for the mask generator and the front ends.

With random weights every SAM mask is one big blob, so the mask generator's filters, NMS and
clean-up have nothing to do (against upstream), and a front end that drops part of a prompt
gets the same blob. These modules give masks with real structure instead:

- `ZeroEncoder`: the image encoder's interface, returning a zero embedding (instant).
- `DiscDecoder`: the decoder IR's interface; it draws four discs of growing radius as
  logits around the positive points, adds the box's rectangle and cuts a disc around each
  negative point, so every part of a prompt shows in the mask (the front-end tests rely on
  that), with predicted IoUs by a fixed rule that depends on the first point's position.
"""

from __future__ import annotations

from pathlib import Path

import openvino as ov
import torch
from torch import nn

RADII = (12.0, 20.0, 32.0, 48.0)  # low-res pixels, per output index 0..3
HOLE_RADIUS = 3.0
NEGATIVE_RADIUS = 10.0  # low-res pixels cut out around each negative point
FAR = 1.0e4  # the distance to a point of a kind the prompt does not have
SLOPE = 1.5
IOU_BASE = (0.9, 0.86, 0.93, 0.96)  # index 1 falls under the default pred_iou_thresh 0.88


class ZeroEncoder(nn.Module):
    img_size = 1024

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return image[:, :1, :64, :64].repeat(1, 256, 1, 1) * 0.0


class DiscDecoder(nn.Module):
    """The decoder IR's interface, drawing logits from every part of each prompt (in the 256 x 256 low-res frame).

    - positive points (label 1): four discs of growing radius around the nearest one (output index 0..3,
      `RADII`); the largest has a small hole around the point, so small-region clean-up has work;
    - a box (corners labelled 2 and 3): its rectangle is added to every output, so a box alone gives the box;
    - negative points (label 0): a disc of `NEGATIVE_RADIUS` around each is cut out of every output;
    - padding points (label -1) and the mask input are ignored.

    So a front end that drops the box or a negative point gets a different mask. Predicted IoUs follow a
    fixed rule that depends on the first point's position (so NMS sees distinct scores).
    """

    def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input):
        grid = torch.arange(256, dtype=torch.float32) + 0.5
        coords = point_coords / 4.0  # the 1024 frame to the 256 frame
        dx = grid[None, None, None, :] - coords[:, :, 0, None, None]
        dy = grid[None, None, :, None] - coords[:, :, 1, None, None]
        distance = torch.sqrt(dx * dx + dy * dy)  # [B, N, 256, 256]
        far = torch.full_like(distance, FAR)
        labels = point_labels[:, :, None, None]
        to_positive = torch.where(labels == 1, distance, far).amin(dim=1)  # [B, 256, 256]
        to_negative = torch.where(labels == 0, distance, far).amin(dim=1)
        discs = [SLOPE * (radius - to_positive) for radius in RADII]
        discs[3] = torch.minimum(discs[3], SLOPE * (to_positive - HOLE_RADIUS))
        logits = torch.stack(discs, dim=1)  # [B, 4, 256, 256]
        logits = torch.maximum(logits, SLOPE * _inside_box(coords, point_labels, grid)[:, None])
        logits = torch.minimum(logits, SLOPE * (to_negative - NEGATIVE_RADIUS)[:, None])
        unused = (has_mask_input[:, None, None, None] * mask_input).mean() + image_embeddings.mean()
        logits = logits + 0.0 * unused
        centre = coords[:, 0, :]
        jitter = 0.01 * centre[:, 0:1] / 256.0 + 0.01 * 1.41421356 * centre[:, 1:2] / 256.0
        iou = torch.tensor(IOU_BASE)[None, :] + jitter
        return logits, iou


def _inside_box(coords: torch.Tensor, labels: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """How far each pixel lies inside the prompt's box [B, 256, 256] (negative outside; -FAR without a box).

    The box is the point labelled 2 (top left) and the one labelled 3 (bottom right), one box per prompt.
    """
    top_left = (coords * (labels == 2)[:, :, None]).sum(dim=1)  # [B, 2]
    bottom_right = (coords * (labels == 3)[:, :, None]).sum(dim=1)
    x, y = grid[None, None, :], grid[None, :, None]
    inside = torch.minimum(
        torch.minimum(x - top_left[:, 0, None, None], bottom_right[:, 0, None, None] - x),
        torch.minimum(y - top_left[:, 1, None, None], bottom_right[:, 1, None, None] - y),
    )
    has_box = (labels == 2).to(torch.float32).amax(dim=1)[:, None, None]
    return has_box * inside + (1.0 - has_box) * -FAR


def convert_synthetic(directory: Path) -> tuple[Path, Path]:
    """Save both modules as IR with the real models' input names and dynamic shapes."""
    encoder = ov.convert_model(ZeroEncoder(), example_input=torch.zeros(1, 3, 1024, 1024), input=[(1, 3, 1024, 1024)])
    example = (
        torch.zeros(1, 256, 64, 64),
        torch.rand(2, 2, 2) * 1024,
        torch.ones(2, 2),
        torch.zeros(2, 1, 256, 256),
        torch.zeros(2),
    )
    shapes = [[1, 256, 64, 64], [-1, -1, 2], [-1, -1], [-1, 1, 256, 256], [-1]]
    decoder = ov.convert_model(DiscDecoder(), example_input=example, input=[(shape, ov.Type.f32) for shape in shapes])
    for model, inputs, outputs in (
        (encoder, ["image"], ["image_embeddings"]),
        (
            decoder,
            ["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input"],
            ["masks", "iou_predictions"],
        ),
    ):
        for port, name in zip(model.inputs, inputs, strict=True):
            port.get_tensor().set_names({name})
        for port, name in zip(model.outputs, outputs, strict=True):
            port.get_tensor().set_names({name})
    paths = directory / "image_encoder.xml", directory / "prompt_decoder.xml"
    ov.save_model(encoder, paths[0], compress_to_fp16=False)
    ov.save_model(decoder, paths[1], compress_to_fp16=False)
    return paths


def patch_upstream_generator(generator) -> None:
    """Make a SamAutomaticMaskGenerator use the same synthetic logits through its own postprocess_masks."""
    predictor = generator.predictor
    predictor.model.image_encoder = ZeroEncoder()
    decoder = DiscDecoder()

    def predict_torch(
        point_coords, point_labels, boxes=None, mask_input=None, multimask_output=True, return_logits=False
    ):
        batch = point_coords.shape[0]
        coords = torch.cat(
            [point_coords.float(), torch.zeros(batch, 1, 2)], dim=1
        )  # the prompt encoder's padding point
        labels = torch.cat([point_labels.float(), -torch.ones(batch, 1)], dim=1)
        logits, iou = decoder(predictor.features, coords, labels, torch.zeros(batch, 1, 256, 256), torch.zeros(batch))
        chosen = slice(1, None) if multimask_output else slice(0, 1)
        low_res, iou = logits[:, chosen], iou[:, chosen]
        masks = predictor.model.postprocess_masks(low_res, predictor.input_size, predictor.original_size)
        if not return_logits:
            masks = masks > predictor.model.mask_threshold
        return masks, iou, low_res

    predictor.predict_torch = predict_torch
