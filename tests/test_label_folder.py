"""utils.label_folder: the per-image files, the merged COCO, resume, bad input, and a worker killed mid-job.

Runs vit_tiny (SAM's real decoder behind a one-block encoder) on small photos with a 4x4 grid: the same code paths
as a real job in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import psutil
import pytest
from pycocotools.coco import COCO

from tests.helpers import LABEL_OPTIONS as OPTIONS
from utils import label_folder as lf
from utils.amg import OVSamAutomaticMaskGenerator
from utils.predictor import OVSamPredictor
from utils.transforms import read_rgb_image


@pytest.fixture(scope="module")
def models_dir(label_models_dir) -> Path:
    return label_models_dir


def run(images_dir, out_dir, models_dir, **options):
    return lf.label_folder(images_dir, out_dir, models_dir=models_dir, **(OPTIONS | options))


def test_each_image_gets_sa1b_json_and_the_job_a_coco_file(images_dir, tmp_path, models_dir):
    out = tmp_path / "out"
    summary = run(images_dir, out, models_dir, workers=2)
    assert (summary.labelled, summary.failed, summary.skipped) == (2, 2, 0)
    record = json.loads((out / "truck.json").read_text())
    assert record["image"] == {
        "image_id": lf.image_id_of("truck.jpg"),
        "file_name": "truck.jpg",
        "width": 450,
        "height": 300,
    }
    assert record["annotations"], "the generator kept no mask: the test says nothing"
    for annotation in record["annotations"]:
        assert set(annotation) == {
            "id",
            "segmentation",
            "bbox",
            "area",
            "predicted_iou",
            "stability_score",
            "point_coords",
            "crop_box",
        }
    coco = COCO(str(out / "coco.json"))
    assert sorted(image["file_name"] for image in coco.dataset["images"]) == ["portrait.png", "truck.jpg"]
    assert len(coco.getAnnIds()) == summary.masks and summary.masks == len(
        {a["id"] for a in coco.dataset["annotations"]}
    )
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert sorted(failure["file_name"] for failure in failures) == ["broken.jpg", "notes.txt"]
    assert all("not an image" in failure["reason"] for failure in failures)
    assert not [path for path in out.iterdir() if path.name.startswith(".")], "a temporary file was left behind"


def test_the_files_hold_what_the_generator_gives_for_the_image(images_dir, tmp_path, models_dir):
    """The runner adds no change of its own: its annotations are generate()'s for the same image and options."""
    out = tmp_path / "out"
    run(images_dir, out, models_dir, workers=1)
    predictor = OVSamPredictor(*lf.prepare_ir("vit_tiny", models_dir))
    generator = OVSamAutomaticMaskGenerator(
        predictor,
        points_per_side=4,
        pred_iou_thresh=0.0,
        stability_score_thresh=0.0,
        output_mode="coco_rle",
        show_progress=False,
    )
    expected = generator.generate(read_rgb_image(images_dir / "truck.jpg"))
    written = json.loads((out / "truck.json").read_text())["annotations"]
    assert [a["segmentation"] for a in written] == [a["segmentation"] for a in expected]
    np.testing.assert_allclose([a["predicted_iou"] for a in written], [a["predicted_iou"] for a in expected], rtol=1e-5)


def test_a_second_run_resumes(images_dir, tmp_path, models_dir):
    out = tmp_path / "out"
    run(images_dir, out, models_dir, workers=1)
    kept = (out / "portrait.json").stat().st_mtime_ns
    (out / "truck.json").unlink()  # as if the job had been killed while labelling it
    summary = run(images_dir, out, models_dir, workers=1)
    assert (summary.labelled, summary.skipped) == (1, 1)
    assert (out / "truck.json").exists() and (out / "portrait.json").stat().st_mtime_ns == kept
    assert len(COCO(str(out / "coco.json")).dataset["images"]) == 2


