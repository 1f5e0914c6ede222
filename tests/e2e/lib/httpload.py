"""A small HTTP load client for airlock serve (tests and bench): N clients,
each on its own keep-alive connection, each sending M requests one after
another. Standard library only."""
import collections
import http.client
import json
import threading
import time


def load(port, key, body, clients=32, per_client=100, host="127.0.0.1", timeout=120):
    """-> {"statuses": Counter, "latencies": [s], "elapsed": s, "errors": [str],
    "bodies": Counter of result statuses}"""
    statuses = collections.Counter()
    outcomes = collections.Counter()
    latencies, errors = [], []
    lock = threading.Lock()
    data = json.dumps(body).encode() if not isinstance(body, bytes) else body
    headers = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
    start = threading.Event()

    def client():
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        start.wait()
        for _ in range(per_client):
            t0 = time.monotonic()
            try:
                conn.request("POST", "/v1/execute", data, headers)
                r = conn.getresponse()
                raw = r.read()
                dt = time.monotonic() - t0
                try:
                    st = json.loads(raw).get("status", "?")
                except ValueError:
                    st = "not-json"
                with lock:
                    statuses[r.status] += 1
                    outcomes[st] += 1
                    latencies.append(dt)
                    if r.status != 200 and len(errors) < 10:
                        errors.append("%d %s" % (r.status, raw[:200]))
                if r.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=timeout)
            except (OSError, http.client.HTTPException) as e:
                with lock:
                    statuses["exception"] += 1
                    if len(errors) < 10:
                        errors.append(repr(e))
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
        conn.close()

    th = [threading.Thread(target=client) for _ in range(clients)]
    for t in th:
        t.start()
    t0 = time.monotonic()
    start.set()
    for t in th:
        t.join()
    return {"statuses": statuses, "bodies": outcomes, "latencies": latencies,
            "elapsed": time.monotonic() - t0, "errors": errors}
