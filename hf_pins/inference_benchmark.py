"""Throughput and latency of an exported model per runtime and precision, with the machine they were measured on.

Numbers only mean something next to the machine (CPU model, cores, AVX2/AVX-512/VNNI) and next to each other from the
same run: shared machines are noisy, so compare ratios within one run. Inputs are full-length random token ids (the
worst case, and what the static graph runs anyway).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import export as ex
from . import runtime as rt
from .cpu import cpu_info

INTERESTING_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16", "avx_vnni",
                     "amx_tile", "amx_int8", "amx_bf16", "neon", "asimd", "sve")


def machine_info() -> dict:
    """What the figures were measured on; DeepSparse's speed in particular depends on AVX-512 and VNNI."""
    cpu = cpu_info()
    flags = cpu.flags
    info = {
        "cpu": cpu.model,
        "architecture": platform.machine(),
        "cores_physical": rt.physical_cores(),
        "cores_logical": os.cpu_count(),
        "instruction_sets": [f for f in INTERESTING_FLAGS if f in flags],
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "device": "cpu",
    }
    try:
        import psutil

        info["memory_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
        info["load_average_1min"] = round(os.getloadavg()[0], 2)
    except (ImportError, OSError, AttributeError):
        pass
    versions = {}
    try:
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    ok, why = rt.deepsparse_status()
    if ok:
        import deepsparse

        versions["deepsparse"] = deepsparse.__version__
    else:
        info["deepsparse_unavailable"] = why
    info["versions"] = versions
    return info


def _timed(fn: Callable[[], object], seconds: float | None, iterations: int | None) -> tuple[list[float], float]:
    """Latencies of single calls for `iterations` calls, else for `seconds` (at least one call); and the wall time."""
    latencies = []
    begin = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        fn()
        latencies.append(time.perf_counter() - t0)
        if iterations is not None:
            if len(latencies) >= iterations:
                break
        elif time.perf_counter() - begin >= (seconds or 0):
            break
    return latencies, time.perf_counter() - begin


def _warm_up(fn: Callable[[], object], seconds: float) -> int:
    start = time.perf_counter()
    calls = 0
    while calls < 2 or time.perf_counter() - start < seconds:
        fn()
        calls += 1
    return calls


def _summary(latencies: list[float], wall: float, batch_size: int) -> dict:
    ms = np.asarray(latencies) * 1000.0
    return {
        "items_per_second": batch_size * len(latencies) / wall,
        "latency_ms_median": float(statistics.median(ms)),
        "latency_ms_p90": float(np.percentile(ms, 90)),
        "iterations": len(latencies),
    }


def time_calls(fn: Callable[[], object], batch_size: int, *, warmup_seconds: float = 2.0,
               seconds: float | None = 10.0, iterations: int | None = None) -> dict:
    """Warm up, then time single calls: for `iterations` calls if given, else for `seconds`."""
    warm = _warm_up(fn, warmup_seconds)
    latencies, wall = _timed(fn, seconds, iterations)
    return {**_summary(latencies, wall, batch_size), "warmup_iterations": warm}


@dataclass
class Config:
    """One thing to measure: an exported directory run by one runtime at one precision."""

    onnx_dir: Path
    runtime: str
    precision: str
    label: str = ""


def benchmark(configs: list[Config], batch_size: int = 1, sequence_length: int = 128, warmup_seconds: float = 2.0,
              seconds: float | None = 10.0, iterations: int | None = None, rounds: int = 3,
              threads: int | None = None, log: Callable[[str], None] = print) -> list[dict]:
    """Measure every configuration in interleaved rounds (A B C, A B C, ...), each round 1/rounds of the time.

    On a shared machine other processes come and go; interleaving spreads their load over all configurations instead
    of penalising whichever ran during a burst. All engines are built first (an idle DeepSparse or ONNX Runtime
    engine was measured not to slow the others). Throughput is all items over all measured time; the latency
    percentiles are over all calls; `other_processes_cpu_cores` is the average number of cores others kept busy.
    """
    rounds = max(1, int(rounds))
    vocab = {}
    engines = []
    with tempfile.TemporaryDirectory(prefix="hf_pins_bench_") as tmp:
        for cfg in configs:
            onnx_dir = rt.check_onnx_dir(cfg.onnx_dir)
            rt.resolve_precision(onnx_dir, cfg.precision)
            if onnx_dir not in vocab:
                vocab[onnx_dir] = _vocab_size(onnx_dir)
            t0 = time.perf_counter()
            engine = rt.make_engine(onnx_dir, cfg.runtime, cfg.precision, batch_size, sequence_length, Path(tmp),
                                    threads)
            load_s = time.perf_counter() - t0
            feeds = ex.feeds_for(engine.input_names, ex.random_encoded(batch_size, sequence_length, vocab[onnx_dir]))
            call = (lambda e, f: (lambda: e(f)))(engine, feeds)
            warm = _warm_up(call, warmup_seconds)
            engines.append({"cfg": cfg, "dir": onnx_dir, "engine": engine, "call": call, "load_s": load_s,
                            "warm": warm, "latencies": [], "wall": 0.0, "others": 0.0, "file": engine.path.name})
            log(f"  ready: {cfg.label or onnx_dir.name} {cfg.runtime} {cfg.precision} "
                f"(built in {load_s:.1f} s, {warm} warm-up calls)")
        load_before = _load_average()
        per_round_s = None if seconds is None else seconds / rounds
        per_round_n = None if iterations is None else max(1, -(-iterations // rounds))
        for _ in range(rounds):
            for item in engines:
                item["call"]()  # re-touch this engine's memory after the others ran
                before = _cpu_snapshot()
                latencies, wall = _timed(item["call"], per_round_s, per_round_n)
                others = _others_cpu(before, _cpu_snapshot())
                item["latencies"] += latencies
                item["wall"] += wall
                item["others"] += (others or 0.0) * wall
        load_after = _load_average()

    results = []
    for item in engines:
        cfg = item["cfg"]
        report = rt.read_export_report(item["dir"])
        row = {
            "model": cfg.label or item["dir"].name,
            "runtime": cfg.runtime,
            "precision": cfg.precision,
            "sparsity": (report.get("sparsity") or {}).get("overall", {}).get("onnx"),
            "batch_size": batch_size,
            "sequence_length": sequence_length,
            **_summary(item["latencies"], item["wall"], batch_size),
            "rounds": rounds,
            "warmup_iterations": item["warm"],
            "load_seconds": round(item["load_s"], 2),
            "threads": threads or rt.physical_cores(),
            "other_processes_cpu_cores": round(item["others"] / item["wall"], 2) if _cpu_snapshot() else None,
            "load_average_1min": [load_before, load_after],
            "onnx_file": item["file"],
        }
        results.append(row)
        log(f"  {row['model']:<14} {cfg.runtime:<12} {cfg.precision:<5} {row['items_per_second']:8.2f} items/s  "
            f"median {row['latency_ms_median']:8.1f} ms  p90 {row['latency_ms_p90']:8.1f} ms")
    return results


def benchmark_dir(onnx_dir: str | os.PathLike, runtimes: Iterable[str] = ("onnxruntime", "deepsparse"),
                  precisions: Iterable[str] | None = None, label: str | None = None, **kwargs) -> list[dict]:
    """One result per (precision, runtime) of an exported directory (all the precisions it has by default)."""
    onnx_dir = rt.check_onnx_dir(onnx_dir)
    precisions = list(precisions) if precisions else rt.available_precisions(onnx_dir)
    configs = [Config(onnx_dir, runtime, precision, label or onnx_dir.name)
               for precision in precisions for runtime in runtimes]
    return benchmark(configs, **kwargs)


def _cpu_snapshot() -> tuple[float, float, float] | None:
    """(wall time, busy CPU seconds of the whole machine, CPU seconds of this process) on Linux, else None."""
    try:
        with open("/proc/stat", encoding="utf-8") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
        tick = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, AttributeError):
        return None
    busy = (sum(fields[:8]) - fields[3] - fields[4]) / tick  # all but idle and iowait
    own = os.times()
    return time.monotonic(), busy, own.user + own.system


def _others_cpu(before, after) -> float | None:
    """How many cores other processes kept busy while we measured: the machine is shared, so say so per row."""
    if before is None or after is None or after[0] <= before[0]:
        return None
    others = (after[1] - before[1]) - (after[2] - before[2])
    return round(max(0.0, others) / (after[0] - before[0]), 2)


def _load_average() -> float | None:
    """Other processes on the machine slow DeepSparse far more than ONNX Runtime; record how busy it was."""
    try:
        return round(os.getloadavg()[0], 2)
    except (OSError, AttributeError):
        return None


def _vocab_size(onnx_dir: Path) -> int:
    try:
        return int(json.loads((onnx_dir / "config.json").read_text()).get("vocab_size", 1000))
    except (OSError, ValueError):
        return 1000


def format_table(results: list[dict], baseline: dict | None = None) -> str:
    """Markdown table; the speed-up column is relative to `baseline` (default: the first row). The last column is how
    many cores other processes kept busy meanwhile (a shared machine slows everything, DeepSparse most)."""
    if not results:
        return "(no results)"
    base = baseline or results[0]
    lines = ["| model | sparsity | runtime | precision | batch | seq | items/s | median ms | p90 ms | speed-up "
             "| others' CPU |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        sp = r.get("sparsity")
        others = r.get("other_processes_cpu_cores")
        lines.append(
            f"| {r.get('model', '')} | {'' if sp is None else f'{sp:.0%}'} | {r['runtime']} | {r['precision']} | "
            f"{r['batch_size']} | {r['sequence_length']} | {r['items_per_second']:.2f} | "
            f"{r['latency_ms_median']:.1f} | {r['latency_ms_p90']:.1f} | "
            f"{r['items_per_second'] / base['items_per_second']:.2f}x | {'' if others is None else f'{others:.2f}'} |")
    return "\n".join(lines)


def format_machine(info: dict) -> str:
    isa = ", ".join(info.get("instruction_sets", [])) or "unknown"
    text = (f"{info['cpu']} ({info['architecture']}), {info['cores_physical']} physical / {info['cores_logical']} "
            f"logical cores, instruction sets: {isa}")
    if "load_average_1min" in info:
        text += f"; load average at start {info['load_average_1min']}"
    return text
