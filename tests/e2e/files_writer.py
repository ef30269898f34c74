"""Writes numbered log lines through Python's logging with a RotatingFileHandler (rename + create rotation), as a
real application does: `writer.py PATH COUNT LINES_PER_SECOND MAX_BYTES [json|plain] [START]`. JSON lines carry the
fields a structured-logging setup writes (ts epoch, level, message, trace_id, span_id, extra fields). Prints
`done` when every line is written."""

import json
import logging
import logging.handlers
import sys
import time

path, count, rate, max_bytes = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
fmt = sys.argv[5] if len(sys.argv) > 5 else "plain"
start = int(sys.argv[6]) if len(sys.argv) > 6 else 0


class JsonFormatter(logging.Formatter):
    def format(self, record):
        return json.dumps({
            "ts": record.created,
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "trace_id": "%032x" % (record.seq + 1),
            "span_id": "%016x" % (record.seq + 1),
            "seq": record.seq,
        })


handler = logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=10000)
if fmt == "json":
    handler.setFormatter(JsonFormatter())
log = logging.getLogger("writer")
log.addHandler(handler)
log.setLevel(logging.INFO)
log.propagate = False

began = time.time()
for i in range(start, start + count):
    log.info("line %08d %s", i, "x" * 40, extra={"seq": i})
    if i % 50 == 49:
        ahead = began + (i - start + 1) / rate - time.time()
        if ahead > 0:
            time.sleep(ahead)
handler.close()
print("done", flush=True)
