#!/usr/bin/env python3
"""Latency of the HTTP probes while many connections are held open, idle or half-sent.

    bench/serving/http_flood.py PORT [--idle 500] [--half 500] [--probes 20] [--timeout 30]

Opens --idle connections that send nothing and --half that send half a request line, then
times --probes GETs of /v2/health/live (each on a new connection, as a Kubernetes probe does)
and one of /metrics, and prints the latencies. Everything is closed at the end.
"""
import argparse
import socket
import statistics
import time


def connect(port, timeout):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(("127.0.0.1", port))
        return s
    except OSError:
        s.close()
        return None


def get(port, path, timeout):
    start = time.monotonic()
    s = connect(port, timeout)
    if s is None:
        return None, time.monotonic() - start
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        status = int(data[9:12]) if len(data) >= 12 else None
    except OSError:
        status = None
    finally:
        s.close()
    return status, time.monotonic() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--idle", type=int, default=500)
    ap.add_argument("--half", type=int, default=500)
    ap.add_argument("--probes", type=int, default=20)
    ap.add_argument("--timeout", type=float, default=30)
    a = ap.parse_args()
    held = []
    for i in range(a.idle + a.half):
        s = connect(a.port, 1.0)
        if s is None:
            continue
        if i >= a.idle:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: lo")
        held.append(s)
    print(f"held {len(held)} connections ({a.idle} idle + {a.half} half-sent asked)")
    time.sleep(0.2)
    lat, failed = [], 0
    for _ in range(a.probes):
        status, t = get(a.port, "/v2/health/live", a.timeout)
        lat.append(t * 1000)
        failed += status != 200
    status, t = get(a.port, "/metrics", a.timeout)
    print(f"/v2/health/live x{a.probes}: median {statistics.median(lat):.2f} ms, "
          f"max {max(lat):.2f} ms, not 200: {failed}")
    print(f"/metrics: status {status}, {t * 1000:.2f} ms")
    for s in held:
        s.close()


if __name__ == "__main__":
    main()
