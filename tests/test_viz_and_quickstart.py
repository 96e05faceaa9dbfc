"""The notebooks' drawing helpers and set-up helpers: what they draw, and clear errors for bad input."""

from __future__ import annotations

import cv2
import matplotlib.pyplot as plt
import numpy as np
import pytest

from tests.helpers import make_test_images
from utils.amg import STAGES
from utils.predictor import OVSamPredictor
from utils.quickstart import embed_image, load_predictor
from utils.viz import draw_sam_diagram, show_preprocessing, show_result, show_stage_counts


def test_sam_diagram_names_both_models():
    figure = draw_sam_diagram()
    texts = " ".join(text.get_text() for text in figure.axes[0].texts)
    assert "image_encoder.xml" in texts and "prompt_decoder.xml" in texts and "1 x 256 x 64 x 64" in texts
    plt.close(figure)


def test_preprocessing_figure_maps_the_point_like_the_predictor():
    image = make_test_images()["landscape"]  # 1800 x 1200
    figure = show_preprocessing(image, np.array([500, 375]))
    titles = [axis.get_title() for axis in figure.axes]
    assert "point (500, 375)" in titles[0] and "1024x683, point (284.4, 213.4)" in titles[1]
    assert figure.axes[2].images[0].get_array().shape[:2] == (1024, 1024)
    plt.close(figure)


@pytest.mark.parametrize("shape", [(10, 10, 2), (10, 10, 3, 1), (0, 10, 3)])
def test_preprocessing_figure_rejects_what_is_not_an_image(shape):
    with pytest.raises(ValueError, match="HxWx3"):
        show_preprocessing(np.zeros(shape, np.uint8), np.array([1, 1]))


def test_show_result_draws_mask_points_and_box():
    image = make_test_images()["tiny"]
    mask = np.zeros(image.shape[:2], bool)
    mask[10:20, 10:30] = True
    axis = show_result(image, mask, "title", np.array([[5, 5], [20, 15]]), np.array([1, 0]), np.array([1, 2, 30, 40]))
    assert (
        axis.get_title() == "title" and len(axis.images) == 2 and len(axis.collections) == 2 and len(axis.patches) == 1
    )
    plt.close(axis.figure)


def test_stage_counts_chart_has_a_bar_per_stage():
    counts = dict(zip(STAGES, range(len(STAGES), 0, -1)))
    axis = show_stage_counts(counts)
    assert [bar.get_width() for bar in axis.patches] == list(counts.values())
    plt.close(axis.figure)


def test_load_predictor_rejects_an_unknown_model_type_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="Unknown SAM model type 'vit_x'") as error:
        load_predictor("vit_x", tmp_path)
    assert all(name in str(error.value) for name in ("vit_b", "vit_l", "vit_h")), "the message lists the valid types"
    assert not any(tmp_path.iterdir()), "nothing may be downloaded or converted for a wrong name"


def test_embed_image_names_a_missing_or_unreadable_file(synthetic_ir, tmp_path):
    predictor = OVSamPredictor(*synthetic_ir)
    with pytest.raises(FileNotFoundError, match="nothing.jpg"):
        embed_image(predictor, tmp_path / "nothing.jpg")
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match="notes.png"):
        embed_image(predictor, tmp_path / "notes.png")
    image_path = tmp_path / "tiny.png"
    cv2.imwrite(str(image_path), make_test_images()["tiny"][:, :, ::-1])
    image = embed_image(predictor, image_path)
    assert image.shape == (65, 97, 3) and predictor.is_image_set


def test_attention_by_hand_weights_a_mix_of_values():
    from utils.viz import attention_by_hand

    tokens = np.random.default_rng(0).normal(size=(20, 3))
    weights, output = attention_by_hand(tokens, query_index=7)
    assert np.isclose(weights.sum(), 1) and weights.argmax() == 7  # a token matches its own key best
    np.testing.assert_allclose(output, weights @ tokens)
    sharper, _ = attention_by_hand(tokens, query_index=7, temperature=0.01)
    assert sharper[7] > weights[7]


def test_attention_primer_draws_the_query_its_weights_and_the_mix():
    from utils.viz import show_attention_primer

    figure = show_attention_primer(make_test_images()["landscape"], np.array([500, 375]), grid=8)
    assert "64 tokens" in figure.axes[0].get_title()
    assert figure.axes[1].images[0].get_array().shape == (8, 8)
    plt.close(figure)
