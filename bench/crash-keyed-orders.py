#!/usr/bin/env python3
"""Kill -9 the server while keyed orders are in flight, restart it, retry every key once the
pending ones count as abandoned (60 s), and check that each key made exactly one order:
the orders the killed run placed but never answered are found, not placed again.

Needs PostgreSQL and a built `emporium` (debug or release). Creates and uses the database
`crash_pg` (dropped and made anew) and the data folder /tmp/crash/data:

    psql -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS crash_pg" -c "CREATE DATABASE crash_pg"
    KILL_AFTER=0.3 python3 bench/crash-keyed-orders.py

KILL_AFTER (seconds after the orders start) should fall while they are in flight: the
first line printed says how many were answered before the kill.
"""
import json, os, shutil, signal, subprocess, sys, time, threading, urllib.request, urllib.error

BASE = "http://127.0.0.1:18080"
ENV = dict(os.environ, EMPORIUM_ADDR="127.0.0.1:18080", EMPORIUM_DATA_DIR="/tmp/crash/data",
           EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD="a-long-admin-password",
           EMPORIUM_DATABASE_URL="postgres://postgres@127.0.0.1:5432/crash_pg")
BIN = os.environ.get("EMPORIUM_BIN", os.path.expanduser("~/.cache/emporium/target/debug/emporium"))

def call(method, path, body=None, token=None, key=None, timeout=30):
    req = urllib.request.Request(BASE + path, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("content-type", "application/json")
    if token: req.add_header("authorization", "Bearer " + token)
    if key: req.add_header("idempotency-key", key)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null"), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null"), dict(e.headers)

def start(demo):
    p = subprocess.Popen([BIN, "serve"] + (["--demo"] if demo else []), env=ENV,
                         stdout=open("/tmp/crash/log", "a"), stderr=subprocess.STDOUT)
    for _ in range(300):
        try:
            if call("GET", "/health/ready")[0] == 200: return p
        except Exception: pass
        time.sleep(0.1)
    sys.exit("server did not start")

shutil.rmtree("/tmp/crash/data", ignore_errors=True)
os.makedirs("/tmp/crash", exist_ok=True)
server = start(True)
admin = call("POST", "/api/v1/auth/login", {"username": "admin", "password": "a-long-admin-password"})[1]["accessToken"]
ada = call("POST", "/api/v1/auth/login", {"username": "ada@example.com", "password": "demo-customer-password"})[1]["accessToken"]
sku = "CRASH-1"
st, body, _ = call("POST", "/api/v1/products", {"name": "Crash test", "categories": ["test"],
    "variants": [{"sku": sku, "price": {"amount": 100, "currency": "EUR"}}]}, admin)
assert st == 201, body
st, body, _ = call("POST", f"/api/v1/inventory/{sku}/adjustments", {"delta": 10000, "reason": "probe"}, admin)
assert st == 200, body
addr = {"name": "Ada", "line1": "1 Road", "city": "Town", "postalCode": "12345", "country": "DE"}

results = {}
def order(i):
    key = f"crash-key-{i}"
    try:
        results[key] = call("POST", "/api/v1/orders", {"lines": [{"sku": sku, "quantity": 1}],
                                                      "shippingAddress": addr}, ada, key, timeout=10)[:2]
    except Exception as e:
        results[key] = ("died", str(e))
N = 300
threads = [threading.Thread(target=order, args=(i,)) for i in range(N)]
for t in threads: t.start()
time.sleep(float(os.environ.get('KILL_AFTER','0.15')))
server.send_signal(signal.SIGKILL)
for t in threads: t.join()
server.wait()
died = [k for k, v in results.items() if v[0] == "died"]
answered = {k: v[1]["id"] for k, v in results.items() if v[0] == 201}
print(f"before the kill: {len(answered)} answered 201, {len(died)} died in flight")

server = start(False)
admin = call("POST", "/api/v1/auth/login", {"username": "admin", "password": "a-long-admin-password"})[1]["accessToken"]
ada = call("POST", "/api/v1/auth/login", {"username": "ada@example.com", "password": "demo-customer-password"})[1]["accessToken"]
time.sleep(5)  # the projector catches up with what the killed run appended
st, inv0, _ = call("GET", f"/api/v1/inventory/{sku}", None, admin)
print(f"after the restart, before any retry: {inv0['reserved']} units reserved (orders the killed run placed)")
print("waiting 61 s for pending keys to count as abandoned")
time.sleep(61)
ids = {}
statuses = {}
for i in range(N):
    key = f"crash-key-{i}"
    st, body, headers = call("POST", "/api/v1/orders", {"lines": [{"sku": sku, "quantity": 1}],
                                                       "shippingAddress": addr}, ada, key)
    statuses[st] = statuses.get(st, 0) + 1
    assert st == 201, (key, st, body)
    ids[key] = body["id"]
    if key in answered:
        assert answered[key] == body["id"], (key, answered[key], body)
print("retry statuses:", statuses)
distinct = set(ids.values())
# The inventory view is a projection: wait for it to count every reservation.
for _ in range(100):
    st, inv, _ = call("GET", f"/api/v1/inventory/{sku}", None, admin)
    if inv.get("reserved") == len(distinct): break
    time.sleep(0.1)
print(f"{len(distinct)} distinct orders for {N} keys; inventory {inv}")
server.send_signal(signal.SIGTERM); server.wait()
ok = len(distinct) == N and inv["reserved"] == N and inv["available"] == 10000 - N
print("OK" if ok else "FAILED")
sys.exit(0 if ok else 1)
