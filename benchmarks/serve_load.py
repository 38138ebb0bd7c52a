"""A bounded load run against ``faceattr serve`` on 127.0.0.1: requests/s, latency, errors, and the
server's memory before and after.

    python -m benchmarks.serve_load [--clients 16] [--seconds 30]

Starts the real server in a subprocess on a free loopback port, sends ``examples/astronaut.png``
(512x512, one face) from 1 client for ``--warm-seconds``, from ``--clients`` concurrent clients
for ``--warm-seconds`` (thread pools and allocator arenas grow to the concurrency), then for
``--seconds``, measured (httpx, loopback only, bounded in time), and reads the server's RSS from
/proc before and after. Writes benchmarks/results/serve_load.json and .md with the CPU named.
"""
from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from pathlib import Path

import httpx

from benchmarks.page_driver import server_process
from faceattr.atomic import write_text
from faceattr.device import cpu_description, machine_description

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "results"
PHOTO = REPO / "examples" / "astronaut.png"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load(url: str, clients: int, seconds: float) -> dict:
    data = PHOTO.read_bytes()
    latencies, errors, lock = [], [], threading.Lock()
    stop = time.perf_counter() + seconds

    def client():
        with httpx.Client(timeout=60) as c:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                try:
                    r = c.post(url + "/predict", files={"file": ("a.png", data, "image/png")})
                    ok = r.status_code == 200 and len(r.json()["faces"]) == 1
                except httpx.HTTPError as e:
                    ok, r = False, e
                with lock:
                    (latencies if ok else errors).append(time.perf_counter() - t0 if ok else str(r))
    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat = sorted(latencies)
    return {"clients": clients, "seconds": round(wall, 1), "requests": len(lat), "errors": len(errors),
            "requests_per_s": len(lat) / wall, "p50_ms": 1000 * statistics.median(lat),
            "p99_ms": 1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], "error_examples": errors[:3]}


IN_PROCESS_PHOTOS = 64


def in_process_photos_per_s() -> float:
    """The ceiling the server is held to: ``predict_images`` on the same photo in this process
    (after the server has stopped), photos/s."""
    from faceattr import AttributePredictor
    predictor, items = AttributePredictor(), [str(PHOTO)] * IN_PROCESS_PHOTOS
    predictor.predict_images(items[:4])
    t = time.perf_counter()
    predictor.predict_images(items)
    return IN_PROCESS_PHOTOS / (time.perf_counter() - t)


def measure(url: str, pid: int, args) -> tuple[dict, dict, dict]:
    """One client (also the warm-up), a concurrency warm-up, then ``args.rounds`` measured rounds of
    ``args.clients``; the server's RSS after each phase."""
    one = load(url, 1, args.warm_seconds)
    rss_one = rss_mb(pid)
    load(url, args.clients, args.warm_seconds)  # concurrency warm-up: thread pools, allocator arenas
    rss_before = rss_mb(pid)
    rounds, rss_rounds = [], []
    for _ in range(args.rounds):
        rounds.append(load(url, args.clients, args.seconds))
        rss_rounds.append(round(rss_mb(pid), 1))
    many = {"clients": args.clients, "seconds": round(sum(r["seconds"] for r in rounds), 1),
            "requests": sum(r["requests"] for r in rounds), "errors": sum(r["errors"] for r in rounds),
            "requests_per_s": sum(r["requests"] for r in rounds) / sum(r["seconds"] for r in rounds),
            "p50_ms": statistics.median([r["p50_ms"] for r in rounds]),
            "p99_ms": max(r["p99_ms"] for r in rounds), "rounds": rounds}
    return one, many, {"server_rss_mb_after_one_client": round(rss_one, 1), "server_rss_mb_before": round(rss_before, 1),
                       "server_rss_mb_after_each_round": rss_rounds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--warm-seconds", type=float, default=10)
    ap.add_argument("--rounds", type=int, default=3, help="measured rounds; RSS is read after each")
    args = ap.parse_args()
    with server_process() as (url, proc):
        one, many, rss = measure(url, proc.pid, args)
    ceiling = in_process_photos_per_s()
    result = {"machine": machine_description(), "one_client": one, "concurrent": many,
              "in_process_photos_per_s": ceiling,
              "concurrent_over_one_client": many["requests_per_s"] / one["requests_per_s"],
              "concurrent_over_in_process": many["requests_per_s"] / ceiling,
              **rss}
    write_text(OUT / "serve_load.json", json.dumps(result, indent=1))
    md = [f"`python -m benchmarks.serve_load --clients {args.clients} --seconds {args.seconds:g} --rounds {args.rounds}` on "
          f"{cpu_description()}: `faceattr serve` on 127.0.0.1, each request one 512x512 PNG with one face.", "",
          "| clients | seconds | requests | errors | requests/s | p50 ms | p99 ms |", "|---|---|---|---|---|---|---|"]
    for r in (one, many):
        md.append(f"| {r['clients']} | {r['seconds']} | {r['requests']} | {r['errors']} | {r['requests_per_s']:.1f} | "
                  f"{r['p50_ms']:.0f} | {r['p99_ms']:.0f} |")
    md += ["", f"In this run: {args.clients} clients give {result['concurrent_over_one_client']:.1f}x the "
               f"requests/s of one, and {100 * result['concurrent_over_in_process']:.0f}% of in-process "
               f"`predict_images` on the same photo ({ceiling:.1f} photos/s).",
           "", f"Server RSS: {rss['server_rss_mb_after_one_client']:.0f} MB after the one-client run; "
               f"{rss['server_rss_mb_before']:.0f} MB after a "
               f"{args.warm_seconds:g} s warm-up at {args.clients} clients; after each of the {args.rounds} measured "
               f"{args.seconds:g} s rounds: {', '.join(f'{r:.0f}' for r in rss['server_rss_mb_after_each_round'])} MB "
               f"(p50 and p99 over the rounds: median of the rounds' p50, largest p99)."]
    write_text(OUT / "serve_load.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
