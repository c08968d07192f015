"""A run's metrics log (faderlib.metrics_log): its speed, said in words."""

from faderlib import metrics_log


def test_speed_report_reads_the_log(course_dir):
    text = metrics_log.speed_report(course_dir.fader)
    assert "images/s" in text and "epoch of 50,000 images" in text
