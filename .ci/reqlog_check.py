"""Steward's request log, read by the CloudEvents SDK (PyPI `cloudevents`, which nobody on the
team wrote): every record must parse as a CloudEvent 1.0 in the JSON format, with its
extension attributes valid, and carry what the log promises (model, version, environment,
request id, W3C trace id, retention class). The request sent with TRACEPARENT must be in the
log under its trace id.

usage: reqlog_check.py LOG_DIR MIN_RECORDS TRACEPARENT"""

import pathlib
import sys

from cloudevents.core.formats.json import JSONFormat

log_dir, minimum, traceparent = pathlib.Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
trace_id = traceparent.split("-")[1]
fmt = JSONFormat()
events = []
for path in sorted(log_dir.rglob("*.jsonl")):
    assert path.parent.parent == log_dir and path.parent.name in ("standard", "personal"), path
    for line in path.read_text().splitlines():
        event = fmt.read(None, line)
        assert event.get_specversion() == "1.0", line
        assert event.get_type() == "dev.steward.inference.logged", line
        for attribute in ("model", "modelversion", "modeldigest", "environment", "requestid", "traceid", "spanid", "route", "phase", "retentionclass"):
            assert event.get_extension(attribute), (attribute, line)
        assert event.get_extension("retentionclass") == path.parent.name, line
        events.append(event)
assert len(events) >= minimum, f"{len(events)} records, expected at least {minimum}"
traced = [event for event in events if event.get_extension("traceid") == trace_id]
assert len(traced) == 1, f"{len(traced)} records with trace id {trace_id}"
assert len(traced[0].get_extension("spanid")) == 16, traced[0].get_attributes()
assert len({event.get_id() for event in events}) == len(events), "event ids repeat"
print(f"cloudevents: {len(events)} request log records parse as CloudEvents 1.0; the traced request is there")