def test_another_jobs_folder_is_refused_naming_the_difference(images_dir, tmp_path, models_dir):
    out = tmp_path / "out"
    run(images_dir, out, models_dir, workers=1)
    with pytest.raises(lf.JobError, match="points_per_side: 4 there, 8 now"):
        run(images_dir, out, models_dir, points_per_side=8)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "something.json").write_text("{}")
    with pytest.raises(lf.JobError, match="not this job's"):
        run(images_dir, foreign, models_dir)


def test_missing_and_empty_folders_and_bad_options_are_named(tmp_path, models_dir):
    with pytest.raises(lf.JobError, match="No folder of images at"):
        run(tmp_path / "nowhere", tmp_path / "out", models_dir)
    (tmp_path / "empty").mkdir()
    with pytest.raises(lf.JobError, match="is empty"):
        run(tmp_path / "empty", tmp_path / "out", models_dir)
    with pytest.raises(ValueError, match="pred_iou_thresh must be within"):
        run(tmp_path / "empty", tmp_path / "out", models_dir, pred_iou_thresh=3.0)
    with pytest.raises(ValueError, match="vit_b"):
        run(tmp_path / "empty", tmp_path / "out", models_dir, model_type="vit_q")
    assert not (tmp_path / "out").exists(), "a refused job wrote something"


def write_detections(path: Path) -> Path:
    detections = {
        "images": [{"id": 7, "file_name": "truck.jpg"}, {"id": 8, "file_name": "missing.jpg"}],
        "annotations": [
            {"id": 1, "image_id": 7, "bbox": [50, 100, 120, 90], "category_id": 3},
            {"id": 2, "image_id": 7, "bbox": [400, 200, 100, 150], "category_id": 4},  # partly outside: clipped
            {"id": 3, "image_id": 7, "bbox": [900, 900, 40, 40], "category_id": 3},  # outside the 450x300 image
            {"id": 4, "image_id": 8, "bbox": [0, 0, 10, 10], "category_id": 3},
        ],
        "categories": [{"id": 3, "name": "car"}, {"id": 4, "name": "wheel"}],
    }
    path.write_text(json.dumps(detections))
    return path


def test_boxes_become_one_mask_each_with_their_category(images_dir, tmp_path, models_dir):
    out = tmp_path / "out"
    boxes = write_detections(tmp_path / "detections.json")
    summary = run(images_dir, out, models_dir, boxes=boxes, polygons=True, workers=1)
    annotations = json.loads((out / "truck.json").read_text())["annotations"]
    assert [(a["category_id"], a["source_annotation_id"]) for a in annotations] == [(3, 1), (4, 2)]
    assert annotations[1]["box_prompt"] == [400.0, 200.0, 50.0, 100.0]
    predictor = OVSamPredictor(*lf.prepare_ir("vit_tiny", models_dir))
    predictor.set_image(read_rgb_image(images_dir / "truck.jpg"))
    masks, _, _ = predictor.predict_boxes(np.array([[50, 100, 170, 190], [400, 200, 450, 300]]))
    coco = COCO(str(out / "coco.json"))
    assert [cat["name"] for cat in coco.loadCats(coco.getCatIds())] == ["car", "wheel"]
    for annotation, mask in zip(coco.loadAnns(coco.getAnnIds()), masks[:, 0]):
        assert np.array_equal(coco.annToMask(annotation).astype(bool), mask)
    reasons = sorted(failure["reason"] for failure in summary.failures)
    assert "outside the 450x300 image" in reasons[0] and "not in the folder" in reasons[1]
    run(images_dir, out, models_dir, boxes=boxes, polygons=True, workers=1)  # resumed: truck.jpg is done
    kept = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert sorted(failure.get("box_id") or 0 for failure in kept) == [0, 3], "a finished image's box failure was lost"
    polygons = COCO(str(out / "coco_polygons.json"))
    with_polygons = {annotation["source_annotation_id"] for annotation in polygons.loadAnns(polygons.getAnnIds())}
    assert {box for box, mask in ((1, masks[0, 0]), (2, masks[1, 0])) if mask.sum() >= 100} <= with_polygons


