"""The tables `invoke bench` prints, from the report it writes to bench-results/speed.json."""

from __future__ import annotations

STAGES = [  # the breakdown's stages in the order a photo goes through them, and what the table calls them
    ("header", "header"), ("exif", "EXIF"), ("decode", "decode"),
    ("detect (outside the network)", "detect outside the network"), ("detector network", "detector network"),
    ("align", "align"), ("descriptor chips", "descriptor chips"), ("descriptor network", "descriptor network"),
    ("thumbnail", "thumbnails"), ("quality", "face quality"), ("other", "other"),
]


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f}"


def ingest(ing: dict, p=print) -> None:
    folders = ", ".join(ing["folders"])
    p(f"\nIngest, profile {ing['profile']}: {ing['photos']} photos of {folders}; {ing['rounds']} round(s) side by side")
    p(f"  {'':34} {'photos/s':>8} {'faces/s':>8} {'CPU s/photo':>11} {'faces':>6}  load before")
    for run in ing["runs"]:
        n = run["n"]
        for label, key, cpu in ((f"pgfaces INSERT, {n} connection(s)", "pgfaces", "cpu_s_per_photo"),
                                (f"naive client loop, {n} process(es)", "naive", "client_cpu_s_per_photo"),
                                (f"bare pipeline, {n} process(es)", "bare", "cpu_s_per_photo")):
            r = run[key]
            p(f"  {label:34} {r['photos_per_s']:8.2f} {r['faces_per_s']:8.2f} {r[cpu]:11.3f} {r['faces']:6}"
              + (f"  {run['load_before']} (round {run['round']})" if key == "pgfaces" else ""))
    for n, s in ing["summary"].items():
        p(f"  {n} vs {n}: pgfaces / naive photos/s = {s['pgfaces_over_naive']:.2f}x; naive / pgfaces CPU s per photo ="
          f" {s['naive_cpu_over_pgfaces_cpu']:.2f}x; pgfaces / bare pipeline = {s['pgfaces_over_bare']:.2f}x"
          + (" (medians over the rounds)" if ing["rounds"] > 1 else ""))
    found, labelled = ing["faces_found"], ing.get("labelled_faces") or {}
    groups = sorted(set(found["pgfaces"]) | set(found["naive"]) | set(labelled))
    p(f"  faces found      {''.join(f'{g:>11}' for g in groups)} {'total':>8}")
    for who, counts in (("labelled", labelled), ("pgfaces", found["pgfaces"]), ("naive loop", found["naive"])):
        if counts:
            p(f"  {who:16} {''.join(f'{counts.get(g, 0):>11}' for g in groups)} {sum(counts.values()):>8}")
    _floor(ing)
    _threads(ing)
    _backend(ing)


def _floor(ing: dict, p=print) -> None:
    bd, fl = ing["breakdown"], ing["floor"]
    runs = bd["network_runs_per_photo"]
    p("\n  The floor: the ONNX networks' forward passes per photo, timed alone (the same inputs again, back to back),"
      " CPU ms (wall):")
    p("    " + "; ".join(f"{stage} {_ms(bd['floor_per_photo_cpu_s'][stage])} ({_ms(bd['floor_per_photo_s'][stage])}),"
                         f" {runs[stage]:.1f} runs" for stage in bd["floor_per_photo_cpu_s"])
      + f"; together {_ms(fl['floor_cpu_s'])} ({_ms(fl['floor_wall_s'])})")
    p(f"    pgfaces INSERT, 1 connection: {_ms(fl['insert_cpu_s'])} CPU ms/photo = {fl['insert_over_floor_cpu']:.2f}x"
      f" the floor (wall {_ms(fl['insert_wall_s'])} ms = {fl['insert_over_floor_wall']:.2f}x); bare pipeline"
      f" {_ms(fl['bare_cpu_s'])} CPU ms = {fl['bare_over_floor_cpu']:.2f}x")
    cpu, wall = bd["per_photo_cpu_s"], bd["per_photo_s"]
    p("  Where a photo's time goes (bare pipeline, 1 process), CPU ms per photo (wall):")
    p("    " + ", ".join(f"{label} {_ms(cpu.get(stage))} ({_ms(wall.get(stage))})" for stage, label in STAGES)
      + f"; total {_ms(cpu['total'])} ({_ms(wall['total'])})")
    rounds = ", ".join(_ms(v) for v in fl.get("db_write_cpu_s_rounds", []))
    p(f"    database write (INSERT backend CPU - bare CPU, 1 connection / process): {_ms(fl['db_write_cpu_s'])} ms"
      f" (rounds: {rounds});"
      f" an INSERT with no profile ingesting takes {_ms(ing['insert_without_analysis']['cpu_s'])} CPU ms"
      f" ({_ms(ing['insert_without_analysis']['wall_s'])} wall);"
      f" {bd['faces'] / bd['photos']:.2f} faces per photo")
    if "quality" in cpu and bd["faces"]:
        p(f"    the face quality judgement (pgfaces.quality): {cpu['quality'] * bd['photos'] / bd['faces'] * 1000:.2f}"
          " CPU ms per face")


