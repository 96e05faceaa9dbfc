"""A tiny stand-in for SAM's networks, to test the mask generator's post-processing against upstream.

With random weights every SAM mask is one big blob, so filters, NMS and clean-up have
nothing to do. These modules give both sides masks with real structure instead:

- `ZeroEncoder`: the image encoder's interface, returning a zero embedding (instant).
- `DiscDecoder`: the decoder IR's interface; around the first point of each prompt it
  draws four discs of growing radius as logits (the largest with a small hole, so
  small-region clean-up has work), with predicted IoUs by a fixed rule that depends
  on the point's position (so NMS sees distinct scores).
"""

from __future__ import annotations

from pathlib import Path

import openvino as ov
import torch
from torch import nn

RADII = (12.0, 20.0, 32.0, 48.0)  # low-res pixels, per output index 0..3
HOLE_RADIUS = 3.0
SLOPE = 1.5
IOU_BASE = (0.9, 0.86, 0.93, 0.96)  # index 1 falls under the default pred_iou_thresh 0.88


class ZeroEncoder(nn.Module):
    img_size = 1024

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return image[:, :1, :64, :64].repeat(1, 256, 1, 1) * 0.0


class DiscDecoder(nn.Module):
    def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input):
        grid = torch.arange(256, dtype=torch.float32) + 0.5
        centre = point_coords[:, 0, :] / 4.0  # the 1024 frame to the 256 frame
        dx = grid[None, None, :] - centre[:, 0, None, None]
        dy = grid[None, :, None] - centre[:, 1, None, None]
        distance = torch.sqrt(dx * dx + dy * dy)  # [B, 256, 256]
        discs = [SLOPE * (radius - distance) for radius in RADII]
        discs[3] = torch.minimum(discs[3], SLOPE * (distance - HOLE_RADIUS))
        logits = torch.stack(discs, dim=1)
        unused = (
            (has_mask_input[:, None, None, None] * mask_input).mean() + image_embeddings.mean() + point_labels.mean()
        )
        logits = logits + 0.0 * unused
        jitter = 0.01 * centre[:, 0:1] / 256.0 + 0.01 * 1.41421356 * centre[:, 1:2] / 256.0
        iou = torch.tensor(IOU_BASE)[None, :] + jitter
        return logits, iou


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