def test_polygons_outline_each_part_of_a_mask():
    mask = np.zeros((120, 160), bool)
    mask[10:50, 20:90] = True
    cv2.circle(mask.view(np.uint8), (120, 80), 25, 1, -1)
    polygons = lf.mask_to_polygons(mask)
    assert len(polygons) == 2
    drawn = np.zeros(mask.shape, np.uint8)
    for polygon in polygons:
        cv2.fillPoly(drawn, [np.array(polygon).reshape(-1, 2).astype(np.int32)], 1)
    assert (drawn.astype(bool) & mask).sum() / (drawn.astype(bool) | mask).sum() > 0.95


def test_a_worker_that_dies_is_replaced_and_its_images_done_again(images_dir, tmp_path, models_dir):
    job = lf.LabelJob(images_dir, tmp_path / "out", "vit_tiny", models_dir, points_per_side=4)
    lf.claim_output(job)
    tasks, _, _ = lf.plan_tasks(job, [images_dir / "truck.jpg", images_dir / "portrait.png"] * 2)
    results, killed = [], []

    def report(task, result):
        results.append((task.path.name, result))
        if not killed:
            workers = [child for child in psutil.Process().children() if "spawn_main" in " ".join(child.cmdline())]
            workers[0].kill()
            killed.append(workers[0].pid)

    lf.run_local(job, tasks, lf.prepare_ir(job.model_type, job.models_dir), 2, report)
    assert killed and not [result for _, result in results if "error" in result]
    assert len(results) == len(tasks), "an image in flight on the killed worker was lost, or reported twice"


def test_a_model_the_workers_cannot_load_stops_the_job_with_the_reason(images_dir, tmp_path, models_dir):
    job = lf.LabelJob(images_dir, tmp_path / "out", "vit_tiny", models_dir)
    broken = tmp_path / "broken.xml"
    broken.write_text("<net>not a model")
    encoder_xml, decoder_xml = lf.prepare_ir(job.model_type, job.models_dir)
    tasks, _, _ = lf.plan_tasks(job, [images_dir / "truck.jpg"])
    with pytest.raises(lf.JobError, match="a worker could not load the model"):
        lf.run_local(job, tasks, (broken, decoder_xml), 1, lambda task, result: None)


def test_an_image_named_like_the_jobs_own_files_is_refused(images_dir, tmp_path, models_dir):
    (images_dir / "truck.jpg").rename(images_dir / "coco.jpg")
    with pytest.raises(lf.JobError, match="coco.jpg would be written to coco.json"):
        run(images_dir, tmp_path / "out", models_dir)


def test_the_command_line_takes_upstreams_option_names(images_dir, tmp_path, models_dir, capsys):
    code = lf.main(
        [
            str(images_dir),
            str(tmp_path / "out"),
            "--model-type",
            "vit_tiny",
            "--models-dir",
            str(models_dir),
            "--workers",
            "1",
            "--points-per-side",
            "4",
            "--pred-iou-thresh",
            "0.5",
            "--stability-score-thresh",
            "0.9",
            "--crop-n-layers",
            "0",
            "--min-mask-region-area",
            "10",
        ]
    )
    assert code == 0
    assert "2 images labelled" in capsys.readouterr().out
    assert json.loads((tmp_path / "out" / "job.json").read_text())["pred_iou_thresh"] == 0.5
    assert lf.main([str(tmp_path / "nowhere"), str(tmp_path / "out2")]) == 2
    assert "No folder of images" in capsys.readouterr().err


def test_the_command_line_ray_option_takes_an_optional_address(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(lf, "label_folder", lambda **options: calls.append(options) or lf.Summary(labelled=1))
    for extra in ([], ["--ray"], ["--ray", "head:6379"]):
        assert lf.main([str(tmp_path), str(tmp_path / "out"), *extra]) == 0
    assert [call["ray"] for call in calls] == [None, "", "head:6379"]