def _threads(ing: dict, p=print) -> None:
    runs = ing.get("threads")
    if not runs:
        return
    p("\n  Intra-op threads per ONNX session (bare pipeline, 1 process; CPU s counts every thread):")
    for r in runs:
        p(f"    {r['threads']} thread(s): {r['photos_per_s']:.2f} photos/s, {r['cpu_s_per_photo']:.3f} CPU s/photo"
          f"  (round {r['round']}, load {r['load_before']})")
    by = {t: [r["photos_per_s"] for r in runs if r["threads"] == t] for t in sorted({r["threads"] for r in runs})}
    one, more = by[min(by)], by[max(by)]
    p(f"    {max(by)} threads / 1: " + ", ".join(f"{b / a:.2f}x" for a, b in zip(one, more)) + " photos/s per round")


def _backend(ing: dict, p=print) -> None:
    bd, fc, mm = ing["breakdown"], ing["first_call"], ing["memory_50mp"]
    p(f"\n  New backend: connect {_ms(fc['connect_s'])} ms; first detect_and_embed {_ms(fc['first_s'])} ms, warm"
      f" {_ms(fc['warm_s'])} ms (first call costs +{_ms(fc['first_minus_warm_s'])} ms); bare imports"
      f" {_ms(bd['imports_s'])} ms + models {_ms(bd['model_load_s'])} ms")
    rm = fc["rss_after_models_mib"]
    p(f"  Backend RSS after models: {rm.get('VmRSS', 0):.0f} MiB (anon {rm.get('RssAnon', 0):.0f}, file"
      f" {rm.get('RssFile', 0):.0f}, shmem {rm.get('RssShmem', 0):.0f}); new backend"
      f" {fc['rss_new_backend_mib'].get('VmRSS', 0):.0f} MiB")
    p(f"  50 MP INSERT: {mm['insert_s']:.1f} s, {mm['faces']} faces, peak VmHWM {mm['after_mib']['VmHWM']:.0f} MiB"
      f" (before {mm['before_mib']['VmHWM']:.0f})")


def search(s: dict, p=print) -> None:
    syn = s.get("synthetic", {})
    kind = (f"synthetic people, {syn['mean_faces_per_person']:.0f} faces each on average" if syn.get("model") == "people"
            else "synthetic strangers")
    p(f"\nSearch, profile {s['profile']} ({s['real_faces']} real faces + {kind}; {s['queries']} queries; recall@10"
      " against exact search):")
    fit = s.get("synthetic_fit", {})
    if "why" in fit:
        p(f"  strangers, not people: {fit['why']}")
    if "real" in fit:
        p(f"  mean distance, same person / different people: real {fit['real']['same_person']:.3f} /"
          f" {fit['real']['different_people']:.3f}, synthetic {fit['synthetic']['same_person']:.3f} /"
          f" {fit['synthetic']['different_people']:.3f}")
    p(f"  {'faces':>8}  {'option':52} {'setting':32} {'build s':>7} {'MiB':>5} {'p50 ms':>6} {'p95':>6} {'recall':>6}"
      f" {'scan p50':>8}")
    for lv in s["levels"]:
        for r in lv["rows"]:
            build = "-" if r.get("build_s") is None else f"{r['build_s']:.0f}"
            size = f"{r['index_mib']:.0f}" if "index_mib" in r else "-"
            scan = f"{r['index_scan_p50_ms']:8.2f}" if "index_scan_p50_ms" in r else f"{'':8}"
            p(f"  {lv['faces']:8}  {r['option']:52} {r['setting']:32} {build:>7} {size:>5} {r['p50_ms']:6.2f}"
              f" {r['p95_ms']:6.2f} {r['recall_at_10']:6.3f} {scan}")
        im = lv["image_search"]
        p(f"  {lv['faces']:8}  1 MP reference: find_photos_like p50 {im['find_photos_like']['p50_ms']:.0f} ms (p95"
          f" {im['find_photos_like']['p95_ms']:.0f}), face_embedding p50 {im['face_embedding']['p50_ms']:.0f} ms,"
          f" difference (median of pairs) {im['overhead_p50_ms']:.1f} ms; detect_and_embed p50"
          f" {im['detect_and_embed']['p50_ms']:.0f} ms; find_photos_near p50 {im['find_photos_near']['p50_ms']:.1f} ms,"
          f" find_faces_near p50 {im['find_faces_near']['p50_ms']:.1f} ms  [load {lv['load']} .. {lv['load_after']}]")


def print_tables(report: dict) -> None:
    print(f"\npgfaces speed ({report['machine']}; server dlib {report.get('server_dlib', '?')}); load average at start"
          f" {report['load_start']}, end {report['load_end']}")
    for ing in report["ingest"]:
        ingest(ing)
    if report.get("search"):
        search(report["search"])
