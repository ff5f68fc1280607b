"""DuckDB for Freshet's benchmarks: runs SQL sent by the benchmark program.

Reads one JSON object per line on stdin, {"sql": ["stmt", ...]}, runs the statements
in order on one in-memory DuckDB connection, and answers one JSON line:
{"ok": true, "rows": [[...], ...]} with the last statement's rows (as strings, at most
100), or {"ok": false, "error": "..."}. The benchmark program times each request from
its side, so the pipe's round trip (tens of microseconds) is included, as a network
round trip is for the other systems.
"""

import json
import sys

import duckdb


def main():
    con = duckdb.connect(":memory:")
    print(json.dumps({"ok": True, "version": duckdb.__version__}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            rows = []
            for stmt in request["sql"]:
                con.execute(stmt)
                try:
                    rows = con.fetchmany(100)
                except duckdb.Error:
                    rows = []
            reply = {"ok": True, "rows": [[str(v) for v in r] for r in rows]}
        except duckdb.Error as e:
            reply = {"ok": False, "error": str(e)}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
