"""The smallest trainer settings the tests build on (width-4 ResNet, 16 px, batch 16)."""

TINY_MODEL = [
    "model.width=4",
    "model.projector_hidden=16",
    "model.projector_out=8",
    "augment.image_size=16",
    "batch_size=16",
    "record.progress=false",
]


def train_until_checkpoint(overrides: list[str], run_dir):
    """Start ``train`` in a subprocess (one torch thread) and return it once run_dir holds a
    checkpoint: a run a test can SIGKILL, or write to from a second process."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = (
        "import sys, torch; torch.set_num_threads(1)\n"
        "from linear_ssl.train import train, load_config\n"
        "train(load_config(None, sys.argv[1:]))\n"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)}
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *overrides, f"run_dir={run_dir}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 120
        while not list((Path(run_dir) / "checkpoints").glob("step_*.pt")):
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.01)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc
