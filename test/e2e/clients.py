#!/usr/bin/env python3
"""End to end with real clients: psql and psycopg against an environmentd process.

Usage: clients.py PATH/TO/environmentd

Starts Freshet on a free port with a fresh data directory, runs the README's session
through psql and through psycopg (simple and extended protocol, prepared statements,
transactions, errors with SQLSTATEs), and checks every answer. Exits non-zero on the
first mismatch.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import psycopg


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc):
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"environmentd exited with {proc.returncode}")
        try:
            with psycopg.connect(f"host=127.0.0.1 port={port} user=freshet dbname=freshet", connect_timeout=2):
                return
        except psycopg.OperationalError:
            time.sleep(0.1)
    raise SystemExit("environmentd did not accept connections within 60 s")


def check(what, actual, expected):
    if actual != expected:
        raise SystemExit(f"FAIL {what}: expected {expected!r}, got {actual!r}")
    print(f"ok {what}")


def psql(port, *commands):
    args = ["psql", "-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-p", str(port), "-U", "freshet", "freshet"]
    for c in commands:
        args += ["-c", c]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60)
    return out.returncode, out.stdout.strip(), out.stderr.strip()


def main():
    binary = sys.argv[1]
    data_dir = tempfile.mkdtemp(prefix="freshet-clients-")
    port = free_port()
    proc = subprocess.Popen([binary, "--data-dir", data_dir, "--listen-addr", f"127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, proc)
        # psql: the README session.
        code, out, err = psql(port,
                              "CREATE TABLE t (a int, b text)",
                              "INSERT INTO t VALUES (1, 'x'), (2, NULL)",
                              "SELECT a, b FROM t WHERE a > 1 ORDER BY a LIMIT 10")
        check("psql README session", (code, out), (0, "2|"))
        code, out, err = psql(port, "UPDATE t SET b = 'y' WHERE a = 2", "DELETE FROM t WHERE a = 1", "SELECT a, b FROM t")
        check("psql update and delete", (code, out), (0, "2|y"))
        code, out, err = psql(port, "SELEC 1")
        check("psql syntax error", (code != 0, "syntax error at or near \"SELEC\"" in err), (True, True))
        code, out, err = psql(port, "SHOW server_version")
        check("psql server_version", out, "15.0")

        # psycopg: extended protocol with parameters, prepared statements, transactions.
        with psycopg.connect(f"host=127.0.0.1 port={port} user=freshet dbname=freshet") as conn:
            cur = conn.cursor()
            cur.execute("CREATE TABLE p (a int NOT NULL, b text, c float8, d numeric, e date, f timestamp, g bool)")
            cur.execute("INSERT INTO p VALUES (%s, %s, %s, %s, %s, %s, %s)",
                        (1, "x", 1.5, "2.25", "2024-01-02", "2024-01-02 03:04:05", True))
            conn.commit()
            cur.execute("SELECT a, b, c, d::text, e::text, f::text, g FROM p WHERE a = %s", (1,))
            check("psycopg typed round trip", cur.fetchall(),
                  [(1, "x", 1.5, "2.25", "2024-01-02", "2024-01-02 03:04:05", True)])
            for _ in range(3):
                cur.execute("SELECT b FROM p WHERE a = %s", (1,), prepare=True)
                check("psycopg prepared statement", cur.fetchall(), [("x",)])
            try:
                cur.execute("SELECT 1 / (a - 1) FROM p")
                raise SystemExit("FAIL division by zero did not raise")
            except psycopg.errors.DivisionByZero as e:
                check("psycopg division by zero sqlstate", e.sqlstate, "22012")
            conn.rollback()
            try:
                cur.execute("INSERT INTO p (b) VALUES ('no a')")
                raise SystemExit("FAIL not-null violation did not raise")
            except psycopg.errors.NotNullViolation as e:
                check("psycopg not-null sqlstate", e.sqlstate, "23502")
            conn.rollback()
            cur.execute("INSERT INTO p (a, b) VALUES (%s, %s)", (2, "rolled back"))
            conn.rollback()
            cur.execute("SELECT count(*) FROM p")
            check("psycopg rollback discards writes", cur.fetchone(), (1,))
            cur.execute("UPDATE p SET b = %s WHERE a = %s RETURNING a, b", ("z", 1))
            check("psycopg update returning", (cur.fetchall(), cur.statusmessage), ([(1, "z")], "UPDATE 1"))
            conn.commit()
        print("clients: all checks passed")
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
