"""utils.label_folder's Ray runner: `label_folder --ray` on a local Ray (2 CPUs in CI) writes the same files as the
one-machine runner, byte for byte; a killed Ray worker is restarted and its image done again; the small machine's
traps are handled.

Needs requirements-ray.txt (CI installs it); elsewhere the module is skipped without Ray.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import psutil
import pytest

if not os.environ.get("CI"):  # in CI (.ci/run installs it) a missing Ray must fail, not skip
    pytest.importorskip("ray", reason="Ray Data: see requirements-ray.txt")

from tests.helpers import LABEL_OPTIONS as OPTIONS  # noqa: E402 - after the skip
from utils import label_folder as lf  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray with 2 CPUs, as `--ray` starts it, for the tests that drive `run_ray` themselves."""
    import ray

    ray.init(runtime_env=lf.code_for_workers(), **lf.local_ray_options(2))
    yield ray
    ray.shutdown()


def test_ray_writes_the_same_files_as_the_one_machine_runner(images_dir, tmp_path, label_models_dir):
    options = OPTIONS | {"models_dir": label_models_dir, "workers": 2}
    local = lf.label_folder(images_dir, tmp_path / "local", **options)
    on_ray = lf.label_folder(images_dir, tmp_path / "ray", ray=True, **options)
    assert (on_ray.labelled, on_ray.failed, on_ray.masks) == (local.labelled, local.failed, local.masks) == (2, 2, 2)
    names = sorted(path.name for path in (tmp_path / "local").iterdir())
    assert names == sorted(path.name for path in (tmp_path / "ray").iterdir())
    for name in names:
        local_bytes, ray_bytes = ((tmp_path / run / name).read_bytes() for run in ("local", "ray"))
        if name == lf.FAILURES_FILE:  # one line per image, in the order the images finished
            local_bytes, ray_bytes = (sorted(text.splitlines()) for text in (local_bytes, ray_bytes))
        assert local_bytes == ray_bytes, f"{name} differs between the runners"
    import ray

    assert not ray.is_initialized(), "the local Ray that --ray started was left running"


def test_a_killed_ray_worker_is_restarted_and_its_image_done_again(local_ray, images_dir, tmp_path, label_models_dir):
    job = lf.LabelJob(images_dir, tmp_path / "out", "vit_tiny", label_models_dir, points_per_side=4)
    lf.claim_output(job)
    for copy in range(2):  # six images, so that both workers have some queued when they are killed
        for name in ("truck.jpg", "portrait.png"):
            shutil.copy(images_dir / name, images_dir / f"{copy}-{name}")
    images = sorted(path for path in images_dir.glob("*.[jp][pn]g") if path.name != "broken.jpg")
    tasks, _, _ = lf.plan_tasks(job, images)
    results, killed = [], []

    def report(task, result):
        results.append((task.path.name, result))
        if not killed:  # every actor started: Ray Data queues tasks on each, so each holds images to retry
            for actor in [process for process in psutil.process_iter(["cmdline"]) if is_label_actor(process)]:
                actor.kill()
                killed.append(actor.pid)

    lf.run_ray(job, tasks, lf.prepare_ir(job.model_type, job.models_dir), 2, report)
    assert killed and not [result for _, result in results if "error" in result]
    assert len(results) == len(tasks), "an image in flight on a killed worker was lost, or reported twice"


def is_label_actor(process: psutil.Process) -> bool:
    """A Ray worker process that holds a `RayWorker` (Ray names the process after the actor's class)."""
    return "RayWorker" in " ".join(process.info["cmdline"] or [])


def test_a_model_the_ray_workers_cannot_load_stops_the_job_with_the_reason(local_ray, images_dir, tmp_path):
    job = lf.LabelJob(images_dir, tmp_path / "out", "vit_tiny", tmp_path)
    lf.claim_output(job)
    broken = tmp_path / "broken.xml"
    broken.write_text("<net>not a model")
    broken.with_suffix(".bin").write_bytes(b"")
    tasks, _, _ = lf.plan_tasks(job, [images_dir / "truck.jpg"])
    with pytest.raises(lf.JobError, match="a worker could not load the model"):
        lf.run_ray(job, tasks, (broken, broken), 1, lambda task, result: None)


def test_a_node_that_does_not_see_the_shared_folders_says_which(images_dir, tmp_path):
    job = lf.LabelJob(images_dir, tmp_path / "out", "vit_tiny", tmp_path)  # job.json not written: not shared
    worker = lf.RayWorker(job, (tmp_path / "encoder.xml", tmp_path / "decoder.xml"), 1)
    result = worker(lf.task_row(lf.ImageTask(images_dir / "truck.jpg", 1)))
    error = json.loads(result["result"])["worker_error"]
    assert "does not see" in error and "job.json" in error and "encoder.xml" in error
    assert str(images_dir) not in error, "a folder it sees was named"


def test_the_local_ray_keeps_a_small_object_store_that_a_small_dev_shm_does_not_stop():
    from ray._private.ray_constants import REQUIRE_SHM_SIZE_THRESHOLD  # over it, a small /dev/shm stops Ray

    options = lf.local_ray_options(2)
    assert options["num_cpus"] == 2 and options["object_store_memory"] < REQUIRE_SHM_SIZE_THRESHOLD


def test_without_ray_the_option_names_the_install(images_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(lf.JobError, match="requirements-ray.txt"):
        lf.label_folder(images_dir, tmp_path / "out", ray=True, **OPTIONS)
