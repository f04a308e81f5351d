"""Batch-job progress metrics: the textfile-collector file is valid Prometheus exposition format
with the four metrics, labelled by job and shard, and is replaced atomically."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from xai_serve.jobs.metrics import JobMetrics, reporting
from xai_serve.jobs.shard import Shard


def _samples(text: str) -> dict[str, tuple[dict[str, str], float]]:
    return {s.name: (s.labels, s.value) for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_textfile_format_and_values(tmp_path):
    path = tmp_path / "collector" / "eval.prom"
    m = JobMetrics("faithfulness", "1/4", textfile=path)
    with reporting(m):
        m.start(total=10, done=2)
        first = path.read_text()
        m.advance(3)
        m.failure()
        m.advance(5)
    text = path.read_text()
    assert "# TYPE xai_job_items_total gauge" in text and "# TYPE xai_job_failures_total counter" in text
    s = _samples(text)
    labels = {"job": "faithfulness", "shard": "1/4"}
    assert s["xai_job_items_total"] == (labels, 10.0)
    assert s["xai_job_items_done"] == (labels, 10.0)
    assert s["xai_job_failures_total"] == (labels, 1.0)
    assert s["xai_job_seconds"][0] == labels and s["xai_job_seconds"][1] >= 0
    assert _samples(first)["xai_job_items_done"][1] == 2.0
    assert [p.name for p in path.parent.iterdir()] == ["eval.prom"]  # no temporary file left


def test_nothing_is_written_for_a_job_that_never_started(tmp_path):
    with reporting(JobMetrics("basic", textfile=tmp_path / "m.prom")):
        pass
    assert not (tmp_path / "m.prom").exists()


def test_shard_parse_and_ownership():
    s = Shard.parse("2/3")
    assert str(s) == "2/3" and [i for i in range(8) if s.owns(i)] == [2, 5]
    for bad in ("3/3", "-1/2", "1", "a/b", "0/0"):
        try:
            Shard.parse(bad)
        except Exception as e:
            assert "K/N" in str(e)
        else:
            raise AssertionError(bad)
