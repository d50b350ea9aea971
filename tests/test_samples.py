"""data/samples is exactly what `flowtools sample data/samples --seed 0` writes."""

from __future__ import annotations

from flowlog_files import SAMPLES

from flowtools import sample


def _files(root):
    return {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}


def test_embedded_sample_is_the_generator_output(sample_dir, tmp_path):
    sample.generate(tmp_path / "s", seed=0)
    fresh, embedded = _files(tmp_path / "s"), _files(SAMPLES)
    assert sorted(fresh) == sorted(embedded), "run `make samples` and commit data/samples"
    changed = [k for k in fresh if fresh[k].read_bytes() != embedded[k].read_bytes()]
    assert not changed, f"{len(changed)} file(s) differ, e.g. {changed[:3]}: run `make samples`"


def test_embedded_sample_is_small(sample_dir):
    assert sum(p.stat().st_size for p in _files(SAMPLES).values()) < 8 * 2**20
